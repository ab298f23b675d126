//! `translate` filter: replaces a field's value through a dictionary, given inline
//! (`dictionary`) or in a YAML, JSON or CSV file (`dictionary_path`) that is reloaded
//! every `refresh_interval` seconds when it changed.
//!
//! Lookups are exact by default; `regex => true` treats keys as patterns (the first
//! matching key wins); `exact => false` replaces every occurrence of any key inside the
//! value, as Logstash does. The reload check runs once per batch, so the hot path pays
//! for neither a timer thread nor a lock per event.

use super::common::CommonOptions;
use super::Filter;
use crate::config::Error;
use crate::event::field_ref::FieldRef;
use crate::event::sprintf::Template;
use crate::event::{Event, Value};
use crate::plugin::ecs::Ecs;
use crate::plugin::Options;
use indexmap::IndexMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Matching {
    Exact,
    ExactRegex,
    Substring,
}

/// A loaded dictionary with what its matching mode needs, built once per load.
struct Dictionary {
    entries: IndexMap<String, Value>,
    /// `ExactRegex`: each key compiled, in dictionary order.
    patterns: Vec<(regex::Regex, usize)>,
    /// `Substring`: one alternation of all keys, leftmost-first like Ruby's union.
    union: Option<regex::Regex>,
}

impl Dictionary {
    fn new(entries: IndexMap<String, Value>, matching: Matching) -> Result<Dictionary, String> {
        let mut d = Dictionary {
            entries,
            patterns: Vec::new(),
            union: None,
        };
        match matching {
            Matching::Exact => {}
            Matching::ExactRegex => {
                for (i, k) in d.entries.keys().enumerate() {
                    let re = regex::Regex::new(k).map_err(|e| format!("key `{k}`: {e}"))?;
                    d.patterns.push((re, i));
                }
            }
            Matching::Substring => {
                if !d.entries.is_empty() {
                    let alternation = d
                        .entries
                        .keys()
                        .map(|k| regex::escape(k))
                        .collect::<Vec<_>>()
                        .join("|");
                    d.union = Some(regex::Regex::new(&alternation).map_err(|e| e.to_string())?);
                }
            }
        }
        Ok(d)
    }

