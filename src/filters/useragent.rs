//! `useragent` filter: browser, operating system and device from a User-Agent string,
//! with the ua-parser project's uap-core rules (the same `regexes.yaml` Logstash ships,
//! embedded here so the binary needs no file). A string is parsed once per worker and
//! then served from an LRU cache (`lru_cache_size`), since real traffic repeats a few
//! hundred agents.

use super::lru::{CacheStats, PerThreadLru};
use super::{EventFilter, Outcome};
use crate::config::Error;
use crate::event::field_ref::FieldRef;
use crate::event::{Event, Value};
use crate::plugin::ecs::Ecs;
use crate::plugin::Options;
use serde::Deserialize;
use std::sync::{Arc, OnceLock};

/// uap-core's rules (Apache License 2.0, see the file's header).
const BUNDLED_REGEXES: &str = include_str!("useragent_regexes.yaml");

#[derive(Deserialize)]
struct RegexFile {
    #[serde(default)]
    user_agent_parsers: Vec<RuleSpec>,
    #[serde(default)]
    os_parsers: Vec<RuleSpec>,
    #[serde(default)]
    device_parsers: Vec<RuleSpec>,
}

/// One entry of `regexes.yaml`; which replacements apply depends on the section.
#[derive(Deserialize)]
struct RuleSpec {
    regex: String,
    regex_flag: Option<String>,
    family_replacement: Option<String>,
    v1_replacement: Option<String>,
    v2_replacement: Option<String>,
    v3_replacement: Option<String>,
    v4_replacement: Option<String>,
    os_replacement: Option<String>,
    os_v1_replacement: Option<String>,
    os_v2_replacement: Option<String>,
    os_v3_replacement: Option<String>,
    os_v4_replacement: Option<String>,
    device_replacement: Option<String>,
}

/// A compiled rule: its regex and, per output slot, the replacement template if any.
struct Rule {
    regex: regex::Regex,
    replacements: [Option<String>; 5],
}

/// The uap parser: three ordered rule lists, first match wins.
pub struct UaParser {
    user_agent: Vec<Rule>,
    os: Vec<Rule>,
    device: Vec<Rule>,
}

/// A parsed user agent, in uap's terms.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Parsed {
    pub family: String,
    pub major: Option<String>,
    pub minor: Option<String>,
    pub patch: Option<String>,
    pub patch_minor: Option<String>,
    pub os_family: String,
    pub os_major: Option<String>,
    pub os_minor: Option<String>,
    pub os_patch: Option<String>,
    pub os_patch_minor: Option<String>,
    pub device: String,
}

fn compile(specs: Vec<RuleSpec>, section: &str, slots: SlotKind) -> Result<Vec<Rule>, String> {
    specs
        .into_iter()
        .enumerate()
        .map(|(i, spec)| {
            let pattern = if spec.regex_flag.as_deref() == Some("i") {
                format!("(?i){}", spec.regex)
            } else {
                spec.regex.clone()
            };
            let regex = regex::RegexBuilder::new(&pattern)
                .size_limit(64 << 20)
                .build()
                .map_err(|e| format!("{section} rule {}: {e}", i + 1))?;
            let replacements = match slots {
                SlotKind::UserAgent => [
                    spec.family_replacement,
                    spec.v1_replacement,
                    spec.v2_replacement,
                    spec.v3_replacement,
                    spec.v4_replacement,
                ],
                SlotKind::Os => [
                    spec.os_replacement,
                    spec.os_v1_replacement,
                    spec.os_v2_replacement,
                    spec.os_v3_replacement,
                    spec.os_v4_replacement,
                ],
                SlotKind::Device => [spec.device_replacement, None, None, None, None],
            };
            Ok(Rule {
                regex,
                replacements,
            })
        })
        .collect()
}

#[derive(Clone, Copy)]
enum SlotKind {
    UserAgent,
    Os,
    Device,
}

/// Replaces `$1`..`$9` in `template` with the groups of `caps`; trims; empty is none.
fn substitute(template: &str, caps: &regex::Captures<'_>) -> Option<String> {
    let mut out = String::with_capacity(template.len());
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' {
            if let Some(d) = chars.peek().and_then(|d| d.to_digit(10)) {
                chars.next();
                if let Some(m) = caps.get(d as usize) {
                    out.push_str(m.as_str());
                }
                continue;
            }
        }
        out.push(c);
    }
    let trimmed = out.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}

