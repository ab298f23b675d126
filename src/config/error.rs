//! Configuration errors: every one names where it happened and what was expected.

use super::ast::Pos;

/// An error in a pipeline configuration or in the files it names.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The text does not follow the grammar. `snippet` is the offending line with a caret
    /// under the column.
    #[error("{pos}: syntax error: {message}\n{snippet}")]
    Syntax {
        pos: Pos,
        message: String,
        snippet: String,
    },
    /// The text parses but means something invalid (unknown plugin, bad option ...).
    #[error("{pos}: {message}")]
    Invalid { pos: Pos, message: String },
    /// A file or directory given with `-f` could not be read.
    #[error("cannot read configuration {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// `-f` matched nothing, or the configuration has no section that can run.
    #[error("{0}")]
    Empty(String),
}

impl Error {
    pub fn invalid(pos: &Pos, message: impl Into<String>) -> Error {
        Error::Invalid {
            pos: pos.clone(),
            message: message.into(),
        }
    }
}

/// Renders `line` of `source` with a caret under `column` (1-based), for syntax errors.
pub fn snippet(source: &str, line: u32, column: u32) -> String {
    let text = source
        .lines()
        .nth(line.saturating_sub(1) as usize)
        .unwrap_or("");
    let text: String = text
        .chars()
        .map(|c| if c == '\t' { ' ' } else { c })
        .collect();
    let pad = " ".repeat(column.saturating_sub(1) as usize);
    format!("  {text}\n  {pad}^")
}