    fn lookup(&self, matching: Matching, source: &str) -> Option<Value> {
        match matching {
            Matching::Exact => self.entries.get(source).cloned(),
            Matching::ExactRegex => self
                .patterns
                .iter()
                .find(|(re, _)| re.is_match(source))
                .and_then(|(_, i)| self.entries.get_index(*i))
                .map(|(_, v)| v.clone()),
            Matching::Substring => {
                let union = self.union.as_ref()?;
                if !union.is_match(source) {
                    return None;
                }
                let replaced = union.replace_all(source, |caps: &regex::Captures<'_>| {
                    self.entries
                        .get(&caps[0])
                        .map(Value::to_display_string)
                        .unwrap_or_default()
                });
                (replaced != source).then(|| Value::String(replaced.into_owned()))
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Yaml,
    Json,
    Csv,
}

/// A dictionary file and when it was last read.
struct FileSource {
    path: PathBuf,
    format: Format,
    refresh: Duration,
    replace: bool,
    state: Mutex<FileState>,
}

struct FileState {
    next_check: Instant,
    mtime: Option<SystemTime>,
}

/// Where a lookup's values go: one field, each value of an array, or a field of
/// each map in an array.
enum Mode {
    Single,
    ArrayOfValues,
    ArrayOfMaps { iterate_on: FieldRef },
}

pub struct Translate {
    source: FieldRef,
    target: FieldRef,
    in_place: bool,
    override_existing: bool,
    matching: Matching,
    fallback: Option<Template>,
    mode: Mode,
    dictionary: RwLock<Arc<Dictionary>>,
    file: Option<FileSource>,
    common: CommonOptions,
}

fn read_file(path: &PathBuf, format: Format) -> Result<IndexMap<String, Value>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let mut out = IndexMap::new();
    match format {
        Format::Json => {
            let map: crate::event::Map = serde_json::from_str(&text).map_err(|e| e.to_string())?;
            out.extend(map);
        }
        Format::Yaml => {
            if text.trim().is_empty() {
                return Ok(out);
            }
            let map: serde_yaml::Mapping =
                serde_yaml::from_str(&text).map_err(|e| e.to_string())?;
            for (k, v) in map {
                let key = match k {
                    serde_yaml::Value::String(s) => s,
                    serde_yaml::Value::Number(n) => n.to_string(),
                    serde_yaml::Value::Bool(b) => b.to_string(),
                    other => return Err(format!("unsupported key {other:?}")),
                };
                let value: Value = serde_yaml::from_value(v).map_err(|e| e.to_string())?;
                out.insert(key, value);
            }
        }
        Format::Csv => {
            for (n, line) in text.lines().enumerate() {
                match super::csv::parse_line(line, ",", Some('"')) {
                    Ok(Some(row)) => {
                        let mut it = row.into_iter();
                        let k = it.next().flatten().unwrap_or_default();
                        let v = it.next().flatten().unwrap_or_default();
                        out.insert(k, Value::String(v));
                    }
                    Ok(None) => {}
                    Err(e) => return Err(format!("line {}: {e}", n + 1)),
                }
            }
        }
    }
    Ok(out)
}

impl Translate {
    pub fn build(opts: &mut Options) -> Result<Translate, Error> {
        let common = CommonOptions::from_options(opts)?;
        let ecs = Ecs::from_options(opts)?;
        let source_text = match (opts.string("source")?, opts.string("field")?) {
            (Some(_), Some(f)) => {
                return Err(opts.error(format!(
                    "translate: remove `field => {f:?}` and set only `source`"
                )))
            }
            (Some(s), None) => s,
            (None, Some(f)) => {
                tracing::warn!("translate: `field` is deprecated; use `source`");
                f
            }
            (None, None) => return Err(opts.error(
                "translate: no source field specified, please provide the `source => ...` option",
            )),
        };
        let target_text = match (opts.string("target")?, opts.string("destination")?) {
            (Some(_), Some(d)) => {
                return Err(opts.error(format!(
                    "translate: remove `destination => {d:?}` and set only `target`"
                )))
            }
            (Some(t), None) => t,
            (None, Some(d)) => {
                tracing::warn!("translate: `destination` is deprecated; use `target`");
                d
            }
            (None, None) if ecs.enabled() => source_text.clone(),
            (None, None) => "translation".to_string(),
        };
        let parse_ref = |opts: &Options, name: &str, text: &str| {
            FieldRef::parse(text).map_err(|e| opts.option_error(name, &opts.value_pos(name), e))
        };
        let source = parse_ref(opts, "source", &source_text)?;
        let target = parse_ref(opts, "target", &target_text)?;
        let in_place = source_text == target_text;
        let override_pos = opts.value_pos("override");
        let override_existing = match opts.bool("override")? {
            Some(false) if in_place => {
                return Err(opts.option_error(
                    "override",
                    &override_pos,
                    "`override => false` has no effect with in-place translation; remove it",
                ))
            }
            Some(b) => b,
            None => in_place,
        };
        let exact = opts.bool_or("exact", true)?;
        let regex = opts.bool_or("regex", false)?;
        let matching = match (exact, regex) {
            (true, true) => Matching::ExactRegex,
            (true, false) => Matching::Exact,
            (false, _) => Matching::Substring,
        };
        let fallback = opts.template("fallback")?;
        let refresh = opts.int_or("refresh_interval", 300)?;
        let behaviour_pos = opts.value_pos("refresh_behaviour");
        let replace = match opts.string_or("refresh_behaviour", "merge")?.as_str() {
            "merge" => false,
            "replace" => true,
            other => {
                return Err(opts.option_error(
                    "refresh_behaviour",
                    &behaviour_pos,
                    format!("`{other}` is not one of merge, replace"),
                ))
            }
        };
        // Accepted for compatibility: Sluice's YAML reader has no code point limit and
        // reads the whole file either way.
        let _ = opts.int("yaml_dictionary_code_point_limit")?;
        let _ = opts.string("yaml_load_strategy")?;
        let iterate_on = opts.string("iterate_on")?;
        let mode = match &iterate_on {
            None => Mode::Single,
            Some(i) if *i == source_text => Mode::ArrayOfValues,
            Some(i) => Mode::ArrayOfMaps {
                iterate_on: parse_ref(opts, "iterate_on", i)?,
            },
        };
        let dict_pos = opts.value_pos("dictionary");
        let inline = opts.pairs("dictionary")?.unwrap_or_default();
        let path_pos = opts.value_pos("dictionary_path");
        let path = opts.string("dictionary_path")?;
        if path.is_some() && !inline.is_empty() {
            return Err(opts.error(
                "translate: the options `dictionary` and `dictionary_path` are mutually exclusive",
            ));
        }
        let mut entries = IndexMap::new();
        for (k, v) in inline {
            entries.insert(k, Value::String(opts.scalar_text("dictionary", &v)?));
        }
        let file = match path {
            None => None,
            Some(p) => {
                let format = if p.ends_with(".yml") || p.ends_with(".yaml") {
                    Format::Yaml
                } else if p.ends_with(".json") {
                    Format::Json
                } else if p.ends_with(".csv") {
                    Format::Csv
                } else {
                    return Err(opts.option_error(
                        "dictionary_path",
                        &path_pos,
                        format!("{p}: not a .yml, .yaml, .json or .csv dictionary"),
                    ));
                };
                let path = PathBuf::from(&p);
                let mtime = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
                match read_file(&path, format) {
                    Ok(e) => entries = e,
                    Err(e) if !path.exists() => {
                        tracing::warn!(path = %p, error = %e, "translate dictionary file not found; starting with an empty dictionary");
                    }
                    Err(e) => {
                        return Err(opts.option_error(
                            "dictionary_path",
                            &path_pos,
                            format!("{p}: {e}"),
                        ))
                    }
                }
                let refresh = Duration::from_secs(refresh.max(0) as u64);
                Some(FileSource {
                    path,
                    format,
                    refresh,
                    replace,
                    state: Mutex::new(FileState {
                        next_check: Instant::now() + refresh,
                        mtime,
                    }),
                })
            }
        };
        let dictionary = Dictionary::new(entries, matching)
            .map_err(|e| opts.option_error("dictionary", &dict_pos, e))?;
        Ok(Translate {
            source,
            target,
            in_place,
            override_existing,
            matching,
            fallback,
            mode,
            dictionary: RwLock::new(Arc::new(dictionary)),
            file,
            common,
        })
    }

