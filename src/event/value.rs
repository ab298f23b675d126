//! The value model of an event field.

use super::Timestamp;
use std::fmt::Write as _;

pub use super::map::Map;

/// Creates an empty [`Map`].
pub fn new_map() -> Map {
    Map::new()
}

/// Creates an empty [`Map`] with room for `n` fields.
pub fn map_with_capacity(n: usize) -> Map {
    Map::with_capacity(n)
}

/// A field value: what JSON can say, plus timestamps.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    Timestamp(Timestamp),
    Array(Vec<Value>),
    Map(Map),
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&Map> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_map_mut(&mut self) -> Option<&mut Map> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&Vec<Value>> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// Numeric view used by comparisons: ints and floats compare with each other.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// Logstash truthiness: absent, null and `false` are false; everything else is true
    /// (including `0` and the empty string).
    pub fn is_truthy(&self) -> bool {
        !matches!(self, Value::Null | Value::Bool(false))
    }

    /// Renders the value the way Logstash's sprintf does: strings as they are, arrays
    /// joined with `,`, maps as JSON.
    pub fn write_display(&self, out: &mut String) {
        match self {
            Value::Null => {}
            Value::Bool(b) => {
                let _ = write!(out, "{b}");
            }
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Float(f) => write_float(*f, out),
            Value::String(s) => out.push_str(s),
            Value::Timestamp(t) => t.write_iso8601(out),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_display(out);
                }
            }
            Value::Map(_) => {
                if let Ok(json) = serde_json::to_string(self) {
                    out.push_str(&json);
                }
            }
        }
    }

    /// The display form as an owned string.
    pub fn to_display_string(&self) -> String {
        match self {
            Value::String(s) => s.clone(),
            other => {
                let mut s = String::new();
                other.write_display(&mut s);
                s
            }
        }
    }

    /// A rough count of the bytes this value occupies, for queue byte limits.
    pub fn approx_size(&self) -> usize {
        match self {
            Value::String(s) => s.len() + 24,
            Value::Array(a) => 24 + a.iter().map(Value::approx_size).sum::<usize>(),
            Value::Map(m) => {
                24 + m
                    .iter()
                    .map(|(k, v)| k.len() + 24 + v.approx_size())
                    .sum::<usize>()
            }
            _ => 16,
        }
    }
}

/// Floats print like Ruby's: always with a decimal point.
pub(crate) fn write_float(f: f64, out: &mut String) {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e16 {
        let _ = write!(out, "{f:.1}");
    } else {
        let _ = write!(out, "{f}");
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Value::Float(f)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<Timestamp> for Value {
    fn from(t: Timestamp) -> Self {
        Value::Timestamp(t)
    }
}

impl From<Map> for Value {
    fn from(m: Map) -> Self {
        Value::Map(m)
    }
}

impl From<Vec<Value>> for Value {
    fn from(a: Vec<Value>) -> Self {
        Value::Array(a)
    }
}
