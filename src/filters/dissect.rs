//! `dissect` filter: splits a field on literal delimiters, no regex involved.
//!
//! ```text
//! dissect { mapping => { "message" => "%{ts} %{+ts} %{level} %{?skip} %{&skip} %{msg}" } }
//! ```
//!
//! Field forms, as in Logstash: `%{name}`, `%{}` and `%{?name}` (skipped), `%{+name}`
//! and `%{+name/N}` (appended, in order N), `%{?key}` + `%{&key}` (the field is named
//! by the value of `key`), and a `->` suffix that skips a repeated delimiter.

use super::{EventFilter, Outcome};
use crate::config::Error;
use crate::event::field_ref::FieldRef;
use crate::event::{Event, Value};
use crate::plugin::Options;

const DISSECT_FAILURE: &str = "_dissectfailure";

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Normal,
    Skip,
    Append(u32),
    Indirect,
}

#[derive(Debug, Clone)]
struct Field {
    name: String,
    kind: Kind,
    pad: bool,
    /// The delimiter after the field; `None` for the last field (takes the rest).
    delim: Option<String>,
    /// The delimiter before the field: what `%{+name}` joins with, as Logstash (a space
    /// when there is none).
    prev: Option<String>,
}

struct Mapping {
    source: FieldRef,
    prefix: String,
    fields: Vec<Field>,
}

/// Why a dissect mapping is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error("unterminated %{{ in `{0}`")]
    Unterminated(String),
    #[error("fields `{0}` and `{1}` need a delimiter between them")]
    NoDelimiter(String, String),
    #[error("invalid append order in `%{{{0}}}`")]
    BadOrder(String),
    #[error("field `%{{{0}}}` cannot prefix with both Append and Indirect (`+` and `&`)")]
    AppendAndIndirect(String),
}

fn parse_mapping(pattern: &str) -> Result<(String, Vec<Field>), MappingError> {
    let mut fields: Vec<Field> = Vec::new();
    let mut prefix = String::new();
    let mut rest = pattern;
    let mut pending = String::new();
    while let Some(i) = rest.find("%{") {
        pending.push_str(&rest[..i]);
        let body_start = &rest[i + 2..];
        let end = body_start
            .find('}')
            .ok_or_else(|| MappingError::Unterminated(pattern.to_string()))?;
        let body = &body_start[..end];
        rest = &body_start[end + 1..];
        match fields.last_mut() {
            None => prefix = std::mem::take(&mut pending),
            Some(prev) => {
                if pending.is_empty() {
                    return Err(MappingError::NoDelimiter(
                        prev.name.clone(),
                        body.to_string(),
                    ));
                }
                prev.delim = Some(std::mem::take(&mut pending));
            }
        }
        let mut field = parse_field(body)?;
        field.prev = match fields.last() {
            None => Some(prefix.clone()),
            Some(prev) => prev.delim.clone(),
        }
        .filter(|d| !d.is_empty());
        fields.push(field);
    }
    pending.push_str(rest);
    if let Some(last) = fields.last_mut() {
        if !pending.is_empty() {
            last.delim = Some(pending);
        }
    } else {
        prefix = pending;
    }
    Ok((prefix, fields))
}

fn parse_field(body: &str) -> Result<Field, MappingError> {
    let (body, pad) = match body.strip_suffix("->") {
        Some(b) => (b, true),
        None => (body, false),
    };
    if body.starts_with("+&") || body.starts_with("&+") {
        return Err(MappingError::AppendAndIndirect(body.to_string()));
    }
    let (kind, name) = if let Some(n) = body.strip_prefix('+') {
        match n.rsplit_once('/') {
            Some((name, order)) => {
                let o = order
                    .parse()
                    .map_err(|_| MappingError::BadOrder(body.to_string()))?;
                (Kind::Append(o), name)
            }
            None => (Kind::Append(0), n),
        }
    } else if let Some(n) = body.strip_prefix('?').or_else(|| body.strip_prefix('*')) {
        (Kind::Skip, n)
    } else if let Some(n) = body.strip_prefix('&') {
        (Kind::Indirect, n)
    } else if body.is_empty() {
        (Kind::Skip, "")
    } else {
        (Kind::Normal, body)
    };
    Ok(Field {
        name: name.to_string(),
        kind,
        pad,
        delim: None,
        prev: None,
    })
}

