//! `mutate` filter: renames, replaces, converts and edits fields. Operations run in
//! Logstash's fixed order (coerce, rename, update, replace, convert, gsub, uppercase,
//! capitalize, lowercase, strip, split, join, merge, copy), whatever order the
//! configuration lists them in.

use super::common::FieldName;
use super::{EventFilter, Outcome};
use crate::config::Error;
use crate::event::field_ref::FieldRef;
use crate::event::sprintf::Template;
use crate::event::{Event, Value};
use crate::plugin::{Options, Spanned};
use regex::Regex;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conversion {
    Integer,
    IntegerEu,
    Float,
    FloatEu,
    String,
    Boolean,
}

#[derive(Default)]
pub struct Mutate {
    coerce: Vec<(FieldRef, Template)>,
    rename: Vec<(FieldRef, FieldName)>,
    update: Vec<(FieldRef, Template)>,
    replace: Vec<(FieldName, Template)>,
    convert: Vec<(FieldRef, Conversion)>,
    gsub: Vec<(FieldRef, Regex, String)>,
    uppercase: Vec<FieldRef>,
    capitalize: Vec<FieldRef>,
    lowercase: Vec<FieldRef>,
    strip: Vec<FieldRef>,
    split: Vec<(FieldRef, String)>,
    join: Vec<(FieldRef, String)>,
    merge: Vec<(FieldRef, FieldRef)>,
    copy: Vec<(FieldRef, FieldName)>,
    tag_on_failure: String,
}

/// A list of field references; an error names the bad entry's position.
fn refs(opts: &mut Options, name: &str) -> Result<Vec<FieldRef>, Error> {
    opts.string_list_spanned(name)?
        .unwrap_or_default()
        .iter()
        .map(|f| FieldRef::parse(f).map_err(|e| opts.option_error(name, &f.pos, e)))
        .collect()
}

/// A hash of field reference => value; the value keeps its position so that whatever
/// the caller finds wrong with it names that value's line:column.
fn ref_pairs(opts: &mut Options, name: &str) -> Result<Vec<(FieldRef, Spanned<String>)>, Error> {
    opts.string_map_spanned(name)?
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| {
            FieldRef::parse(&k)
                .map(|r| (r, v))
                .map_err(|e| opts.option_error(name, &k.pos, e))
        })
        .collect()
}

fn unspanned(pairs: Vec<(FieldRef, Spanned<String>)>) -> Vec<(FieldRef, String)> {
    pairs.into_iter().map(|(r, v)| (r, v.value)).collect()
}

impl Mutate {
    pub fn build(opts: &mut Options) -> Result<Mutate, Error> {
        let mut m = Mutate::default();
        let template = |opts: &Options, name: &str, t: &Spanned<String>| {
            Template::parse(t).map_err(|e| opts.option_error(name, &t.pos, e))
        };
        let field_name = |opts: &Options, name: &str, t: &Spanned<String>| {
            FieldName::parse(t).map_err(|e| opts.option_error(name, &t.pos, e))
        };
        for (r, v) in ref_pairs(opts, "coerce")? {
            m.coerce.push((r, template(opts, "coerce", &v)?));
        }
        for (r, v) in ref_pairs(opts, "rename")? {
            m.rename.push((r, field_name(opts, "rename", &v)?));
        }
        for (r, v) in ref_pairs(opts, "update")? {
            m.update.push((r, template(opts, "update", &v)?));
        }
        for (k, v) in opts.string_map_spanned("replace")?.unwrap_or_default() {
            let name = FieldName::parse(&k).map_err(|e| opts.option_error("replace", &k.pos, e))?;
            m.replace.push((name, template(opts, "replace", &v)?));
        }
        for (r, v) in ref_pairs(opts, "convert")? {
            let c = match v.as_str() {
                "integer" => Conversion::Integer,
                "integer_eu" => Conversion::IntegerEu,
                "float" => Conversion::Float,
                "float_eu" => Conversion::FloatEu,
                "string" => Conversion::String,
                "boolean" => Conversion::Boolean,
                other => {
                    return Err(opts.option_error(
                        "convert",
                        &v.pos,
                        format!("unknown type `{other}` (integer, integer_eu, float, float_eu, string, boolean)"),
                    ))
                }
            };
            m.convert.push((r, c));
        }
        let pos = opts.value_pos("gsub");
        if let Some(items) = opts.string_list_spanned("gsub")? {
            if items.len() % 3 != 0 {
                return Err(opts.option_error(
                    "gsub",
                    &pos,
                    "expects triples: [field, pattern, replacement, ...]",
                ));
            }
            for t in items.chunks(3) {
                let r =
                    FieldRef::parse(&t[0]).map_err(|e| opts.option_error("gsub", &t[0].pos, e))?;
                let re = Regex::new(&t[1]).map_err(|e| opts.option_error("gsub", &t[1].pos, e))?;
                m.gsub.push((r, re, ruby_replacement(&t[2])));
            }
        }
        m.uppercase = refs(opts, "uppercase")?;
        m.capitalize = refs(opts, "capitalize")?;
        m.lowercase = refs(opts, "lowercase")?;
        m.strip = refs(opts, "strip")?;
        m.split = unspanned(ref_pairs(opts, "split")?);
        m.join = unspanned(ref_pairs(opts, "join")?);
        for (r, v) in ref_pairs(opts, "merge")? {
            let src = FieldRef::parse(&v).map_err(|e| opts.option_error("merge", &v.pos, e))?;
            m.merge.push((r, src));
        }
        for (r, v) in ref_pairs(opts, "copy")? {
            m.copy.push((r, field_name(opts, "copy", &v)?));
        }
        m.tag_on_failure = opts.string_or("tag_on_failure", "_mutate_error")?;
        Ok(m)
    }
}

