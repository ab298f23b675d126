//! The `cef` codec: ArcSight's Common Event Format, as Logstash's `logstash-codec-cef`.
//!
//! A CEF message is `CEF:Version|Device Vendor|Device Product|Device Version|Signature
//! ID|Name|Severity|Extension`. The seven header fields end at unescaped pipes (`\|` and
//! `\\` are a pipe and a backslash inside a field); the extension is `key=value` pairs
//! separated by spaces, where a value may itself hold spaces (it ends only where the next
//! `key=` begins) and escapes `\=`, `\\`, `\n` and `\r`. Anything before `CEF:` in the
//! version field (a syslog header) is kept apart, under `syslog` (legacy) or
//! `[log][syslog][header]` (ECS).
//!
//! Field names: with `ecs_compatibility => disabled` the header fields are `cefVersion`,
//! `deviceVendor`, ... and extension keys are expanded to their full CEF names (`src` →
//! `sourceAddress`); under `v1`/`v8` they are ECS fields (`[observer][vendor]`,
//! `[source][ip]`, ...) and the timestamp extensions (`rt`, `start`, `end`, ...) become
//! timestamps. A payload that is not CEF becomes an event with the payload in `message`,
//! tagged `_cefparsefailure`: nothing is lost.
//!
//! Encoding writes the header from `vendor`, `product`, `version`, `signature`, `name`
//! and `severity` (sprintf templates; an empty result takes the default) and the event
//! fields named in `fields` as the extension, under their full CEF names or, with
//! `reverse_mapping => true`, their short keys.

use crate::config::Error;
use crate::event::field_ref::FieldRef;
use crate::event::joda::LocaleNames;
use crate::event::sprintf::Template;
use crate::event::{Event, Timestamp, Value};
use crate::plugin::ecs::Ecs;
use crate::plugin::Options;
use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use std::collections::HashMap;

/// Tag of an event whose payload was not valid CEF (Logstash's).
pub const CEF_PARSE_FAILURE: &str = "_cefparsefailure";

/// Header fields in order: (legacy name, ECS name).
const HEADER_FIELDS: [(&str, &str); 7] = [
    ("cefVersion", "[cef][version]"),
    ("deviceVendor", "[observer][vendor]"),
    ("deviceProduct", "[observer][product]"),
    ("deviceVersion", "[observer][version]"),
    ("deviceEventClassId", "[event][code]"),
    ("name", "[cef][name]"),
    ("severity", "[event][severity]"),
];

const DEFAULT_VENDOR: &str = "Elasticsearch";
const DEFAULT_PRODUCT: &str = "Logstash";
const DEFAULT_VERSION: &str = "1.0";
const DEFAULT_SIGNATURE: &str = "Logstash";
const DEFAULT_NAME: &str = "Logstash";
const DEFAULT_SEVERITY: &str = "6";

