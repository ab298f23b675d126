//! Error statistics behind the HTTP API: the `error_stats` filter records what flows
//! through it here, the API reads it back. One store per process, like the metrics
//! registry, so the filter (built from a pipeline config) and the API (started by the
//! binary) meet without either knowing the other.
//!
//! The store is snapshotted to `--path.data` (see [`Store::save`]) and reloaded at start,
//! so a restart does not forget the retained window.

pub mod metrics;
pub mod node;
pub mod query;
pub mod store;
pub mod topk;

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard};
use store::{Inner, Limits, Observation, Row, Sizes};
use topk::SpaceSaving;

/// The process-wide error statistics.
pub struct Store {
    inner: Mutex<Inner>,
    /// Something was recorded since the last snapshot.
    dirty: AtomicBool,
}

static STORE: LazyLock<Store> = LazyLock::new(|| Store::new(Limits::default()));

/// The process-wide store.
pub fn global() -> &'static Store {
    &STORE
}

/// The current Unix minute.
pub fn now_minute() -> i64 {
    chrono::Utc::now().timestamp().div_euclid(60)
}

/// Why a snapshot could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("cannot write error statistics snapshot {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read error statistics snapshot {path}: {message}")]
    Read { path: PathBuf, message: String },
}

/// The snapshot file under `--path.data`.
pub fn snapshot_path(data_dir: &Path) -> PathBuf {
    data_dir.join("error_stats").join("snapshot.json")
}

/// What a snapshot file holds: names in place of indices, so it reads back whatever
/// order services are registered in next time.
#[derive(Serialize, Deserialize)]
struct Snapshot {
    version: u32,
    services: Vec<Box<str>>,
    patterns: Vec<Box<str>>,
    minutes: Vec<(i64, Vec<Row>)>,
    hours: Vec<(i64, Vec<(u32, SpaceSaving)>)>,
}

