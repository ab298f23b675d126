//! `kv` filter: `key=value` pairs into fields, as Logstash's `kv` filter reads them.
//!
//! ```text
//! kv { source => "message" field_split => " &" value_split => "=" prefix => "kv_" }
//! ```
//!
//! Logstash builds one scanning regex out of the options and runs Ruby's `String#scan`
//! with it; Sluice builds the same regex (Ruby syntax, compiled by the grok engines, so
//! `field_split_pattern`/`value_split_pattern` mean what they mean in Logstash) and
//! scans the same way. That is what makes the corner cases agree: a backslash escapes
//! a separator, `field_split` and `value_split` are regex character classes, spaces
//! around the value separator are tolerated unless `whitespace => strict`, a quoted
//! value is unquoted, and a bracketed value is unbracketed unless
//! `include_brackets => false` (then brackets are ordinary characters).
//!
//! The filter counts as matched (`add_field`/`add_tag` apply) only when it produced a
//! key, `default_keys` included.

use super::{EventFilter, Outcome};
use crate::config::Error;
use crate::event::field_ref::FieldRef;
use crate::event::sprintf::Template;
use crate::event::{map_with_capacity, new_map, Event, Map, Value};
use crate::grok::compiler::{CaptureSpec, Conversion, Expanded};
use crate::grok::matcher::{MatchResult, Matcher, Scratch};
use crate::plugin::ecs::Ecs;
use crate::plugin::Options;
use std::borrow::Cow;
use std::time::{Duration, Instant};

const KV_FAILURE: &str = "_kv_filter_error";
const KV_TIMEOUT: &str = "_kv_filter_timeout";

/// With `timeout_millis => 0` Logstash sets no bound at all; Sluice still bounds one
/// scan (the engines' own ceilings apply under this), so a runaway pattern cannot hold
/// a worker for good.
const UNBOUNDED_TIMEOUT: Duration = Duration::from_secs(3600);

/// How deep `recursive` descends into values that hold pairs themselves. Logstash has no
/// bound; a value is strictly shorter than its parent, so this only caps the stack.
const MAX_RECURSION: usize = 64;

/// `transform_key` / `transform_value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transform {
    Lowercase,
    Uppercase,
    Capitalize,
}

impl Transform {
    fn apply(self, s: &str) -> String {
        match self {
            Transform::Lowercase => s.to_lowercase(),
            Transform::Uppercase => s.to_uppercase(),
            Transform::Capitalize => {
                let mut chars = s.chars();
                match chars.next() {
                    None => String::new(),
                    Some(first) => first
                        .to_uppercase()
                        .chain(chars.as_str().to_lowercase().chars())
                        .collect(),
                }
            }
        }
    }
}

/// A regex character class's contents as Logstash's options write them
/// (`trim_value => "<>,"`, `field_split => "\|"`), as a set of characters: what
/// `trim_*` and `remove_char_*` use.
#[derive(Debug, Clone, Default)]
struct CharSet {
    negated: bool,
    ranges: Vec<(char, char)>,
}

impl CharSet {
    fn parse(text: &str) -> CharSet {
        let mut set = CharSet::default();
        let mut chars = text.chars().peekable();
        if chars.peek() == Some(&'^') {
            set.negated = true;
            chars.next();
        }
        let mut items: Vec<Option<char>> = Vec::new(); // None: a class escape, already added
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some('t') => items.push(Some('\t')),
                    Some('n') => items.push(Some('\n')),
                    Some('r') => items.push(Some('\r')),
                    Some('f') => items.push(Some('\x0c')),
                    Some('v') => items.push(Some('\x0b')),
                    Some('e') => items.push(Some('\x1b')),
                    Some('s') => {
                        set.ranges.extend([(' ', ' '), ('\t', '\r')]);
                        items.push(None);
                    }
                    Some('d') => {
                        set.ranges.push(('0', '9'));
                        items.push(None);
                    }
                    Some('h') => {
                        set.ranges.extend([('0', '9'), ('a', 'f'), ('A', 'F')]);
                        items.push(None);
                    }
                    Some('w') => {
                        set.ranges
                            .extend([('0', '9'), ('a', 'z'), ('A', 'Z'), ('_', '_')]);
                        items.push(None);
                    }
                    Some(o) => items.push(Some(o)),
                    None => items.push(Some('\\')),
                }
            } else if c == '-' && matches!(items.last(), Some(Some(_))) && chars.peek().is_some() {
                // A range `a-z`; a `-` first or last is literal.
                let Some(Some(lo)) = items.pop() else {
                    continue;
                };
                let hi = match chars.next() {
                    Some('\\') => chars.next().unwrap_or('\\'),
                    Some(h) => h,
                    None => '-',
                };
                set.ranges.push((lo.min(hi), lo.max(hi)));
                items.push(None);
            } else {
                items.push(Some(c));
            }
        }
        set.ranges
            .extend(items.into_iter().flatten().map(|c| (c, c)));
        set
    }

    fn contains(&self, c: char) -> bool {
        self.ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != self.negated
    }

    fn trim<'a>(&self, s: &'a str) -> &'a str {
        s.trim_matches(|c| self.contains(c))
    }

    fn remove(&self, s: &str) -> String {
        s.chars().filter(|&c| !self.contains(c)).collect()
    }
}