/// The extension fields of the CEF specification: (full name, short key, ECS field,
/// legacy alias or "", priority when several map to one ECS field, is a timestamp).
/// `{device}` is `observer` or `host` (option `device`); `{device:A|B}` is A for `host`,
/// B for `observer`. The custom fields 1 to 15 are added by [`custom_fields`].
const FIELDS: &[(&str, &str, &str, &str, u8, bool)] = &[
    ("agentAddress", "agt", "[agent][ip]", "", 0, false),
    (
        "agentDnsDomain",
        "agentDnsDomain",
        "[cef][agent][registered_domain]",
        "",
        10,
        false,
    ),
    ("agentHostName", "ahost", "[agent][name]", "", 0, false),
    ("agentId", "aid", "[agent][id]", "", 0, false),
    ("agentMacAddress", "amac", "[agent][mac]", "", 0, false),
    (
        "agentNtDomain",
        "agentNtDomain",
        "[cef][agent][registered_domain]",
        "",
        0,
        false,
    ),
    ("agentReceiptTime", "art", "[event][created]", "", 0, true),
    (
        "agentTimeZone",
        "atz",
        "[cef][agent][timezone]",
        "",
        0,
        false,
    ),
    (
        "agentTranslatedAddress",
        "agentTranslatedAddress",
        "[cef][agent][nat][ip]",
        "",
        0,
        false,
    ),
    (
        "agentTranslatedZoneExternalID",
        "agentTranslatedZoneExternalID",
        "[cef][agent][translated_zone][external_id]",
        "",
        0,
        false,
    ),
    (
        "agentTranslatedZoneURI",
        "agentTranslatedZoneURI",
        "[cef][agent][translated_zone][uri]",
        "",
        0,
        false,
    ),
    ("agentType", "at", "[agent][type]", "", 0, false),
    ("agentVersion", "av", "[agent][version]", "", 0, false),
    (
        "agentZoneExternalID",
        "agentZoneExternalID",
        "[cef][agent][zone][external_id]",
        "",
        0,
        false,
    ),
    (
        "agentZoneURI",
        "agentZoneURI",
        "[cef][agent][zone][uri]",
        "",
        0,
        false,
    ),
    (
        "applicationProtocol",
        "app",
        "[network][protocol]",
        "",
        0,
        false,
    ),
    (
        "baseEventCount",
        "cnt",
        "[cef][base_event_count]",
        "",
        0,
        false,
    ),
    ("bytesIn", "in", "[source][bytes]", "", 0, false),
    ("bytesOut", "out", "[destination][bytes]", "", 0, false),
    (
        "categoryDeviceType",
        "catdt",
        "[cef][device_type]",
        "",
        0,
        false,
    ),
    (
        "customerExternalID",
        "customerExternalID",
        "[organization][id]",
        "",
        0,
        false,
    ),
    (
        "customerURI",
        "customerURI",
        "[organization][name]",
        "",
        0,
        false,
    ),
    (
        "destinationAddress",
        "dst",
        "[destination][ip]",
        "",
        0,
        false,
    ),
    (
        "destinationDnsDomain",
        "destinationDnsDomain",
        "[destination][registered_domain]",
        "",
        10,
        false,
    ),
    (
        "destinationGeoLatitude",
        "dlat",
        "[destination][geo][location][lat]",
        "destinationLatitude",
        0,
        false,
    ),
    (
        "destinationGeoLongitude",
        "dlong",
        "[destination][geo][location][lon]",
        "destinationLongitude",
        0,
        false,
    ),
    (
        "destinationHostName",
        "dhost",
        "[destination][domain]",
        "",
        0,
        false,
    ),
    (
        "destinationMacAddress",
        "dmac",
        "[destination][mac]",
        "",
        0,
        false,
    ),
    (
        "destinationNtDomain",
        "dntdom",
        "[destination][registered_domain]",
        "",
        0,
        false,
    ),
    (
        "destinationPort",
        "dpt",
        "[destination][port]",
        "",
        0,
        false,
    ),
    (
        "destinationProcessId",
        "dpid",
        "[destination][process][pid]",
        "",
        0,
        false,
    ),
    (
        "destinationProcessName",
        "dproc",
        "[destination][process][name]",
        "",
        0,
        false,
    ),
    (
        "destinationServiceName",
        "destinationServiceName",
        "[destination][service][name]",
        "",
        0,
        false,
    ),
    (
        "destinationTranslatedAddress",
        "destinationTranslatedAddress",
        "[destination][nat][ip]",
        "",
        0,
        false,
    ),
    (
        "destinationTranslatedPort",
        "destinationTranslatedPort",
        "[destination][nat][port]",
        "",
        0,
        false,
    ),
    (
        "destinationTranslatedZoneExternalID",
        "destinationTranslatedZoneExternalID",
        "[cef][destination][translated_zone][external_id]",
        "",
        0,
        false,
    ),
    (
        "destinationTranslatedZoneURI",
        "destinationTranslatedZoneURI",
        "[cef][destination][translated_zone][uri]",
        "",
        0,
        false,
    ),
    (
        "destinationUserId",
        "duid",
        "[destination][user][id]",
        "",
        0,
        false,
    ),
    (
        "destinationUserName",
        "duser",
        "[destination][user][name]",
        "",
        0,
        false,
    ),
    (
        "destinationUserPrivileges",
        "dpriv",
        "[destination][user][group][name]",
        "",
        0,
        false,
    ),
    (
        "destinationZoneExternalID",
        "destinationZoneExternalID",
        "[cef][destination][zone][external_id]",
        "",
        0,
        false,
    ),
    (
        "destinationZoneURI",
        "destinationZoneURI",
        "[cef][destination][zone][uri]",
        "",
        0,
        false,
    ),
    ("deviceAction", "act", "[event][action]", "", 0, false),
    ("deviceAddress", "dvc", "[{device}][ip]", "", 0, false),
    (
        "deviceDirection",
        "deviceDirection",
        "[network][direction]",
        "",
        0,
        false,
    ),
    (
        "deviceDnsDomain",
        "deviceDnsDomain",
        "[{device}][registered_domain]",
        "",
        10,
        false,
    ),
    (
        "deviceEventCategory",
        "cat",
        "[cef][category]",
        "",
        0,
        false,
    ),
    (
        "deviceExternalId",
        "deviceExternalId",
        "{device:[host][id]|[observer][name]}",
        "",
        0,
        false,
    ),
    (
        "deviceFacility",
        "deviceFacility",
        "[log][syslog][facility][code]",
        "",
        0,
        false,
    ),
    (
        "deviceHostName",
        "dvchost",
        "{device:[host][name]|[observer][hostname]}",
        "",
        0,
        false,
    ),
    (
        "deviceInboundInterface",
        "deviceInboundInterface",
        "[observer][ingress][interface][name]",
        "",
        0,
        false,
    ),
    (
        "deviceMacAddress",
        "dvcmac",
        "[{device}][mac]",
        "",
        0,
        false,
    ),
    (
        "deviceNtDomain",
        "deviceNtDomain",
        "[cef][nt_domain]",
        "",
        0,
        false,
    ),
    (
        "deviceOutboundInterface",
        "deviceOutboundInterface",
        "[observer][egress][interface][name]",
        "",
        0,
        false,
    ),
    (
        "devicePayloadId",
        "devicePayloadId",
        "[cef][payload_id]",
        "",
        0,
        false,
    ),
    ("deviceProcessId", "dvcpid", "[process][pid]", "", 0, false),
    (
        "deviceProcessName",
        "deviceProcessName",
        "[process][name]",
        "",
        0,
        false,
    ),
    ("deviceReceiptTime", "rt", "@timestamp", "", 0, true),
    (
        "deviceTimeZone",
        "dtz",
        "[event][timezone]",
        "destinationTimeZone",
        0,
        false,
    ),
    (
        "deviceTranslatedAddress",
        "deviceTranslatedAddress",
        "[host][nat][ip]",
        "",
        0,
        false,
    ),
    (
        "deviceTranslatedZoneExternalID",
        "deviceTranslatedZoneExternalID",
        "[cef][translated_zone][external_id]",
        "",
        0,
        false,
    ),
    (
        "deviceTranslatedZoneURI",
        "deviceTranslatedZoneURI",
        "[cef][translated_zone][uri]",
        "",
        0,
        false,
    ),
    (
        "deviceVersion",
        "deviceVersion",
        "[observer][version]",
        "",
        0,
        false,
    ),
    (
        "deviceZoneExternalID",
        "deviceZoneExternalID",
        "[cef][zone][external_id]",
        "",
        0,
        false,
    ),
    (
        "deviceZoneURI",
        "deviceZoneURI",
        "[cef][zone][uri]",
        "",
        0,
        false,
    ),
    ("endTime", "end", "[event][end]", "", 0, true),
    ("eventId", "eventId", "[event][id]", "", 0, false),
    ("eventOutcome", "outcome", "[event][outcome]", "", 0, false),
    (
        "externalId",
        "externalId",
        "[cef][external_id]",
        "",
        0,
        false,
    ),
    (
        "fileCreateTime",
        "fileCreateTime",
        "[file][created]",
        "",
        0,
        false,
    ),
    ("fileHash", "fileHash", "[file][hash]", "", 0, false),
    ("fileId", "fileId", "[file][inode]", "", 0, false),
    (
        "fileModificationTime",
        "fileModificationTime",
        "[file][mtime]",
        "",
        0,
        true,
    ),
    ("fileName", "fname", "[file][name]", "", 0, false),
    ("filePath", "filePath", "[file][path]", "", 0, false),
    (
        "filePermission",
        "filePermission",
        "[file][group]",
        "",
        0,
        false,
    ),
    ("fileSize", "fsize", "[file][size]", "", 0, false),
    ("fileType", "fileType", "[file][extension]", "", 0, false),
    (
        "managerReceiptTime",
        "mrt",
        "[event][ingested]",
        "",
        0,
        true,
    ),
    ("message", "msg", "[message]", "", 0, false),
    (
        "oldFileCreateTime",
        "oldFileCreateTime",
        "[cef][old_file][created]",
        "",
        0,
        true,
    ),
    (
        "oldFileHash",
        "oldFileHash",
        "[cef][old_file][hash]",
        "",
        0,
        false,
    ),
    (
        "oldFileId",
        "oldFileId",
        "[cef][old_file][inode]",
        "",
        0,
        false,
    ),
    (
        "oldFileModificationTime",
        "oldFileModificationTime",
        "[cef][old_file][mtime]",
        "",
        0,
        true,
    ),
    (
        "oldFileName",
        "oldFileName",
        "[cef][old_file][name]",
        "",
        0,
        false,
    ),
    (
        "oldFilePath",
        "oldFilePath",
        "[cef][old_file][path]",
        "",
        0,
        false,
    ),
    (
        "oldFilePermission",
        "oldFilePermission",
        "[cef][old_file][group]",
        "",
        0,
        false,
    ),
    (
        "oldFileSize",
        "oldFileSize",
        "[cef][old_file][size]",
        "",
        0,
        false,
    ),
    (
        "oldFileType",
        "oldFileType",
        "[cef][old_file][extension]",
        "",
        0,
        false,
    ),
    ("rawEvent", "rawEvent", "[event][original]", "", 0, false),
    ("Reason", "reason", "[event][reason]", "", 0, false),
    (
        "requestClientApplication",
        "requestClientApplication",
        "[user_agent][original]",
        "",
        0,
        false,
    ),
    (
        "requestContext",
        "requestContext",
        "[http][request][referrer]",
        "",
        0,
        false,
    ),
    (
        "requestCookies",
        "requestCookies",
        "[cef][request][cookies]",
        "",
        0,
        false,
    ),
    (
        "requestMethod",
        "requestMethod",
        "[http][request][method]",
        "",
        0,
        false,
    ),
    ("requestUrl", "request", "[url][original]", "", 0, false),
    ("sourceAddress", "src", "[source][ip]", "", 0, false),
    (
        "sourceDnsDomain",
        "sourceDnsDomain",
        "[source][registered_domain]",
        "",
        10,
        false,
    ),
    (
        "sourceGeoLatitude",
        "slat",
        "[source][geo][location][lat]",
        "sourceLatitude",
        0,
        false,
    ),
    (
        "sourceGeoLongitude",
        "slong",
        "[source][geo][location][lon]",
        "sourceLongitude",
        0,
        false,
    ),
    ("sourceHostName", "shost", "[source][domain]", "", 0, false),
    ("sourceMacAddress", "smac", "[source][mac]", "", 0, false),
    (
        "sourceNtDomain",
        "sntdom",
        "[source][registered_domain]",
        "",
        0,
        false,
    ),
    ("sourcePort", "spt", "[source][port]", "", 0, false),
    (
        "sourceProcessId",
        "spid",
        "[source][process][pid]",
        "",
        0,
        false,
    ),
    (
        "sourceProcessName",
        "sproc",
        "[source][process][name]",
        "",
        0,
        false,
    ),
    (
        "sourceServiceName",
        "sourceServiceName",
        "[source][service][name]",
        "",
        0,
        false,
    ),
    (
        "sourceTranslatedAddress",
        "sourceTranslatedAddress",
        "[source][nat][ip]",
        "",
        0,
        false,
    ),
    (
        "sourceTranslatedPort",
        "sourceTranslatedPort",
        "[source][nat][port]",
        "",
        0,
        false,
    ),
    (
        "sourceTranslatedZoneExternalID",
        "sourceTranslatedZoneExternalID",
        "[cef][source][translated_zone][external_id]",
        "",
        0,
        false,
    ),
    (
        "sourceTranslatedZoneURI",
        "sourceTranslatedZoneURI",
        "[cef][source][translated_zone][uri]",
        "",
        0,
        false,
    ),
    ("sourceUserId", "suid", "[source][user][id]", "", 0, false),
    (
        "sourceUserName",
        "suser",
        "[source][user][name]",
        "",
        0,
        false,
    ),
    (
        "sourceUserPrivileges",
        "spriv",
        "[source][user][group][name]",
        "",
        0,
        false,
    ),
    (
        "sourceZoneExternalID",
        "sourceZoneExternalID",
        "[cef][source][zone][external_id]",
        "",
        0,
        false,
    ),
    (
        "sourceZoneURI",
        "sourceZoneURI",
        "[cef][source][zone][uri]",
        "",
        0,
        false,
    ),
    ("startTime", "start", "[event][start]", "", 0, true),
    (
        "transportProtocol",
        "proto",
        "[network][transport]",
        "",
        0,
        false,
    ),
    ("type", "type", "[cef][type]", "", 0, false),
];