    /// Re-reads the dictionary file when its refresh interval has passed and it changed.
    fn maybe_reload(&self) {
        let Some(file) = &self.file else { return };
        if file.refresh.is_zero() {
            return;
        }
        let mut state = file.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if now < state.next_check {
            return;
        }
        state.next_check = now + file.refresh;
        let mtime = std::fs::metadata(&file.path)
            .and_then(|m| m.modified())
            .ok();
        if mtime.is_none() || mtime == state.mtime {
            return;
        }
        match read_file(&file.path, file.format) {
            Ok(fresh) => {
                let current = self.current();
                let entries = if file.replace {
                    fresh
                } else {
                    let mut merged = current.entries.clone();
                    merged.extend(fresh);
                    merged
                };
                match Dictionary::new(entries, self.matching) {
                    Ok(d) => {
                        *self.dictionary.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(d);
                        state.mtime = mtime;
                        tracing::info!(path = %file.path.display(), "translate dictionary reloaded");
                    }
                    Err(e) => {
                        tracing::warn!(path = %file.path.display(), error = %e, "translate dictionary reload failed; keeping the old one")
                    }
                }
            }
            Err(e) => {
                tracing::warn!(path = %file.path.display(), error = %e, "translate dictionary reload failed; keeping the old one")
            }
        }
    }