/// The scanning regex's captures, in the order [`Kv::build`] declares them.
const WHOLE: usize = 0;
const KEY: usize = 1;
const FIRST_VALUE: usize = 2;

/// The `kv` filter.
pub struct Kv {
    source: FieldRef,
    target: Option<FieldRef>,
    scanner: Matcher,
    /// How many value alternatives the scanner has (captures after the key).
    value_groups: usize,
    timeout: Duration,
    prefix: Option<Template>,
    include_keys: Vec<Template>,
    exclude_keys: Vec<Template>,
    trim_key: Option<CharSet>,
    trim_value: Option<CharSet>,
    remove_char_key: Option<CharSet>,
    remove_char_value: Option<CharSet>,
    transform_key: Option<Transform>,
    transform_value: Option<Transform>,
    allow_duplicate_values: bool,
    allow_empty_values: bool,
    recursive: bool,
    default_keys: Vec<(String, String)>,
    tag_on_failure: Vec<String>,
    tag_on_timeout: String,
}

/// What scanning one event gave.
enum Scan {
    Done,
    TimedOut,
}

/// `[^...]`-style class contents must not close or nest the class they go into.
fn class_contents(opts: &Options, name: &str, text: &str) -> Result<(), Error> {
    let ends_escaped = text.chars().rev().take_while(|&c| c == '\\').count() % 2 == 1;
    if ends_escaped {
        return Err(opts.error(format!(
            "kv option `{name}` ends in a lone backslash: it is a regex character class's contents"
        )));
    }
    Ok(())
}

fn transform_option(opts: &mut Options, name: &str) -> Result<Option<Transform>, Error> {
    let pos = opts.value_pos(name);
    match opts.string(name)?.as_deref() {
        None => Ok(None),
        Some("lowercase") => Ok(Some(Transform::Lowercase)),
        Some("uppercase") => Ok(Some(Transform::Uppercase)),
        Some("capitalize") => Ok(Some(Transform::Capitalize)),
        Some(other) => Err(opts.option_error(
            name,
            &pos,
            format!("unknown value `{other}` (lowercase, uppercase, capitalize)"),
        )),
    }
}

fn char_set_option(opts: &mut Options, name: &str) -> Result<Option<CharSet>, Error> {
    Ok(opts
        .string(name)?
        .filter(|s| !s.is_empty())
        .map(|s| CharSet::parse(&s)))
}

fn non_empty_pattern(opts: &mut Options, name: &str) -> Result<Option<String>, Error> {
    let pos = opts.value_pos(name);
    match opts.string(name)? {
        Some(p) if p.is_empty() => Err(opts.option_error(name, &pos, "must be a non-empty regex")),
        other => Ok(other),
    }
}

fn templates(opts: &mut Options, name: &str) -> Result<Vec<Template>, Error> {
    let pos = opts.value_pos(name);
    opts.string_list(name)?
        .unwrap_or_default()
        .iter()
        .map(|k| Template::parse(k).map_err(|e| opts.option_error(name, &pos, e)))
        .collect()
}