/// The numbered custom fields: (name stem, key stem, ECS stem).
const CUSTOM_FIELDS: [(&str, &str, &str); 4] = [
    (
        "deviceCustomFloatingPoint",
        "cfp",
        "device_custom_floating_point",
    ),
    (
        "deviceCustomIPv6Address",
        "c6a",
        "device_custom_ipv6_address",
    ),
    ("deviceCustomNumber", "cn", "device_custom_number"),
    ("deviceCustomString", "cs", "device_custom_string"),
];

/// One extension field after `device` is applied.
struct Field {
    name: String,
    key: String,
    ecs: String,
    legacy: &'static str,
    priority: u8,
    timestamp: bool,
}

fn all_fields(device_is_host: bool) -> Vec<Field> {
    let device = if device_is_host { "host" } else { "observer" };
    let mut out: Vec<Field> = FIELDS
        .iter()
        .map(|&(name, key, ecs, legacy, priority, timestamp)| {
            let ecs = if let Some(choice) = ecs
                .strip_prefix("{device:")
                .and_then(|r| r.strip_suffix('}'))
            {
                let (host, observer) = choice.split_once('|').unwrap_or((choice, choice));
                if device_is_host { host } else { observer }.to_string()
            } else {
                ecs.replace("{device}", device)
            };
            Field {
                name: name.to_string(),
                key: key.to_string(),
                ecs,
                legacy,
                priority,
                timestamp,
            }
        })
        .collect();
    for i in 1..=15 {
        for (name, key, ecs) in CUSTOM_FIELDS {
            for (suffix, part) in [("", "value"), ("Label", "label")] {
                out.push(Field {
                    name: format!("{name}{i}{suffix}"),
                    key: format!("{key}{i}{suffix}"),
                    ecs: format!("[cef][{ecs}_{i}][{part}]"),
                    legacy: "",
                    priority: 0,
                    timestamp: false,
                });
            }
        }
    }
    // Where several fields share an ECS name, the highest priority is written last
    // and so wins in the encoding table.
    out.sort_by_key(|f| f.priority);
    out
}

