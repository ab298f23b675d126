//! `mutate` filter: renames, replaces, converts and edits fields. Operations run in
//! Logstash's fixed order (coerce, rename, update, replace, convert, gsub, uppercase,
//! capitalize, lowercase, strip, split, join, merge, copy), whatever order the
//! configuration lists them in.

use super::common::{CommonOptions, FieldName};
use super::{EventFilter, Filter, Outcome, PerEvent};
use crate::config::Error;
use crate::event::field_ref::{FieldRef, Root};
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
    rename: Vec<(FieldName, FieldName)>,
    update: Vec<(FieldRef, Template)>,
    replace: Vec<(FieldName, Template)>,
    convert: Vec<(FieldRef, Conversion)>,
    gsub: Vec<Gsub>,
    uppercase: Vec<FieldRef>,
    capitalize: Vec<FieldRef>,
    lowercase: Vec<FieldRef>,
    strip: Vec<FieldRef>,
    split: Vec<(FieldRef, String)>,
    join: Vec<(FieldRef, String)>,
    merge: Vec<(FieldRef, FieldRef)>,
    copy: Vec<(FieldRef, FieldName)>,
    tag_on_failure: String,
    /// `add_field`, which mutate applies itself: Logstash applies it inside mutate's own
    /// error handling, so a name that is not a valid field reference tags the event
    /// `tag_on_failure` at run time instead of failing the load.
    add_field: Vec<(Result<FieldName, String>, Template)>,
}

/// A `gsub` pattern: compiled once, or per event when it holds `%{field}` (as Logstash).
enum Needle {
    Static(Regex),
    Dynamic(Template),
}

struct Gsub {
    field: FieldRef,
    needle: Needle,
    /// The replacement after `%{}` expansion, in Ruby's `\1` syntax.
    replacement: Template,
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
        for (k, v) in opts.string_map_spanned("rename")?.unwrap_or_default() {
            let from = field_name(opts, "rename", &k)?;
            m.rename.push((from, field_name(opts, "rename", &v)?));
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
                let needle = if t[1].contains("%{") {
                    Needle::Dynamic(template(opts, "gsub", &t[1])?)
                } else {
                    Needle::Static(
                        Regex::new(&t[1]).map_err(|e| opts.option_error("gsub", &t[1].pos, e))?,
                    )
                };
                m.gsub.push(Gsub {
                    field: r,
                    needle,
                    replacement: template(opts, "gsub", &t[2])?,
                });
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

    /// The filter with its common options; `add_field` stays with mutate (see
    /// [`Mutate::add_field`]).
    pub fn build_filter(opts: &mut Options) -> Result<Box<dyn Filter>, Error> {
        let mut add_field = Vec::new();
        for (k, v) in opts.string_map_spanned("add_field")?.unwrap_or_default() {
            let name = FieldName::parse(&k).map_err(|e| {
                tracing::warn!(field = %k.value, error = %e, "mutate add_field names an invalid field reference: every event it applies to is tagged with tag_on_failure");
                e
            });
            let value =
                Template::parse(&v).map_err(|e| opts.option_error("add_field", &v.pos, e))?;
            add_field.push((name, value));
        }
        let common = CommonOptions::from_options(opts)?;
        let mut m = Mutate::build(opts)?;
        m.add_field = add_field;
        Ok(Box::new(PerEvent::new(m, common)))
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
        // Logstash changes the strings of an array and leaves other elements alone.
        Value::Array(items) => items.iter_mut().for_each(|i| {
            if let Value::String(s) = i {
                *s = f(s);
            }
        }),
        _ => {}
    }
}

/// Why a conversion failed; Logstash raises there, which tags the event
/// `tag_on_failure` and stops the filter.
type ConvertError = String;

/// Converts one field's value as Logstash's mutate (8.14 and later: strict) does.
/// `Ok(None)`: nothing to change (a map, a null, a boolean that reads as neither).
fn convert(v: &Value, c: Conversion) -> Result<Option<Value>, ConvertError> {
    match v {
        Value::Map(_) | Value::Null => Ok(None),
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::Null => Ok(Value::Null),
                Value::Array(_) => Err("cannot convert a nested array".to_string()),
                other => Ok(convert_scalar(other, c)?.unwrap_or_else(|| other.clone())),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|v| Some(Value::Array(v))),
        _ => convert_scalar(v, c),
    }
}

