//! `fingerprint` filter: a stable hash of one or more fields (for de-duplicating
//! document ids), an HMAC when `key` is set, a random UUID, the masked IPv4 network,
//! or the punctuation skeleton of a message. Values are turned into text exactly as
//! Logstash does (maps sorted by key, `|` between parts), so the same event gives the
//! same fingerprint in both.

use super::{EventFilter, Outcome};
use crate::config::Error;
use crate::event::field_ref::FieldRef;
use crate::event::{Event, Value};
use crate::plugin::ecs::Ecs;
use crate::plugin::Options;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Digest as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
    Md5,
    Murmur3,
    Murmur3_128,
    Ipv4Network,
    Uuid,
    Punctuation,
}

pub struct Fingerprint {
    /// In the order configured: without concatenation the last present one wins.
    sources: Vec<(String, FieldRef)>,
    /// By name, as Logstash orders them for concatenation and PUNCTUATION.
    sorted_sources: Vec<(String, FieldRef)>,
    target: FieldRef,
    key: Option<Vec<u8>>,
    base64: bool,
    method: Method,
    concatenate_sources: bool,
    concatenate_all_fields: bool,
    /// `IPV4_NETWORK`: the prefix length taken from `key`.
    prefix_len: u8,
}

impl Fingerprint {
    pub fn build(opts: &mut Options) -> Result<Fingerprint, Error> {
        let ecs = Ecs::from_options(opts)?;
        let source_pos = opts.value_pos("source");
        let mut sources = Vec::new();
        for s in opts
            .string_list("source")?
            .unwrap_or_else(|| vec!["message".into()])
        {
            let r = FieldRef::parse(&s).map_err(|e| opts.option_error("source", &source_pos, e))?;
            sources.push((s, r));
        }
        let target_pos = opts.value_pos("target");
        let target_text = opts.string("target")?.unwrap_or_else(|| {
            if ecs.enabled() {
                "[event][hash]".into()
            } else {
                "fingerprint".into()
            }
        });
        let target = FieldRef::parse(&target_text)
            .map_err(|e| opts.option_error("target", &target_pos, e))?;
        let method_pos = opts.value_pos("method");
        let method = match opts.string_or("method", "SHA1")?.as_str() {
            "SHA1" => Method::Sha1,
            "SHA256" => Method::Sha256,
            "SHA384" => Method::Sha384,
            "SHA512" => Method::Sha512,
            "MD5" => Method::Md5,
            "MURMUR3" => Method::Murmur3,
            "MURMUR3_128" => Method::Murmur3_128,
            "IPV4_NETWORK" => Method::Ipv4Network,
            "UUID" => Method::Uuid,
            "PUNCTUATION" => Method::Punctuation,
            other => return Err(opts.option_error(
                "method",
                &method_pos,
                format!("`{other}` is not one of SHA1, SHA256, SHA384, SHA512, MD5, MURMUR3, MURMUR3_128, IPV4_NETWORK, UUID, PUNCTUATION"),
            )),
        };
        let key_pos = opts.value_pos("key");
        let key = opts.string("key")?;
        let mut prefix_len = 32;
        if method == Method::Ipv4Network {
            let Some(k) = &key else {
                return Err(opts.option_error(
                    "key",
                    &key_pos,
                    "IPV4_NETWORK needs the subnet prefix length in `key`",
                ));
            };
            prefix_len = k
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|n| *n <= 32)
                .ok_or_else(|| {
                    opts.option_error(
                        "key",
                        &key_pos,
                        "IPV4_NETWORK: `key` must be a prefix length 0..32",
                    )
                })?;
        }
        // Sorting once here gives Logstash's order (it sorts the names per event).
        let mut sorted_sources = sources.clone();
        sorted_sources.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Fingerprint {
            sources,
            sorted_sources,
            target,
            key: key.map(String::into_bytes),
            base64: opts.bool_or("base64encode", false)?,
            method,
            concatenate_sources: opts.bool_or("concatenate_sources", false)?,
            concatenate_all_fields: opts.bool_or("concatenate_all_fields", false)?,
            prefix_len,
        })
    }

    fn encode(&self, bytes: &[u8]) -> String {
        if self.base64 {
            base64::engine::general_purpose::STANDARD.encode(bytes)
        } else {
            hex(bytes)
        }
    }

    fn digest(&self, data: &[u8]) -> Vec<u8> {
        macro_rules! run {
            ($d:ty) => {
                match &self.key {
                    None => <$d>::digest(data).to_vec(),
                    Some(k) => match <Hmac<$d> as Mac>::new_from_slice(k) {
                        Ok(mut m) => {
                            m.update(data);
                            m.finalize().into_bytes().to_vec()
                        }
                        // HMAC accepts keys of any length; this arm cannot be reached.
                        Err(_) => Vec::new(),
                    },
                }
            };
        }
        match self.method {
            Method::Sha256 => run!(sha2::Sha256),
            Method::Sha384 => run!(sha2::Sha384),
            Method::Sha512 => run!(sha2::Sha512),
            Method::Md5 => run!(md5::Md5),
            _ => run!(sha1::Sha1),
        }
    }

    /// The fingerprint of one value (already in canonical form where Logstash makes it).
    fn fingerprint(&self, v: &Canonical) -> Option<Value> {
        match self.method {
            Method::Murmur3 => Some(Value::Int(i64::from(match v {
                Canonical::Int(i) => murmur3_32(&i.to_le_bytes(), 0),
                Canonical::Text(t) => murmur3_32(t.as_bytes(), 0),
            }))),
            Method::Murmur3_128 => {
                let bytes: Vec<u8> = match v {
                    Canonical::Int(i) if i32::try_from(*i).is_ok() => {
                        (*i as i32).to_le_bytes().to_vec()
                    }
                    Canonical::Int(i) => i.to_le_bytes().to_vec(),
                    Canonical::Text(t) => t.as_bytes().to_vec(),
                };
                let h = murmur3::murmur3_x64_128(&mut bytes.as_slice(), 2).ok()?;
                Some(Value::String(self.encode(&h.to_le_bytes())))
            }
            Method::Ipv4Network => {
                let text = v.text();
                let ip: std::net::Ipv4Addr = text.trim().parse().ok()?;
                let net = ipnet::Ipv4Net::new(ip, self.prefix_len).ok()?;
                Some(Value::String(net.network().to_string()))
            }
            _ => Some(Value::String(
                self.encode(&self.digest(v.text().as_bytes())),
            )),
        }
    }
}