/// Where a known extension key goes: looked up per key of every message, so it is
/// borrowed from the table, never copied.
#[derive(Debug)]
struct Mapped {
    /// The field's name as `[event][timezone]` or `deviceTimeZone` (ECS or legacy).
    name: String,
    field: FieldRef,
    /// ECS mode: the value is a CEF timestamp, normalized to a time.
    timestamp: bool,
}

/// The compiled codec, shared by every stream of an input or output.
pub struct CefCodec {
    ecs: bool,
    header_fields: Vec<FieldRef>,
    syslog_field: FieldRef,
    /// Extension key (short or full name, or legacy alias) → event field (its name and
    /// reference).
    decode_mapping: HashMap<String, Mapped>,
    /// Event field name (as written in `fields`) → extension key.
    encode_mapping: HashMap<String, String>,
    default_timezone: Option<chrono_tz::Tz>,
    /// Month names of the `locale` option; `None` reads English.
    months: Option<LocaleNames>,
    raw_data_field: Option<FieldRef>,
    delimiter: Option<String>,
    vendor: Template,
    product: Template,
    version: Template,
    signature: Template,
    name: Template,
    severity: Template,
    fields: Vec<(String, FieldRef)>,
}

impl std::fmt::Debug for CefCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CefCodec")
            .field("ecs", &self.ecs)
            .field("delimiter", &self.delimiter)
            .finish_non_exhaustive()
    }
}

impl PartialEq for CefCodec {
    /// Two codecs are the same codec only as the same instance.
    fn eq(&self, other: &CefCodec) -> bool {
        std::ptr::eq(self, other)
    }
}