fn is_true(text: &str) -> bool {
    static TRUE: std::sync::OnceLock<Option<Regex>> = std::sync::OnceLock::new();
    TRUE.get_or_init(|| Regex::new(r"(?im)^(true|t|yes|y|1|1.0)$").ok())
        .as_ref()
        .is_some_and(|re| re.is_match(text))
}

fn is_false(text: &str) -> bool {
    static FALSE: std::sync::OnceLock<Option<Regex>> = std::sync::OnceLock::new();
    text.is_empty()
        || FALSE
            .get_or_init(|| Regex::new(r"(?im)^(false|f|no|n|0|0.0)$").ok())
            .as_ref()
            .is_some_and(|re| re.is_match(text))
}

fn convert_scalar(v: &Value, c: Conversion) -> Result<Option<Value>, ConvertError> {
    match c {
        Conversion::String => Ok(Some(Value::String(v.to_display_string()))),
        Conversion::Boolean => {
            let text = v.to_display_string();
            if is_true(&text) {
                Ok(Some(Value::Bool(true)))
            } else if is_false(&text) {
                Ok(Some(Value::Bool(false)))
            } else {
                tracing::warn!(value = %text, "mutate cannot convert a value into boolean");
                Ok(None)
            }
        }
        Conversion::Integer | Conversion::IntegerEu => {
            to_integer(v, c == Conversion::IntegerEu).map(|i| Some(Value::Int(i)))
        }
        Conversion::Float | Conversion::FloatEu => {
            to_float(v, c == Conversion::FloatEu).map(|f| Some(Value::Float(f)))
        }
    }
}

/// A string as the US conversions read it: trimmed, thousands commas gone, lowercase.
/// The `_eu` forms swap `,` and `.` first.
fn us_text(s: &str, eu: bool) -> String {
    let s: String = if eu {
        s.chars()
            .map(|c| match c {
                ',' => '.',
                '.' => ',',
                c => c,
            })
            .collect()
    } else {
        s.to_string()
    };
    s.trim().replace(',', "").to_lowercase()
}

fn to_integer(v: &Value, eu: bool) -> Result<i64, ConvertError> {
    match v {
        Value::Bool(b) => Ok(i64::from(*b)),
        Value::Int(i) => Ok(*i),
        Value::Float(f) => float_to_integer(*f),
        Value::String(s) => {
            let t = us_text(s, eu);
            if let Some(hex) = signed_hex(&t) {
                return if t.contains('.') || t.contains('p') {
                    float_to_integer(hex?)
                } else {
                    hex_integer(&t)
                };
            }
            decimal_to_integer(&t)
        }
        other => Err(format!(
            "cannot convert `{}` to integer",
            other.to_display_string()
        )),
    }
}

fn to_float(v: &Value, eu: bool) -> Result<f64, ConvertError> {
    match v {
        Value::Bool(b) => Ok(if *b { 1.0 } else { 0.0 }),
        Value::Int(i) => Ok(*i as f64),
        Value::Float(f) => Ok(*f),
        Value::String(s) => {
            let t = us_text(s, eu);
            if let Some(hex) = signed_hex(&t) {
                return hex;
            }
            if !is_decimal_literal(&t, false) {
                return Err(format!("invalid value for Float(): `{s}`"));
            }
            t.replace('_', "")
                .parse::<f64>()
                .map_err(|_| format!("invalid value for Float(): `{s}`"))
        }
        other => Err(format!(
            "cannot convert `{}` to float",
            other.to_display_string()
        )),
    }
}

fn float_to_integer(f: f64) -> Result<i64, ConvertError> {
    let t = f.trunc();
    // i64::MAX as f64 rounds up to 2^63, which does not fit.
    if t.is_finite() && t >= i64::MIN as f64 && t < i64::MAX as f64 {
        Ok(t as i64)
    } else {
        Err(beyond_i64(&f.to_string()))
    }
}

