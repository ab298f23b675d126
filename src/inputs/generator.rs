//! `generator` input: emits configured lines, for demos and benchmarks.

use super::{Input, InputContext, InputError};
use crate::batch::{Ack, Batch};
use crate::codecs::Decoder;
use crate::config::Error;
use crate::event::{Event, Timestamp, Value};
use crate::plugin::Options;

pub struct GeneratorInput {
    lines: Vec<String>,
    /// Rounds over `lines`; 0 means forever.
    count: u64,
    decoder: Decoder,
    batch_size: usize,
}

impl GeneratorInput {
    pub fn build(opts: &mut Options) -> Result<GeneratorInput, Error> {
        let message = opts.string_or("message", "Hello world!")?;
        let lines = opts.string_list("lines")?.unwrap_or_else(|| vec![message]);
        let pos = opts.value_pos("count");
        let count = opts.int_or("count", 0)?;
        let count = u64::try_from(count)
            .map_err(|_| opts.option_error("count", &pos, "must not be negative"))?;
        let decoder = Decoder::build(opts.codec()?, "plain")?;
        let batch_size = opts.context().batch_size.max(1);
        Ok(GeneratorInput {
            lines,
            count,
            decoder,
            batch_size,
        })
    }
}

#[async_trait::async_trait]
impl Input for GeneratorInput {
    async fn run(self: Box<Self>, ctx: InputContext) -> Result<(), InputError> {
        let mut sequence: u64 = 0;
        let total = self.count.saturating_mul(self.lines.len() as u64);
        let host = hostname();
        loop {
            if ctx.is_shutting_down() || (self.count > 0 && sequence >= total) {
                return Ok(());
            }
            let now = Timestamp::now();
            let mut events: Vec<Event> = Vec::with_capacity(self.batch_size);
            let mut bytes = 0;
            while events.len() < self.batch_size && (self.count == 0 || sequence < total) {
                let line = &self.lines[(sequence % self.lines.len() as u64) as usize];
                bytes += line.len();
                let before = events.len();
                self.decoder.decode(line.as_bytes(), now, &mut events);
                for e in &mut events[before..] {
                    e.insert_field("sequence", Value::Int(sequence as i64));
                    e.insert_field("host", Value::String(host.clone()));
                }
                sequence += 1;
            }
            if ctx
                .push(Batch::with_bytes(events, Ack::none(), bytes))
                .await
                .is_err()
            {
                return Ok(());
            }
        }
    }
}

/// The machine's host name, for the `host` field inputs add.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_string())
}