/// Ruby's `\1` back-references become the regex crate's `${1}`.
fn ruby_replacement(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek().is_some_and(|d| d.is_ascii_digit()) => {
                out.push_str("${");
                while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                    out.push(d);
                    chars.next();
                }
                out.push('}');
            }
            '$' => out.push_str("$$"),
            c => out.push(c),
        }
    }
    out
}

fn map_strings(v: &mut Value, f: &impl Fn(&str) -> String) {
    match v {
        Value::String(s) => *s = f(s),
        Value::Array(items) => items.iter_mut().for_each(|i| map_strings(i, f)),
        _ => {}
    }
}

fn convert(v: &Value, c: Conversion) -> Option<Value> {
    match v {
        Value::Array(items) => Some(Value::Array(
            items
                .iter()
                .map(|i| convert(i, c).unwrap_or_else(|| i.clone()))
                .collect(),
        )),
        _ => convert_scalar(v, c),
    }
}

fn convert_scalar(v: &Value, c: Conversion) -> Option<Value> {
    let text = match v {
        Value::String(s) => s.trim().to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Bool(b) => (if *b { "1" } else { "0" }).to_string(),
        _ => return None,
    };
    let number = |t: &str, eu: bool| -> String {
        if eu {
            t.replace('.', "").replace(',', ".")
        } else {
            t.replace(',', "")
        }
    };
    match c {
        Conversion::String => Some(Value::String(v.to_display_string())),
        Conversion::Integer | Conversion::IntegerEu => {
            let t = number(&text, c == Conversion::IntegerEu);
            t.parse::<i64>()
                .ok()
                .or_else(|| {
                    t.parse::<f64>()
                        .ok()
                        .filter(|f| f.is_finite())
                        .map(|f| f.trunc() as i64)
                })
                .map(Value::Int)
        }
        Conversion::Float | Conversion::FloatEu => number(&text, c == Conversion::FloatEu)
            .parse::<f64>()
            .ok()
            .map(Value::Float),
        Conversion::Boolean => match text.to_ascii_lowercase().as_str() {
            "true" | "t" | "yes" | "y" | "1" | "1.0" => Some(Value::Bool(true)),
            "false" | "f" | "no" | "n" | "0" | "0.0" => Some(Value::Bool(false)),
            _ => None,
        },
    }
}