impl Kv {
    pub fn build(opts: &mut Options) -> Result<Kv, Error> {
        let field_split = opts.string_or("field_split", " ")?;
        let value_split = opts.string_or("value_split", "=")?;
        if value_split.is_empty() {
            return Err(opts.error("kv option `value_split` must be a non-empty string"));
        }
        class_contents(opts, "field_split", &field_split)?;
        class_contents(opts, "value_split", &value_split)?;
        let field_split_pattern = non_empty_pattern(opts, "field_split_pattern")?;
        let value_split_pattern = non_empty_pattern(opts, "value_split_pattern")?;
        let whitespace_pos = opts.value_pos("whitespace");
        let lenient = match opts.string_or("whitespace", "lenient")?.as_str() {
            "lenient" => true,
            "strict" => false,
            other => {
                return Err(opts.option_error(
                    "whitespace",
                    &whitespace_pos,
                    format!("unknown value `{other}` (lenient, strict)"),
                ))
            }
        };
        let include_brackets = opts.bool_or("include_brackets", true)?;
        let timeout_pos = opts.value_pos("timeout_millis");
        let timeout = match opts.int_or("timeout_millis", 30_000)? {
            0 => UNBOUNDED_TIMEOUT,
            ms if ms > 0 => Duration::from_millis(ms as u64),
            _ => {
                return Err(opts.option_error(
                    "timeout_millis",
                    &timeout_pos,
                    "must be 0 (no timeout) or a positive number of milliseconds",
                ))
            }
        };

        // The scanning regex, put together the way Logstash's kv `register` does.
        let fs = field_split_pattern
            .clone()
            .unwrap_or_else(|| format!("[{field_split}]"));
        let vs = value_split_pattern
            .clone()
            .unwrap_or_else(|| format!("[{value_split}]"));
        let vs = if lenient {
            format!(" *(?:{vs}) *")
        } else {
            format!("(?:{vs})")
        };
        let patterns_given = field_split_pattern.is_some() || value_split_pattern.is_some();
        let key = if patterns_given {
            format!(r"(?:(?!(?:{vs})|(?:{fs}))(?:\\.|.))+")
        } else {
            format!(r"(?:\\.|[^{value_split}{field_split}])+")
        };
        let mut values: Vec<(&str, &str)> = vec![("\"", "\""), ("'", "'")];
        if include_brackets {
            values.extend([(r"\(", r"\)"), (r"\[", r"\]"), ("<", ">")]);
        }
        let mut groups = vec![("_kv_pair", ""), ("_kv_key", "")];
        let mut value_alts = Vec::new();
        let names = ["_kv_v0", "_kv_v1", "_kv_v2", "_kv_v3", "_kv_v4", "_kv_v5"];
        for (i, (open, close)) in values.iter().enumerate() {
            value_alts.push(format!(
                r"{open}(?<{}>(?:\\.|[^{close}])+)?{close}",
                names[i]
            ));
            groups.push((names[i], ""));
        }
        let last = names[values.len()];
        let unquoted = if field_split_pattern.is_some() {
            format!(r"(?:(?!{fs})(?:\\.|.))+")
        } else {
            format!(r"(?:\\.|[^{field_split}])+")
        };
        value_alts.push(format!("(?<{last}>{unquoted})"));
        groups.push((last, ""));
        let regex = format!(
            "(?<_kv_pair>(?<_kv_key>{key}){vs}(?:{})?(?:(?:{fs})|$))",
            value_alts.join("|")
        );
        let expanded = Expanded {
            regex,
            captures: groups
                .iter()
                .map(|(g, _)| CaptureSpec {
                    group: g.to_string(),
                    field: g.to_string(),
                    conversion: Conversion::None,
                })
                .collect(),
            dot_matches_newline: false,
        };
        let scanner = Matcher::new(&expanded, timeout).map_err(|e| {
            opts.error(format!(
                "kv cannot compile its separators into a regex ({e}); check field_split, value_split and their _pattern forms"
            ))
        })?;

        let ecs = Ecs::from_options(opts)?;
        let target = opts.field_ref("target")?;
        if ecs.enabled() && target.is_none() {
            tracing::info!(
                "kv without `target` writes parsed keys at the top level, where they may clash with ECS fields"
            );
        }
        Ok(Kv {
            source: opts
                .field_ref("source")?
                .unwrap_or_else(|| FieldRef::top("message")),
            target,
            scanner,
            value_groups: values.len() + 1,
            timeout,
            prefix: opts.template("prefix")?.filter(|t| !t.source().is_empty()),
            include_keys: templates(opts, "include_keys")?,
            exclude_keys: templates(opts, "exclude_keys")?,
            trim_key: char_set_option(opts, "trim_key")?,
            trim_value: char_set_option(opts, "trim_value")?,
            remove_char_key: char_set_option(opts, "remove_char_key")?,
            remove_char_value: char_set_option(opts, "remove_char_value")?,
            transform_key: transform_option(opts, "transform_key")?,
            transform_value: transform_option(opts, "transform_value")?,
            allow_duplicate_values: opts.bool_or("allow_duplicate_values", true)?,
            allow_empty_values: opts.bool_or("allow_empty_values", false)?,
            recursive: opts.bool_or("recursive", false)?,
            default_keys: opts.string_map("default_keys")?.unwrap_or_default(),
            tag_on_failure: opts
                .string_list("tag_on_failure")?
                .unwrap_or_else(|| vec![KV_FAILURE.to_string()]),
            tag_on_timeout: opts.string_or("tag_on_timeout", KV_TIMEOUT)?,
        })
    }
}

