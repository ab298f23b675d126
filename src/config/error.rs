//! Configuration errors: every one names where it happened and what was expected.

use super::ast::Pos;

/// An error in a pipeline configuration or in the files it names.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The text does not follow the grammar. `snippet` is the offending line with a caret
    /// under the column.
    #[error("{pos}: syntax error: {message}\n{snippet}")]
    Syntax {
        pos: Pos,
        message: String,
        snippet: String,
    },
    /// The text parses but means something invalid (unknown plugin, bad option ...).
    #[error("{pos}: {message}")]
    Invalid { pos: Pos, message: String },
    /// A file or directory given with `-f` could not be read.
    #[error("cannot read configuration {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// `-f` matched nothing, or the configuration has no section that can run.
    #[error("{0}")]
    Empty(String),
}

impl Error {
    pub fn invalid(pos: &Pos, message: impl Into<String>) -> Error {
        Error::Invalid {
            pos: pos.clone(),
            message: message.into(),
        }
    }
}

/// Renders `line` of `source` with a caret under `column` (1-based), for syntax errors.
/// Values of secret options and passwords in URLs are masked ([`mask_secrets`]).
pub fn snippet(source: &str, line: u32, column: u32) -> String {
    let text = source
        .lines()
        .nth(line.saturating_sub(1) as usize)
        .unwrap_or("");
    let text = mask_secrets(text);
    let text: String = text
        .chars()
        .map(|c| if c == '\t' { ' ' } else { c })
        .collect();
    let pad = " ".repeat(column.saturating_sub(1) as usize);
    format!("  {text}\n  {pad}^")
}

/// What a masked secret reads as, everywhere Sluice prints one.
pub const REDACTED: &str = "<redacted>";

/// Whether an option holds a secret by its name alone: `password`, `api_key`,
/// `shared_key`, `client_secret`, `token`, `passphrase`, and any name ending in one of
/// them (`ssl_keystore_password`, `ssl_key_passphrase`, `sasl_token`, ...).
pub fn is_secret_option(name: &str) -> bool {
    const NAMES: [&str; 7] = [
        "password",
        "api_key",
        "shared_key",
        "client_secret",
        "token",
        "passphrase",
        "secret",
    ];
    NAMES
        .iter()
        .any(|n| name == *n || name.ends_with(&format!("_{n}")))
}

/// Masks, in one line of configuration text, the values of secret options
/// (`password => "..."`, quoted or not, even unterminated) and the password of any URL
/// (`https://user:pass@host`). The structure stays readable so a caret still points at
/// the right token on most lines; the secret itself never appears.
pub fn mask_secrets(line: &str) -> String {
    let masked = mask_option_values(line);
    mask_url_passwords(&masked)
}

fn mask_option_values(line: &str) -> String {
    let bytes = line.as_bytes();
    let mut out = String::with_capacity(line.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if !(bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len()
            && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'_' | b'-' | b'@' | b'.'))
        {
            i += 1;
        }
        let name = line[start..i].trim_matches(|c| c == '"' || c == '\'');
        if !is_secret_option(name) {
            continue;
        }
        // The name may be quoted: skip a closing quote, spaces and `=>`.
        let mut j = i;
        if j < bytes.len() && matches!(bytes[j], b'"' | b'\'') {
            j += 1;
        }
        while j < bytes.len() && bytes[j].is_ascii_whitespace() {
            j += 1;
        }
        if !line[j..].starts_with("=>") {
            continue;
        }
        j += 2;
        while j < bytes.len() && bytes[j].is_ascii_whitespace() {
            j += 1;
        }
        if j >= bytes.len() {
            break;
        }
        let value_end = match bytes[j] {
            q @ (b'"' | b'\'') => {
                let mut k = j + 1;
                while k < bytes.len() && bytes[k] != q {
                    k += if bytes[k] == b'\\' { 2 } else { 1 };
                }
                (k + 1).min(bytes.len())
            }
            _ => {
                let mut k = j;
                while k < bytes.len()
                    && !bytes[k].is_ascii_whitespace()
                    && !matches!(bytes[k], b'}' | b']' | b',')
                {
                    k += 1;
                }
                k
            }
        };
        out.push_str(&line[copied..j]);
        out.push_str(REDACTED);
        copied = value_end;
        i = value_end;
    }
    out.push_str(&line[copied..]);
    out
}

/// Masks the password of every `scheme://user:password@host` in `text`.
pub fn mask_url_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        // The authority ends at the first `/`, `?`, `#`, space or quote.
        let end = tail
            .find(|c: char| {
                matches!(
                    c,
                    '/' | '?' | '#' | '"' | '\'' | ' ' | '`' | ',' | ']' | '}'
                )
            })
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(userinfo_end) => {
                let userinfo = &authority[..userinfo_end];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..colon + 1]);
                        out.push_str(REDACTED);
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&authority[userinfo_end..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// The literal values of secret options in a whole configuration, so that a message
/// quoting a token can be cleaned of them too.
pub fn secret_values(source: &str) -> Vec<String> {
    let mut values = Vec::new();
    for line in source.lines() {
        let masked = mask_option_values(line);
        if masked == line {
            continue;
        }
        // Whatever `mask_option_values` replaced, token by token.
        let (a, b) = (line.as_bytes(), masked.as_bytes());
        let mut i = 0;
        let mut j = 0;
        while i < a.len() && j < b.len() {
            if a[i] == b[j] && !masked[j..].starts_with(REDACTED) {
                i += 1;
                j += 1;
                continue;
            }
            if masked[j..].starts_with(REDACTED) {
                let after = &masked[j + REDACTED.len()..];
                let next = after.chars().next();
                let mut k = i;
                while k < a.len() && Some(a[k] as char) != next {
                    k += 1;
                }
                let value = line[i..k].trim_matches(|c| c == '"' || c == '\'');
                if value.len() >= 3 {
                    values.push(value.to_string());
                }
                i = k;
                j += REDACTED.len();
                continue;
            }
            break;
        }
    }
    values
}

/// `text` with every secret of `source` masked: option values and URL passwords.
pub fn redact_with(text: &str, source: &str) -> String {
    let mut out = mask_url_passwords(text);
    for value in secret_values(source) {
        out = out.replace(&value, REDACTED);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_option_values_and_url_passwords_are_masked() {
        let line = r#"  elasticsearch { hosts => ["https://elastic:hunter2@es:9200"] password => "s3cr3t" user => "bob" api_key => abc123 }"#;
        let masked = mask_secrets(line);
        for secret in ["hunter2", "s3cr3t", "abc123"] {
            assert!(!masked.contains(secret), "{masked}");
        }
        assert!(
            masked.contains("bob") && masked.contains("es:9200"),
            "{masked}"
        );
        assert_eq!(
            mask_secrets(r#"ssl_key_passphrase => 'p\'w"#),
            "ssl_key_passphrase => <redacted>"
        );
        assert_eq!(
            mask_secrets("token => \"unterminated"),
            "token => <redacted>"
        );
        assert_eq!(
            mask_secrets("ssl_key => \"/etc/key.pem\""),
            "ssl_key => \"/etc/key.pem\""
        );
    }

    #[test]
    fn messages_lose_the_secret_values_of_their_source() {
        let source = "output { x { password => \"hunter22\" } }";
        assert_eq!(
            redact_with("found \"hunter22\" at 1:30", source),
            "found \"<redacted>\" at 1:30"
        );
    }
}
