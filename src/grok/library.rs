//! The pattern library: named regexes that `%{NAME}` expands to. Logstash's legacy
//! pattern library (every file of it) and Sluice's own ship inside the binary;
//! `patterns_dir` files and `pattern_definitions` override a name.

use std::collections::HashMap;
use std::path::Path;

/// Pattern files compiled into the binary, in load order (later files win). These are
/// Logstash's legacy set (`ecs_compatibility => disabled`) from logstash-patterns-core,
/// unchanged, plus `zeek` (which Logstash ships only in its ECS set) and Sluice's own.
/// No two of them define one name differently (a test checks it).
pub const BUNDLED: &[(&str, &str)] = &[
    ("aws", include_str!("../../patterns/aws")),
    ("bacula", include_str!("../../patterns/bacula")),
    ("bind", include_str!("../../patterns/bind")),
    ("bro", include_str!("../../patterns/bro")),
    ("exim", include_str!("../../patterns/exim")),
    ("firewalls", include_str!("../../patterns/firewalls")),
    (
        "grok-patterns",
        include_str!("../../patterns/grok-patterns"),
    ),
    ("haproxy", include_str!("../../patterns/haproxy")),
    ("httpd", include_str!("../../patterns/httpd")),
    ("java", include_str!("../../patterns/java")),
    ("junos", include_str!("../../patterns/junos")),
    ("linux-syslog", include_str!("../../patterns/linux-syslog")),
    ("maven", include_str!("../../patterns/maven")),
    ("mcollective", include_str!("../../patterns/mcollective")),
    (
        "mcollective-patterns",
        include_str!("../../patterns/mcollective-patterns"),
    ),
    ("mongodb", include_str!("../../patterns/mongodb")),
    ("nagios", include_str!("../../patterns/nagios")),
    ("postgresql", include_str!("../../patterns/postgresql")),
    ("rails", include_str!("../../patterns/rails")),
    ("redis", include_str!("../../patterns/redis")),
    ("ruby", include_str!("../../patterns/ruby")),
    ("squid", include_str!("../../patterns/squid")),
    ("zeek", include_str!("../../patterns/zeek")),
    ("sluice", include_str!("../../patterns/sluice")),
];

/// Why a pattern file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    #[error("cannot read pattern file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid glob `{glob}`: {reason}")]
    Glob { glob: String, reason: String },
}

/// Pattern names to their (unexpanded) definitions.
#[derive(Debug, Clone, Default)]
pub struct PatternLibrary {
    patterns: HashMap<String, String>,
}

impl PatternLibrary {
    /// An empty library.
    pub fn empty() -> PatternLibrary {
        PatternLibrary::default()
    }

    /// The patterns bundled with Sluice.
    pub fn bundled() -> PatternLibrary {
        let mut lib = PatternLibrary::empty();
        for (name, text) in BUNDLED {
            // The bundled files are tested to parse; a bad line would be skipped, not fatal.
            if let Err(e) = lib.add_text(name, text) {
                tracing::error!(error = %e, "bundled grok pattern file is invalid");
            }
        }
        lib
    }