/// The per-event values of the options that may hold `%{field}`; borrowed from the
/// options when they hold none.
struct Rendered<'a> {
    prefix: Cow<'a, str>,
    include_keys: Vec<Cow<'a, str>>,
    exclude_keys: Vec<Cow<'a, str>>,
}

/// How many pairs are scanned between two looks at the clock. Each scan is bounded
/// by the engines' own budget for `timeout_millis`; the clock bounds the sum, and
/// reading it per pair cost 2% of the filter.
const PAIRS_PER_CLOCK_CHECK: usize = 16;

/// Whether `key` names a top-level field that [`Event::insert`] would store as is: no
/// brackets to parse, and not one of the names it treats specially.
fn plain_top_level(key: &str) -> bool {
    !key.is_empty()
        && !key.contains(['[', ']'])
        && key != crate::event::TIMESTAMP
        && key != "@metadata"
}

impl Kv {
    /// Scans `text` for pairs into `out`, as Logstash's `parse`: Ruby's `String#scan`,
    /// each match starting where the last one ended, on the whole text.
    fn parse(
        &self,
        text: &str,
        keys: &Rendered<'_>,
        deadline: Instant,
        depth: usize,
        out: &mut Map,
    ) -> Scan {
        let mut scratch = Scratch::new();
        let mut spans = Vec::with_capacity(2 + self.value_groups);
        let mut pos = 0;
        let mut pairs = 0usize;
        while pos < text.len() {
            if pairs % PAIRS_PER_CLOCK_CHECK == PAIRS_PER_CLOCK_CHECK - 1
                && Instant::now() > deadline
            {
                return Scan::TimedOut;
            }
            pairs += 1;
            match self.scanner.find_at(text, pos, &mut scratch, &mut spans) {
                MatchResult::NoMatch => break,
                MatchResult::Timeout => return Scan::TimedOut,
                MatchResult::Matched => {}
            }
            let Some(Some((_, end))) = spans.get(WHOLE).copied() else {
                break;
            };
            let Some(Some((ks, ke))) = spans.get(KEY).copied() else {
                break;
            };
            let value = spans[FIRST_VALUE..]
                .iter()
                .flatten()
                .next()
                .map(|&(s, e)| &text[s..e])
                .unwrap_or("");
            let key = &text[ks..ke];
            // An empty match cannot happen (a key is at least one character); were it
            // to, the scan still moves on by a character, as Ruby's does.
            pos = if end > pos { end } else { pos + 1 };
            while !text.is_char_boundary(pos) {
                pos += 1;
            }
            if let Scan::TimedOut = self.pair(key, value, keys, deadline, depth, out) {
                return Scan::TimedOut;
            }
        }
        Scan::Done
    }