fn field(name: &str) -> FieldRef {
    if name.starts_with('[') {
        FieldRef::parse(name).unwrap_or_else(|_| FieldRef::top(name))
    } else {
        FieldRef::top(name)
    }
}

impl CefCodec {
    /// Reads the codec's options (Logstash's names and defaults).
    pub fn build(opts: &mut Options) -> Result<CefCodec, Error> {
        let ecs = Ecs::from_options(opts)?.enabled();
        let template = |opts: &mut Options, name: &str, default: &str| -> Result<Template, Error> {
            match opts.template(name)? {
                Some(t) => Ok(t),
                None => Template::parse(default)
                    .map_err(|e| Error::Empty(format!("built-in cef {name}: {e}"))),
            }
        };
        let vendor = template(opts, "vendor", DEFAULT_VENDOR)?;
        let product = template(opts, "product", DEFAULT_PRODUCT)?;
        let version = template(opts, "version", DEFAULT_VERSION)?;
        let signature = template(opts, "signature", DEFAULT_SIGNATURE)?;
        let name = template(opts, "name", DEFAULT_NAME)?;
        let severity = template(opts, "severity", DEFAULT_SEVERITY)?;
        let fields_pos = opts.value_pos("fields");
        let mut fields = Vec::new();
        for f in opts.string_list("fields")?.unwrap_or_default() {
            let r = FieldRef::parse(&f)
                .map_err(|e| opts.option_error("fields", &fields_pos, format!("`{f}`: {e}")))?;
            fields.push((f, r));
        }
        let reverse_mapping = opts.bool_or("reverse_mapping", false)?;
        // Logstash's configuration has no escapes: `\r` and `\n` are spelled out.
        let delimiter = opts
            .string("delimiter")?
            .map(|d| d.replace("\\r", "\r").replace("\\n", "\n"))
            .filter(|d| !d.is_empty());
        let raw_data_field = opts.field_ref("raw_data_field")?;
        let tz_pos = opts.value_pos("default_timezone");
        let default_timezone = match opts.string("default_timezone")? {
            None => None,
            Some(name) => Some(name.parse::<chrono_tz::Tz>().map_err(|_| {
                opts.option_error(
                    "default_timezone",
                    &tz_pos,
                    format!("`{name}` is not a time zone name"),
                )
            })?),
        };
        // Month names in CEF timestamps are read in this locale (Java's tags), English
        // when unset, as Logstash reads them with Joda.
        let locale_pos = opts.value_pos("locale");
        let months = match opts.string("locale")? {
            None => None,
            Some(tag) => LocaleNames::for_tag(&tag)
                .map_err(|e| opts.option_error("locale", &locale_pos, e.to_string()))?,
        };
        let device_pos = opts.value_pos("device");
        let device_is_host = match opts.string_or("device", "observer")?.as_str() {
            "observer" => false,
            "host" => true,
            other => {
                return Err(opts.option_error(
                    "device",
                    &device_pos,
                    format!("`{other}` is not observer or host"),
                ))
            }
        };

        let mut decode_mapping = HashMap::new();
        let mut encode_mapping = HashMap::new();
        let mut timestamp_fields = Vec::new();
        for f in all_fields(device_is_host) {
            let field_name = if ecs { f.ecs.clone() } else { f.name.clone() };
            let target_field = || Mapped {
                name: field_name.clone(),
                field: field(&field_name),
                timestamp: false,
            };
            decode_mapping.insert(f.key.clone(), target_field());
            decode_mapping.insert(f.name.clone(), target_field());
            let target = if reverse_mapping {
                f.key.clone()
            } else {
                f.name.clone()
            };
            if f.name != field_name {
                encode_mapping.insert(f.name.clone(), target.clone());
            }
            encode_mapping.insert(field_name.clone(), target);
            if !f.legacy.is_empty() {
                let legacy_field = if ecs { f.ecs.as_str() } else { f.legacy };
                decode_mapping.insert(
                    f.legacy.to_string(),
                    Mapped {
                        name: legacy_field.to_string(),
                        field: field(legacy_field),
                        timestamp: false,
                    },
                );
                let key = if reverse_mapping {
                    f.key.clone()
                } else {
                    f.legacy.to_string()
                };
                encode_mapping.insert(f.legacy.to_string(), key);
            }
            if ecs && f.timestamp && !timestamp_fields.contains(&field_name) {
                timestamp_fields.push(field_name);
            }
        }
        for m in decode_mapping.values_mut() {
            m.timestamp = timestamp_fields.contains(&m.name);
        }
        let header_fields = HEADER_FIELDS
            .iter()
            .map(|(legacy, ecs_name)| field(if ecs { ecs_name } else { legacy }))
            .collect();
        Ok(CefCodec {
            ecs,
            header_fields,
            syslog_field: field(if ecs {
                "[log][syslog][header]"
            } else {
                "syslog"
            }),
            decode_mapping,
            encode_mapping,
            default_timezone,
            months,
            raw_data_field,
            delimiter,
            vendor,
            product,
            version,
            signature,
            name,
            severity,
            fields,
        })
    }

    /// Decodes one payload (a line or a datagram) into events. With `delimiter` set,
    /// the payload is split on it first, as Logstash buffers on it.
    pub fn decode(&self, data: &[u8], now: Timestamp, out: &mut Vec<Event>) {
        match &self.delimiter {
            Some(d) if memchr::memmem::find(data, d.as_bytes()).is_some() => {
                for piece in data.split_str(d.as_bytes()) {
                    if !piece.is_empty() {
                        out.push(self.decode_one(piece, now));
                    }
                }
            }
            _ => out.push(self.decode_one(data, now)),
        }
    }

