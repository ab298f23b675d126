//! `csv` filter: splits one line of delimited text into fields.
//!
//! The line is read the way Logstash (Ruby's CSV) reads it, which decides what is a
//! failure: a separator may be several characters (`"||"`), an unquoted empty column
//! is null while a quoted one (`""`) is the empty string, a quote inside an unquoted
//! column or an unclosed quote is malformed and tags `_csvparsefailure`. Only the
//! first row counts; a trailing line break is dropped.

use super::{EventFilter, Outcome};
use crate::config::Error;
use crate::event::field_ref::FieldRef;
use crate::event::{Event, Timestamp, Value};
use crate::plugin::Options;
use std::sync::OnceLock;

pub const PARSE_FAILURE: &str = "_csvparsefailure";
pub const SKIPPED_EMPTY: &str = "_csvskippedemptyfield";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conversion {
    Integer,
    Float,
    Date,
    DateTime,
    Boolean,
}

pub struct Csv {
    source: FieldRef,
    /// Configured columns; empty with `autodetect_column_names` until the first line.
    columns: Vec<String>,
    detected: OnceLock<Vec<String>>,
    autodetect: bool,
    separator: String,
    /// `None`: no quoting at all (`quote_char => "\x00"`).
    quote: Option<char>,
    target: String,
    autogenerate: bool,
    skip_header: bool,
    skip_empty_columns: bool,
    skip_empty_rows: bool,
    convert: Vec<(String, Conversion)>,
}

/// Why a line is not valid CSV.
#[derive(Debug, PartialEq, Eq)]
pub enum CsvError {
    UnclosedQuote,
    StrayQuote,
    TextAfterQuote,
}

impl std::fmt::Display for CsvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CsvError::UnclosedQuote => "unclosed quoted field",
            CsvError::StrayQuote => "illegal quoting in an unquoted field",
            CsvError::TextAfterQuote => "text after a closing quote",
        })
    }
}

/// Parses the first row of `line`. `Ok(None)` for an empty line (Ruby's `nil` row).
pub fn parse_line(
    line: &str,
    sep: &str,
    quote: Option<char>,
) -> Result<Option<Vec<Option<String>>>, CsvError> {
    // One row: a line break ends it, except inside a quoted field.
    let line = line
        .strip_suffix("\r\n")
        .or_else(|| line.strip_suffix('\n'))
        .or_else(|| line.strip_suffix('\r'))
        .unwrap_or(line);
    if line.is_empty() {
        return Ok(None);
    }
    let mut fields = Vec::new();
    let mut rest = line;
    loop {
        let q = quote.filter(|q| rest.starts_with(*q));
        if let Some(q) = q {
            let mut value = String::new();
            let mut s = &rest[q.len_utf8()..];
            loop {
                let Some(i) = s.find(q) else {
                    return Err(CsvError::UnclosedQuote);
                };
                value.push_str(&s[..i]);
                s = &s[i + q.len_utf8()..];
                if s.starts_with(q) {
                    value.push(q);
                    s = &s[q.len_utf8()..];
                } else {
                    break;
                }
            }
            fields.push(Some(value));
            if s.is_empty() || s.starts_with(['\r', '\n']) {
                break;
            }
            match s.strip_prefix(sep) {
                Some(next) => rest = next,
                None => return Err(CsvError::TextAfterQuote),
            }
            if rest.is_empty() {
                fields.push(None);
                break;
            }
        } else {
            let row_end = rest.find(['\n', '\r']).unwrap_or(rest.len());
            let (field, next) = match rest[..row_end].find(sep) {
                Some(i) => (&rest[..i], Some(&rest[i + sep.len()..])),
                None => (&rest[..row_end], None),
            };
            if quote.is_some_and(|q| field.contains(q)) {
                return Err(CsvError::StrayQuote);
            }
            fields.push((!field.is_empty()).then(|| field.to_string()));
            match next {
                Some(n) => {
                    rest = n;
                    if rest.is_empty() {
                        fields.push(None);
                        break;
                    }
                }
                None => break,
            }
        }
    }
    Ok(Some(fields))
}

