//! The Logstash pipeline configuration language: text → AST with positions
//! (file:line:column), `${VAR}` substitution, and the files `-f` names. Nothing here
//! knows the runtime; `pipeline::build` turns the AST into a running pipeline.

pub mod ast;
pub mod env;
pub mod error;
pub mod parser;

pub use error::Error;
pub use parser::parse;

use std::path::{Path, PathBuf};

/// Where a pipeline configuration comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `-f`: a file, a directory (its files in lexical order) or a glob.
    Path(String),
    /// `-e`: configuration text.
    Text(String),
}

/// Reads and parses every file of `source`, in order, into one configuration.
pub fn load(source: &Source, support_escapes: bool) -> Result<ast::Config, Error> {
    match source {
        Source::Text(text) => {
            let mut cfg = parse(text, "config string", support_escapes)?;
            add_cli_defaults(&mut cfg);
            Ok(cfg)
        }
        Source::Path(path) => {
            let files = expand(path)?;
            let mut cfg = ast::Config::default();
            for file in files {
                let text = std::fs::read(&file).map_err(|source| Error::Io {
                    path: file.display().to_string(),
                    source,
                })?;
                let text = String::from_utf8_lossy(&text);
                let part = parse(&text, &file.display().to_string(), support_escapes)?;
                cfg.sections.extend(part.sections);
            }
            Ok(cfg)
        }
    }
}

/// Like Logstash's `-e`: with no input, read stdin; with no output, print rubydebug.
fn add_cli_defaults(cfg: &mut ast::Config) {
    let pos = ast::Pos {
        file: "config string".into(),
        line: 1,
        column: 1,
    };
    let has = |cfg: &ast::Config, kind| cfg.sections.iter().any(|s| s.kind == kind);
    for (kind, plugin) in [
        (ast::SectionKind::Input, "stdin"),
        (ast::SectionKind::Output, "stdout"),
    ] {
        if !has(cfg, kind) {
            cfg.sections.push(ast::Section {
                kind,
                items: vec![ast::Item::Plugin(ast::Plugin {
                    name: plugin.into(),
                    attributes: Vec::new(),
                    pos: pos.clone(),
                })],
                pos: pos.clone(),
            });
        }
    }
}

/// The files `-f` names: a file, every file of a directory in lexical order, or the
/// matches of a glob in lexical order.
pub fn expand(path: &str) -> Result<Vec<PathBuf>, Error> {
    let p = Path::new(path);
    let io = |source| Error::Io {
        path: path.to_string(),
        source,
    };
    let mut files: Vec<PathBuf> = if p.is_dir() {
        std::fs::read_dir(p)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|f| f.is_file())
            .collect()
    } else if p.is_file() {
        vec![p.to_path_buf()]
    } else if path.contains(['*', '?', '[']) {
        glob::glob(path)
            .map_err(|e| Error::Empty(format!("invalid glob `{path}`: {e}")))?
            .filter_map(Result::ok)
            .filter(|f| f.is_file())
            .collect()
    } else {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no such file or directory",
        )));
    };
    files.sort();
    if files.is_empty() {
        return Err(Error::Empty(format!(
            "no configuration files found at `{path}`"
        )));
    }
    Ok(files)
}