    /// One CEF message; on any error, the payload in `message` tagged `_cefparsefailure`.
    pub fn decode_one(&self, data: &[u8], now: Timestamp) -> Event {
        let text = match std::str::from_utf8(data) {
            Ok(t) => t,
            Err(_) => {
                tracing::debug!(bytes = data.len(), "cef payload is not valid UTF-8");
                return failure(super::lossy(data), now);
            }
        };
        // Flex connectors wrap the message in quotes.
        let text = match text.strip_prefix('"') {
            Some(rest) => rest
                .strip_suffix('"')
                .unwrap_or(&rest[..rest.len().saturating_sub(1)]),
            None => text,
        };
        let mut event = Event::at(now);
        if let Some(raw) = &self.raw_data_field {
            event.insert(raw, Value::String(super::lossy(data)));
        }
        match self.parse(text, &mut event) {
            Ok(()) => event,
            Err(reason) => {
                tracing::debug!(reason = %reason, "cef payload not parsed");
                failure(text.to_string(), now)
            }
        }
    }

    fn parse(&self, text: &str, event: &mut Event) -> Result<(), String> {
        let mut rest = chomp(text);
        if rest.contains('\n') {
            return Err("unescaped newline in the message (set `delimiter` to split on it)".into());
        }
        let mut header: Vec<String> = Vec::with_capacity(7);
        for i in 0..HEADER_FIELDS.len() {
            let end = next_header_end(rest).ok_or_else(|| {
                format!("not valid CEF: found {i} of 7 required pipe-terminated header fields")
            })?;
            header.push(unescape_header(&rest[..end]));
            rest = &rest[end + 1..];
        }
        // A syslog header before `CEF:` sits in the version field.
        let mut version = std::mem::take(&mut header[0]);
        if let Some(space) = version.rfind(' ') {
            let syslog = version[..space].to_string();
            version = version[space + 1..].to_string();
            event.insert(&self.syslog_field, Value::String(syslog));
        }
        header[0] = version
            .strip_prefix("CEF:")
            .map(str::to_string)
            .unwrap_or(version);
        for (r, v) in self.header_fields.iter().zip(header) {
            event.insert(r, Value::String(v));
        }
        let mut ext = rest.trim_matches(is_space);
        // (where it goes, value)
        let mut pairs: Vec<(Target<'_>, String)> = Vec::new();
        while !ext.is_empty() {
            let Some(key_len) = key_length(ext) else {
                return Err(format!("invalid extensions; keyless value present `{ext}`"));
            };
            let key = &ext[..key_len];
            let value_start = key_len + 1;
            let value_len = value_length(&ext[value_start..]);
            let raw = &ext[value_start..value_start + value_len];
            ext = ext[value_start + value_len..].trim_start_matches(is_space);
            let target = match self.decode_mapping.get(key) {
                Some(mapped) => Target::Mapped(mapped),
                None => Target::Unmapped(extension_field(key)),
            };
            pairs.push((target, unescape_value(raw)));
        }
        let mut device_tz = None;
        if self.ecs {
            device_tz = pairs
                .iter()
                .find(|(t, _)| matches!(t, Target::Mapped(m) if m.name == "[event][timezone]"))
                .map(|(_, v)| v.clone());
        }
        for (target, v) in pairs {
            let r = match target {
                Target::Mapped(m) if m.timestamp => {
                    // Normalized to a timestamp in ECS mode; an empty value sets nothing.
                    if !v.trim().is_empty() {
                        let ts = parse_timestamp(
                            &v,
                            device_tz.as_deref(),
                            self.default_timezone,
                            self.months.as_ref(),
                        )
                        .ok_or_else(|| format!("not a valid CEF timestamp: `{v}`"))?;
                        event.insert(&m.field, Value::Timestamp(ts));
                    }
                    continue;
                }
                Target::Mapped(m) => &m.field,
                Target::Unmapped(ref r) => r,
            };
            event.insert(r, Value::String(v));
        }
        Ok(())
    }

    /// Appends the CEF encoding of `event` (and `delimiter`, when set) to `buf`.
    pub fn encode(&self, event: &Event, buf: &mut Vec<u8>) {
        let header = |t: &Template, default: &str| {
            let v = sanitize_header(&t.render(event));
            if v.is_empty() {
                default.to_string()
            } else {
                v
            }
        };
        let severity = {
            let s = sanitize_header(&self.severity.render(event));
            match s.trim().parse::<f64>() {
                Ok(f) if f.fract() == 0.0 && (0.0..=10.0).contains(&f) => (f as i64).to_string(),
                _ => DEFAULT_SEVERITY.to_string(),
            }
        };
        let mut line = String::with_capacity(128);
        line.push_str("CEF:0|");
        for part in [
            header(&self.vendor, DEFAULT_VENDOR),
            header(&self.product, DEFAULT_PRODUCT),
            header(&self.version, DEFAULT_VERSION),
            header(&self.signature, DEFAULT_SIGNATURE),
            header(&self.name, DEFAULT_NAME),
            severity,
        ] {
            line.push_str(&part);
            line.push('|');
        }
        let mut first = true;
        for (name, r) in &self.fields {
            let Some(value) = event.get(r) else { continue };
            if matches!(value, Value::Null) {
                continue;
            }
            let key = self
                .encode_mapping
                .get(name)
                .map(String::as_str)
                .unwrap_or(name);
            let key: String = key.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
            let text = match value {
                Value::Array(_) | Value::Map(_) => {
                    sanitize_value(&serde_json::to_string(value).unwrap_or_default())
                }
                Value::Timestamp(t) => t.to_iso8601(),
                other => sanitize_value(&other.to_display_string()),
            };
            if !first {
                line.push(' ');
            }
            first = false;
            line.push_str(&key);
            line.push('=');
            line.push_str(&text);
        }
        if let Some(d) = &self.delimiter {
            line.push_str(d);
        }
        buf.extend_from_slice(line.as_bytes());
    }
}

fn failure(message: String, now: Timestamp) -> Event {
    let mut e = Event::with_message(message, now);
    e.add_tag(CEF_PARSE_FAILURE);
    e
}

/// Ruby's `chomp`: one trailing `\r\n`, `\n` or `\r` removed.
fn chomp(s: &str) -> &str {
    s.strip_suffix("\r\n")
        .or_else(|| s.strip_suffix('\n'))
        .or_else(|| s.strip_suffix('\r'))
        .unwrap_or(s)
}

/// Ruby's `\s`.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

/// The index of the pipe that ends the header field at the start of `s`: the first
/// pipe not escaped (`\|`; `\\` is an escaped backslash).
fn next_header_end(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if matches!(b.get(i + 1), Some(b'|' | b'\\')) => i += 2,
            b'|' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

fn unescape_header(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(&n) = chars.peek() {
                if n == '|' || n == '\\' {
                    out.push(n);
                    chars.next();
                    continue;
                }
            }
        }
        out.push(c);
    }
    out
}