fn murmur3_32(bytes: &[u8], seed: u32) -> u32 {
    murmur3::murmur3_32(&mut &bytes[..], seed).unwrap_or(0)
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// A value ready to hash: integers keep their type (MURMUR3 hashes their bytes).
enum Canonical {
    Int(i64),
    Text(String),
}

impl Canonical {
    fn text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Canonical::Int(i) => i.to_string().into(),
            Canonical::Text(t) => t.as_str().into(),
        }
    }
}

/// Logstash's `to_canonical_value`: maps as sorted `k|v` pairs, arrays joined by `|`.
fn canonical_text(v: &Value, out: &mut String) {
    match v {
        Value::Map(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push('|');
                }
                out.push_str(k);
                out.push('|');
                if let Some(v) = m.get(k) {
                    canonical_text(v, out);
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push('|');
                }
                canonical_text(item, out);
            }
        }
        other => other.write_display(out),
    }
}

fn canonical(v: &Value) -> Canonical {
    match v {
        Value::Int(i) => Canonical::Int(*i),
        other => {
            let mut s = String::new();
            canonical_text(other, &mut s);
            Canonical::Text(s)
        }
    }
}

/// Ruby's `[^[\p{P}\p{S}]]` removed: what is left is punctuation and symbols.
fn punctuation(s: &str) -> String {
    s.chars()
        .filter(|c| {
            !c.is_alphanumeric()
                && !c.is_whitespace()
                && !c.is_control()
                && (c.is_ascii_punctuation() || !c.is_ascii())
        })
        .collect()
}

impl EventFilter for Fingerprint {
    fn apply(&self, event: &mut Event) -> Outcome {
        match self.method {
            Method::Uuid => {
                event.insert(
                    &self.target,
                    Value::String(uuid::Uuid::new_v4().to_string()),
                );
            }
            Method::Punctuation => {
                for (_, r) in &self.sorted_sources {
                    if let Some(v) = event.get(r) {
                        let p = punctuation(&v.to_display_string());
                        event.insert(&self.target, Value::String(p));
                    }
                }
            }
            _ if self.concatenate_sources || self.concatenate_all_fields => {
                let mut text = String::new();
                if self.concatenate_all_fields {
                    let mut keys: Vec<&String> = event.fields().keys().collect();
                    keys.sort();
                    for k in keys {
                        text.push('|');
                        text.push_str(k);
                        text.push('|');
                        if let Some(v) = event.fields().get(k) {
                            canonical_text(v, &mut text);
                        }
                    }
                } else {
                    for (name, r) in &self.sorted_sources {
                        text.push('|');
                        text.push_str(name);
                        text.push('|');
                        if let Some(v) = event.get(r) {
                            canonical_text(v, &mut text);
                        }
                    }
                }
                text.push('|');
                match self.fingerprint(&Canonical::Text(text)) {
                    Some(v) => {
                        event.insert(&self.target, v);
                    }
                    None => return Outcome::Failure,
                }
            }
            _ => {
                for (_, r) in &self.sources {
                    let value = match event.get(r) {
                        None => continue,
                        Some(Value::Array(items)) => Value::Array(
                            items
                                .iter()
                                .map(|i| self.fingerprint(&canonical(i)).unwrap_or(Value::Null))
                                .collect(),
                        ),
                        Some(v) => match self.fingerprint(&canonical(v)) {
                            Some(f) => f,
                            None => {
                                tracing::debug!(field = %r, "fingerprint: value is not an IPv4 address");
                                continue;
                            }
                        },
                    };
                    event.insert(&self.target, value);
                }
            }
        }
        Outcome::Success
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn punctuation_keeps_symbols_only() {
        assert_eq!(punctuation("Hello, World!"), ",!");
    }
}
