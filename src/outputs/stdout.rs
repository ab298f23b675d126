//! `stdout` output: prints events, `rubydebug` by default.

use super::{Outcomes, Output, OutputError};
use crate::codecs::Encoder;
use crate::config::Error;
use crate::event::Event;
use crate::plugin::Options;
use std::io::Write;

/// Writes go through the standard library's locked stdout on the blocking pool: a
/// plain blocking write that fails cleanly once the reader is gone.
pub struct StdoutOutput {
    encoder: Encoder,
}

impl StdoutOutput {
    pub fn build(opts: &mut Options) -> Result<StdoutOutput, Error> {
        Ok(StdoutOutput {
            encoder: Encoder::build(opts.codec()?, "rubydebug")?,
        })
    }
}

#[async_trait::async_trait]
impl Output for StdoutOutput {
    async fn send(&self, events: &[&Event]) -> Result<Outcomes, OutputError> {
        let mut buf = Vec::with_capacity(events.len() * 256);
        for e in events {
            self.encoder.encode(e, &mut buf);
        }
        let written = tokio::task::spawn_blocking(move || {
            let mut out = std::io::stdout().lock();
            out.write_all(&buf).and_then(|()| out.flush())
        })
        .await
        .map_err(|e| OutputError::Fatal(format!("stdout writer stopped: {e}")))?;
        written.map(|()| Outcomes::Delivered).map_err(|source| {
            if source.kind() == std::io::ErrorKind::BrokenPipe {
                OutputError::Closed("stdout was closed by its reader".into())
            } else {
                OutputError::Io {
                    context: "writing to stdout".into(),
                    source,
                }
            }
        })
    }
}
