//! `uuid` filter: a random (version 4) UUID in `target`, kept if one is there unless
//! `overwrite` is set.

use super::{EventFilter, Outcome};
use crate::config::Error;
use crate::event::field_ref::FieldRef;
use crate::event::{Event, Value};
use crate::plugin::Options;

pub struct Uuid {
    target: FieldRef,
    overwrite: bool,
}

impl Uuid {
    pub fn build(opts: &mut Options) -> Result<Uuid, Error> {
        let target = opts
            .field_ref("target")?
            .ok_or_else(|| opts.error("uuid filter requires option `target`"))?;
        Ok(Uuid {
            target,
            overwrite: opts.bool_or("overwrite", false)?,
        })
    }
}

impl EventFilter for Uuid {
    fn apply(&self, event: &mut Event) -> Outcome {
        let present = !matches!(event.get(&self.target), None | Some(Value::Null));
        if self.overwrite || !present {
            event.insert(
                &self.target,
                Value::String(uuid::Uuid::new_v4().to_string()),
            );
        }
        Outcome::Success
    }
}
