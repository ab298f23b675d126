//! `stdout` output: prints events, `rubydebug` by default.

use super::{Output, OutputError};
use crate::codecs::Encoder;
use crate::config::options::Options;
use crate::config::Error;
use crate::event::Event;
use tokio::io::AsyncWriteExt;

pub struct StdoutOutput {
    encoder: Encoder,
    out: tokio::sync::Mutex<tokio::io::Stdout>,
}

impl StdoutOutput {
    pub fn build(opts: &mut Options) -> Result<StdoutOutput, Error> {
        Ok(StdoutOutput {
            encoder: Encoder::build(opts.codec()?, "rubydebug")?,
            out: tokio::sync::Mutex::new(tokio::io::stdout()),
        })
    }
}

#[async_trait::async_trait]
impl Output for StdoutOutput {
    async fn send(&self, events: &[&Event]) -> Result<(), OutputError> {
        let mut buf = Vec::with_capacity(events.len() * 256);
        for e in events {
            self.encoder.encode(e, &mut buf);
        }
        let mut out = self.out.lock().await;
        let io = |source: std::io::Error| {
            if source.kind() == std::io::ErrorKind::BrokenPipe {
                OutputError::Closed("stdout was closed by its reader".into())
            } else {
                OutputError::Io {
                    context: "writing to stdout".into(),
                    source,
                }
            }
        };
        out.write_all(&buf).await.map_err(io)?;
        out.flush().await.map_err(io)
    }

    async fn close(&self) -> Result<(), OutputError> {
        self.out
            .lock()
            .await
            .flush()
            .await
            .map_err(|source| OutputError::Io {
                context: "flushing stdout".into(),
                source,
            })
    }
}
