//! `drop` filter: removes the event (or a `percentage` of events).

use super::{EventFilter, Outcome};
use crate::config::Error;
use crate::event::Event;
use crate::plugin::Options;

pub struct Drop {
    percentage: u32,
}

impl Drop {
    pub fn build(opts: &mut Options) -> Result<Drop, Error> {
        let pos = opts.value_pos("percentage");
        let percentage = opts.int_or("percentage", 100)?;
        if !(0..=100).contains(&percentage) {
            return Err(opts.option_error("percentage", &pos, "must be between 0 and 100"));
        }
        Ok(Drop {
            percentage: percentage as u32,
        })
    }
}

impl EventFilter for Drop {
    fn apply(&self, _event: &mut Event) -> Outcome {
        if self.percentage >= 100 || rand::random::<u32>() % 100 < self.percentage {
            Outcome::Drop
        } else {
            Outcome::Failure
        }
    }
}
