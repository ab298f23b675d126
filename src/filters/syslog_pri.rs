//! `syslog_pri` filter: splits a syslog PRI number into facility and severity codes
//! and labels (ECS: `[log][syslog][facility][code]` etc.; legacy: `syslog_facility`).
//! A missing PRI counts as 13 (user-level notice), as in Logstash.

use super::{EventFilter, Outcome};
use crate::config::Error;
use crate::event::field_ref::FieldRef;
use crate::event::ruby_number::ruby_to_i;
use crate::event::{Event, Value};
use crate::plugin::ecs::Ecs;
use crate::plugin::Options;

pub const PARSE_FAILURE: &str = "_syslogpriparsefailure";

const FACILITIES: [&str; 24] = [
    "kernel",
    "user-level",
    "mail",
    "daemon",
    "security/authorization",
    "syslogd",
    "line printer",
    "network news",
    "uucp",
    "clock",
    "security/authorization",
    "ftp",
    "ntp",
    "log audit",
    "log alert",
    "clock",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];

const SEVERITIES: [&str; 8] = [
    "emergency",
    "alert",
    "critical",
    "error",
    "warning",
    "notice",
    "informational",
    "debug",
];

pub struct SyslogPri {
    pri: FieldRef,
    use_labels: bool,
    facility_labels: Vec<String>,
    severity_labels: Vec<String>,
    facility_code: FieldRef,
    severity_code: FieldRef,
    facility_label: FieldRef,
    severity_label: FieldRef,
}

impl SyslogPri {
    pub fn build(opts: &mut Options) -> Result<SyslogPri, Error> {
        let ecs = Ecs::from_options(opts)?;
        let pick =
            |legacy: &str, v1: &str| FieldRef::parse(if ecs.enabled() { v1 } else { legacy });
        let known =
            |r: Result<FieldRef, _>| r.map_err(|e| Error::Empty(format!("built-in field: {e}")));
        let pri = match opts.field_ref("syslog_pri_field_name")? {
            Some(r) => r,
            None => known(pick("syslog_pri", "[log][syslog][priority]"))?,
        };
        Ok(SyslogPri {
            pri,
            use_labels: opts.bool_or("use_labels", true)?,
            facility_labels: opts
                .string_list("facility_labels")?
                .unwrap_or_else(|| FACILITIES.iter().map(|s| s.to_string()).collect()),
            severity_labels: opts
                .string_list("severity_labels")?
                .unwrap_or_else(|| SEVERITIES.iter().map(|s| s.to_string()).collect()),
            facility_code: known(pick(
                "syslog_facility_code",
                "[log][syslog][facility][code]",
            ))?,
            severity_code: known(pick(
                "syslog_severity_code",
                "[log][syslog][severity][code]",
            ))?,
            facility_label: known(pick("syslog_facility", "[log][syslog][facility][name]"))?,
            severity_label: known(pick("syslog_severity", "[log][syslog][severity][name]"))?,
        })
    }
}

impl EventFilter for SyslogPri {
    fn apply(&self, event: &mut Event) -> Outcome {
        let priority = match event.get(&self.pri) {
            None | Some(Value::Null) => 13,
            Some(Value::Array(items)) => items
                .first()
                .map(|v| match v {
                    Value::Int(i) => *i,
                    other => ruby_to_i(&other.to_display_string()),
                })
                .unwrap_or(0),
            Some(Value::Int(i)) => *i,
            Some(other) => ruby_to_i(&other.to_display_string()),
        };
        let severity = priority & 7;
        let facility = priority >> 3;
        event.insert(&self.severity_code, Value::Int(severity));
        event.insert(&self.facility_code, Value::Int(facility));
        if self.use_labels {
            match usize::try_from(facility)
                .ok()
                .and_then(|f| self.facility_labels.get(f))
            {
                None => {
                    tracing::debug!(facility, "syslog_pri: invalid facility code");
                    event.add_tag(PARSE_FAILURE);
                }
                Some(label) => {
                    event.insert(&self.facility_label, Value::from(label.as_str()));
                    if let Some(label) = usize::try_from(severity)
                        .ok()
                        .and_then(|s| self.severity_labels.get(s))
                    {
                        event.insert(&self.severity_label, Value::from(label.as_str()));
                    }
                }
            }
        }
        Outcome::Success
    }
}