impl Rule {
    /// Slot `i`: the replacement (with `$n` substituted) or capture group `i + 1`.
    fn slot(&self, i: usize, caps: &regex::Captures<'_>) -> Option<String> {
        match &self.replacements[i] {
            Some(t) => substitute(t, caps),
            None => caps
                .get(i + 1)
                .map(|m| m.as_str().trim())
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        }
    }
}

fn first_match<'a, 't>(
    rules: &'a [Rule],
    text: &'t str,
) -> Option<(&'a Rule, regex::Captures<'t>)> {
    // A plain match runs on the fast DFA; capture groups are resolved only for the
    // one rule that matched, which keeps a cache miss cheap.
    rules
        .iter()
        .find(|r| r.regex.is_match(text))
        .and_then(|r| r.regex.captures(text).map(|c| (r, c)))
}

impl UaParser {
    /// Compiles a `regexes.yaml` document.
    pub fn from_yaml(text: &str) -> Result<UaParser, String> {
        let file: RegexFile = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
        Ok(UaParser {
            user_agent: compile(
                file.user_agent_parsers,
                "user_agent_parsers",
                SlotKind::UserAgent,
            )?,
            os: compile(file.os_parsers, "os_parsers", SlotKind::Os)?,
            device: compile(file.device_parsers, "device_parsers", SlotKind::Device)?,
        })
    }

    /// The bundled uap-core rules, compiled once per process.
    pub fn bundled() -> Result<Arc<UaParser>, String> {
        static BUNDLED: OnceLock<Result<Arc<UaParser>, String>> = OnceLock::new();
        BUNDLED
            .get_or_init(|| UaParser::from_yaml(BUNDLED_REGEXES).map(Arc::new))
            .clone()
    }

    pub fn parse(&self, ua: &str) -> Parsed {
        let mut p = Parsed {
            family: "Other".into(),
            os_family: "Other".into(),
            device: "Other".into(),
            ..Parsed::default()
        };
        if let Some((rule, caps)) = first_match(&self.user_agent, ua) {
            if let Some(f) = rule.slot(0, &caps) {
                p.family = f;
            }
            p.major = rule.slot(1, &caps);
            p.minor = rule.slot(2, &caps);
            p.patch = rule.slot(3, &caps);
            p.patch_minor = rule.slot(4, &caps);
        }
        if let Some((rule, caps)) = first_match(&self.os, ua) {
            if let Some(f) = rule.slot(0, &caps) {
                p.os_family = f;
            }
            p.os_major = rule.slot(1, &caps);
            p.os_minor = rule.slot(2, &caps);
            p.os_patch = rule.slot(3, &caps);
            p.os_patch_minor = rule.slot(4, &caps);
        }
        if let Some((rule, caps)) = first_match(&self.device, ua) {
            if let Some(d) = rule.slot(0, &caps) {
                p.device = d;
            }
        }
        p
    }
}

/// The output field references, fixed at build time for the ECS mode and target.
struct Fields {
    name: FieldRef,
    device: FieldRef,
    major: FieldRef,
    minor: FieldRef,
    patch: FieldRef,
    version: FieldRef,
    os_major: FieldRef,
    os_minor: FieldRef,
    os_patch: FieldRef,
    os_version: FieldRef,
    os_name: FieldRef,
    legacy_os: Option<FieldRef>,
    os_full: FieldRef,
}

type Lookup = Arc<[(FieldRef, Value)]>;

pub struct UserAgent {
    source: FieldRef,
    remove_source: bool,
    parser: Arc<UaParser>,
    fields: Fields,
    cache: PerThreadLru<Lookup>,
}

