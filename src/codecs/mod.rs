//! Codecs: how inputs turn bytes into events (decoders) and how outputs turn events
//! into bytes (encoders). Stream inputs frame lines with [`line::LineFramer`] first.

pub mod cef;
pub mod line;
pub mod multiline;
pub mod rubydebug;

use crate::config::Error;
use crate::event::sprintf::Template;
use crate::event::{events_from_json_slice, Event, Timestamp};
use crate::plugin::CodecSpec;
use multiline::{Multiline, MultilineSpec};
use std::sync::Arc;
use std::time::Instant;

pub const JSON_PARSE_FAILURE: &str = "_jsonparsefailure";

/// JSON lines that held an empty array: Logstash makes no event of them, and neither
/// does Sluice, but each is counted and logged.
pub static EMPTY_JSON_ARRAYS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Turns one framed line into events.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoder {
    /// The line becomes `message` (`line` and `plain` codecs).
    Line,
    /// The line is a JSON document (`json_lines`, and `json` on line-framed inputs).
    Json,
    /// The line (or datagram) is an ArcSight CEF message.
    Cef(Arc<cef::CefCodec>),
}

impl Decoder {
    /// Builds the decoder named by `spec`, or `default` when the input has no `codec`.
    pub fn build(spec: Option<CodecSpec>, default: &str) -> Result<Decoder, Error> {
        let Some(spec) = spec else {
            return Ok(Self::by_name(default).unwrap_or(Decoder::Line));
        };
        if spec.name == "multiline" {
            return Err(spec.options.error(
                "the multiline codec joins the lines of one stream: it works on the stdin and tcp inputs, not on this one",
            ));
        }
        if spec.name == "cef" {
            let mut options = spec.options;
            let codec = cef::CefCodec::build(&mut options)?;
            options.finish()?;
            return Ok(Decoder::Cef(Arc::new(codec)));
        }
        let decoder = Self::by_name(&spec.name).ok_or_else(|| {
            spec.options.error(format!(
                "unknown codec `{}` (known: line, plain, json, json_lines, cef)",
                spec.name
            ))
        })?;
        let mut options = spec.options;
        // Accepted for compatibility; Sluice always decodes UTF-8, replacing invalid bytes.
        let _ = options.string("charset")?;
        let _ = options.string("delimiter")?;
        options.finish()?;
        Ok(decoder)
    }

    fn by_name(name: &str) -> Option<Decoder> {
        match name {
            "line" | "plain" => Some(Decoder::Line),
            "json" | "json_lines" => Some(Decoder::Json),
            _ => None,
        }
    }

    /// Decodes one line (without its delimiter). Nothing is ever lost: invalid UTF-8 is
    /// replaced, invalid JSON becomes an event with the raw text in `message` and the tag
    /// `_jsonparsefailure`.
    pub fn decode(&self, line: &[u8], now: Timestamp, out: &mut Vec<Event>) {
        match self {
            Decoder::Line => out.push(Event::with_message(lossy(line), now)),
            Decoder::Cef(codec) => codec.decode(line, now, out),
            Decoder::Json => {
                // Even a blank line becomes a (tagged) event: no line is ever lost.
                let before = out.len();
                match events_from_json_slice(line, now, out) {
                    Ok(()) if out.len() == before => {
                        EMPTY_JSON_ARRAYS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        tracing::warn!(
                            bytes = line.len(),
                            "json line holds an empty array: no event, as in Logstash"
                        );
                    }
                    Ok(()) => {}
                    Err(err) => {
                        tracing::debug!(error = %err, "json codec could not parse a line");
                        let mut e = Event::with_message(lossy(line), now);
                        e.add_tag(JSON_PARSE_FAILURE);
                        out.push(e);
                    }
                }
            }
        }
    }
}

/// The codec of a line-framed stream input (stdin, tcp): a [`Decoder`], which turns
/// each line into events alone, or `multiline`, which needs each stream's own state
/// ([`StreamCodec::stream`]).
#[derive(Debug, Clone)]
pub enum StreamCodec {
    Lines(Decoder),
    Multiline(Arc<MultilineSpec>),
}

impl StreamCodec {
    /// Builds the codec named by `spec`, or `default` when the input has no `codec`.
    pub fn build(spec: Option<CodecSpec>, default: &str) -> Result<StreamCodec, Error> {
        match spec {
            Some(spec) if spec.name == "multiline" => {
                let mut options = spec.options;
                let m = MultilineSpec::build(&mut options)?;
                options.finish()?;
                Ok(StreamCodec::Multiline(Arc::new(m)))
            }
            other => Ok(StreamCodec::Lines(Decoder::build(other, default)?)),
        }
    }

    /// The decoder of one new stream (a connection, stdin).
    pub fn stream(&self) -> StreamDecoder {
        match self {
            StreamCodec::Lines(d) => StreamDecoder::Lines(d.clone()),
            StreamCodec::Multiline(spec) => StreamDecoder::Multiline(spec.stream()),
        }
    }
}

/// One stream's decoder: what a line becomes may depend on the lines before it.
#[derive(Debug)]
pub enum StreamDecoder {
    Lines(Decoder),
    Multiline(Multiline),
}

impl StreamDecoder {
    /// Takes one framed line; pushes the events it completes. `truncated`: the input
    /// cut the line at its cap, and its event is tagged `_linetoolong`.
    pub fn line(&mut self, bytes: &[u8], truncated: bool, now: Timestamp, out: &mut Vec<Event>) {
        match self {
            StreamDecoder::Lines(d) => {
                let before = out.len();
                d.decode(bytes, now, out);
                if truncated {
                    for e in &mut out[before..] {
                        e.add_tag(line::LINE_TOO_LONG);
                    }
                }
            }
            StreamDecoder::Multiline(m) => m.line(bytes, truncated, now, out),
        }
    }