/// The length of the extension key at the start of `s` when `=` follows it: word
/// characters, then optional `.subkey` parts, then an optional `[index]` (producers
/// such as ArcSight's connectors write such keys beyond the specification).
fn key_length(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = b.iter().take_while(|c| word(**c)).count();
    if i == 0 {
        return None;
    }
    while b.get(i) == Some(&b'.') {
        let sub = b[i + 1..]
            .iter()
            .take_while(|c| {
                !matches!(
                    c,
                    b'.' | b'='
                        | b'|'
                        | b'\\'
                        | b'['
                        | b']'
                        | b' '
                        | b'\t'
                        | b'\n'
                        | b'\r'
                        | 0x0b
                        | 0x0c
                )
            })
            .count();
        if sub == 0 {
            return None;
        }
        i += 1 + sub;
    }
    if b.get(i) == Some(&b'[') {
        let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 || b.get(i + 1 + digits) != Some(&b']') {
            return None;
        }
        i += digits + 2;
    }
    (b.get(i) == Some(&b'=')).then_some(i)
}

/// The length of the extension value at the start of `s`: it runs until a run of
/// whitespace followed by the next `key=` (values may hold unescaped spaces).
fn value_length(s: &str) -> usize {
    let mut i = 0;
    while i < s.len() {
        let rest = &s[i..];
        let Some(c) = rest.chars().next() else { break };
        if !is_space(c) {
            i += c.len_utf8();
            continue;
        }
        let run = rest.len() - rest.trim_start_matches(is_space).len();
        if key_length(&rest[run..]).is_some() {
            return i;
        }
        i += run;
    }
    i
}

/// An unmapped key: `name[0]` (array-like syntax) becomes `[name][0]`; others are one
/// top-level field, dots included.
fn extension_field(key: &str) -> FieldRef {
    if let Some(open) = key.find('[') {
        if key.ends_with(']') && open > 0 {
            let (base, index) = key.split_at(open);
            if let Ok(r) = FieldRef::parse(&format!("[{base}]{index}")) {
                return r;
            }
        }
    }
    FieldRef::top(key)
}

