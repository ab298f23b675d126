//! The `_bulk` wire format: NDJSON request bodies written straight from events, and the
//! response, read item by item into a verdict per document.

use crate::outputs::{Outcome, Reason, Rejection};
use serde::Deserialize;
use std::collections::HashMap;
use std::ops::Range;

/// The bulk action of one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Index,
    Create,
    Update,
    Delete,
}

impl Action {
    pub fn parse(text: &str) -> Option<Action> {
        match text {
            "index" => Some(Action::Index),
            "create" => Some(Action::Create),
            "update" => Some(Action::Update),
            "delete" => Some(Action::Delete),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Index => "index",
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }
}

/// `version_type`: how the cluster compares a document's `version` with the one it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionType {
    Internal,
    /// Written only when the given version is higher than the stored one.
    External,
    /// Elasticsearch's other name for `external`.
    ExternalGt,
    /// Written when the given version is higher than or equal to the stored one.
    ExternalGte,
}

impl VersionType {
    pub fn parse(text: &str) -> Option<VersionType> {
        match text {
            "internal" => Some(VersionType::Internal),
            "external" => Some(VersionType::External),
            "external_gt" => Some(VersionType::ExternalGt),
            "external_gte" => Some(VersionType::ExternalGte),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            VersionType::Internal => "internal",
            VersionType::External => "external",
            VersionType::ExternalGt => "external_gt",
            VersionType::ExternalGte => "external_gte",
        }
    }

    /// The versions come from outside: a conflict means the cluster already holds the
    /// same or a newer version, which is what versioning is there to keep.
    pub fn is_external(self) -> bool {
        self != VersionType::Internal
    }
}

/// One document of a batch, encoded: its action line and source in `Encoded::body`.
#[derive(Debug)]
pub struct Doc {
    /// Position of the event in the batch.
    pub event: usize,
    pub action: Action,
    pub index: String,
    /// Bytes of this document's lines in the batch body.
    pub range: Range<usize>,
    /// Sent with an external version: a 409 means a newer version is already stored.
    pub external_version: bool,
}

/// The metadata written in a document's action line.
pub struct Meta<'a> {
    pub action: Action,
    pub index: &'a str,
    pub id: Option<&'a str>,
    pub routing: Option<&'a str>,
    pub pipeline: Option<&'a str>,
    pub version: Option<i64>,
    pub version_type: Option<VersionType>,
    /// Written on update actions only.
    pub retry_on_conflict: Option<u32>,
}

