//! From a Beats document to an event, as Logstash's beats input maps it: the JSON
//! document becomes the event, `@metadata` moves into the event's metadata (so
//! `%{[@metadata][beat]}` works), `@timestamp` is parsed, `message` goes through the
//! input's codec, and the event is enriched per the `enrich` option.

use super::document;
use super::protocol::ProtocolError;
use crate::codecs::{lossy, JSON_PARSE_FAILURE};
use crate::event::{new_map, Event, Map, Timestamp, Value, MESSAGE};
use bytes::Bytes;

/// What the input's codec does with `message`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageCodec {
    /// `plain` / `line`: `message` stays as it is.
    Plain,
    /// `json` / `json_lines`: `message` is parsed and its fields merged into the event.
    Json,
}

/// The Logstash 8 `enrich` categories.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Enrich {
    /// Tag `beats_input_codec_<codec>_applied` / `beats_input_raw_event`.
    pub codec_metadata: bool,
    /// `[@metadata][input][beats][host][ip]`: the client's address.
    pub source_metadata: bool,
    /// `[@metadata][tls_peer][status]`: `verified` or `unverified`.
    pub ssl_peer_metadata: bool,
}

/// Turns documents into events; one per input, shared by its connections.
#[derive(Debug, Clone)]
pub struct Mapper {
    pub codec: MessageCodec,
    /// `beats_input_codec_plain_applied` for the default codec.
    pub codec_tag: String,
    pub enrich: Enrich,
    pub add_hostname: bool,
}

/// What a connection knows about its peer, rendered once.
#[derive(Debug, Clone)]
pub struct Peer {
    /// `{"beats": {"host": {"ip": "..."}}}`, the value of `[@metadata][input]`.
    input_meta: Value,
    /// `{"status": "verified"}`, the value of `[@metadata][tls_peer]` on TLS connections.
    tls_meta: Option<Value>,
}

impl Peer {
    pub fn new(ip: &str, tls_verified: Option<bool>) -> Peer {
        let mut host = new_map();
        host.insert("ip".into(), Value::String(ip.to_string()));
        let mut beats = new_map();
        beats.insert("host".into(), Value::Map(host));
        let mut input = new_map();
        input.insert("beats".into(), Value::Map(beats));
        let tls_meta = tls_verified.map(|verified| {
            let mut m = new_map();
            let status = if verified { "verified" } else { "unverified" };
            m.insert("status".into(), Value::String(status.into()));
            Value::Map(m)
        });
        Peer {
            input_meta: Value::Map(input),
            tls_meta,
        }
    }
}

const RAW_EVENT_TAG: &str = "beats_input_raw_event";

impl Mapper {
    /// Maps one v2 JSON document. A document that is not a JSON object is refused:
    /// Logstash fails the connection on it, and so does Sluice (the client resends).
    pub fn json_event(
        &self,
        seq: u32,
        payload: &[u8],
        peer: &Peer,
        now: Timestamp,
    ) -> Result<Event, ProtocolError> {
        let doc = document::parse(payload).map_err(|e| ProtocolError::InvalidJson {
            seq,
            message: e.to_string(),
        })?;
        Ok(self.event_from_parts(doc.fields, doc.metadata, peer, now))
    }

    /// Maps one v1 (logstash-forwarder) event: string pairs, the text in `line`.
    pub fn v1_event(&self, pairs: &[(Bytes, Bytes)], peer: &Peer, now: Timestamp) -> Event {
        let mut fields = new_map();
        for (k, v) in pairs {
            let key = lossy(k);
            let key = if key == "line" {
                MESSAGE.to_string()
            } else {
                key
            };
            fields.insert(key, Value::String(lossy(v)));
        }
        let metadata = fields.shift_remove("@metadata");
        self.event_from_parts(fields, metadata, peer, now)
    }

    /// The event of a document's `fields` and its `@metadata` value, if it had one.
    fn event_from_parts(
        &self,
        mut fields: Map,
        metadata: Option<Value>,
        peer: &Peer,
        now: Timestamp,
    ) -> Event {
        let metadata = match metadata {
            Some(Value::Map(m)) => Some(m),
            Some(other) => {
                // Not an object: keep it visible rather than lose it.
                fields.insert("_@metadata".into(), other);
                None
            }
            None => None,
        };
        let has_message = fields.contains_key(MESSAGE);
        let mut event = Event::from_map(fields, now);
        if let Some(m) = metadata {
            *event.metadata_mut() = m;
        }
        if has_message && self.codec == MessageCodec::Json {
            self.decode_json_message(&mut event);
        }
        if self.enrich.codec_metadata {
            event.add_tag(if has_message {
                &self.codec_tag
            } else {
                RAW_EVENT_TAG
            });
        }
        if self.add_hostname {
            copy_beat_hostname(&mut event);
        }
        if self.enrich.source_metadata {
            event
                .metadata_mut()
                .insert("input".into(), peer.input_meta.clone());
        }
        if self.enrich.ssl_peer_metadata {
            if let Some(tls) = &peer.tls_meta {
                event.metadata_mut().insert("tls_peer".into(), tls.clone());
            }
        }
        event
    }

