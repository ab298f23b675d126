//! sprintf templates (`"%{[host][name]}-%{+YYYY.MM.dd}"`), parsed once at load time.
//!
//! Logstash semantics: a missing field leaves the `%{...}` text in place, arrays join
//! with `,`, maps render as JSON, `%{+FORMAT}` formats `@timestamp` in UTC with a Joda
//! pattern and `%{+%s}` is epoch seconds.

use super::field_ref::{FieldRef, FieldRefError};
use crate::event::joda::{JodaError, JodaPattern};
use crate::event::Event;
use std::borrow::Cow;

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Literal(String),
    Field { field: FieldRef, raw: String },
    Time(JodaPattern),
    EpochSeconds,
}

/// A compiled template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TemplateError {
    #[error(transparent)]
    Field(#[from] FieldRefError),
    #[error("invalid date format in template: {0}")]
    Time(#[from] JodaError),
}

impl Template {
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = source;
        while let Some(start) = rest.find("%{") {
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else { break };
            literal.push_str(&rest[..start]);
            let inner = &after[..end];
            let part = if let Some(fmt) = inner.strip_prefix('+') {
                if fmt == "%s" {
                    Some(Part::EpochSeconds)
                } else {
                    Some(Part::Time(JodaPattern::compile(fmt)?))
                }
            } else if inner.is_empty() {
                None
            } else {
                Some(Part::Field {
                    field: FieldRef::parse(inner)?,
                    raw: format!("%{{{inner}}}"),
                })
            };
            match part {
                Some(p) => {
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(p);
                }
                None => literal.push_str("%{}"),
            }
            rest = &after[end + 1..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Template {
            source: source.to_string(),
            parts,
        })
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// True when the template has no `%{...}`: rendering it costs nothing.
    pub fn is_static(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Literal(_)))
    }

    /// Renders the template for `event`; static templates borrow their text.
    pub fn render<'a>(&'a self, event: &Event) -> Cow<'a, str> {
        match self.parts.as_slice() {
            [] => Cow::Borrowed(""),
            [Part::Literal(s)] => Cow::Borrowed(s),
            _ => {
                let mut out = String::with_capacity(self.source.len() + 16);
                self.render_into(event, &mut out);
                Cow::Owned(out)
            }
        }
    }

    /// Appends the rendering for `event` to `out`.
    pub fn render_into(&self, event: &Event, out: &mut String) {
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Field { field, raw } => match event.get(field) {
                    Some(v) if !matches!(v, crate::event::Value::Null) => v.write_display(out),
                    _ => out.push_str(raw),
                },
                Part::Time(p) => {
                    let ts = event
                        .timestamp()
                        .unwrap_or_else(crate::event::Timestamp::now);
                    p.format(ts.datetime(), out);
                }
                Part::EpochSeconds => {
                    let ts = event
                        .timestamp()
                        .unwrap_or_else(crate::event::Timestamp::now);
                    out.push_str(&ts.unix_seconds().to_string());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{new_map, Timestamp, Value};

    fn event() -> Event {
        let mut e = Event::at(Timestamp::from_unix_millis(1_795_257_000_123).unwrap());
        e.insert(
            &FieldRef::parse("[host][name]").unwrap(),
            Value::from("web-1"),
        );
        e.insert_field("tags", Value::Array(vec!["a".into(), "b".into()]));
        let mut m = new_map();
        m.insert("k".into(), Value::from(1));
        e.insert_field("m", Value::Map(m));
        e.insert_field("n", Value::from(7));
        e
    }

    fn render(t: &str) -> String {
        Template::parse(t).unwrap().render(&event()).into_owned()
    }

    #[test]
    fn renders_like_logstash() {
        assert_eq!(render("%{[host][name]}-%{+YYYY.MM.dd}"), "web-1-2026.11.21");
        assert_eq!(render("logs-%{+yyyy.MM.dd}"), "logs-2026.11.21");
        assert_eq!(render("%{missing} x"), "%{missing} x");
        assert_eq!(render("%{tags}"), "a,b");
        assert_eq!(render("%{m}"), r#"{"k":1}"#);
        assert_eq!(render("%{n}"), "7");
        assert_eq!(render("%{+%s}"), "1795257000");
        assert_eq!(render("100%{"), "100%{");
        assert_eq!(render("static"), "static");
        assert!(Template::parse("static").unwrap().is_static());
        assert!(Template::parse("%{a[b]}").is_err());
    }
}
