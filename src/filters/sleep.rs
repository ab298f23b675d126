//! `sleep` filter: pauses the worker, as Logstash's sleep filter does. Useful to
//! throttle a pipeline and to see back-pressure at work.

use super::{EventFilter, Outcome};
use crate::config::Error;
use crate::event::Event;
use crate::plugin::Options;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub struct Sleep {
    time: Duration,
    every: u64,
    seen: AtomicU64,
}

impl Sleep {
    pub fn build(opts: &mut Options) -> Result<Sleep, Error> {
        let pos = opts.value_pos("time");
        let secs = opts
            .float("time")?
            .ok_or_else(|| opts.error("sleep filter requires option `time` (seconds)"))?;
        if !(0.0..=3600.0).contains(&secs) {
            return Err(opts.option_error("time", &pos, "must be between 0 and 3600 seconds"));
        }
        let every = opts.int_or("every", 1)?.max(1) as u64;
        Ok(Sleep {
            time: Duration::from_secs_f64(secs),
            every,
            seen: AtomicU64::new(0),
        })
    }
}

impl EventFilter for Sleep {
    fn apply(&self, _event: &mut Event) -> Outcome {
        let n = self.seen.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_multiple_of(self.every) {
            std::thread::sleep(self.time);
        }
        Outcome::Success
    }
}