fn beyond_i64(text: &str) -> ConvertError {
    format!("`{text}` is beyond the 64-bit integers events hold; the value is left as it was")
}

/// Ruby's decimal literal (`Float()`/`BigDecimal()` input): sign, digits with single
/// underscores between them, a fraction, an exponent. No `inf`/`nan`.
fn is_decimal_literal(t: &str, fraction_without_integer: bool) -> bool {
    let b = t.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let digits = |i: &mut usize| -> usize {
        let start = *i;
        while *i < b.len()
            && (b[*i].is_ascii_digit()
                || (b[*i] == b'_' && *i > start && *i + 1 < b.len() && b[*i + 1].is_ascii_digit()))
        {
            *i += 1;
        }
        *i - start
    };
    let int_digits = digits(&mut i);
    let mut frac_digits = 0;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        frac_digits = digits(&mut i);
        if frac_digits == 0 {
            return false;
        }
    }
    if int_digits == 0 && !(fraction_without_integer && frac_digits > 0) {
        return false;
    }
    if i < b.len() && b[i] == b'e' {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// `BigDecimal(text).to_i`, exactly: the decimal's integer part, no detour through f64.
fn decimal_to_integer(t: &str) -> Result<i64, ConvertError> {
    if !is_decimal_literal(t, true) {
        return Err(format!("invalid value for BigDecimal(): `{t}`"));
    }
    let t = t.replace('_', "");
    let (mantissa, exp) = match t.split_once('e') {
        Some((m, e)) => (m, e.parse::<i64>().map_err(|_| beyond_i64(&t))?),
        None => (t.as_str(), 0),
    };
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa.strip_prefix('+').unwrap_or(mantissa)),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits: String = format!("{int_part}{frac_part}");
    // The decimal point sits after `point` digits of `digits`.
    let point = int_part.len() as i64 + exp;
    let kept: String = if point <= 0 {
        String::new()
    } else if point as usize >= digits.len() {
        let zeros = point as usize - digits.len();
        if zeros > 40 {
            return Err(beyond_i64(&t));
        }
        format!("{digits}{}", "0".repeat(zeros))
    } else {
        digits[..point as usize].to_string()
    };
    let kept = kept.trim_start_matches('0');
    if kept.is_empty() {
        return Ok(0);
    }
    let magnitude: i128 = if kept.len() > 20 {
        return Err(beyond_i64(&t));
    } else {
        kept.parse().map_err(|_| beyond_i64(&t))?
    };
    let value = if negative { -magnitude } else { magnitude };
    i64::try_from(value).map_err(|_| beyond_i64(&t))
}

