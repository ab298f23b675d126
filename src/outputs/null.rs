//! `null` output: accepts and discards everything (for benchmarks and tests).

use super::{Outcomes, Output, OutputError};
use crate::config::Error;
use crate::event::Event;
use crate::plugin::Options;

pub struct NullOutput;

impl NullOutput {
    pub fn build(_opts: &mut Options) -> Result<NullOutput, Error> {
        Ok(NullOutput)
    }
}

#[async_trait::async_trait]
impl Output for NullOutput {
    async fn send(&self, _events: &[&Event]) -> Result<Outcomes, OutputError> {
        Ok(Outcomes::Delivered)
    }
}
