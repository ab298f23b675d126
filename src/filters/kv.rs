//! `kv` filter: `key=value` pairs into fields.
//!
//! ```text
//! kv { source => "message" field_split => " &" value_split => "=" prefix => "kv_" }
//! ```
//!
//! `field_split` and `value_split` are sets of characters, as in Logstash. A value may
//! be quoted (`"..."`, `'...'`) or bracketed (`(...)`, `[...]`, `<...>`) to hold
//! separators; the quotes are removed, the brackets too unless `include_brackets`.

use super::{EventFilter, Outcome};
use crate::config::Error;
use crate::event::field_ref::FieldRef;
use crate::event::{new_map, Event, Value};
use crate::plugin::Options;

const KV_FAILURE: &str = "_kv_filter_error";

/// The `kv` filter.
pub struct Kv {
    source: FieldRef,
    target: Option<FieldRef>,
    field_split: Vec<char>,
    value_split: Vec<char>,
    prefix: String,
    include_keys: Vec<String>,
    exclude_keys: Vec<String>,
    trim_key: Vec<char>,
    trim_value: Vec<char>,
    include_brackets: bool,
    allow_duplicate_values: bool,
    default_keys: Vec<(String, String)>,
    tag_on_failure: Vec<String>,
}

/// Logstash writes the character sets with regex escapes (`\t`, `\\|`): unescape them.
fn char_set(s: &str) -> Vec<char> {
    let mut out = Vec::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('t') => out.push('\t'),
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('s') => out.extend([' ', '\t']),
                Some(o) => out.push(o),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl Kv {
    pub fn build(opts: &mut Options) -> Result<Kv, Error> {
        let value_split = char_set(&opts.string_or("value_split", "=")?);
        if value_split.is_empty() {
            return Err(opts.error("kv option `value_split` must not be empty"));
        }
        Ok(Kv {
            source: opts
                .field_ref("source")?
                .unwrap_or_else(|| FieldRef::top("message")),
            target: opts.field_ref("target")?,
            field_split: char_set(&opts.string_or("field_split", " ")?),
            value_split,
            prefix: opts.string_or("prefix", "")?,
            include_keys: opts.string_list("include_keys")?.unwrap_or_default(),
            exclude_keys: opts.string_list("exclude_keys")?.unwrap_or_default(),
            trim_key: char_set(&opts.string_or("trim_key", "")?),
            trim_value: char_set(&opts.string_or("trim_value", "")?),
            include_brackets: opts.bool_or("include_brackets", true)?,
            allow_duplicate_values: opts.bool_or("allow_duplicate_values", true)?,
            default_keys: opts.string_map("default_keys")?.unwrap_or_default(),
            tag_on_failure: opts
                .string_list("tag_on_failure")?
                .unwrap_or_else(|| vec![KV_FAILURE.to_string()]),
        })
    }

    /// The pairs of `text`, in order.
    fn pairs<'t>(&self, text: &'t str) -> Vec<(&'t str, &'t str)> {
        let mut out = Vec::new();
        let mut rest = text;
        loop {
            rest = rest.trim_start_matches(|c| self.field_split.contains(&c));
            if rest.is_empty() {
                break;
            }
            // The key runs to a value separator; a field separator first means no value.
            let Some(k_end) =
                rest.find(|c| self.value_split.contains(&c) || self.field_split.contains(&c))
            else {
                break;
            };
            let key = &rest[..k_end];
            let sep = rest[k_end..].chars().next().unwrap_or(' ');
            rest = &rest[k_end + sep.len_utf8()..];
            if !self.value_split.contains(&sep) {
                continue;
            }
            let (value, after) = self.value(rest);
            rest = after;
            if !key.is_empty() && !value.is_empty() {
                out.push((key, value));
            }
        }
        out
    }

    /// A value at the start of `s` and what follows it.
    fn value<'t>(&self, s: &'t str) -> (&'t str, &'t str) {
        let close = match s.chars().next() {
            Some('"') => Some(('"', false)),
            Some('\'') => Some(('\'', false)),
            Some('(') => Some((')', true)),
            Some('[') => Some((']', true)),
            Some('<') => Some(('>', true)),
            _ => None,
        };
        if let Some((close, bracket)) = close {
            if let Some(end) = s[1..].find(close) {
                let inner_end = 1 + end;
                let value = if bracket && self.include_brackets {
                    &s[..inner_end + 1]
                } else {
                    &s[1..inner_end]
                };
                return (value, &s[inner_end + 1..]);
            }
        }
        let end = s.find(|c| self.field_split.contains(&c)).unwrap_or(s.len());
        (&s[..end], &s[end..])
    }
}

