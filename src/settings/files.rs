//! The settings directory (`--path.settings`): `logstash.yml` (settings of the whole
//! run) and `pipelines.yml` (one entry per pipeline), read the way Logstash reads them.
//!
//! Both take Logstash's dotted keys, flat (`pipeline.workers: 2`) or nested
//! (`pipeline: { workers: 2 }`). A pipelines.yml entry starts from the run's settings
//! (defaults, then logstash.yml, then command-line flags) and overrides what it names.
//! Logstash settings Sluice does not implement are accepted with a warning in
//! logstash.yml; in pipelines.yml an unknown key is an error, as in Logstash.

use super::{parse_bytes, Ordered, QueueType, Settings};
use crate::config::Source;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why the settings directory could not be used; every one names its file.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// Logstash settings that are accepted and ignored, with why.
const IGNORED: &[(&str, &str)] = &[
    (
        "config.reload.automatic",
        "Sluice does not reload configurations",
    ),
    (
        "config.reload.interval",
        "Sluice does not reload configurations",
    ),
    ("config.debug", "use --log.level debug"),
    (
        "dead_letter_queue.enable",
        "Sluice's outputs always dead-letter their rejects",
    ),
    (
        "dead_letter_queue.flush_interval",
        "the dead letter queue syncs every write",
    ),
    (
        "pipeline.ecs_compatibility",
        "set ecs_compatibility on each plugin",
    ),
    ("pipeline.unsafe_shutdown", "see --shutdown.timeout"),
    (
        "pipeline.plugin_classloaders",
        "Sluice has no plugin class loaders",
    ),
    (
        "pipeline.separate_logs",
        "every log line names its pipeline_id",
    ),
    ("pipeline.system", "Sluice has no system pipelines"),
    (
        "queue.drain",
        "Sluice drains the queue of a pipeline that stops",
    ),
    (
        "queue.checkpoint.acks",
        "the persisted queue checkpoints by writes and interval",
    ),
    (
        "queue.checkpoint.retry",
        "the persisted queue checkpoints by writes and interval",
    ),
    ("node.name", "Sluice has no node name"),
    ("path.logs", "Sluice logs to stderr"),
    ("path.plugins", "Sluice's plugins are built in"),
    ("log.format", "use --log.format"),
    ("log.level", "use --log.level"),
    ("http.host", "use --api.http.host"),
    ("http.port", "use --api.http.port"),
    ("api.http.host", "use --api.http.host"),
    ("api.http.port", "use --api.http.port"),
    ("api.enabled", "use --api.enabled"),
    ("api.environment", "Sluice has no API environment"),
    (
        "xpack.monitoring.enabled",
        "Sluice exports Prometheus metrics at /metrics",
    ),
    (
        "monitoring.enabled",
        "Sluice exports Prometheus metrics at /metrics",
    ),
];

/// Keys a pipelines.yml entry may hold (Logstash's per-pipeline settings).
const PIPELINE_KEYS: &[&str] = &[
    "pipeline.id",
    "path.config",
    "config.string",
    "config.support_escapes",
    "pipeline.workers",
    "pipeline.batch.size",
    "pipeline.batch.delay",
    "pipeline.ordered",
    "queue.type",
    "path.queue",
    "queue.max_bytes",
    "queue.max_events",
    "queue.page_capacity",
    "queue.checkpoint.writes",
    "queue.checkpoint.interval",
    "queue.memory_window",
    "dead_letter_queue.max_bytes",
    "dead_letter_queue.storage_policy",
    "path.dead_letter_queue",
];

/// Where the key comes from, which decides what an unsupported key does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum File {
    LogstashYml,
    PipelinesYml,
}

/// Reads `<dir>/logstash.yml`, if there is one, into `settings`. Called before the
/// command-line flags are applied, so flags win over the file.
pub fn apply_logstash_yml(dir: &Path, settings: &mut Settings) -> Result<(), SettingsError> {
    let path = dir.join("logstash.yml");
    if !path.exists() {
        return Ok(());
    }
    let text = read(&path)?;
    let invalid = |message: String| SettingsError::Invalid {
        path: path.clone(),
        message,
    };
    let value: serde_yaml::Value =
        serde_yaml::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    let keys = match value {
        serde_yaml::Value::Null => BTreeMap::new(),
        serde_yaml::Value::Mapping(_) => flatten(&value).map_err(invalid)?,
        _ => return Err(invalid("expected a mapping of settings".into())),
    };
    apply(settings, &keys, File::LogstashYml).map_err(invalid)
}