    fn current(&self) -> Arc<Dictionary> {
        self.dictionary
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Translates one event; true when the common options should apply.
    fn translate(&self, dict: &Dictionary, event: &mut Event) -> bool {
        match &self.mode {
            Mode::Single => {
                if !self.override_existing && event.contains(&self.target) {
                    return false;
                }
                let key = match event.get(&self.source) {
                    None => return false,
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Array(items)) => items
                        .first()
                        .map(Value::to_display_string)
                        .unwrap_or_default(),
                    Some(other) => other.to_display_string(),
                };
                let matched = match dict.lookup(self.matching, &key) {
                    Some(v) => {
                        event.insert(&self.target, v);
                        true
                    }
                    None => match &self.fallback {
                        Some(t) => {
                            let v = t.render(event).into_owned();
                            event.insert(&self.target, Value::String(v));
                            true
                        }
                        None => false,
                    },
                };
                matched || self.in_place
            }
            Mode::ArrayOfValues => {
                if !self.override_existing && event.contains(&self.target) {
                    return false;
                }
                let items = match event.get(&self.source) {
                    None => return false,
                    Some(Value::Array(items)) => items.clone(),
                    Some(other) => vec![other.clone()],
                };
                let fallback = self
                    .fallback
                    .as_ref()
                    .map(|t| Value::String(t.render(event).into_owned()));
                let out: Vec<Value> = items
                    .iter()
                    .map(|i| {
                        dict.lookup(self.matching, &i.to_display_string())
                            .or_else(|| fallback.clone())
                            .unwrap_or(Value::Null)
                    })
                    .collect();
                let any = out.iter().any(|v| !matches!(v, Value::Null));
                event.insert(&self.target, Value::Array(out));
                any || self.in_place
            }
            Mode::ArrayOfMaps { iterate_on } => {
                let len = match event.get(iterate_on) {
                    None => return false,
                    Some(Value::Array(items)) => items.len(),
                    Some(_) => 1,
                };
                let is_array = matches!(event.get(iterate_on), Some(Value::Array(_)));
                let mut any = false;
                for i in 0..len {
                    let element = if is_array {
                        FieldRef::parse(&format!("{iterate_on}[{i}]")).ok()
                    } else {
                        Some(iterate_on.clone())
                    };
                    let Some(element) = element else { continue };
                    let inner = event
                        .get(&element)
                        .and_then(|el| lookup_path(el, self.source.path()))
                        .map(Value::to_display_string);
                    let Some(inner) = inner else { continue };
                    let value = dict.lookup(self.matching, &inner).or_else(|| {
                        self.fallback
                            .as_ref()
                            .map(|t| Value::String(t.render(event).into_owned()))
                    });
                    if let Some(v) = value {
                        // The element sits in an array, where `Event::insert` does not
                        // reach: set the field inside the element itself.
                        if let Some(el) = event.get_mut(&element) {
                            any |= set_path(el, self.target.path(), v);
                        }
                    }
                }
                any || self.in_place
            }
        }
    }
}

/// The value at `path` inside `v`.
fn lookup_path<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter()
        .try_fold(v, |cur, seg| cur.as_map()?.get(seg.as_str()))
}

/// Sets `path` inside the map `v`, creating maps on the way; false when `v` or a
/// parent on the path is not a map.
fn set_path(v: &mut Value, path: &[String], value: Value) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut cur = v;
    for seg in parents {
        let Some(map) = cur.as_map_mut() else {
            return false;
        };
        cur = map
            .entry(seg.clone())
            .or_insert_with(|| Value::Map(crate::event::new_map()));
    }
    match cur.as_map_mut() {
        Some(map) => {
            map.insert(last.clone(), value);
            true
        }
        None => false,
    }
}

impl Filter for Translate {
    fn filter(&self, events: &mut Vec<Event>) {
        self.maybe_reload();
        let dict = self.current();
        for e in events.iter_mut() {
            if self.translate(&dict, e) && !self.common.is_empty() {
                self.common.apply(e);
            }
        }
    }
}