impl EventFilter for Kv {
    fn apply(&self, event: &mut Event) -> Outcome {
        let text = match event.get(&self.source) {
            None => return Outcome::Failure,
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(items)) => items
                .iter()
                .map(Value::to_display_string)
                .collect::<Vec<_>>()
                .join(" "),
            Some(_) => {
                tracing::debug!(source = %self.source, "kv source is not a string");
                for t in &self.tag_on_failure {
                    event.add_tag(t);
                }
                return Outcome::Failure;
            }
        };
        let mut map = new_map();
        for (k, v) in self.pairs(&text) {
            let k = k.trim_matches(|c| self.trim_key.contains(&c));
            let v = v.trim_matches(|c| self.trim_value.contains(&c));
            if k.is_empty()
                || (!self.include_keys.is_empty() && !self.include_keys.iter().any(|i| i == k))
                || self.exclude_keys.iter().any(|x| x == k)
            {
                continue;
            }
            let key = format!("{}{k}", self.prefix);
            let value = Value::String(v.to_string());
            match map.get_mut(&key) {
                None => {
                    map.insert(key, value);
                }
                Some(Value::Array(items)) => {
                    if self.allow_duplicate_values || !items.contains(&value) {
                        items.push(value);
                    }
                }
                Some(existing) => {
                    if self.allow_duplicate_values || *existing != value {
                        let old = std::mem::take(existing);
                        *existing = Value::Array(vec![old, value]);
                    }
                }
            }
        }
        for (k, v) in &self.default_keys {
            let key = format!("{}{k}", self.prefix);
            map.entry(key).or_insert_with(|| Value::String(v.clone()));
        }
        match &self.target {
            Some(t) => {
                if !map.is_empty() {
                    event.insert(t, Value::Map(map));
                }
            }
            None => {
                for (k, v) in map {
                    match FieldRef::parse(&k) {
                        Ok(r) => {
                            event.insert(&r, v);
                        }
                        Err(_) => event.insert_field(k, v),
                    }
                }
            }
        }
        Outcome::Success
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(body: &str, message: &str) -> Event {
        let mut opts = Options::from_text("kv", "filter", body).unwrap();
        let k = Kv::build(&mut opts).unwrap();
        opts.finish().unwrap();
        let mut e = Event::new();
        e.insert_field("message", message);
        k.apply(&mut e);
        e
    }

    #[test]
    fn default_splits_and_quotes() {
        let e = kv("", r#"a=1 b="two words" c=(x y) d= e"#);
        assert_eq!(e.get_str("a"), Some("1"));
        assert_eq!(e.get_str("b"), Some("two words"));
        assert_eq!(e.get_str("c"), Some("(x y)"));
        assert!(e.get_field("d").is_none());
    }

    #[test]
    fn options() {
        let e = kv(
            r#"field_split => "&" value_split => ":" prefix => "p_" include_keys => ["a", "b"] exclude_keys => ["b"] target => "[kv]" trim_value => "<>" trim_key => " ""#,
            "a:<1>& b:2&c:3",
        );
        let kv = e.get_field("kv").and_then(Value::as_map).unwrap();
        assert_eq!(kv.get("p_a"), Some(&Value::from("1")));
        assert!(kv.get("p_b").is_none());
        assert!(kv.get("p_c").is_none());
    }

    #[test]
    fn repeated_keys_make_arrays_and_bad_sources_are_tagged() {
        let e = kv("", "a=1 a=2");
        assert_eq!(
            e.get_field("a"),
            Some(&Value::Array(vec![Value::from("1"), Value::from("2")]))
        );
        let mut opts = Options::from_text("kv", "filter", "").unwrap();
        let k = Kv::build(&mut opts).unwrap();
        let mut e = Event::new();
        e.insert_field("message", Value::Int(3));
        assert_eq!(k.apply(&mut e), Outcome::Failure);
        assert!(e.has_tag("_kv_filter_error"));
    }
}