#[derive(Debug, Clone, Copy)]
enum Convert {
    Int,
    Float,
}

/// The `dissect` filter.
pub struct Dissect {
    mappings: Vec<Mapping>,
    /// (field, field as written, type as written, conversion): the failure tags name
    /// the field and type as written.
    convert: Vec<(FieldRef, String, String, Convert)>,
    /// Sluice's own option: when set, what every `%{+name}` joins with instead of the
    /// delimiter before it.
    append_separator: Option<String>,
    tag_on_failure: Vec<String>,
}

impl Dissect {
    pub fn build(opts: &mut Options) -> Result<Dissect, Error> {
        let pos = opts.value_pos("mapping");
        let mut mappings = Vec::new();
        for (field, pattern) in opts.string_map("mapping")?.unwrap_or_default() {
            let source =
                FieldRef::parse(&field).map_err(|e| opts.option_error("mapping", &pos, e))?;
            let (prefix, fields) =
                parse_mapping(&pattern).map_err(|e| opts.option_error("mapping", &pos, e))?;
            for f in &fields {
                if !f.name.is_empty() && f.kind != Kind::Indirect && f.kind != Kind::Skip {
                    FieldRef::parse(&f.name).map_err(|e| opts.option_error("mapping", &pos, e))?;
                }
            }
            mappings.push(Mapping {
                source,
                prefix,
                fields,
            });
        }
        let cpos = opts.value_pos("convert_datatype");
        let mut convert = Vec::new();
        for (field, ty) in opts.string_map("convert_datatype")?.unwrap_or_default() {
            let r = FieldRef::parse(&field)
                .map_err(|e| opts.option_error("convert_datatype", &cpos, e))?;
            let c = match ty.as_str() {
                "int" => Convert::Int,
                "float" => Convert::Float,
                other => {
                    return Err(opts.option_error(
                        "convert_datatype",
                        &cpos,
                        format!("datatype not supported: `{other}` (int, float)"),
                    ))
                }
            };
            convert.push((r, field, ty, c));
        }
        Ok(Dissect {
            mappings,
            convert,
            append_separator: {
                let _ = crate::plugin::ecs::Ecs::from_options(opts)?;
                opts.string("append_separator")?
            },
            tag_on_failure: opts
                .string_list("tag_on_failure")?
                .unwrap_or_else(|| vec![DISSECT_FAILURE.to_string()]),
        })
    }

    /// Splits `text` per `m`, returning (field, value) pairs in write order.
    fn dissect(&self, m: &Mapping, text: &str) -> Option<Vec<(String, String)>> {
        let mut pos = text
            .strip_prefix(m.prefix.as_str())
            .map(|_| m.prefix.len())?;
        let mut values: Vec<(&Field, &str)> = Vec::with_capacity(m.fields.len());
        for f in &m.fields {
            let value = match &f.delim {
                Some(d) => {
                    let idx = memchr::memmem::find(&text.as_bytes()[pos..], d.as_bytes())?;
                    let v = &text[pos..pos + idx];
                    pos += idx + d.len();
                    if f.pad {
                        while text[pos..].starts_with(d.as_str()) {
                            pos += d.len();
                        }
                    }
                    v
                }
                None => {
                    let v = &text[pos..];
                    pos = text.len();
                    v
                }
            };
            values.push((f, value));
        }
        let mut out: Vec<(String, String)> = Vec::with_capacity(values.len());
        let mut appends: Vec<(&Field, u32, usize, &str)> = Vec::new();
        for (i, (f, v)) in values.iter().enumerate() {
            match f.kind {
                Kind::Normal => out.push((f.name.clone(), v.to_string())),
                Kind::Append(order) => appends.push((f, order, i, v)),
                Kind::Indirect => {
                    // The key is the value of the skip (or normal) field of that name.
                    let key = values
                        .iter()
                        .find(|(k, _)| k.name == f.name && k.kind != Kind::Indirect)
                        .map(|(_, kv)| *kv);
                    if let Some(key) = key.filter(|k| !k.is_empty()) {
                        out.push((key.to_string(), v.to_string()));
                    }
                }
                Kind::Skip => {}
            }
        }
        appends.sort_by_key(|(_, order, i, _)| (*order, *i));
        for (f, _, _, v) in appends {
            match out.iter_mut().find(|(n, _)| *n == f.name) {
                Some((_, existing)) => {
                    let join = self
                        .append_separator
                        .as_deref()
                        .or(f.prev.as_deref())
                        .unwrap_or(" ");
                    existing.push_str(join);
                    existing.push_str(v);
                }
                None => out.push((f.name.clone(), v.to_string())),
            }
        }
        Some(out)
    }
}