fn unescape_value(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let replaced = match chars.peek() {
                Some('\\') => Some('\\'),
                Some('=') => Some('='),
                Some('n') => Some('\n'),
                Some('r') => Some('\r'),
                _ => None,
            };
            if let Some(r) = replaced {
                out.push(r);
                chars.next();
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// Header values: `\` and `|` escaped; newlines become spaces (forbidden there).
fn sanitize_header(s: &str) -> String {
    let s = s.replace("\r\n", "\n");
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '|' => out.push_str("\\|"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Extension values: `\` and `=` escaped; newlines written as `\n`.
fn sanitize_value(s: &str) -> String {
    let s = s.replace("\r\n", "\n");
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '=' => out.push_str("\\="),
            '\n' | '\r' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A CEF timestamp: milliseconds since the epoch, or `MMM dd[ yyyy] HH:mm:ss[.SSS][ zzz]`
/// read in its own zone, else the device's (`deviceTimeZone`), else
/// `default_timezone`, else UTC. Without a year, the year that puts it no more than two
/// days in the future.
/// Where an extension key of one message goes.
enum Target<'a> {
    Mapped(&'a Mapped),
    Unmapped(FieldRef),
}

fn parse_timestamp(
    value: &str,
    device_tz: Option<&str>,
    default_tz: Option<chrono_tz::Tz>,
    months: Option<&LocaleNames>,
) -> Option<Timestamp> {
    let value = value.trim();
    if value.starts_with(|c: char| matches!(c, '1'..='9'))
        && value.chars().all(|c| c.is_ascii_digit() || c == '.')
        && value.matches('.').count() <= 1
        && !value.ends_with('.')
    {
        // Integer arithmetic: epoch milliseconds exceed an f64's exact digits.
        let (whole, frac) = value.split_once('.').unwrap_or((value, ""));
        let ms: i64 = whole.parse().ok()?;
        let frac: String = frac.chars().chain(std::iter::repeat('0')).take(6).collect();
        let sub_ms_nanos: i64 = frac.parse().ok()?;
        let secs = ms.div_euclid(1000);
        let nanos = ms.rem_euclid(1000) * 1_000_000 + sub_ms_nanos;
        return Timestamp::from_unix(secs, u32::try_from(nanos).ok()?);
    }
    let mut parts = value.split(' ').filter(|p| !p.is_empty());
    let month_name = parts.next()?;
    let month = match months {
        // Joda reads the month in the codec's locale, and only in it.
        Some(names) => match names.month(month_name)? {
            (n, month) if n == month_name.len() => month,
            _ => return None,
        },
        None => english_month(month_name)?,
    };
    let day: u32 = parts.next()?.parse().ok()?;
    let mut next = parts.next()?;
    let mut year: Option<i32> = None;
    if !next.contains(':') {
        year = Some(next.parse().ok()?);
        next = parts.next()?;
    }
    let time = parse_time(next)?;
    let zone = parts.next();
    if parts.next().is_some() {
        return None;
    }
    let offset_of = |name: &str| -> Option<Zone> {
        match name {
            "UTC" | "GMT" | "Z" | "UT" => Some(Zone::Utc),
            _ => {
                if let Ok(tz) = name.parse::<chrono_tz::Tz>() {
                    return Some(Zone::Named(tz));
                }
                chrono::DateTime::parse_from_str(
                    &format!("2000-01-01 00:00 {name}"),
                    "%Y-%m-%d %H:%M %z",
                )
                .ok()
                .map(|d| Zone::Fixed(*d.offset()))
            }
        }
    };
    let zone = match zone {
        Some(z) => offset_of(z)?,
        None => match device_tz {
            Some(d) => offset_of(d)?,
            None => default_tz.map(Zone::Named).unwrap_or(Zone::Utc),
        },
    };
    let at_year = |y: i32| -> Option<chrono::DateTime<chrono::Utc>> {
        let local = NaiveDateTime::new(NaiveDate::from_ymd_opt(y, month, day)?, time);
        zone.resolve(local)
    };
    let utc = match year {
        Some(y) => at_year(y)?,
        None => {
            let now = chrono::Utc::now();
            let this = at_year(now.year())?;
            if this > now + chrono::Duration::days(2) {
                at_year(now.year() - 1)?
            } else if now.month() == 12
                && at_year(now.year() + 1)? <= now + chrono::Duration::days(2)
            {
                at_year(now.year() + 1)?
            } else {
                this
            }
        }
    };
    Some(Timestamp::from_datetime(utc))
}

/// An English month abbreviation (`Jan` ... `Dec`, any case), as CEF writes them.
fn english_month(name: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(name))
        .map(|i| i as u32 + 1)
}

fn parse_time(s: &str) -> Option<NaiveTime> {
    let (hms, frac) = match s.split_once('.') {
        Some((h, f)) => (h, Some(f)),
        None => (s, None),
    };
    let mut it = hms.split(':');
    let h: u32 = it.next()?.parse().ok()?;
    let m: u32 = it.next()?.parse().ok()?;
    let sec: u32 = it.next()?.parse().ok()?;
    if it.next().is_some() {
        return None;
    }
    let nanos = match frac {
        None => 0,
        Some(f) if matches!(f.len(), 3 | 6 | 9) && f.chars().all(|c| c.is_ascii_digit()) => {
            f.parse::<u32>().ok()? * 10u32.pow(9 - f.len() as u32)
        }
        Some(_) => return None,
    };
    NaiveTime::from_hms_nano_opt(h, m, sec, nanos)
}

enum Zone {
    Utc,
    Named(chrono_tz::Tz),
    Fixed(chrono::FixedOffset),
}

impl Zone {
    fn resolve(&self, local: NaiveDateTime) -> Option<chrono::DateTime<chrono::Utc>> {
        match self {
            Zone::Utc => Some(chrono::Utc.from_utc_datetime(&local)),
            Zone::Named(tz) => tz
                .from_local_datetime(&local)
                .earliest()
                .map(|d| d.with_timezone(&chrono::Utc)),
            Zone::Fixed(o) => o
                .from_local_datetime(&local)
                .earliest()
                .map(|d| d.with_timezone(&chrono::Utc)),
        }
    }
}

trait SplitStr {
    fn split_str<'a>(&'a self, sep: &'a [u8]) -> Vec<&'a [u8]>;
}

impl SplitStr for [u8] {
    fn split_str<'a>(&'a self, sep: &'a [u8]) -> Vec<&'a [u8]> {
        let mut out = Vec::new();
        let mut start = 0;
        for i in memchr::memmem::find_iter(self, sep) {
            out.push(&self[start..i]);
            start = i + sep.len();
        }
        out.push(&self[start..]);
        out
    }
}

#[cfg(test)]
mod tests;