    /// Adds the `NAME regex` lines of `text`; `file` names it in warnings. As in
    /// Logstash, a line that holds only a name, or a name grok could never refer to,
    /// is skipped (with a warning) instead of rejecting the whole file.
    pub fn add_text(&mut self, file: &str, text: &str) -> Result<(), LibraryError> {
        for (i, line) in text.lines().enumerate() {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let line = line.trim_end_matches(['\r', '\n']);
            let (name, def) = match line.split_once([' ', '\t']) {
                Some((name, def)) => (name, def.trim_start_matches([' ', '\t'])),
                None => (line, ""),
            };
            if def.is_empty() {
                tracing::warn!(
                    file,
                    line = i + 1,
                    name,
                    "grok pattern line has no regex, skipped"
                );
                continue;
            }
            if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                tracing::warn!(
                    file,
                    line = i + 1,
                    name,
                    "grok pattern name is not `[A-Za-z0-9_]+`, skipped"
                );
                continue;
            }
            self.patterns.insert(name.to_string(), def.to_string());
        }
        Ok(())
    }

    /// Adds every file of `dir` whose name matches `glob` (Logstash's
    /// `patterns_files_glob`, `*` by default), in lexical order.
    pub fn add_dir(&mut self, dir: &Path, glob: &str) -> Result<(), LibraryError> {
        let pattern = glob::Pattern::new(glob).map_err(|e| LibraryError::Glob {
            glob: glob.to_string(),
            reason: e.to_string(),
        })?;
        let read_err = |path: &Path, source| LibraryError::Read {
            path: path.display().to_string(),
            source,
        };
        if dir.is_file() {
            return self.add_file(dir);
        }
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| read_err(dir, e))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| pattern.matches(n))
            })
            .collect();
        files.sort();
        for f in files {
            self.add_file(&f)?;
        }
        Ok(())
    }

    fn add_file(&mut self, path: &Path) -> Result<(), LibraryError> {
        let text = std::fs::read_to_string(path).map_err(|source| LibraryError::Read {
            path: path.display().to_string(),
            source,
        })?;
        self.add_text(&path.display().to_string(), &text)
    }

    /// Defines or replaces one pattern.
    pub fn insert(&mut self, name: impl Into<String>, definition: impl Into<String>) {
        self.patterns.insert(name.into(), definition.into());
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.patterns.get(name).map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.patterns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Every pattern name, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.patterns.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_has_the_standard_names() {
        let lib = PatternLibrary::bundled();
        for name in [
            "TIMESTAMP_ISO8601",
            "LOGLEVEL",
            "GREEDYDATA",
            "IP",
            "COMBINEDAPACHELOG",
            "HTTPD_COMBINEDLOG",
            "SYSLOGLINE",
            "SYSLOGBASE",
            "JAVASTACKTRACEPART",
            "SLUICE_API",
            "SLUICE_DEVICE",
            "ELB_ACCESS_LOG",
            "S3_ACCESS_LOG",
            "HAPROXYHTTP",
            "BIND9",
            "CISCOFW106001",
            "SYSLOG5424LINE",
            "RAILS3",
            "MONGO3_LOG",
            "NAGIOSLOGLINE",
            "SQUID3",
            "RT_FLOW1",
            "BRO_HTTP",
            "ZEEK_HTTP",
            "BACULA_LOGLINE",
            "EXIM",
            "REDISLOG",
            "POSTGRESQL",
            "RUBY_LOGGER",
            "MAVEN_VERSION",
            "MCOLLECTIVE",
        ] {
            assert!(lib.get(name).is_some(), "{name} missing");
        }
        // Every bundled file parses whole.
        for (name, text) in BUNDLED {
            PatternLibrary::empty().add_text(name, text).unwrap();
        }
    }

    #[test]
    fn a_line_without_a_regex_is_skipped_not_fatal() {
        let mut lib = PatternLibrary::empty();
        lib.add_text("f", "# c\nGOOD a+\nBAD\nBAD-NAME x\nALSO b+\n")
            .unwrap();
        assert_eq!(lib.names(), vec!["ALSO", "GOOD"]);
    }

    #[test]
    fn bundled_files_never_define_one_name_two_ways() {
        let mut seen: HashMap<String, (&str, String)> = HashMap::new();
        for (file, text) in BUNDLED {
            let mut one = PatternLibrary::empty();
            one.add_text(file, text).unwrap();
            for (name, def) in one.patterns {
                if let Some((other, old)) = seen.get(&name) {
                    assert_eq!(old, &def, "{name} differs between {other} and {file}");
                }
                seen.insert(name, (file, def));
            }
        }
    }

    #[test]
    fn a_directory_overrides_by_glob() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.grok"), "WORD [a-z]+\n").unwrap();
        std::fs::write(dir.path().join("b.txt"), "WORD x\n").unwrap();
        let mut lib = PatternLibrary::bundled();
        lib.add_dir(dir.path(), "*.grok").unwrap();
        assert_eq!(lib.get("WORD"), Some("[a-z]+"));
    }
}