impl EventFilter for Dissect {
    fn apply(&self, event: &mut Event) -> Outcome {
        let mut matched = false;
        let mut failed = false;
        for m in &self.mappings {
            let text = match event.get(&m.source) {
                // As Logstash: a missing source is logged, not tagged.
                None => {
                    tracing::warn!(field = %m.source, "dissect mapping: field not found in event");
                    continue;
                }
                Some(Value::String(s)) => std::borrow::Cow::Borrowed(s.as_str()),
                Some(other) => std::borrow::Cow::Owned(other.to_display_string()),
            };
            if text.is_empty() {
                tracing::debug!(field = %m.source, "dissect mapping: field found in event but it was empty");
                failed = true;
                continue;
            }
            let Some(parts) = self.dissect(m, &text) else {
                tracing::debug!(field = %m.source, "dissect mapping: pattern not found");
                failed = true;
                continue;
            };
            matched = true;
            for (name, value) in parts {
                if let Ok(r) = FieldRef::parse(&name) {
                    event.insert(&r, Value::String(value));
                }
            }
        }
        if failed {
            for t in &self.tag_on_failure {
                event.add_tag(t);
            }
        }
        // Logstash converts whether or not a mapping matched.
        for (r, field, ty, c) in &self.convert {
            let converted = match event.get(r) {
                None | Some(Value::Null) => Err(format!("_dataconversionnullvalue_{field}_{ty}")),
                Some(v) => {
                    convert(v, *c).ok_or_else(|| format!("_dataconversionuncoercible_{field}_{ty}"))
                }
            };
            match converted {
                Ok(v) => {
                    event.insert(r, v);
                }
                Err(tag) => {
                    tracing::warn!(field = %field, datatype = %ty, "dissect cannot convert the field's value");
                    event.add_tag(&tag);
                }
            }
        }
        if matched {
            Outcome::Success
        } else {
            Outcome::Failure
        }
    }
}

/// Java's `new BigDecimal(String.valueOf(value))`: sign, digits with an optional point
/// (`5.`, `.5`), an optional exponent. Anything else does not convert.
fn is_java_decimal(t: &str) -> bool {
    let b = t.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let mut digits = i - start;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let f = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        digits += i - f;
    }
    if digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let e = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == e {
            return false;
        }
    }
    i == b.len()
}

/// `int`: the decimal's integer part (`95.43` is 95), exactly; `float`: the nearest
/// double. `None` when the text is not a decimal, or (int) when the integer does not
/// fit the 64 bits events hold: Logstash makes a BigInteger there.
fn convert(v: &Value, c: Convert) -> Option<Value> {
    let text = match v {
        Value::Int(i) => {
            return Some(match c {
                Convert::Int => Value::Int(*i),
                Convert::Float => Value::Float(*i as f64),
            })
        }
        Value::Float(f) => f.to_string(),
        Value::String(s) => s.clone(),
        _ => return None,
    };
    if !is_java_decimal(&text) {
        return None;
    }
    match c {
        Convert::Float => text
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Value::Float),
        Convert::Int => integer_part(&text).map(Value::Int),
    }
}

