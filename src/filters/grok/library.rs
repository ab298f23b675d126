//! The pattern library: named regexes that `%{NAME}` expands to. Logstash's legacy
//! patterns and Sluice's own ship inside the binary; `patterns_dir` files and
//! `pattern_definitions` override a name.

use std::collections::HashMap;
use std::path::Path;

/// Pattern files compiled into the binary, in load order (later files win).
const BUNDLED: &[(&str, &str)] = &[
    (
        "grok-patterns",
        include_str!("../../../patterns/grok-patterns"),
    ),
    ("httpd", include_str!("../../../patterns/httpd")),
    ("java", include_str!("../../../patterns/java")),
    (
        "linux-syslog",
        include_str!("../../../patterns/linux-syslog"),
    ),
    ("sluice", include_str!("../../../patterns/sluice")),
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
    #[error("{file}:{line}: expected `NAME regex`")]
    Syntax { file: String, line: usize },
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

    /// Adds the `NAME regex` lines of `text`; `file` names it in errors.
    pub fn add_text(&mut self, file: &str, text: &str) -> Result<(), LibraryError> {
        for (i, line) in text.lines().enumerate() {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let line = line.trim_end_matches(['\r', '\n']);
            let Some((name, def)) = line.split_once([' ', '\t']) else {
                return Err(LibraryError::Syntax {
                    file: file.to_string(),
                    line: i + 1,
                });
            };
            let def = def.trim_start_matches([' ', '\t']);
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(LibraryError::Syntax {
                    file: file.to_string(),
                    line: i + 1,
                });
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
        ] {
            assert!(lib.get(name).is_some(), "{name} missing");
        }
        // Every bundled file parses whole.
        for (name, text) in BUNDLED {
            PatternLibrary::empty().add_text(name, text).unwrap();
        }
    }

    #[test]
    fn a_line_without_a_regex_is_an_error() {
        let mut lib = PatternLibrary::empty();
        assert!(matches!(
            lib.add_text("f", "# c\nGOOD a+\nBAD\n"),
            Err(LibraryError::Syntax { line: 3, .. })
        ));
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