    /// The stream ended or the pipeline stops: pushes whatever is pending.
    pub fn flush(&mut self, now: Timestamp, out: &mut Vec<Event>) {
        if let StreamDecoder::Multiline(m) = self {
            m.flush(now, out);
        }
    }

    /// When pending lines must be flushed without waiting for more
    /// (`auto_flush_interval`); `None` when nothing waits for a timer.
    pub fn flush_due(&self) -> Option<Instant> {
        match self {
            StreamDecoder::Lines(_) => None,
            StreamDecoder::Multiline(m) => m.flush_due(),
        }
    }

    /// Flushes if the pending lines are due.
    pub fn flush_if_due(&mut self, now: Timestamp, out: &mut Vec<Event>) {
        if let StreamDecoder::Multiline(m) = self {
            m.flush_if_due(now, out);
        }
    }
}

/// Valid UTF-8 is moved without copying twice; invalid bytes become U+FFFD.
pub fn lossy(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// Turns an event into bytes for an output.
#[derive(Debug, Clone)]
pub enum Encoder {
    /// Logstash's human-readable `rubydebug`.
    Rubydebug { metadata: bool },
    /// One JSON object and a newline per event.
    JsonLines,
    /// `format` rendered per event and a newline (`line` codec; default `%{message}`).
    Line(Template),
    /// A single `.` per event, for watching throughput.
    Dots,
    /// ArcSight CEF, one message per event (followed by the codec's `delimiter`).
    Cef(Arc<cef::CefCodec>),
}

impl Encoder {
    pub fn build(spec: Option<CodecSpec>, default: &str) -> Result<Encoder, Error> {
        let (name, mut options) = match spec {
            Some(spec) => (spec.name, Some(spec.options)),
            None => (default.to_string(), None),
        };
        let encoder = match name.as_str() {
            "rubydebug" => {
                let metadata = match options.as_mut() {
                    Some(o) => o.bool_or("metadata", false)?,
                    None => false,
                };
                Encoder::Rubydebug { metadata }
            }
            "json_lines" | "json" => Encoder::JsonLines,
            "line" | "plain" => {
                let format = match options.as_mut() {
                    Some(o) => o.template("format")?,
                    None => None,
                };
                Encoder::Line(match format {
                    Some(t) => t,
                    None => Template::parse("%{message}")
                        .map_err(|e| Error::Empty(format!("built-in line format: {e}")))?,
                })
            }
            "dots" => Encoder::Dots,
            "cef" => {
                let codec = match options.as_mut() {
                    Some(o) => cef::CefCodec::build(o)?,
                    None => cef::CefCodec::build(&mut crate::plugin::Options::from_text(
                        "cef", "codec", "",
                    )?)?,
                };
                Encoder::Cef(Arc::new(codec))
            }
            other => {
                let msg = format!(
                    "unknown codec `{other}` (known: rubydebug, json_lines, json, line, plain, dots, cef)"
                );
                return Err(match options {
                    Some(o) => o.error(msg),
                    None => Error::Empty(msg),
                });
            }
        };
        if let Some(o) = options {
            o.finish()?;
        }
        Ok(encoder)
    }

    /// Appends the encoding of `event` to `buf`.
    pub fn encode(&self, event: &Event, buf: &mut Vec<u8>) {
        match self {
            Encoder::Rubydebug { metadata } => rubydebug::write(event, *metadata, buf),
            Encoder::JsonLines => {
                event.write_json(buf);
                buf.push(b'\n');
            }
            Encoder::Line(format) => {
                buf.extend_from_slice(format.render(event).as_bytes());
                buf.push(b'\n');
            }
            Encoder::Dots => buf.push(b'.'),
            Encoder::Cef(codec) => codec.encode(event, buf),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_failure_keeps_the_line() {
        let mut out = Vec::new();
        Decoder::Json.decode(b"{not json", Timestamp::now(), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].get_str("message"), Some("{not json"));
        assert!(out[0].has_tag(JSON_PARSE_FAILURE));
    }

    #[test]
    fn non_object_json_is_tagged_and_an_empty_array_counted() {
        let mut out = Vec::new();
        Decoder::Json.decode(b"[1,2]", Timestamp::now(), &mut out);
        Decoder::Json.decode(b"42", Timestamp::now(), &mut out);
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|e| e.has_tag(JSON_PARSE_FAILURE)));
        let before = EMPTY_JSON_ARRAYS.load(std::sync::atomic::Ordering::Relaxed);
        Decoder::Json.decode(b"[]", Timestamp::now(), &mut out);
        assert_eq!(out.len(), 2);
        assert!(EMPTY_JSON_ARRAYS.load(std::sync::atomic::Ordering::Relaxed) > before);
    }

    #[test]
    fn invalid_utf8_is_replaced_not_dropped() {
        let mut out = Vec::new();
        Decoder::Line.decode(b"ok \xff\xfe end", Timestamp::now(), &mut out);
        assert_eq!(out[0].get_str("message"), Some("ok \u{fffd}\u{fffd} end"));
        Decoder::Json.decode(b"{\"a\":\"\xff\"}", Timestamp::now(), &mut out);
        assert!(out[1].has_tag(JSON_PARSE_FAILURE));
    }
}