impl Csv {
    pub fn build(opts: &mut Options) -> Result<Csv, Error> {
        let source = opts
            .field_ref("source")?
            .unwrap_or_else(|| FieldRef::top("message"));
        let columns = opts.string_list("columns")?.unwrap_or_default();
        let sep_pos = opts.value_pos("separator");
        let separator = unescape(&opts.string_or("separator", ",")?);
        if separator.is_empty() {
            return Err(opts.option_error("separator", &sep_pos, "must not be empty"));
        }
        let quote_pos = opts.value_pos("quote_char");
        let quote_text = unescape(&opts.string_or("quote_char", "\"")?);
        let mut chars = quote_text.chars();
        let quote = match (chars.next(), chars.next()) {
            (Some('\0'), None) => None,
            (Some(c), None) => Some(c),
            _ => {
                return Err(opts.option_error(
                    "quote_char",
                    &quote_pos,
                    "must be a single character",
                ))
            }
        };
        let target = match opts.string("target")? {
            Some(t) if t.starts_with('[') => t,
            Some(t) => format!("[{t}]"),
            None => String::new(),
        };
        let convert_pos = opts.value_pos("convert");
        let mut convert = Vec::new();
        for (col, ty) in opts.string_map("convert")?.unwrap_or_default() {
            let c = match ty.as_str() {
                "integer" => Conversion::Integer,
                "float" => Conversion::Float,
                "date" => Conversion::Date,
                "date_time" => Conversion::DateTime,
                "boolean" => Conversion::Boolean,
                other => {
                    return Err(opts.option_error(
                        "convert",
                        &convert_pos,
                        format!("invalid conversion type `{other}` (integer, float, date, date_time, boolean)"),
                    ))
                }
            };
            convert.push((col, c));
        }
        let csv = Csv {
            source,
            columns,
            detected: OnceLock::new(),
            autodetect: opts.bool_or("autodetect_column_names", false)?,
            separator,
            quote,
            target,
            autogenerate: opts.bool_or("autogenerate_column_names", true)?,
            skip_header: opts.bool_or("skip_header", false)?,
            skip_empty_columns: opts.bool_or("skip_empty_columns", false)?,
            skip_empty_rows: opts.bool_or("skip_empty_rows", false)?,
            convert,
        };
        // Every column name must make a valid field reference under the target.
        for c in &csv.columns {
            FieldRef::parse(&csv.field_ref_text(c))
                .map_err(|e| opts.option_error("columns", &opts.value_pos("columns"), e))?;
        }
        Ok(csv)
    }

    fn field_ref_text(&self, column: &str) -> String {
        if column.starts_with('[') {
            format!("{}{column}", self.target)
        } else {
            format!("{}[{column}]", self.target)
        }
    }

    fn conversion(&self, column: &str) -> Option<Conversion> {
        self.convert
            .iter()
            .find(|(c, _)| c == column)
            .map(|(_, t)| *t)
    }

    fn fail(event: &mut Event) -> Outcome {
        event.add_tag(PARSE_FAILURE);
        Outcome::Failure
    }
}

/// `\t`, `\n`, `\r`, `\\`, `\x00` as written in configs.
fn unescape(s: &str) -> String {
    s.replace("\\t", "\t")
        .replace("\\n", "\n")
        .replace("\\r", "\r")
        .replace("\\x00", "\0")
        .replace("\\\\", "\\")
}

fn convert(value: String, c: Conversion) -> Value {
    let t = value.trim();
    match c {
        Conversion::Integer => t
            .replace('_', "")
            .parse::<i64>()
            .map(Value::Int)
            .unwrap_or(Value::String(value)),
        Conversion::Float => t
            .replace('_', "")
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Value::Float)
            .unwrap_or(Value::String(value)),
        Conversion::Boolean => match t.to_ascii_lowercase().as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(value),
        },
        Conversion::Date => chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|dt| Value::Timestamp(Timestamp::from_datetime(dt.and_utc())))
            .unwrap_or(Value::String(value)),
        Conversion::DateTime => Timestamp::parse_iso8601(t)
            .or_else(|| {
                chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S")
                    .ok()
                    .map(|dt| Timestamp::from_datetime(dt.and_utc()))
            })
            .map(Value::Timestamp)
            .unwrap_or(Value::String(value)),
    }
}