    /// One scanned pair through the key and value options into `out`.
    fn pair(
        &self,
        key: &str,
        value: &str,
        keys: &Rendered<'_>,
        deadline: Instant,
        depth: usize,
        out: &mut Map,
    ) -> Scan {
        if value.is_empty() && !self.allow_empty_values {
            return Scan::Done;
        }
        // Borrowed until an option has to change it: most keys are copied once, into
        // the field name.
        let mut key = Cow::Borrowed(key);
        if let Some(set) = &self.trim_key {
            key = match key {
                Cow::Borrowed(k) => Cow::Borrowed(set.trim(k)),
                Cow::Owned(k) => Cow::Owned(set.trim(&k).to_string()),
            };
        }
        if let Some(set) = &self.remove_char_key {
            key = Cow::Owned(set.remove(&key));
        }
        if let Some(t) = self.transform_key {
            key = Cow::Owned(t.apply(&key));
        }
        if !keys.include_keys.is_empty() && !keys.include_keys.contains(&key) {
            return Scan::Done;
        }
        if keys.exclude_keys.contains(&key) {
            return Scan::Done;
        }
        let key = if keys.prefix.is_empty() {
            key.into_owned()
        } else {
            let mut k = String::with_capacity(keys.prefix.len() + key.len());
            k.push_str(&keys.prefix);
            k.push_str(&key);
            k
        };
        let mut value = Cow::Borrowed(value);
        if let Some(set) = &self.trim_value {
            value = match value {
                Cow::Borrowed(v) => Cow::Borrowed(set.trim(v)),
                Cow::Owned(v) => Cow::Owned(set.trim(&v).to_string()),
            };
        }
        if let Some(set) = &self.remove_char_value {
            value = Cow::Owned(set.remove(&value));
        }
        if let Some(t) = self.transform_value {
            value = Cow::Owned(t.apply(&value));
        }
        let mut value = Value::String(value.into_owned());
        if !self.allow_duplicate_values {
            let seen = match out.get(&key) {
                Some(Value::Array(items)) => items.contains(&value),
                Some(existing) => *existing == value,
                None => false,
            };
            if seen {
                return Scan::Done;
            }
        }
        if self.recursive && depth < MAX_RECURSION {
            let mut inner = new_map();
            if let Value::String(text) = &value {
                if let Scan::TimedOut = self.parse(text, keys, deadline, depth + 1, &mut inner) {
                    return Scan::TimedOut;
                }
            }
            if !inner.is_empty() {
                value = Value::Map(inner);
            }
        }
        match out.entry(key) {
            crate::event::map::Entry::Vacant(slot) => {
                slot.insert(value);
            }
            crate::event::map::Entry::Occupied(mut slot) => match slot.get_mut() {
                Value::Array(items) => items.push(value),
                existing => {
                    let old = std::mem::take(existing);
                    *existing = Value::Array(vec![old, value]);
                }
            },
        }
        Scan::Done
    }

    fn render<'a>(&'a self, event: &Event) -> Rendered<'a> {
        Rendered {
            prefix: self
                .prefix
                .as_ref()
                .map(|t| t.render(event))
                .unwrap_or_default(),
            include_keys: self.include_keys.iter().map(|t| t.render(event)).collect(),
            exclude_keys: self.exclude_keys.iter().map(|t| t.render(event)).collect(),
        }
    }

    /// Writes the parsed keys at the top level. A plain name goes straight into the
    /// event's fields (the key's string moves there, nothing is parsed); only a key
    /// that holds brackets is read as a field reference.
    fn write_top_level(&self, event: &mut Event, kv: Map) -> bool {
        let mut failed = false;
        event.fields_mut().reserve(kv.len());
        for (k, v) in kv {
            if plain_top_level(&k) {
                event.fields_mut().insert(k, v);
                continue;
            }
            let written = match FieldRef::parse(&k) {
                Ok(r) => event.insert(&r, v),
                Err(_) => false,
            };
            if !written {
                tracing::warn!(key = %k, "kv cannot write a parsed key: not a valid field reference, or a parent field is not an object");
                failed = true;
            }
        }
        !failed
    }
}