    /// The `json` codec on `message`: an object's fields are merged into the event and
    /// `message` goes; text that is not a JSON object is kept and tagged.
    fn decode_json_message(&self, event: &mut Event) {
        let Some(Value::String(text)) = event.get_field(MESSAGE) else {
            return;
        };
        match crate::event::parse_value(text.as_bytes()) {
            Ok(Value::Map(decoded)) => {
                event.fields_mut().shift_remove(MESSAGE);
                for (k, v) in decoded {
                    if k == "@timestamp" {
                        if let Some(ts) = v.as_str().and_then(Timestamp::parse_iso8601) {
                            event.set_timestamp(ts);
                        }
                        continue;
                    }
                    event.insert_field(k, v);
                }
            }
            _ => event.add_tag(JSON_PARSE_FAILURE),
        }
    }
}

/// `add_hostname`: `[host]` from `[beat][hostname]` when the event has no `host`.
fn copy_beat_hostname(event: &mut Event) {
    if event.get_field("host").is_some() {
        return;
    }
    let hostname = match event.get_field("beat") {
        Some(Value::Map(beat)) => beat.get("hostname").cloned(),
        _ => None,
    };
    if let Some(h) = hostname {
        event.insert_field("host", h);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::field_ref::FieldRef;

    fn mapper() -> Mapper {
        Mapper {
            codec: MessageCodec::Plain,
            codec_tag: "beats_input_codec_plain_applied".into(),
            enrich: Enrich {
                codec_metadata: true,
                source_metadata: true,
                ssl_peer_metadata: false,
            },
            add_hostname: false,
        }
    }

    fn get<'a>(e: &'a Event, r: &str) -> Option<&'a Value> {
        e.get(&FieldRef::parse(r).unwrap())
    }

    #[test]
    fn filebeat_documents_map_like_logstash() {
        let doc = br#"{"@timestamp":"2024-01-02T03:04:05.678Z","@metadata":{"beat":"filebeat","type":"_doc","version":"8.13.4"},"message":"hello","host":{"name":"web-01"},"agent":{"type":"filebeat"}}"#;
        let e = mapper()
            .json_event(1, doc, &Peer::new("10.0.0.7", None), Timestamp::now())
            .unwrap();
        assert_eq!(
            e.timestamp().unwrap().to_iso8601(),
            "2024-01-02T03:04:05.678Z"
        );
        assert_eq!(get(&e, "[@metadata][beat]"), Some(&Value::from("filebeat")));
        assert_eq!(
            get(&e, "[@metadata][version]"),
            Some(&Value::from("8.13.4"))
        );
        assert_eq!(get(&e, "[@metadata][type]"), Some(&Value::from("_doc")));
        assert_eq!(
            get(&e, "[@metadata][input][beats][host][ip]"),
            Some(&Value::from("10.0.0.7"))
        );
        assert_eq!(get(&e, "[host][name]"), Some(&Value::from("web-01")));
        assert_eq!(get(&e, "[agent][type]"), Some(&Value::from("filebeat")));
        assert!(e.has_tag("beats_input_codec_plain_applied"));
        assert!(!e.to_json_string().contains("@metadata"));
    }

    #[test]
    fn documents_without_message_are_raw_events() {
        let e = mapper()
            .json_event(
                1,
                br#"{"metric":1}"#,
                &Peer::new("::1", None),
                Timestamp::now(),
            )
            .unwrap();
        assert!(e.has_tag("beats_input_raw_event"));
        assert!(e.timestamp().is_some());
    }

    #[test]
    fn invalid_documents_are_protocol_errors() {
        let m = mapper();
        let peer = Peer::new("::1", None);
        for bad in [&b"{'a':1}"[..], b"[1]", b"\"text\""] {
            assert!(matches!(
                m.json_event(3, bad, &peer, Timestamp::now()),
                Err(ProtocolError::InvalidJson { seq: 3, .. })
            ));
        }
    }

    #[test]
    fn v1_line_becomes_message() {
        let pairs = vec![
            (Bytes::from_static(b"line"), Bytes::from_static(b"hi")),
            (Bytes::from_static(b"host"), Bytes::from_static(b"h")),
        ];
        let e = mapper().v1_event(&pairs, &Peer::new("::1", None), Timestamp::now());
        assert_eq!(e.get_str("message"), Some("hi"));
        assert_eq!(e.get_str("host"), Some("h"));
    }

    #[test]
    fn json_codec_merges_message_and_add_hostname_copies() {
        let m = Mapper {
            codec: MessageCodec::Json,
            codec_tag: "beats_input_codec_json_applied".into(),
            add_hostname: true,
            ..mapper()
        };
        let doc = br#"{"message":"{\"level\":\"warn\"}","beat":{"hostname":"box"}}"#;
        let e = m
            .json_event(1, doc, &Peer::new("::1", None), Timestamp::now())
            .unwrap();
        assert_eq!(e.get_str("level"), Some("warn"));
        assert!(e.get_field("message").is_none());
        assert_eq!(e.get_str("host"), Some("box"));
        assert!(e.has_tag("beats_input_codec_json_applied"));
    }
}