impl EventFilter for Csv {
    fn apply(&self, event: &mut Event) -> Outcome {
        let line = match event.get(&self.source) {
            None | Some(Value::Null) => return Outcome::Failure,
            Some(Value::String(s)) => s.as_str(),
            Some(_) => return Self::fail(event),
        };
        let values = match parse_line(line, &self.separator, self.quote) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, source = %self.source, "csv filter could not parse field");
                return Self::fail(event);
            }
        };
        let columns: &[String] = if self.autodetect && self.columns.is_empty() {
            match self.detected.get() {
                Some(c) => c,
                None => {
                    // The header line names the columns and is not itself an event.
                    let names = values
                        .unwrap_or_default()
                        .into_iter()
                        .map(Option::unwrap_or_default)
                        .collect();
                    let _ = self.detected.set(names);
                    return Outcome::Drop;
                }
            }
        } else {
            &self.columns
        };
        if self.skip_header && !columns.is_empty() {
            if let Some(v) = &values {
                if v.len() == columns.len()
                    && v.iter()
                        .zip(columns)
                        .all(|(a, b)| a.as_deref().unwrap_or("") == b)
                {
                    return Outcome::Drop;
                }
            }
        }
        let Some(values) = values else {
            if self.skip_empty_rows {
                event.add_tag(SKIPPED_EMPTY);
                return Outcome::Failure;
            }
            return Self::fail(event);
        };
        for (i, value) in values.into_iter().enumerate() {
            if self.skip_empty_columns && value.as_deref().is_none_or(str::is_empty) {
                continue;
            }
            let generated;
            let name = match columns.get(i) {
                Some(c) => c.as_str(),
                None if self.autogenerate => {
                    generated = format!("column{}", i + 1);
                    generated.as_str()
                }
                None => continue,
            };
            let v = match (value, self.conversion(name)) {
                (None, _) => Value::Null,
                (Some(s), Some(c)) => convert(s, c),
                (Some(s), None) => Value::String(s),
            };
            match FieldRef::parse(&self.field_ref_text(name)) {
                Ok(r) => {
                    event.insert(&r, v);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "csv filter: a column name is not a valid field reference");
                    return Self::fail(event);
                }
            }
        }
        Outcome::Success
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> Result<Option<Vec<Option<String>>>, CsvError> {
        parse_line(line, ",", Some('"'))
    }

    fn row(items: &[Option<&str>]) -> Option<Vec<Option<String>>> {
        Some(items.iter().map(|i| i.map(str::to_string)).collect())
    }

    #[test]
    fn ruby_csv_rules() {
        assert_eq!(p("a,b,c"), Ok(row(&[Some("a"), Some("b"), Some("c")])));
        assert_eq!(p("a,,\"\""), Ok(row(&[Some("a"), None, Some("")])));
        assert_eq!(p("a,"), Ok(row(&[Some("a"), None])));
        assert_eq!(
            p("\"x, \"\"y\"\"\",z\n"),
            Ok(row(&[Some("x, \"y\""), Some("z")]))
        );
        assert_eq!(p(""), Ok(None));
        assert_eq!(p("a,\"b"), Err(CsvError::UnclosedQuote));
        assert_eq!(p("a,b\"c"), Err(CsvError::StrayQuote));
        assert_eq!(p("\"a\"b,c"), Err(CsvError::TextAfterQuote));
        assert_eq!(
            parse_line("a||b||\"c||d\"", "||", Some('"')),
            Ok(row(&[Some("a"), Some("b"), Some("c||d")]))
        );
        assert_eq!(
            parse_line("big,bird,\"sesame\" street", ",", None),
            Ok(row(&[Some("big"), Some("bird"), Some("\"sesame\" street")]))
        );
    }
}