impl Store {
    pub fn new(limits: Limits) -> Store {
        Store {
            inner: Mutex::new(Inner::new(limits)),
            dirty: AtomicBool::new(false),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves counts at worst one event short.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Raises the limits to at least `limits` (several filters may ask; the largest wins).
    pub fn configure(&self, limits: Limits) {
        let mut inner = self.lock();
        let l = &mut inner.limits;
        l.retention_minutes = l.retention_minutes.max(limits.retention_minutes);
        l.max_services = l.max_services.max(limits.max_services);
        l.top_messages = l.top_messages.max(limits.top_messages);
    }

    pub fn limits(&self) -> Limits {
        self.lock().limits
    }

    /// The index of pattern `name`, for [`Observation::error`].
    pub fn pattern(&self, name: &str) -> u32 {
        self.lock().pattern(name)
    }

    /// Records a batch of observations under one lock.
    pub fn record_all<'a>(&self, observations: impl IntoIterator<Item = Observation<'a>>) {
        let now = now_minute();
        let mut inner = self.lock();
        let mut any = false;
        for obs in observations {
            inner.record(&obs, now);
            any = true;
        }
        if any {
            self.dirty.store(true, Ordering::Relaxed);
        }
    }

    /// Records one observation with an explicit "now" (tests).
    pub fn record_at(&self, obs: &Observation, now_minute: i64) {
        self.lock().record(obs, now_minute);
        self.dirty.store(true, Ordering::Relaxed);
    }

    pub fn sizes(&self) -> Sizes {
        self.lock().sizes()
    }

    pub fn summary(
        &self,
        window: query::Window,
        service: Option<&str>,
        top: usize,
    ) -> query::Summary {
        let inner = self.lock();
        // An unknown service has no errors: an id no row carries.
        let id = service.map(|name| inner.service_id(name).unwrap_or(u32::MAX));
        inner.summary(window, id, top)
    }

    pub fn health(&self, window: query::Window) -> query::Health {
        self.lock().health(window)
    }

    pub fn trends(&self, window: query::Window, bucket_minutes: i64) -> query::Trends {
        self.lock().trends(window, bucket_minutes.max(1))
    }

    /// Whether anything was recorded since the last save.
    pub fn is_dirty(&self) -> bool {
        self.dirty.load(Ordering::Relaxed)
    }

    /// Writes the store to `path` (atomically: a temporary file renamed over it).
    pub fn save(&self, path: &Path) -> Result<(), SnapshotError> {
        let json = {
            let inner = self.lock();
            let snapshot = Snapshot {
                version: 1,
                services: inner.services.clone(),
                patterns: inner.patterns.clone(),
                minutes: inner.minutes.iter().map(|(m, r)| (*m, r.clone())).collect(),
                hours: inner.hours.iter().map(|(h, t)| (*h, t.clone())).collect(),
            };
            self.dirty.store(false, Ordering::Relaxed);
            serde_json::to_vec(&snapshot).unwrap_or_default()
        };
        let write = |p: &Path| -> std::io::Result<()> {
            if let Some(dir) = p.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = p.with_extension("json.tmp");
            std::fs::write(&tmp, &json)?;
            std::fs::rename(&tmp, p)
        };
        write(path).map_err(|source| {
            self.dirty.store(true, Ordering::Relaxed);
            SnapshotError::Write {
                path: path.to_path_buf(),
                source,
            }
        })
    }

    /// Adds a snapshot's counts to the store. A missing file is not an error (first
    /// start); a damaged one is, and the store is left as it was.
    pub fn load(&self, path: &Path) -> Result<bool, SnapshotError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => {
                return Err(SnapshotError::Read {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                })
            }
        };
        let snapshot: Snapshot =
            serde_json::from_slice(&bytes).map_err(|e| SnapshotError::Read {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        let now = now_minute();
        let mut inner = self.lock();
        // Old indices → this store's indices.
        let services: Vec<u32> = snapshot.services.iter().map(|s| inner.service(s)).collect();
        let patterns: Vec<u32> = snapshot.patterns.iter().map(|p| inner.pattern(p)).collect();
        let first_kept = now - inner.limits.retention_minutes + 1;
        for (minute, rows) in snapshot.minutes {
            if minute < first_kept || minute > now {
                continue;
            }
            for row in rows {
                let Some(&service) = services.get(row.service as usize) else {
                    continue;
                };
                let mut counts = vec![0u64; store::LEVELS];
                for (i, c) in row.counts.iter().enumerate() {
                    let index = if i < store::LEVELS {
                        i
                    } else {
                        let p = patterns.get(i - store::LEVELS).copied().unwrap_or(0);
                        store::LEVELS + p as usize
                    };
                    if counts.len() <= index {
                        counts.resize(index + 1, 0);
                    }
                    counts[index] += c;
                }
                inner.merge_row(minute, Row { service, counts });
            }
        }
        for (hour, tables) in snapshot.hours {
            if hour < first_kept.div_euclid(60) || hour > now.div_euclid(60) {
                continue;
            }
            for (service, table) in tables {
                if let Some(&service) = services.get(service as usize) {
                    inner.merge_top(hour, service, &table);
                }
            }
        }
        Ok(true)
    }
}

impl Inner {
    fn merge_row(&mut self, minute: i64, row: Row) {
        let rows = self.minutes.entry(minute).or_default();
        match rows.iter_mut().find(|r| r.service == row.service) {
            Some(existing) => {
                if existing.counts.len() < row.counts.len() {
                    existing.counts.resize(row.counts.len(), 0);
                }
                for (a, c) in existing.counts.iter_mut().zip(&row.counts) {
                    *a += c;
                }
            }
            None => rows.push(row),
        }
    }

    fn merge_top(&mut self, hour: i64, service: u32, table: &SpaceSaving) {
        let capacity = self.limits.top_messages;
        let tops = self.hours.entry(hour).or_default();
        let top = match tops.iter().position(|(s, _)| *s == service) {
            Some(i) => &mut tops[i].1,
            None => {
                tops.push((service, SpaceSaving::new(capacity)));
                let last = tops.len() - 1;
                &mut tops[last].1
            }
        };
        for e in table.entries() {
            top.add(&e.message, e.count);
        }
    }
}

#[cfg(test)]
mod tests;