impl UserAgent {
    pub fn build(opts: &mut Options) -> Result<UserAgent, Error> {
        let ecs = Ecs::from_options(opts)?;
        let source_text = opts.required_string("source")?;
        let source_pos = opts.value_pos("source");
        let source = FieldRef::parse(&source_text)
            .map_err(|e| opts.option_error("source", &source_pos, e))?;
        let target_pos = opts.value_pos("target");
        let target_opt = opts.string("target")?;
        let prefix = opts.string_or("prefix", "")?;
        let cache_pos = opts.value_pos("lru_cache_size");
        let cache_size = opts.usize_or("lru_cache_size", 100_000)?;
        if cache_size == 0 {
            return Err(opts.option_error("lru_cache_size", &cache_pos, "must be greater than 0"));
        }
        let regexes_pos = opts.value_pos("regexes");
        let parser = match opts.string("regexes")? {
            None => UaParser::bundled().map_err(|e| opts.error(format!("bundled regexes: {e}")))?,
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    opts.option_error("regexes", &regexes_pos, format!("{path}: {e}"))
                })?;
                Arc::new(UaParser::from_yaml(&text).map_err(|e| {
                    opts.option_error("regexes", &regexes_pos, format!("{path}: {e}"))
                })?)
            }
        };
        if ecs.enabled() && !prefix.is_empty() {
            tracing::warn!(prefix = %prefix, "useragent: prefix is not supported in ECS compatibility mode");
        }
        // The target as a bracketed prefix ("" = event root), as Logstash normalizes it.
        let target = match (&target_opt, ecs.enabled()) {
            (Some(t), _) if !t.is_empty() => {
                let r =
                    FieldRef::parse(t).map_err(|e| opts.option_error("target", &target_pos, e))?;
                r.to_string()
            }
            (_, true) => "[user_agent]".to_string(),
            _ => String::new(),
        };
        let r = |text: String| {
            FieldRef::parse(&text)
                .map_err(|e| opts.option_error("prefix", &opts.value_pos("prefix"), e))
        };
        let meta = "[@metadata][filter][user_agent]";
        let fields = if ecs.enabled() {
            Fields {
                name: r(format!("{target}[name]"))?,
                device: r(format!("{target}[device][name]"))?,
                major: r(format!("{meta}[version][major]"))?,
                minor: r(format!("{meta}[version][minor]"))?,
                patch: r(format!("{meta}[version][patch]"))?,
                version: r(format!("{target}[version]"))?,
                os_major: r(format!("{meta}[os][version][major]"))?,
                os_minor: r(format!("{meta}[os][version][minor]"))?,
                os_patch: r(format!("{meta}[os][version][patch]"))?,
                os_version: r(format!("{target}[os][version]"))?,
                os_name: r(format!("{target}[os][name]"))?,
                legacy_os: None,
                os_full: r(format!("{target}[os][full]"))?,
            }
        } else {
            let f = |name: &str| r(format!("{target}[{prefix}{name}]"));
            Fields {
                name: f("name")?,
                device: f("device")?,
                major: f("major")?,
                minor: f("minor")?,
                patch: f("patch")?,
                version: f("version")?,
                os_major: f("os_major")?,
                os_minor: f("os_minor")?,
                os_patch: f("os_patch")?,
                os_version: f("os_version")?,
                os_name: f("os_name")?,
                legacy_os: Some(f("os")?),
                os_full: f("os_full")?,
            }
        };
        Ok(UserAgent {
            remove_source: target_opt.as_deref() == Some(source_text.as_str()),
            source,
            parser,
            fields,
            cache: PerThreadLru::new(cache_size),
        })
    }

    /// Cache statistics over all worker threads (benchmarks, tests).
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    /// The fields Logstash sets for `ua`, in its order.
    fn fields_for(&self, ua: &str) -> Lookup {
        let p = self.parser.parse(ua);
        let f = &self.fields;
        let mut out: Vec<(FieldRef, Value)> = Vec::with_capacity(13);
        let mut set = |r: &FieldRef, v: &str| out.push((r.clone(), Value::String(v.to_string())));
        set(&f.name, &p.family);
        set(&f.device, &p.device);
        if let Some(v) = &p.major {
            set(&f.major, v);
        }
        if let Some(v) = &p.minor {
            set(&f.minor, v);
        }
        if let Some(v) = &p.patch {
            set(&f.patch, v);
        }
        if let Some(v) = ua_version(ua, &p) {
            set(&f.version, &v);
        }
        if let Some(v) = &p.os_major {
            set(&f.os_major, v);
        }
        if let Some(v) = &p.os_minor {
            set(&f.os_minor, v);
        }
        if let Some(v) = &p.os_patch {
            set(&f.os_patch, v);
        }
        let os_version = os_version(&p);
        if let Some(v) = &os_version {
            set(&f.os_version, v);
        }
        set(&f.os_name, &p.os_family);
        if let Some(legacy) = &f.legacy_os {
            set(legacy, &p.os_family);
        }
        let full = match &os_version {
            Some(v) => format!("{} {v}", p.os_family),
            None => p.os_family.clone(),
        };
        set(&f.os_full, &full);
        out.into()
    }
}