/// The integer part of a decimal literal, exactly (no detour through f64).
fn integer_part(t: &str) -> Option<i64> {
    let lower = t.to_ascii_lowercase();
    let (mantissa, exp) = match lower.split_once('e') {
        Some((m, e)) => (m, e.parse::<i64>().ok()?),
        None => (lower.as_str(), 0),
    };
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa.strip_prefix('+').unwrap_or(mantissa)),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{int_part}{frac_part}");
    let point = int_part.len() as i64 + exp;
    let kept = if point <= 0 {
        String::new()
    } else if point as usize >= digits.len() {
        let zeros = point as usize - digits.len();
        if zeros > 20 {
            return None;
        }
        format!("{digits}{}", "0".repeat(zeros))
    } else {
        digits[..point as usize].to_string()
    };
    let kept = kept.trim_start_matches('0');
    if kept.is_empty() {
        return Some(0);
    }
    if kept.len() > 20 {
        return None;
    }
    let magnitude: i128 = kept.parse().ok()?;
    i64::try_from(if negative { -magnitude } else { magnitude }).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dissect(body: &str, message: &str) -> (Outcome, Event) {
        let mut opts = Options::from_text("dissect", "filter", body).unwrap();
        let d = Dissect::build(&mut opts).unwrap();
        opts.finish().unwrap();
        let mut e = Event::new();
        e.insert_field("message", message);
        let o = d.apply(&mut e);
        (o, e)
    }

    #[test]
    fn splits_appends_and_skips() {
        let (o, e) = dissect(
            r#"mapping => { "message" => "%{ts} %{+ts} %{level} %{} %{msg}" }"#,
            "Nov 21 INFO x hello world",
        );
        assert_eq!(o, Outcome::Success);
        assert_eq!(e.get_str("ts"), Some("Nov 21"));
        assert_eq!(e.get_str("level"), Some("INFO"));
        assert_eq!(e.get_str("msg"), Some("hello world"));
    }

    #[test]
    fn padding_order_indirect_and_nested() {
        let (_, e) = dissect(
            r#"mapping => { "message" => "[%{+t/2}|%{+t/1}] %{a->} %{?k}=%{&k} %{[n][x]}" }"#,
            "[b|a] left    key=val end",
        );
        // Appends join with the delimiter before the appended field, as Logstash: `[`.
        assert_eq!(e.get_str("t"), Some("a[b"));
        assert_eq!(e.get_str("a"), Some("left"));
        assert_eq!(e.get_str("key"), Some("val"));
        assert!(e.get_field("k").is_none());
        assert_eq!(
            e.get(&FieldRef::parse("[n][x]").unwrap()),
            Some(&Value::from("end"))
        );
    }

    #[test]
    fn converts_and_tags_failures() {
        let (_, e) = dissect(
            r#"mapping => { "message" => "%{a} %{b}" } convert_datatype => { "a" => "int" "b" => "float" }"#,
            "12 1.5",
        );
        assert_eq!(e.get_field("a"), Some(&Value::Int(12)));
        assert_eq!(e.get_field("b"), Some(&Value::Float(1.5)));
        let (o, e) = dissect(r#"mapping => { "message" => "%{a}|%{b}" }"#, "no pipe");
        assert_eq!(o, Outcome::Failure);
        assert!(e.has_tag("_dissectfailure"));
        let (_, e) = dissect(
            r#"mapping => { "message" => "%{a}|%{b}" } tag_on_failure => ["x"]"#,
            "no pipe",
        );
        assert!(e.has_tag("x"));
    }

    #[test]
    fn adjacent_fields_are_refused() {
        let mut opts = Options::from_text(
            "dissect",
            "filter",
            r#"mapping => { "message" => "%{a}%{b}" }"#,
        )
        .unwrap();
        assert!(Dissect::build(&mut opts).is_err());
    }
}