fn capitalize(s: &str) -> String {
    let lower = s.to_lowercase();
    let mut chars = lower.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

impl EventFilter for Mutate {
    fn apply(&self, event: &mut Event) -> Outcome {
        let mut failed = false;
        for (field, default) in &self.coerce {
            if matches!(event.get(field), Some(Value::Null)) {
                let v = default.render(event).into_owned();
                event.insert(field, Value::String(v));
            }
        }
        for (from, to) in &self.rename {
            if let Some(v) = event.remove(from) {
                if let Some(to) = to.resolve(event).map(|r| r.into_owned()) {
                    event.insert(&to, v);
                }
            }
        }
        for (field, value) in &self.update {
            if event.contains(field) {
                let v = value.render(event).into_owned();
                event.insert(field, Value::String(v));
            }
        }
        for (field, value) in &self.replace {
            let v = value.render(event).into_owned();
            if let Some(r) = field.resolve(event).map(|r| r.into_owned()) {
                event.insert(&r, Value::String(v));
            }
        }
        for (field, c) in &self.convert {
            if let Some(v) = event.get(field) {
                if let Some(nv) = convert(v, *c) {
                    event.insert(field, nv);
                }
            }
        }
        for (field, re, rep) in &self.gsub {
            if let Some(v) = event.get_mut(field) {
                map_strings(v, &|s| re.replace_all(s, rep.as_str()).into_owned());
            }
        }
        for field in &self.uppercase {
            if let Some(v) = event.get_mut(field) {
                map_strings(v, &|s| s.to_uppercase());
            }
        }
        for field in &self.capitalize {
            if let Some(v) = event.get_mut(field) {
                map_strings(v, &capitalize);
            }
        }
        for field in &self.lowercase {
            if let Some(v) = event.get_mut(field) {
                map_strings(v, &|s| s.to_lowercase());
            }
        }
        for field in &self.strip {
            if let Some(v) = event.get_mut(field) {
                map_strings(v, &|s| s.trim().to_string());
            }
        }
        for (field, sep) in &self.split {
            if let Some(v) = event.get_mut(field) {
                if let Value::String(s) = v {
                    let parts = s.split(sep.as_str()).map(Value::from).collect();
                    *v = Value::Array(parts);
                } else if !matches!(v, Value::Array(_)) {
                    failed = true;
                }
            }
        }
        for (field, sep) in &self.join {
            if let Some(v) = event.get_mut(field) {
                if let Value::Array(items) = v {
                    let joined = items
                        .iter()
                        .map(Value::to_display_string)
                        .collect::<Vec<_>>()
                        .join(sep);
                    *v = Value::String(joined);
                }
            }
        }
        for (dest, src) in &self.merge {
            let Some(src_value) = event.get(src).cloned() else {
                continue;
            };
            match (event.get_mut(dest), src_value) {
                (None, v) => {
                    event.insert(dest, v);
                }
                (Some(Value::Map(d)), Value::Map(s)) => d.extend(s),
                (Some(Value::Map(_)), _) | (Some(_), Value::Map(_)) => failed = true,
                (Some(d), v) => {
                    let mut items = match std::mem::take(d) {
                        Value::Array(a) => a,
                        other => vec![other],
                    };
                    match v {
                        Value::Array(more) => items.extend(more),
                        one => items.push(one),
                    }
                    *d = Value::Array(items);
                }
            }
        }
        for (src, dest) in &self.copy {
            if let Some(v) = event.get(src).cloned() {
                if let Some(d) = dest.resolve(event).map(|r| r.into_owned()) {
                    event.insert(&d, v);
                }
            }
        }
        if failed {
            event.add_tag(&self.tag_on_failure);
            return Outcome::Failure;
        }
        Outcome::Success
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_follow_logstash() {
        assert_eq!(
            convert(&"42".into(), Conversion::Integer),
            Some(Value::Int(42))
        );
        assert_eq!(
            convert(&"12.7".into(), Conversion::Integer),
            Some(Value::Int(12))
        );
        assert_eq!(
            convert(&"1.234,5".into(), Conversion::FloatEu),
            Some(Value::Float(1234.5))
        );
        assert_eq!(
            convert(&"yes".into(), Conversion::Boolean),
            Some(Value::Bool(true))
        );
        assert_eq!(
            convert(&Value::Int(3), Conversion::String),
            Some("3".into())
        );
        assert_eq!(convert(&"abc".into(), Conversion::Integer), None);
    }

    /// `options:line:column` of `needle` in `body`, as `Options::from_text` wraps it
    /// (`body` starts with a newline, so its lines keep their columns).
    fn position_of(body: &str, needle: &str) -> String {
        let (line, text) = body
            .lines()
            .enumerate()
            .find(|(_, l)| l.contains(needle))
            .expect("needle in body");
        let column = text.find(needle).map(|c| c + 1).unwrap_or(0);
        format!("options:{}:{column}", line + 1)
    }

    fn build_error(body: &str) -> String {
        let mut opts = Options::from_text("mutate", "filter", body).unwrap();
        match Mutate::build(&mut opts) {
            Ok(_) => panic!("`{body}` was accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn errors_name_the_bad_value_not_the_option() {
        for (body, bad) in [
            (
                "\n  rename => {\n    \"ok\" => \"fine\"\n    \"a\" => \"[b\"\n  }\n",
                "\"[b\"",
            ),
            (
                "\n  rename => {\n    \"ok\" => \"fine\"\n    \"[a\" => \"b\"\n  }\n",
                "\"[a\"",
            ),
            (
                "\n  convert => {\n    \"n\" => \"integer\"\n    \"m\" => \"bogus\"\n  }\n",
                "\"bogus\"",
            ),
            (
                "\n  gsub => [\n    \"f\", \"x\", \"y\",\n    \"g\", \"(\", \"z\"\n  ]\n",
                "\"(\"",
            ),
            ("\n  uppercase => [\"ok\",\n    \"[bad\"]\n", "\"[bad\""),
            (
                "\n  merge => {\n    \"a\" =>\n      \"[b\"\n  }\n",
                "\"[b\"",
            ),
        ] {
            let error = build_error(body);
            let at = position_of(body, bad);
            assert!(
                error.starts_with(&format!("{at}:")),
                "`{body}`: expected the error at {at}, got: {error}"
            );
        }
    }

    #[test]
    fn ruby_backreferences() {
        assert_eq!(ruby_replacement(r"\1-\2 costs $5"), "${1}-${2} costs $$5");
        assert_eq!(capitalize("hELLO"), "Hello");
    }
}
