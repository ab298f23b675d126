//! `ecs_compatibility`: which field names a plugin writes. Logstash 8 runs pipelines with
//! `pipeline.ecs_compatibility: v8`, so plugins default to the Elastic Common Schema
//! names; `disabled` gives the legacy (Logstash 7) names.

use crate::config::Error;
use crate::plugin::Options;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ecs {
    Disabled,
    V1,
    V8,
}

impl Ecs {
    /// Logstash 8's default for every pipeline.
    pub const DEFAULT: Ecs = Ecs::V8;

    /// Takes `ecs_compatibility` (`disabled`, `v1`, `v8`; default `v8`).
    pub fn from_options(opts: &mut Options) -> Result<Ecs, Error> {
        let pos = opts.value_pos("ecs_compatibility");
        match opts.string("ecs_compatibility")?.as_deref() {
            None => Ok(Ecs::DEFAULT),
            Some("disabled") => Ok(Ecs::Disabled),
            Some("v1") => Ok(Ecs::V1),
            Some("v8") => Ok(Ecs::V8),
            Some(other) => Err(opts.option_error(
                "ecs_compatibility",
                &pos,
                format!("unknown value `{other}` (disabled, v1, v8)"),
            )),
        }
    }

    pub fn enabled(self) -> bool {
        self != Ecs::Disabled
    }
}
