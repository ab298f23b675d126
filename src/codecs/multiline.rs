//! The `multiline` codec: joins the lines of one stream into events (a Java stack trace
//! or a Python traceback with the log line it belongs to), as Logstash's namesake.
//!
//! A line "matches" when `pattern` (a grok pattern: `%{...}` names from the bundled
//! library and `patterns_dir`) matches it, or, with `negate => true`, when it does not.
//! With `what => previous` a matching line belongs to the lines before it: a line that
//! does not match ends the pending event and starts the next. With `what => next` a
//! matching line belongs to the lines after it: a line that does not match ends the
//! event it is part of.
//!
//! The pending lines are bounded: past `max_lines` lines or `max_bytes` bytes they are
//! emitted as they are, tagged `multiline_codec_max_lines_reached` /
//! `multiline_codec_max_bytes_reached` (Logstash's tags). They are emitted too after
//! `auto_flush_interval` seconds without a new line, and whenever the stream ends or the
//! pipeline stops: a pending line is never lost.
//!
//! State is per stream (a tcp connection, stdin): [`Multiline`] is one stream's state,
//! [`MultilineSpec`] the shared, compiled options.

use crate::config::Error;
use crate::event::{Event, Timestamp};
use crate::grok::compiler::expand;
use crate::grok::library::PatternLibrary;
use crate::grok::matcher::Matcher;
use crate::plugin::Options;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Tag of an event cut at `max_lines` (Logstash's).
pub const MAX_LINES_REACHED: &str = "multiline_codec_max_lines_reached";
/// Tag of an event cut at `max_bytes` (Logstash's).
pub const MAX_BYTES_REACHED: &str = "multiline_codec_max_bytes_reached";

/// How long one match may run before the line counts as not matching.
const MATCH_TIMEOUT: Duration = Duration::from_secs(1);

/// Which side a matching line joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum What {
    Previous,
    Next,
}

/// The character set of the input's bytes (`charset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    /// Invalid sequences become U+FFFD.
    Utf8,
    /// ISO-8859-1: every byte is the code point of the same value.
    Latin1,
    /// `ASCII-8BIT`/`BINARY`/`US-ASCII`: bytes above 0x7F become U+FFFD.
    Ascii,
}

impl Charset {
    /// The charset named `name` (Ruby's encoding names, case-insensitive).
    pub fn by_name(name: &str) -> Option<Charset> {
        match name.to_ascii_uppercase().as_str() {
            "UTF-8" | "UTF8" | "CP65001" => Some(Charset::Utf8),
            "ISO-8859-1" | "ISO8859-1" | "LATIN1" | "ISO_8859_1" => Some(Charset::Latin1),
            "ASCII-8BIT" | "BINARY" | "US-ASCII" | "ASCII" | "ANSI_X3.4-1968" | "646" => {
                Some(Charset::Ascii)
            }
            _ => None,
        }
    }

    pub fn decode(self, bytes: &[u8]) -> String {
        match self {
            Charset::Utf8 => super::lossy(bytes),
            Charset::Latin1 => bytes.iter().map(|&b| b as char).collect(),
            Charset::Ascii => bytes
                .iter()
                .map(|&b| if b.is_ascii() { b as char } else { '\u{fffd}' })
                .collect(),
        }
    }
}

/// The compiled options, shared by every stream of an input.
pub struct MultilineSpec {
    matcher: Matcher,
    negate: bool,
    what: What,
    max_lines: usize,
    max_bytes: usize,
    tag: String,
    auto_flush: Option<Duration>,
    charset: Charset,
}

impl std::fmt::Debug for MultilineSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultilineSpec")
            .field("negate", &self.negate)
            .field("what", &self.what)
            .field("max_lines", &self.max_lines)
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