impl EventFilter for Kv {
    fn apply(&self, event: &mut Event) -> Outcome {
        let deadline = Instant::now() + self.timeout;
        let mut parsed = map_with_capacity(8);
        let (scan, prefix) = {
            let keys = self.render(event);
            let scan = match event.get(&self.source) {
                None => Scan::Done,
                Some(Value::String(s)) => self.parse(s, &keys, deadline, 0, &mut parsed),
                Some(Value::Array(items)) => {
                    let mut scan = Scan::Done;
                    // Elements that are not strings hold no pairs, as in Logstash.
                    for text in items.iter().filter_map(Value::as_str) {
                        scan = self.parse(text, &keys, deadline, 0, &mut parsed);
                        if let Scan::TimedOut = scan {
                            break;
                        }
                    }
                    scan
                }
                Some(_) => {
                    tracing::warn!(source = %self.source, "kv source is neither a string nor an array of strings");
                    Scan::Done
                }
            };
            let prefix = if self.default_keys.is_empty() {
                String::new()
            } else {
                keys.prefix.into_owned()
            };
            (scan, prefix)
        };
        if let Scan::TimedOut = scan {
            tracing::warn!(source = %self.source, timeout_ms = self.timeout.as_millis() as u64, "kv filter timed out on a value");
            event.add_tag(&self.tag_on_timeout);
            return Outcome::Failure;
        }
        // Logstash merges the parsed keys over `default_keys`.
        let kv = if self.default_keys.is_empty() {
            parsed
        } else {
            let mut kv = map_with_capacity(self.default_keys.len() + parsed.len());
            for (k, v) in &self.default_keys {
                kv.insert(format!("{prefix}{k}"), Value::String(v.clone()));
            }
            for (k, v) in parsed {
                kv.insert(k, v);
            }
            kv
        };
        if kv.is_empty() {
            return Outcome::Failure;
        }
        let written = match &self.target {
            Some(t) => {
                let ok = event.insert(t, Value::Map(kv));
                if !ok {
                    tracing::warn!(target = %t, "kv cannot write its target: a parent field is not an object");
                }
                ok
            }
            None => self.write_top_level(event, kv),
        };
        if !written {
            for tag in &self.tag_on_failure {
                event.add_tag(tag);
            }
            return Outcome::Failure;
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
    fn char_sets_read_like_regex_classes() {
        let set = CharSet::parse(r"a-c\|\s");
        assert!(set.contains('b') && set.contains('|') && set.contains('\t'));
        assert!(!set.contains('d') && !set.contains('\\'));
        let set = CharSet::parse("^-x");
        assert!(!set.contains('-') && !set.contains('x') && set.contains('y'));
    }

    #[test]
    fn transforms() {
        assert_eq!(Transform::Capitalize.apply("hEllo wOrld"), "Hello world");
        assert_eq!(Transform::Uppercase.apply("éa"), "ÉA");
    }

    #[test]
    fn default_splits_and_quotes() {
        let e = kv("", r#"a=1 b="two words" c=(x y) d= e"#);
        assert_eq!(e.get_str("a"), Some("1"));
        assert_eq!(e.get_str("b"), Some("two words"));
        assert_eq!(e.get_str("c"), Some("x y"));
        // Lenient whitespace: the space after `=` belongs to the separator.
        assert_eq!(e.get_str("d"), Some("e"));
    }

    #[test]
    fn top_level_keys_are_written_as_field_references_would_be() {
        // A plain name replaces the field in place; a repeated key becomes an array;
        // brackets nest; `@timestamp` is read as a time; `@metadata` alone cannot hold a
        // string, so the event is tagged.
        let mut opts = Options::from_text("kv", "filter", "").unwrap();
        let k = Kv::build(&mut opts).unwrap();
        let mut e = Event::new();
        e.insert_field("level", "old");
        e.insert_field(
            "message",
            "level=new x=1 x=2 [http][status]=200 @timestamp=2026-11-30T12:00:00Z",
        );
        assert_eq!(k.apply(&mut e), Outcome::Success);
        assert_eq!(e.get_str("level"), Some("new"));
        assert_eq!(
            e.fields().get_index_of("level"),
            Some(2),
            "replaced where it was"
        );
        assert_eq!(
            e.get_field("x"),
            Some(&Value::Array(vec![Value::from("1"), Value::from("2")]))
        );
        let status = FieldRef::parse("[http][status]").unwrap();
        assert_eq!(e.get(&status), Some(&Value::from("200")));
        assert!(
            matches!(e.get_field("@timestamp"), Some(Value::Timestamp(_))),
            "{:?}",
            e.get_field("@timestamp")
        );
        let e = kv("", "@metadata=x");
        assert!(e.has_tag("_kv_filter_error"));
    }

    #[test]
    fn source_that_holds_no_text_is_left_alone() {
        let mut opts = Options::from_text("kv", "filter", "").unwrap();
        let k = Kv::build(&mut opts).unwrap();
        let mut e = Event::new();
        e.insert_field("message", Value::Int(3));
        assert_eq!(k.apply(&mut e), Outcome::Failure);
        assert!(!e.has_tag("_kv_filter_error"));
    }
}
