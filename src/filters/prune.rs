//! `prune` filter: keeps or drops top-level fields by name and value patterns
//! (`whitelist_names`, `blacklist_names`, `whitelist_values`, `blacklist_values`).
//! The default blacklist removes fields whose name is an unresolved `%{...}` reference.
//! Patterns are compiled once unless `interpolate` renders them per event.

use super::{EventFilter, Outcome};
use crate::config::Error;
use crate::event::sprintf::Template;
use crate::event::{Event, Value};
use crate::plugin::Options;
use regex::Regex;

/// A pattern, compiled up front or rendered from the event first (`interpolate`).
enum Pattern {
    Fixed(Regex),
    Interpolated(Template),
}

impl Pattern {
    fn regex(&self, event: &Event) -> Option<std::borrow::Cow<'_, Regex>> {
        match self {
            Pattern::Fixed(r) => Some(std::borrow::Cow::Borrowed(r)),
            Pattern::Interpolated(t) => match Regex::new(&literal_braces(&t.render(event))) {
                Ok(r) => Some(std::borrow::Cow::Owned(r)),
                Err(e) => {
                    tracing::debug!(error = %e, "prune: interpolated pattern is not a regex");
                    None
                }
            },
        }
    }
}

/// Ruby reads a `{` that starts no `{n}`, `{n,}` or `{n,m}` quantifier as a plain
/// brace (`%{name}`); the regex crate refuses it, so such braces are escaped first.
fn literal_braces(pattern: &str) -> String {
    let bytes = pattern.as_bytes();
    let mut out = String::with_capacity(pattern.len() + 4);
    let mut i = 0;
    let mut in_quantifier = false;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'\\' && i + 1 < bytes.len() {
            let len = pattern[i + 1..].chars().next().map_or(1, char::len_utf8);
            out.push_str(&pattern[i..i + 1 + len]);
            i += 1 + len;
            continue;
        }
        if c == b'{' {
            let rest = &pattern[i + 1..];
            let end = rest.find('}');
            let quantifier = end.is_some_and(|e| {
                let body = &rest[..e];
                let mut parts = body.splitn(2, ',');
                let first = parts.next().unwrap_or("");
                !first.is_empty()
                    && first.bytes().all(|b| b.is_ascii_digit())
                    && parts
                        .next()
                        .is_none_or(|m| m.bytes().all(|b| b.is_ascii_digit()))
            });
            if quantifier {
                in_quantifier = true;
                out.push('{');
            } else {
                out.push_str("\\{");
            }
            i += 1;
            continue;
        }
        if c == b'}' {
            if in_quantifier {
                in_quantifier = false;
                out.push('}');
            } else {
                out.push_str("\\}");
            }
            i += 1;
            continue;
        }
        let len = pattern[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&pattern[i..i + len]);
        i += len;
    }
    out
}

pub struct Prune {
    interpolate: bool,
    whitelist_names: Vec<Pattern>,
    blacklist_names: Vec<Pattern>,
    whitelist_values: Vec<(String, Pattern)>,
    blacklist_values: Vec<(String, Pattern)>,
}

impl Prune {
    pub fn build(opts: &mut Options) -> Result<Prune, Error> {
        let interpolate = opts.bool_or("interpolate", false)?;
        let pattern = |opts: &Options, name: &str, text: &str| -> Result<Pattern, Error> {
            let pos = opts.value_pos(name);
            if interpolate {
                Template::parse(text)
                    .map(Pattern::Interpolated)
                    .map_err(|e| opts.option_error(name, &pos, e))
            } else {
                Regex::new(&literal_braces(text))
                    .map(Pattern::Fixed)
                    .map_err(|e| opts.option_error(name, &pos, e))
            }
        };
        let mut p = Prune {
            interpolate,
            whitelist_names: Vec::new(),
            blacklist_names: Vec::new(),
            whitelist_values: Vec::new(),
            blacklist_values: Vec::new(),
        };
        for n in opts.string_list("whitelist_names")?.unwrap_or_default() {
            p.whitelist_names
                .push(pattern(opts, "whitelist_names", &n)?);
        }
        let blacklist = opts
            .string_list("blacklist_names")?
            .unwrap_or_else(|| vec![r"%\{[^}]+\}".to_string()]);
        for n in blacklist {
            p.blacklist_names
                .push(pattern(opts, "blacklist_names", &n)?);
        }
        for (k, v) in opts.string_map("whitelist_values")?.unwrap_or_default() {
            p.whitelist_values
                .push((k, pattern(opts, "whitelist_values", &v)?));
        }
        for (k, v) in opts.string_map("blacklist_values")?.unwrap_or_default() {
            p.blacklist_values
                .push((k, pattern(opts, "blacklist_values", &v)?));
        }
        Ok(p)
    }
}

fn any_match(patterns: &[Pattern], event: &Event, text: &str) -> bool {
    patterns
        .iter()
        .any(|p| p.regex(event).is_some_and(|r| r.is_match(text)))
}

impl EventFilter for Prune {
    fn apply(&self, event: &mut Event) -> Outcome {
        let names: Vec<String> = event.fields().keys().cloned().collect();
        let mut remove: Vec<String> = Vec::new();
        if !self.whitelist_names.is_empty() {
            for n in &names {
                if !any_match(&self.whitelist_names, event, n) {
                    remove.push(n.clone());
                }
            }
        }
        for n in &names {
            if any_match(&self.blacklist_names, event, n) {
                remove.push(n.clone());
            }
        }
        // (field, values to take out of an array; `None`: the whole field)
        let mut partial: Vec<(String, Vec<Value>)> = Vec::new();
        for (list, keep_matching) in [
            (&self.whitelist_values, true),
            (&self.blacklist_values, false),
        ] {
            for (key, pattern) in list {
                let key = if self.interpolate {
                    Template::parse(key)
                        .map(|t| t.render(event).into_owned())
                        .unwrap_or_else(|_| key.clone())
                } else {
                    key.clone()
                };
                let Some(re) = pattern.regex(event) else {
                    continue;
                };
                let goes = |v: &Value| {
                    let text = v.to_display_string();
                    re.is_match(&text) != keep_matching
                };
                match event.fields().get(&key) {
                    None | Some(Value::Null) | Some(Value::Bool(false)) => {}
                    Some(Value::Array(items)) => {
                        let out: Vec<Value> = items.iter().filter(|v| goes(v)).cloned().collect();
                        if out.len() == items.len() {
                            remove.push(key);
                        } else if !out.is_empty() {
                            partial.push((key, out));
                        }
                    }
                    Some(v) => {
                        if goes(v) {
                            remove.push(key);
                        }
                    }
                }
            }
        }
        for (key, values) in partial {
            if let Some(Value::Array(items)) = event.fields_mut().get_mut(&key) {
                items.retain(|v| !values.contains(v));
            }
        }
        for key in remove {
            event.fields_mut().shift_remove(&key);
        }
        Outcome::Success
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn braces_outside_quantifiers_are_literal() {
        assert_eq!(literal_braces("%{a}_x"), "%\\{a\\}_x");
        assert_eq!(literal_braces("^2\\d{2}$"), "^2\\d{2}$");
        assert_eq!(literal_braces("a{1,3}b{,}"), "a{1,3}b\\{,\\}");
        assert_eq!(literal_braces("%\\{[^}]+\\}"), "%\\{[^\\}]+\\}");
    }
}