impl MultilineSpec {
    /// Reads the codec's options (Logstash's names and defaults).
    pub fn build(opts: &mut Options) -> Result<MultilineSpec, Error> {
        let pattern_pos = opts.value_pos("pattern");
        let pattern = opts.required_string("pattern")?;
        let what_pos = opts.value_pos("what");
        let what = match opts.required_string("what")?.as_str() {
            "previous" => What::Previous,
            "next" => What::Next,
            other => {
                return Err(opts.option_error(
                    "what",
                    &what_pos,
                    format!("must be `previous` or `next`, not `{other}`"),
                ))
            }
        };
        let negate = opts.bool_or("negate", false)?;
        let mut lib = PatternLibrary::bundled();
        let dirs_pos = opts.value_pos("patterns_dir");
        for dir in opts.string_list("patterns_dir")?.unwrap_or_default() {
            // Logstash takes a directory (all its files) or a glob of files.
            let path = Path::new(&dir);
            let added = if path.is_dir() {
                lib.add_dir(path, "*")
            } else {
                let parent = path.parent().unwrap_or(Path::new("."));
                let glob = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "*".into());
                lib.add_dir(parent, &glob)
            };
            added.map_err(|e| opts.option_error("patterns_dir", &dirs_pos, e))?;
        }
        let expanded = expand(&pattern, &lib, true)
            .map_err(|e| opts.option_error("pattern", &pattern_pos, e))?;
        let matcher = Matcher::new(&expanded, MATCH_TIMEOUT)
            .map_err(|e| opts.option_error("pattern", &pattern_pos, e))?;
        let max_lines = opts.usize_or("max_lines", 500)?;
        let bytes_pos = opts.value_pos("max_bytes");
        let max_bytes = match opts.take("max_bytes")? {
            None => 10 << 20,
            Some(v) => {
                let text = opts.scalar_text("max_bytes", &v)?;
                crate::settings::parse_bytes(&text)
                    .map_err(|e| opts.option_error("max_bytes", &bytes_pos, e))?
            }
        };
        let tag = opts.string_or("multiline_tag", "multiline")?;
        let flush_pos = opts.value_pos("auto_flush_interval");
        let auto_flush = match opts.float("auto_flush_interval")? {
            None => None,
            Some(s) if s > 0.0 && s.is_finite() => Some(Duration::from_secs_f64(s)),
            Some(s) => {
                return Err(opts.option_error(
                    "auto_flush_interval",
                    &flush_pos,
                    format!("must be a positive number of seconds, not {s}"),
                ))
            }
        };
        let charset_pos = opts.value_pos("charset");
        let charset = match opts.string("charset")? {
            None => Charset::Utf8,
            Some(name) => Charset::by_name(&name).ok_or_else(|| {
                opts.option_error(
                    "charset",
                    &charset_pos,
                    format!("`{name}` is not supported (supported: UTF-8, ISO-8859-1, ASCII-8BIT, US-ASCII)"),
                )
            })?,
        };
        // Accepted for compatibility: lines are framed by the input, on `\n`.
        let delimiter_pos = opts.value_pos("delimiter");
        if let Some(d) = opts.string("delimiter")? {
            if d != "\n" {
                return Err(opts.option_error(
                    "delimiter",
                    &delimiter_pos,
                    "only `\\n` is supported (the input frames lines)",
                ));
            }
        }
        let _ = opts.bool("streaming_input")?;
        let _ = opts.string("ecs_compatibility")?;
        Ok(MultilineSpec {
            matcher,
            negate,
            what,
            max_lines,
            max_bytes,
            tag,
            auto_flush,
            charset,
        })
    }

    /// The state of one new stream.
    pub fn stream(self: &Arc<Self>) -> Multiline {
        Multiline {
            spec: self.clone(),
            lines: Vec::new(),
            bytes: 0,
            truncated: false,
            last_line: None,
        }
    }
}

/// One stream's pending lines. Bounded by `max_lines` + 1 lines and `max_bytes` plus one
/// line (itself bounded by the input's line cap).
#[derive(Debug)]
pub struct Multiline {
    spec: Arc<MultilineSpec>,
    lines: Vec<String>,
    bytes: usize,
    /// A pending line was cut at the input's line cap.
    truncated: bool,
    /// When the last line came, for `auto_flush_interval`.
    last_line: Option<Instant>,
}

impl Multiline {
    /// Takes one line (without its delimiter); pushes the events it completes to `out`.
    /// `truncated`: the input cut the line at its cap (the event gets `_linetoolong`).
    pub fn line(&mut self, bytes: &[u8], truncated: bool, now: Timestamp, out: &mut Vec<Event>) {
        let text = self.spec.charset.decode(bytes);
        let matched = self.spec.matcher.is_match(&text) != self.spec.negate;
        match self.spec.what {
            What::Previous => {
                if !matched || self.over_limits() {
                    self.flush(now, out);
                }
                self.buffer(text, truncated);
            }
            What::Next => {
                self.buffer(text, truncated);
                if !matched || self.over_limits() {
                    self.flush(now, out);
                }
            }
        }
    }

    fn buffer(&mut self, text: String, truncated: bool) {
        self.bytes += text.len();
        self.lines.push(text);
        self.truncated |= truncated;
        self.last_line = Some(Instant::now());
    }

    fn over_max_lines(&self) -> bool {
        self.lines.len() > self.spec.max_lines
    }

    fn over_max_bytes(&self) -> bool {
        self.bytes >= self.spec.max_bytes
    }

    fn over_limits(&self) -> bool {
        self.over_max_lines() || self.over_max_bytes()
    }

    /// Emits the pending lines as one event (nothing when none are pending).
    pub fn flush(&mut self, now: Timestamp, out: &mut Vec<Event>) {
        if self.lines.is_empty() {
            return;
        }
        let mut e = Event::with_message(self.lines.join("\n"), now);
        if !self.spec.tag.is_empty() && self.lines.len() > 1 {
            e.add_tag(&self.spec.tag);
        }
        if self.over_max_bytes() {
            e.add_tag(MAX_BYTES_REACHED);
        }
        if self.over_max_lines() {
            e.add_tag(MAX_LINES_REACHED);
        }
        if self.truncated {
            e.add_tag(super::line::LINE_TOO_LONG);
        }
        out.push(e);
        self.lines.clear();
        self.bytes = 0;
        self.truncated = false;
        self.last_line = None;
    }

    /// When the pending lines are due for `auto_flush_interval` (`None`: nothing
    /// pending, or no interval).
    pub fn flush_due(&self) -> Option<Instant> {
        Some(self.last_line? + self.spec.auto_flush?)
    }

    /// Flushes when `auto_flush_interval` passed since the last line.
    pub fn flush_if_due(&mut self, now: Timestamp, out: &mut Vec<Event>) {
        if self.flush_due().is_some_and(|due| due <= Instant::now()) {
            self.flush(now, out);
        }
    }

    /// Lines waiting for the rest of their event.
    pub fn pending_lines(&self) -> usize {
        self.lines.len()
    }
}

#[cfg(test)]
mod tests;