/// The browser version "major.minor.patch[.patch_minor]"; when uap gives no
/// patch_minor but the agent string continues the version with `.digits `, Logstash
/// takes those digits too.
fn ua_version(ua: &str, p: &Parsed) -> Option<String> {
    let mut v = p.major.clone()?;
    let Some(minor) = &p.minor else {
        return Some(v);
    };
    v.push('.');
    v.push_str(minor);
    let Some(patch) = &p.patch else {
        return Some(v);
    };
    v.push('.');
    v.push_str(patch);
    if let Some(pm) = &p.patch_minor {
        v.push('.');
        v.push_str(pm);
        return Some(v);
    }
    if let Some(i) = ua.find(v.as_str()) {
        let rest = &ua[i + v.len()..];
        if let Some(after_dot) = rest.strip_prefix('.') {
            if let Some(end) = after_dot.find(' ') {
                let candidate = &after_dot[..end];
                // Logstash checks that the digits survive an integer round trip.
                if candidate
                    .parse::<u64>()
                    .is_ok_and(|n| n.to_string() == candidate)
                {
                    v.push('.');
                    v.push_str(candidate);
                }
            }
        }
    }
    Some(v)
}

/// The OS version: numeric majors join with '.', named ones ("Vista") with ' '.
fn os_version(p: &Parsed) -> Option<String> {
    let major = p.os_major.clone()?;
    let numeric = major.parse::<i64>().is_ok_and(|n| n.to_string() == major);
    let mut v = major;
    if let Some(minor) = &p.os_minor {
        v.push(if numeric { '.' } else { ' ' });
        v.push_str(minor);
        if let Some(patch) = &p.os_patch {
            v.push('.');
            v.push_str(patch);
            if let Some(pm) = &p.os_patch_minor {
                v.push('.');
                v.push_str(pm);
            }
        }
    }
    Some(v)
}

impl EventFilter for UserAgent {
    fn apply(&self, event: &mut Event) -> Outcome {
        let ua = match event.get(&self.source) {
            Some(Value::String(s)) => s,
            Some(Value::Array(items)) => match items.first() {
                Some(Value::String(s)) => s,
                _ => return Outcome::Failure,
            },
            _ => return Outcome::Failure,
        };
        if ua.is_empty() {
            return Outcome::Failure;
        }
        let found = self.cache.get_or_insert_with(ua, |ua| self.fields_for(ua));
        if self.remove_source {
            event.remove(&self.source);
        }
        for (r, v) in found.iter() {
            event.insert(r, v.clone());
        }
        Outcome::Success
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bundled_rule_compiles() {
        let p = UaParser::bundled().unwrap();
        assert!(p.user_agent.len() > 300 && p.os.len() > 150 && p.device.len() > 600);
    }

    #[test]
    fn firefox_on_mac() {
        let p = UaParser::bundled().unwrap();
        let r = p.parse(
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.11; rv:45.0) Gecko/20100101 Firefox/45.0",
        );
        assert_eq!(r.family, "Firefox");
        assert_eq!(r.major.as_deref(), Some("45"));
        assert_eq!(r.minor.as_deref(), Some("0"));
        assert_eq!(r.os_family, "Mac OS X");
        assert_eq!(os_version(&r).as_deref(), Some("10.11"));
        assert_eq!(r.device, "Mac");
    }

    #[test]
    fn named_os_major_joins_with_a_space() {
        let p = Parsed {
            os_major: Some("Vista".into()),
            os_minor: Some("SP2".into()),
            ..Parsed::default()
        };
        assert_eq!(os_version(&p).as_deref(), Some("Vista SP2"));
    }
}
