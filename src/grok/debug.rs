//! The grok debugger behind `sluice grok 'PATTERN'`: per line, the captured fields as
//! JSON, or how far the pattern got.

use super::compiler::{self, CompileError};
use super::library::PatternLibrary;
use super::matcher::{MatchResult, Scratch};
use super::{compile_pattern, CompileSettings, Pattern};
use crate::event::Value;

/// A pattern compiled whole and as each prefix of its components.
pub struct Debugger {
    full: Pattern,
    /// (number of components, compiled prefix), longest first.
    prefixes: Vec<(usize, Pattern)>,
    components: Vec<String>,
}

impl Debugger {
    pub fn new(pattern: &str, lib: &PatternLibrary) -> Result<Debugger, CompileError> {
        let settings = CompileSettings::default();
        let full = compile_pattern(pattern, lib, &settings)?;
        let components: Vec<String> = compiler::components(pattern)
            .into_iter()
            .map(str::to_string)
            .collect();
        let mut prefixes = Vec::new();
        for k in (1..components.len()).rev() {
            // A prefix that splits a group does not compile; it is skipped.
            if let Ok(p) = compile_pattern(&components[..k].concat(), lib, &settings) {
                prefixes.push((k, p));
            }
        }
        Ok(Debugger {
            full,
            prefixes,
            components,
        })
    }

    /// The report for one line, as one JSON object.
    pub fn line(&self, line: &str) -> serde_json::Value {
        if let Some(fields) = captures(&self.full, line) {
            return serde_json::json!({ "matched": true, "fields": fields });
        }
        for (k, p) in &self.prefixes {
            if let Some(fields) = captures(p, line) {
                return serde_json::json!({
                    "matched": false,
                    "matched_prefix": self.components[..*k].concat(),
                    "failed_at": self.components[*k],
                    "component": k + 1,
                    "components": self.components.len(),
                    "prefix_fields": fields,
                });
            }
        }
        serde_json::json!({
            "matched": false,
            "failed_at": self.components.first().cloned().unwrap_or_default(),
            "component": 1,
            "components": self.components.len(),
        })
    }
}

fn captures(p: &Pattern, line: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    let mut spans = Vec::new();
    if p.matcher.find(line, &mut Scratch::new(), &mut spans) != MatchResult::Matched {
        return None;
    }
    let mut out = serde_json::Map::new();
    for (spec, span) in p.fields.iter().zip(spans) {
        let Some((s, e)) = span else { continue };
        let raw = &line[s..e];
        let v = match spec.conversion {
            compiler::Conversion::None => Value::String(raw.to_string()),
            compiler::Conversion::Int => Value::Int(super::ruby_to_i(raw)),
            compiler::Conversion::Float => Value::Float(super::ruby_to_f(raw)),
        };
        let v = serde_json::to_value(&v).unwrap_or(serde_json::Value::Null);
        match out.get_mut(&spec.name) {
            Some(serde_json::Value::Array(a)) => a.push(v),
            Some(existing) => {
                let old = existing.take();
                *existing = serde_json::Value::Array(vec![old, v]);
            }
            None => {
                out.insert(spec.name.clone(), v);
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_fields_or_how_far_it_got() {
        let d = Debugger::new(
            "%{TIMESTAMP_ISO8601:ts} %{LOGLEVEL:level} %{INT:n:int}",
            &PatternLibrary::bundled(),
        )
        .unwrap();
        let ok = d.line("2026-11-21T10:00:00Z INFO 5");
        assert_eq!(ok["matched"], true);
        assert_eq!(ok["fields"]["n"], 5);
        let bad = d.line("2026-11-21T10:00:00Z INFO x");
        assert_eq!(bad["matched"], false);
        assert_eq!(bad["failed_at"], "%{INT:n:int}");
        assert_eq!(bad["prefix_fields"]["level"], "INFO");
    }
}
