//! Logstash's `rubydebug` output format: keys right-aligned, nested values indented,
//! timestamps unquoted.

use crate::event::{Event, Map, Value};

/// Appends `event` in rubydebug form; `metadata` adds the `@metadata` map.
pub fn write(event: &Event, metadata: bool, out: &mut Vec<u8>) {
    let mut s = String::with_capacity(256);
    let meta = if metadata { event.metadata() } else { None };
    let mut extra = crate::event::new_map();
    if let Some(m) = meta {
        extra.insert("@metadata".to_string(), Value::Map(m.clone()));
    }
    write_map(event.fields(), Some(&extra), 0, &mut s);
    s.push('\n');
    out.extend_from_slice(s.as_bytes());
}

fn write_map(map: &Map, extra: Option<&Map>, indent: usize, s: &mut String) {
    let entries: Vec<(&String, &Value)> = map.iter().chain(extra.into_iter().flatten()).collect();
    if entries.is_empty() {
        s.push_str("{}");
        return;
    }
    let width = entries
        .iter()
        .map(|(k, _)| k.chars().count() + 2)
        .max()
        .unwrap_or(0);
    s.push_str("{\n");
    for (i, (k, v)) in entries.iter().enumerate() {
        let quoted = format!("\"{k}\"");
        pad(s, indent + 4 + width - quoted.chars().count());
        s.push_str(&quoted);
        s.push_str(" => ");
        write_value(v, indent + 4, s);
        if i + 1 < entries.len() {
            s.push(',');
        }
        s.push('\n');
    }
    pad(s, indent);
    s.push('}');
}

fn write_value(v: &Value, indent: usize, s: &mut String) {
    match v {
        Value::Null => s.push_str("nil"),
        Value::String(text) => {
            s.push('"');
            for c in text.chars() {
                match c {
                    '"' => s.push_str("\\\""),
                    '\\' => s.push_str("\\\\"),
                    '\n' => s.push_str("\\n"),
                    '\t' => s.push_str("\\t"),
                    '\r' => s.push_str("\\r"),
                    c => s.push(c),
                }
            }
            s.push('"');
        }
        Value::Map(m) => write_map(m, None, indent, s),
        Value::Array(items) => {
            if items.is_empty() {
                s.push_str("[]");
                return;
            }
            s.push_str("[\n");
            for (i, item) in items.iter().enumerate() {
                pad(s, indent + 4);
                s.push_str(&format!("[{i}] "));
                write_value(item, indent + 4, s);
                if i + 1 < items.len() {
                    s.push(',');
                }
                s.push('\n');
            }
            pad(s, indent);
            s.push(']');
        }
        other => other.write_display(s),
    }
}

fn pad(s: &mut String, n: usize) {
    s.extend(std::iter::repeat_n(' ', n));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Timestamp;

    #[test]
    fn looks_like_logstash() {
        let mut e = Event::with_message("hi".into(), Timestamp::from_unix(0, 0).unwrap());
        e.add_tag("x");
        let mut out = Vec::new();
        write(&e, false, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "{\n    \"@timestamp\" => 1970-01-01T00:00:00.000Z,\n      \"@version\" => \"1\",\n       \"message\" => \"hi\",\n          \"tags\" => [\n        [0] \"x\"\n    ]\n}\n"
        );
    }
}