fn json_str(out: &mut Vec<u8>, s: &str) {
    // Serializing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Writes the action line, e.g. `{"index":{"_index":"logs","_id":"7"}}\n`.
pub fn write_action(out: &mut Vec<u8>, m: &Meta<'_>) {
    out.extend_from_slice(b"{\"");
    out.extend_from_slice(m.action.as_str().as_bytes());
    out.extend_from_slice(b"\":{\"_index\":");
    json_str(out, m.index);
    if let Some(id) = m.id {
        out.extend_from_slice(b",\"_id\":");
        json_str(out, id);
    }
    if let Some(r) = m.routing {
        out.extend_from_slice(b",\"routing\":");
        json_str(out, r);
    }
    if let Some(p) = m.pipeline {
        out.extend_from_slice(b",\"pipeline\":");
        json_str(out, p);
    }
    if let Some(v) = m.version {
        out.extend_from_slice(b",\"version\":");
        out.extend_from_slice(v.to_string().as_bytes());
    }
    if let Some(t) = m.version_type {
        out.extend_from_slice(b",\"version_type\":\"");
        out.extend_from_slice(t.as_str().as_bytes());
        out.push(b'"');
    }
    if let (Action::Update, Some(n)) = (m.action, m.retry_on_conflict) {
        out.extend_from_slice(b",\"retry_on_conflict\":");
        out.extend_from_slice(n.to_string().as_bytes());
    }
    out.extend_from_slice(b"}}\n");
}

/// What became of one document, from its bulk item, as Logstash decides it.
pub fn outcome(doc: &Doc, item: &Item, dlq_codes: &[u16]) -> Outcome {
    let status = item.status;
    let reason = || {
        let message = item
            .error
            .as_ref()
            .map_or_else(|| format!("HTTP {status}"), ItemError::describe);
        Reason::http(status, message)
    };
    let reject = || {
        Outcome::Reject(Rejection {
            reason: reason(),
            status,
            action: doc.action.as_str(),
            target: doc.index.clone(),
        })
    };
    match status {
        200..=299 => Outcome::Delivered,
        // Already there: `create` is idempotent on its id.
        409 if doc.action == Action::Create => Outcome::Delivered,
        // The cluster holds this version or a newer one: external versioning kept the
        // newer document, as intended. Logstash does not retry these either.
        409 if doc.external_version => Outcome::Delivered,
        // Already gone.
        404 if doc.action == Action::Delete => Outcome::Delivered,
        s if dlq_codes.contains(&s) => reject(),
        429 | 500..=599 | 401 | 403 | 408 => Outcome::retry(reason()),
        _ => reject(),
    }
}

#[derive(Debug, Deserialize)]
pub struct BulkResponse {
    #[serde(default)]
    pub errors: bool,
    pub items: Vec<HashMap<String, Item>>,
}

#[derive(Debug, Deserialize)]
pub struct Item {
    pub status: u16,
    #[serde(default)]
    pub error: Option<ItemError>,
}

#[derive(Debug, Deserialize)]
pub struct ItemError {
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub caused_by: Option<Box<ItemError>>,
}

impl ItemError {
    /// `type: reason (caused by type: reason)`.
    pub fn describe(&self) -> String {
        let mut out = format!(
            "{}: {}",
            self.kind,
            self.reason.as_deref().unwrap_or("no reason given")
        );
        let mut cause = self.caused_by.as_deref();
        while let Some(c) = cause {
            out.push_str(&format!(
                " (caused by {}: {})",
                c.kind,
                c.reason.as_deref().unwrap_or("no reason given")
            ));
            cause = c.caused_by.as_deref();
        }
        out
    }
}

/// The status and error of each item, in request order.
pub fn parse_response(body: &[u8]) -> Result<Vec<Item>, String> {
    let resp: BulkResponse = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let _ = resp.errors;
    resp.items
        .into_iter()
        .map(|mut m| {
            // Each item is an object with one key, the action.
            let key = m.keys().next().cloned();
            key.and_then(|k| m.remove(&k))
                .ok_or_else(|| "a bulk response item is empty".to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_lines_are_escaped_json() {
        let mut out = Vec::new();
        write_action(
            &mut out,
            &Meta {
                action: Action::Create,
                index: "logs-\"x\"",
                id: Some("a\nb"),
                routing: Some("r"),
                pipeline: None,
                version: None,
                version_type: None,
                retry_on_conflict: Some(3),
            },
        );
        let line = std::str::from_utf8(&out).unwrap();
        assert!(line.ends_with('\n'));
        let v: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(v["create"]["_index"], "logs-\"x\"");
        assert_eq!(v["create"]["_id"], "a\nb");
        assert_eq!(v["create"]["routing"], "r");
        assert!(
            v["create"].get("retry_on_conflict").is_none(),
            "update only"
        );
    }

    #[test]
    fn versions_and_update_retries_go_on_the_action_line() {
        let mut out = Vec::new();
        write_action(
            &mut out,
            &Meta {
                action: Action::Update,
                index: "logs",
                id: Some("7"),
                routing: None,
                pipeline: None,
                version: Some(42),
                version_type: Some(VersionType::ExternalGte),
                retry_on_conflict: Some(3),
            },
        );
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["update"]["version"], 42);
        assert_eq!(v["update"]["version_type"], "external_gte");
        assert_eq!(v["update"]["retry_on_conflict"], 3);
    }

    #[test]
    fn a_version_conflict_on_an_externally_versioned_document_is_not_retried() {
        let mut versioned = doc(Action::Index);
        versioned.external_version = true;
        assert_eq!(outcome(&versioned, &item(409), &[]), Outcome::Delivered);
        // Without external versioning a 409 on `index` is still a reject.
        assert_eq!(
            rejected_status(&outcome(&doc(Action::Index), &item(409), &[])),
            Some(409)
        );
    }

    fn doc(action: Action) -> Doc {
        Doc {
            event: 0,
            action,
            index: "logs".into(),
            range: 0..0,
            external_version: false,
        }
    }

    fn item(status: u16) -> Item {
        Item {
            status,
            error: None,
        }
    }

    fn is_retry(o: &Outcome, code: &str) -> bool {
        matches!(o, Outcome::Retry { reason, .. } if reason.code == code)
    }

    fn rejected_status(o: &Outcome) -> Option<u16> {
        match o {
            Outcome::Reject(r) => Some(r.status),
            _ => None,
        }
    }

    #[test]
    fn outcomes_follow_logstash() {
        let none = &[][..];
        let index = doc(Action::Index);
        assert_eq!(outcome(&index, &item(201), none), Outcome::Delivered);
        assert_eq!(
            outcome(&doc(Action::Create), &item(409), none),
            Outcome::Delivered
        );
        assert_eq!(
            outcome(&doc(Action::Delete), &item(404), none),
            Outcome::Delivered
        );
        for status in [429, 500, 503, 401, 403, 408] {
            let o = outcome(&index, &item(status), none);
            assert!(is_retry(&o, &format!("http_{status}")), "{status}: {o:?}");
        }
        assert_eq!(
            rejected_status(&outcome(&index, &item(400), none)),
            Some(400)
        );
        assert_eq!(
            rejected_status(&outcome(&index, &item(404), none)),
            Some(404)
        );
        // `index` of an existing id is no conflict to ignore: a 409 there is a reject.
        assert_eq!(
            rejected_status(&outcome(&index, &item(409), none)),
            Some(409)
        );
        assert_eq!(
            rejected_status(&outcome(&index, &item(503), &[503])),
            Some(503)
        );
    }

    #[test]
    fn a_reject_carries_the_servers_reason_and_the_target() {
        let it = Item {
            status: 400,
            error: Some(ItemError {
                kind: "mapper_parsing_exception".into(),
                reason: Some("failed to parse field [n]".into()),
                caused_by: None,
            }),
        };
        let Outcome::Reject(r) = outcome(&doc(Action::Create), &it, &[]) else {
            panic!("not a reject");
        };
        assert_eq!(r.reason.code, "http_400");
        assert_eq!(
            r.reason.message,
            "mapper_parsing_exception: failed to parse field [n]"
        );
        assert_eq!(r.action, "create");
        assert_eq!(r.target, "logs");
    }

    #[test]
    fn reads_items_and_reasons() {
        let body = br#"{"errors":true,"took":1,"items":[
            {"index":{"_index":"t","status":201,"result":"created"}},
            {"index":{"_index":"t","status":400,"error":{"type":"mapper_parsing_exception",
              "reason":"failed to parse field [n]","caused_by":{"type":"number_format_exception",
              "reason":"For input string: \"x\""}}}},
            {"create":{"_index":"t","status":429,"error":{"type":"es_rejected_execution_exception","reason":"queue full"}}}
        ]}"#;
        let items = parse_response(body).unwrap();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].status, 201);
        let reason = items[1].error.as_ref().unwrap().describe();
        assert_eq!(
            reason,
            "mapper_parsing_exception: failed to parse field [n] (caused by number_format_exception: For input string: \"x\")"
        );
        assert_eq!(items[2].status, 429);
        assert!(parse_response(b"not json").is_err());
    }
}
