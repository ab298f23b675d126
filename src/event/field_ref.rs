//! Logstash field references (`message`, `[http][status]`, `[@metadata][beat]`), parsed
//! once at load time so the hot path only walks a ready path.

use std::fmt;

/// Which top-level map a reference points into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Root {
    /// The event's ordinary fields (sent to outputs).
    Fields,
    /// `[@metadata]`: travels with the event but never reaches an output.
    Metadata,
}

/// A parsed field reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldRef {
    root: Root,
    path: Box<[String]>,
}

/// Why a field reference could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid field reference `{reference}`: {reason}")]
pub struct FieldRefError {
    pub reference: String,
    pub reason: &'static str,
}

impl FieldRef {
    /// Parses `name`, `[a][b]` or `[@metadata][x]`. Mixed forms like `a[b]` are refused, as
    /// in Logstash.
    pub fn parse(text: &str) -> Result<FieldRef, FieldRefError> {
        let err = |reason| FieldRefError {
            reference: text.to_string(),
            reason,
        };
        if text.is_empty() {
            return Err(err("empty reference"));
        }
        let mut path: Vec<String> = Vec::new();
        if text.starts_with('[') {
            let mut rest = text;
            while !rest.is_empty() {
                let Some(inner) = rest.strip_prefix('[') else {
                    return Err(err("expected `[` after `]`"));
                };
                let Some(end) = inner.find(']') else {
                    return Err(err("missing `]`"));
                };
                let seg = &inner[..end];
                if seg.is_empty() {
                    return Err(err("empty segment `[]`"));
                }
                if seg.contains('[') {
                    return Err(err("unbalanced `[`"));
                }
                path.push(seg.to_string());
                rest = &inner[end + 1..];
            }
        } else {
            if text.contains('[') || text.contains(']') {
                return Err(err("mixed bare and bracketed segments; write `[a][b]`"));
            }
            path.push(text.to_string());
        }
        let root = if path.first().map(String::as_str) == Some("@metadata") {
            path.remove(0);
            Root::Metadata
        } else {
            Root::Fields
        };
        Ok(FieldRef {
            root,
            path: path.into_boxed_slice(),
        })
    }

    /// A reference to a top-level field, for names known at compile time.
    pub fn top(name: &str) -> FieldRef {
        if name == "@metadata" {
            return FieldRef {
                root: Root::Metadata,
                path: Box::new([]),
            };
        }
        FieldRef {
            root: Root::Fields,
            path: vec![name.to_string()].into_boxed_slice(),
        }
    }

    pub fn root(&self) -> Root {
        self.root
    }

    /// The path below the root; empty for `[@metadata]` itself.
    pub fn path(&self) -> &[String] {
        &self.path
    }

    /// True for a single top-level ordinary field such as `message`.
    pub fn is_top_level(&self) -> bool {
        self.root == Root::Fields && self.path.len() == 1
    }

    /// True for `@timestamp`, whose writes the event parses into a time.
    pub fn is_timestamp(&self) -> bool {
        self.is_top_level() && self.path[0] == super::TIMESTAMP
    }
}

impl fmt::Display for FieldRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.root == Root::Metadata {
            f.write_str("[@metadata]")?;
        }
        for seg in self.path.iter() {
            write!(f, "[{seg}]")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_logstash_accepts() {
        assert_eq!(FieldRef::parse("message").unwrap().path(), ["message"]);
        let r = FieldRef::parse("[http][status]").unwrap();
        assert_eq!(r.path(), ["http", "status"]);
        assert_eq!(r.root(), Root::Fields);
        let m = FieldRef::parse("[@metadata][beat]").unwrap();
        assert_eq!(m.root(), Root::Metadata);
        assert_eq!(m.path(), ["beat"]);
        assert_eq!(m.to_string(), "[@metadata][beat]");
        assert_eq!(
            FieldRef::parse("@timestamp").unwrap().path(),
            ["@timestamp"]
        );
    }

    #[test]
    fn refuses_malformed_references() {
        for bad in ["", "a[b]", "[a", "[a]b", "[]", "[a][[b]]", "a]"] {
            assert!(FieldRef::parse(bad).is_err(), "{bad} should fail");
        }
    }
}
