//! `${VAR}` and `${VAR:default}` substitution in option values, from the environment.

/// A `${VAR}` with no default that the environment does not set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment variable `{0}` is not set and has no default (write ${{{0}:default}})")]
pub struct MissingVar(pub String);

/// Replaces every `${NAME}` / `${NAME:default}` in `text` using `lookup`. Text without
/// `${` is returned unchanged and without allocating a second time.
pub fn substitute_with(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, MissingVar> {
    if !text.contains("${") {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let inner = &after[..end];
        let (name, default) = match inner.find(':') {
            Some(i) => (&inner[..i], Some(&inner[i + 1..])),
            None => (inner, None),
        };
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        if !valid {
            out.push_str("${");
            rest = after;
            continue;
        }
        match (lookup(name), default) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => return Err(MissingVar(name.to_string())),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// [`substitute_with`] over the process environment.
pub fn substitute(text: &str) -> Result<String, MissingVar> {
    substitute_with(text, |name| std::env::var(name).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "HOST").then(|| "db-1".to_string())
    }

    #[test]
    fn substitutes_and_defaults() {
        assert_eq!(substitute_with("plain", env).unwrap(), "plain");
        assert_eq!(substitute_with("${HOST}:9200", env).unwrap(), "db-1:9200");
        assert_eq!(
            substitute_with("${ENVIRONMENT:production}", env).unwrap(),
            "production"
        );
        assert_eq!(substitute_with("${PORT:}", env).unwrap(), "");
        assert_eq!(
            substitute_with("${NOPE}", env),
            Err(MissingVar("NOPE".into()))
        );
        assert_eq!(substitute_with("a ${ b", env).unwrap(), "a ${ b");
    }
}