/// Reads `<dir>/pipelines.yml`: one [`Settings`] per entry, each starting from `base`.
pub fn read_pipelines_yml(dir: &Path, base: &Settings) -> Result<Vec<Settings>, SettingsError> {
    let path = dir.join("pipelines.yml");
    let text = read(&path)?;
    let invalid = |message: String| SettingsError::Invalid {
        path: path.clone(),
        message,
    };
    let value: serde_yaml::Value =
        serde_yaml::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    let entries =
        match value {
            serde_yaml::Value::Sequence(entries) if !entries.is_empty() => entries,
            serde_yaml::Value::Sequence(_) | serde_yaml::Value::Null => return Err(invalid(
                "no pipelines: the file must list at least one pipeline (- pipeline.id: main ...)"
                    .into(),
            )),
            _ => {
                return Err(invalid(
                    "expected a list of pipelines (- pipeline.id: main ...)".into(),
                ))
            }
        };
    let mut pipelines = Vec::with_capacity(entries.len());
    let mut ids = HashSet::new();
    for (n, entry) in entries.iter().enumerate() {
        let keys = match entry {
            serde_yaml::Value::Mapping(_) => flatten(entry),
            _ => Err("expected a mapping of settings".into()),
        }
        .map_err(|m| invalid(format!("pipeline #{}: {m}", n + 1)))?;
        let id = keys
            .get("pipeline.id")
            .cloned()
            .unwrap_or_else(|| super::DEFAULT_PIPELINE_ID.to_string());
        let named = |m: String| invalid(format!("pipeline #{} (`{id}`): {m}", n + 1));
        for key in keys.keys() {
            if !PIPELINE_KEYS.contains(&key.as_str()) && !IGNORED.iter().any(|(k, _)| k == key) {
                return Err(named(format!("unknown setting `{key}`")));
            }
        }
        let mut settings = base.clone();
        // Each pipeline reads its own configuration: the run's -f/-e does not apply.
        settings.source = Source::Text(String::new());
        apply(&mut settings, &keys, File::PipelinesYml).map_err(named)?;
        if id.is_empty() {
            return Err(named("pipeline.id is empty".into()));
        }
        settings.pipeline_id = id.clone();
        match (keys.get("path.config"), keys.get("config.string")) {
            (None, None) => {
                return Err(named(
                    "no configuration: give path.config or config.string".into(),
                ))
            }
            (Some(_), Some(_)) => {
                return Err(named(
                    "give either path.config or config.string, not both".into(),
                ))
            }
            _ => {}
        }
        // Logstash keeps each pipeline's persisted queue in `<path.queue>/<pipeline.id>`.
        let queue_root = settings
            .queue_path
            .clone()
            .unwrap_or_else(|| settings.data_dir.join("queue"));
        settings.queue_path = Some(queue_root.join(&id));
        settings.validate().map_err(named)?;
        if !ids.insert(id.clone()) {
            return Err(invalid(format!(
                "pipeline #{}: pipeline.id `{id}` is used by an earlier pipeline; ids must be unique",
                n + 1
            )));
        }
        pipelines.push(settings);
    }
    Ok(pipelines)
}