/// A string that starts like a hexadecimal number (`0x7b`, `-0x1.8p+1`): `Some` with
/// its value as Ruby's `Float()` reads it, else `None` (not hexadecimal).
fn signed_hex(t: &str) -> Option<Result<f64, ConvertError>> {
    let (negative, rest) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let body = rest.strip_prefix("0x")?;
    let bad = || format!("invalid value for Float(): `{t}`");
    let (mantissa, exp) = match body.split_once('p') {
        Some((m, e)) => match e.parse::<i32>() {
            Ok(e) => (m, e),
            Err(_) => return Some(Err(bad())),
        },
        None => (body, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int_part.is_empty()
        || !int_part
            .chars()
            .chain(frac_part.chars())
            .all(|c| c.is_ascii_hexdigit())
        || (mantissa.contains('.') && frac_part.is_empty())
    {
        return Some(Err(bad()));
    }
    let mut value = 0f64;
    for c in int_part.chars() {
        value = value * 16.0 + f64::from(c.to_digit(16).unwrap_or(0));
    }
    let mut scale = 1.0 / 16.0;
    for c in frac_part.chars() {
        value += f64::from(c.to_digit(16).unwrap_or(0)) * scale;
        scale /= 16.0;
    }
    let value = value * 2f64.powi(exp);
    Some(Ok(if negative { -value } else { value }))
}

/// `Integer("0x7b")`: a hexadecimal integer, exactly.
fn hex_integer(t: &str) -> Result<i64, ConvertError> {
    let (negative, rest) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let digits = rest.strip_prefix("0x").unwrap_or(rest).replace('_', "");
    let magnitude = i128::from_str_radix(&digits, 16)
        .map_err(|_| format!("invalid value for Integer(): `{t}`"))?;
    let value = if negative { -magnitude } else { magnitude };
    i64::try_from(value).map_err(|_| beyond_i64(t))
}

/// Ruby's `String#split(sep)`: trailing empty strings are dropped, a single space
/// splits on runs of whitespace ignoring leading whitespace (awk style), and an
/// empty separator splits into characters.
fn ruby_split(s: &str, sep: &str) -> Vec<Value> {
    let mut parts: Vec<&str> = if sep == " " {
        s.split_ascii_whitespace().collect()
    } else if sep.is_empty() {
        s.char_indices()
            .map(|(i, c)| &s[i..i + c.len_utf8()])
            .collect()
    } else {
        s.split(sep).collect()
    };
    while parts.last().is_some_and(|p| p.is_empty()) {
        parts.pop();
    }
    parts.into_iter().map(Value::from).collect()
}

fn capitalize(s: &str) -> String {
    let lower = s.to_lowercase();
    let mut chars = lower.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

impl Mutate {
    /// Where Logstash's mutate raises: the event is tagged and the remaining
    /// operations (and `add_tag`, ...) do not run.
    fn fail(&self, event: &mut Event, reason: &str) -> Outcome {
        tracing::warn!(reason, "mutate failed on an event");
        event.add_tag(&self.tag_on_failure);
        Outcome::Failure
    }
}

/// Ruby's `Array(value)`: nothing is `[]`, an array itself, anything else `[value]`.
fn array_of(v: Option<Value>) -> Vec<Value> {
    match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a,
        Some(other) => vec![other],
    }
}

impl EventFilter for Mutate {
    fn apply(&self, event: &mut Event) -> Outcome {
        for (field, default) in &self.coerce {
            if matches!(event.get(field), Some(Value::Null)) {
                let v = default.render(event).into_owned();
                event.insert(field, Value::String(v));
            }
        }
        for (from, to) in &self.rename {
            let Some(from) = from.resolve(event).map(|r| r.into_owned()) else {
                return self.fail(event, "rename: the source is not a valid field reference");
            };
            if !event.contains(&from) {
                continue;
            }
            let Some(to) = to.resolve(event).map(|r| r.into_owned()) else {
                return self.fail(event, "rename: the target is not a valid field reference");
            };
            if let Some(v) = event.remove(&from) {
                if let Err(v) = insert_or_return(event, &to, v) {
                    event.insert(&from, v);
                    return self.fail(event, "rename: a parent of the target is not an object");
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
            let Some(r) = field.resolve(event).map(|r| r.into_owned()) else {
                return self.fail(event, "replace: the field is not a valid field reference");
            };
            event.insert(&r, Value::String(v));
        }
        for (field, c) in &self.convert {
            let converted = match event.get(field) {
                None => continue,
                Some(v) => convert(v, *c),
            };
            match converted {
                Ok(Some(nv)) => {
                    if let Some(slot) = event.get_mut(field) {
                        *slot = nv;
                    }
                }
                Ok(None) => {}
                Err(reason) => return self.fail(event, &format!("convert {field}: {reason}")),
            }
        }
        for g in &self.gsub {
            let dynamic;
            let re = match &g.needle {
                Needle::Static(re) => re,
                Needle::Dynamic(t) => match Regex::new(&t.render(event)) {
                    Ok(re) => {
                        dynamic = re;
                        &dynamic
                    }
                    Err(e) => return self.fail(event, &format!("gsub pattern: {e}")),
                },
            };
            let rep = ruby_replacement(&g.replacement.render(event));
            if let Some(v) = event.get_mut(&g.field) {
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
                    *v = Value::Array(ruby_split(s, sep));
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
            let added = event.get(src).cloned();
            let added_is_map = matches!(added, Some(Value::Map(_)));
            match event.get_mut(dest) {
                Some(Value::Map(d)) => match added {
                    Some(Value::Map(a)) => d.extend(a),
                    _ => {
                        tracing::error!(dest = %dest, added = %src, "mutate cannot merge an object and a non-object")
                    }
                },
                _ if added_is_map => {
                    tracing::error!(dest = %dest, added = %src, "mutate cannot merge an object and a non-object");
                }
                Some(d) => {
                    let mut items = array_of(Some(std::mem::take(d)));
                    items.extend(array_of(added));
                    *d = Value::Array(items);
                }
                None => {
                    event.insert(dest, Value::Array(array_of(added)));
                }
            }
        }
        for (src, dest) in &self.copy {
            let Some(v) = event
                .get(src)
                .filter(|v| !matches!(v, Value::Null))
                .cloned()
            else {
                continue;
            };
            let Some(d) = dest.resolve(event).map(|r| r.into_owned()) else {
                return self.fail(event, "copy: the target is not a valid field reference");
            };
            event.insert(&d, v);
        }
        for (name, value) in &self.add_field {
            let r = match name {
                Ok(name) => name.resolve(event).map(|r| r.into_owned()),
                Err(_) => None,
            };
            let Some(r) = r else {
                return self.fail(event, "add_field: the name is not a valid field reference");
            };
            let v = value.render(event).into_owned();
            event.add_value(&r, Value::String(v));
        }
        Outcome::Success
    }
}

/// Inserts `v` at `r`, handing it back when the event cannot hold it there (a parent
/// on the path is not an object). A top-level field always takes it, without a copy.
fn insert_or_return(event: &mut Event, r: &FieldRef, v: Value) -> Result<(), Value> {
    if r.path().len() == 1 && r.root() == Root::Fields {
        event.insert(r, v);
        return Ok(());
    }
    if event.insert(r, v.clone()) {
        Ok(())
    } else {
        Err(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_follow_logstash() {
        let c = |v: Value, c| convert(&v, c).unwrap();
        assert_eq!(c("42".into(), Conversion::Integer), Some(Value::Int(42)));
        assert_eq!(c("12.7".into(), Conversion::Integer), Some(Value::Int(12)));
        assert_eq!(
            c("1.234,5".into(), Conversion::FloatEu),
            Some(Value::Float(1234.5))
        );
        assert_eq!(
            c("yes".into(), Conversion::Boolean),
            Some(Value::Bool(true))
        );
        assert_eq!(c(Value::Int(3), Conversion::String), Some("3".into()));
        assert!(convert(&"abc".into(), Conversion::Integer).is_err());
        assert!(convert(&"inf".into(), Conversion::Float).is_err());
    }

    #[test]
    fn exact_decimals_and_hex() {
        assert_eq!(
            decimal_to_integer("9007199254740993.0"),
            Ok(9007199254740993)
        );
        assert_eq!(
            decimal_to_integer("9.007199254740993e+15"),
            Ok(9007199254740993)
        );
        assert_eq!(decimal_to_integer("-1.234500e+02"), Ok(-123));
        assert_eq!(decimal_to_integer("1_000"), Ok(1000));
        assert_eq!(decimal_to_integer(".5"), Ok(0));
        assert!(decimal_to_integer("9223372036854775808").is_err());
        assert_eq!(decimal_to_integer("-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(signed_hex("0x1a"), Some(Ok(26.0)));
        assert_eq!(signed_hex("-0xff"), Some(Ok(-255.0)));
        assert_eq!(signed_hex("0x1.8p+1"), Some(Ok(3.0)));
        assert_eq!(signed_hex("-0x1.2p+2"), Some(Ok(-4.5)));
        assert_eq!(signed_hex("123"), None);
        assert_eq!(signed_hex("0b1010"), None);
        assert_eq!(hex_integer("0x7b"), Ok(123));
    }

    #[test]
    fn split_like_ruby() {
        let v = |s: &str, sep: &str| ruby_split(s, sep);
        assert_eq!(v("foo,", ","), vec![Value::from("foo")]);
        assert_eq!(
            v("a,,b,,", ","),
            vec!["a".into(), "".into(), Value::from("b")]
        );
        assert_eq!(v("  a  b ", " "), vec!["a".into(), Value::from("b")]);
        assert!(v("", ",").is_empty());
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