fn read(path: &Path) -> Result<String, SettingsError> {
    std::fs::read_to_string(path).map_err(|source| SettingsError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Flattens nested mappings into dotted keys, and scalars into their text.
fn flatten(value: &serde_yaml::Value) -> Result<BTreeMap<String, String>, String> {
    fn walk(
        prefix: &str,
        value: &serde_yaml::Value,
        out: &mut BTreeMap<String, String>,
    ) -> Result<(), String> {
        use serde_yaml::Value;
        match value {
            Value::Mapping(map) => {
                for (k, v) in map {
                    let k = scalar(k).ok_or_else(|| "a key is not text".to_string())?;
                    let key = if prefix.is_empty() {
                        k
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, v, out)?;
                }
                Ok(())
            }
            Value::Tagged(t) => walk(prefix, &t.value, out),
            other => {
                let text = scalar(other)
                    .ok_or_else(|| format!("setting `{prefix}`: expected a single value"))?;
                if out.insert(prefix.to_string(), text).is_some() {
                    return Err(format!("setting `{prefix}` is given more than once"));
                }
                Ok(())
            }
        }
    }
    let mut out = BTreeMap::new();
    walk("", value, &mut out)?;
    Ok(out)
}

fn scalar(value: &serde_yaml::Value) -> Option<String> {
    use serde_yaml::Value;
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some(String::new()),
        _ => None,
    }
}

/// Applies `keys` to `settings`: `queue.type` before the sizes that depend on it.
fn apply(
    settings: &mut Settings,
    keys: &BTreeMap<String, String>,
    file: File,
) -> Result<(), String> {
    if let Some(t) = keys.get("queue.type") {
        if let Err(SetError::Bad(message)) = set(settings, "queue.type", t) {
            return Err(message);
        }
    }
    for (key, value) in keys {
        if key == "queue.type" || key == "pipeline.id" {
            continue;
        }
        if let Some((_, why)) = IGNORED.iter().find(|(k, _)| k == key) {
            tracing::warn!(setting = %key, reason = why, "setting ignored");
            continue;
        }
        match set(settings, key, value) {
            Ok(()) => {}
            Err(SetError::Unknown) if file == File::LogstashYml => {
                tracing::warn!(setting = %key, "unknown setting in logstash.yml ignored");
            }
            Err(SetError::Unknown) => return Err(format!("unknown setting `{key}`")),
            Err(SetError::Bad(message)) => return Err(message),
        }
    }
    Ok(())
}

/// Sets one setting from its text.
fn set(s: &mut Settings, key: &str, value: &str) -> Result<(), SetError> {
    let v = value.trim();
    let count = |min: usize| -> Result<usize, SetError> {
        v.parse::<usize>()
            .ok()
            .filter(|n| *n >= min)
            .ok_or_else(|| {
                SetError::Bad(format!(
                    "`{key}` must be an integer of at least {min}, not `{v}`"
                ))
            })
    };
    let bytes = || parse_bytes(v).map_err(|e| SetError::Bad(format!("`{key}`: {e}")));
    match key {
        "path.config" => s.source = Source::Path(v.to_string()),
        "config.string" => s.source = Source::Text(value.to_string()),
        "config.support_escapes" => s.support_escapes = boolean(key, v)?,
        "config.test_and_exit" => s.test_and_exit = boolean(key, v)?,
        "pipeline.workers" => s.workers = count(1)?,
        "pipeline.batch.size" => s.batch_size = count(1)?,
        "pipeline.batch.delay" => s.batch_delay = Duration::from_millis(count(0)? as u64),
        "pipeline.ordered" => {
            s.ordered = Ordered::parse(v).ok_or_else(|| {
                SetError::Bad(format!(
                    "`pipeline.ordered` must be auto, true or false, not `{v}`"
                ))
            })?
        }
        "queue.type" => {
            s.queue_type = QueueType::parse(v).ok_or_else(|| {
                SetError::Bad(format!("`queue.type` must be memory or persisted, not `{v}`"))
            })?
        }
        "path.queue" => s.queue_path = Some(PathBuf::from(v)),
        "path.data" => s.data_dir = PathBuf::from(v),
        "queue.max_bytes" => match s.queue_type {
            QueueType::Memory => s.queue_max_bytes = bytes()?,
            QueueType::Persisted => s.queue_disk_max_bytes = bytes()? as u64,
        },
        "queue.max_events" => {
            // Logstash's 0 means unlimited; Sluice's queue always has a bound.
            s.queue_max_events = match count(0)? {
                0 => s.queue_max_events,
                n => n,
            }
        }
        "queue.page_capacity" => s.queue_page_capacity = bytes()? as u64,
        "queue.checkpoint.writes" => s.queue_checkpoint_writes = count(1)?,
        "queue.checkpoint.interval" => {
            s.queue_checkpoint_interval = Duration::from_millis(count(1)? as u64)
        }
        "queue.memory_window" => s.queue_memory_window = Some(bytes()? as u64),
        "dead_letter_queue.max_bytes" => s.dlq_max_bytes = bytes()? as u64,
        "dead_letter_queue.storage_policy" => {
            s.dlq_storage_policy =
                crate::queue::dlq::StoragePolicy::parse(v).ok_or_else(|| {
                    SetError::Bad(format!(
                        "`dead_letter_queue.storage_policy` must be drop_newer or drop_older, not `{v}`"
                    ))
                })?
        }
        "path.dead_letter_queue" => {
            return Err(SetError::Bad(
                "`path.dead_letter_queue` is not supported: the dead letter queue is under path.data"
                    .into(),
            ))
        }
        _ => return Err(SetError::Unknown),
    }
    Ok(())
}

enum SetError {
    Unknown,
    Bad(String),
}

fn boolean(key: &str, v: &str) -> Result<bool, SetError> {
    match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(SetError::Bad(format!(
            "`{key}` must be true or false, not `{v}`"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        dir
    }

    fn read(text: &str) -> Result<Vec<Settings>, String> {
        let dir = dir_with(&[("pipelines.yml", text)]);
        read_pipelines_yml(dir.path(), &Settings::default()).map_err(|e| e.to_string())
    }

    #[test]
    fn entries_take_logstash_keys_flat_or_nested() {
        let p = read(
            "- pipeline.id: intake\n  path.config: conf.d/*.conf\n  pipeline.workers: 3\n  pipeline.batch.size: 500\n  pipeline.batch.delay: 5\n  queue.type: persisted\n  queue.max_bytes: 2gb\n  queue.memory_window: 16mb\n  pipeline.ordered: false\n- pipeline:\n    id: archive\n    workers: 1\n  config.string: \"input { pipeline { address => archive } }\"\n",
        )
        .unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].pipeline_id, "intake");
        assert_eq!(p[0].source, Source::Path("conf.d/*.conf".into()));
        assert_eq!((p[0].workers, p[0].batch_size), (3, 500));
        assert_eq!(p[0].batch_delay, Duration::from_millis(5));
        assert_eq!(p[0].queue_type, QueueType::Persisted);
        assert_eq!(
            p[0].queue_disk_max_bytes,
            2 << 30,
            "queue.type applies first"
        );
        assert_eq!(p[0].queue_memory_window, Some(16 << 20));
        assert_eq!(p[1].queue_memory_window, None);
        assert_eq!(p[0].ordered, Ordered::False);
        assert_eq!(p[0].queue_path, Some(PathBuf::from("data/queue/intake")));
        assert_eq!(p[1].pipeline_id, "archive");
        assert_eq!(p[1].workers, 1);
        assert_eq!(
            p[1].source,
            Source::Text("input { pipeline { address => archive } }".into())
        );
    }

    #[test]
    fn mistakes_are_named_with_the_file() {
        let dup =
            read("- pipeline.id: a\n  config.string: x\n- pipeline.id: a\n  config.string: y\n")
                .unwrap_err();
        assert!(
            dup.contains("pipelines.yml") && dup.contains("`a` is used by an earlier pipeline"),
            "{dup}"
        );
        let missing = read("- pipeline.id: a\n  pipeline.workers: 2\n").unwrap_err();
        assert!(
            missing.contains("pipelines.yml")
                && missing.contains("(`a`)")
                && missing.contains("give path.config or config.string"),
            "{missing}"
        );
        let both = read("- path.config: a.conf\n  config.string: x\n").unwrap_err();
        assert!(both.contains("not both"), "{both}");
        let unknown =
            read("- pipeline.id: a\n  config.string: x\n  pipeline.wokers: 2\n").unwrap_err();
        assert!(
            unknown.contains("unknown setting `pipeline.wokers`"),
            "{unknown}"
        );
        let bad =
            read("- pipeline.id: a\n  config.string: x\n  pipeline.workers: many\n").unwrap_err();
        assert!(bad.contains("pipeline.workers"), "{bad}");
        let ordered = read("- pipeline.id: a\n  config.string: x\n  pipeline.workers: 4\n  pipeline.ordered: true\n")
            .unwrap_err();
        assert!(ordered.contains("single worker"), "{ordered}");
        assert!(read("").unwrap_err().contains("no pipelines"));
        assert!(read("pipeline.id: a\n")
            .unwrap_err()
            .contains("list of pipelines"));
        assert!(read("- [").unwrap_err().contains("pipelines.yml"));
        let dir = tempfile::tempdir().unwrap();
        let absent = read_pipelines_yml(dir.path(), &Settings::default()).unwrap_err();
        assert!(absent.to_string().contains("pipelines.yml"), "{absent}");
    }

    #[test]
    fn logstash_yml_sets_defaults_and_tolerates_what_sluice_lacks() {
        let dir = dir_with(&[(
            "logstash.yml",
            "pipeline:\n  workers: 2\n  batch.size: 250\nqueue.type: persisted\npath.data: /var/lib/sluice\nconfig.reload.automatic: true\nxpack.management.enabled: false\n",
        )]);
        let mut s = Settings::default();
        apply_logstash_yml(dir.path(), &mut s).unwrap();
        assert_eq!((s.workers, s.batch_size), (2, 250));
        assert_eq!(s.queue_type, QueueType::Persisted);
        assert_eq!(s.data_dir, PathBuf::from("/var/lib/sluice"));
        let empty = tempfile::tempdir().unwrap();
        apply_logstash_yml(empty.path(), &mut s).unwrap();
        let bad = dir_with(&[("logstash.yml", "pipeline.workers: 0\n")]);
        let err = apply_logstash_yml(bad.path(), &mut s)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("logstash.yml") && err.contains("at least 1"),
            "{err}"
        );
    }
}
