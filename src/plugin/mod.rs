//! What plugins are built from: their typed [`Options`], the [`PluginContext`] they are
//! built in, and the [`Registry`] shape that each plugin kind's table of constructors
//! takes. This module sits below the plugins (they import it, never the reverse) and
//! above `config/` and `event/`.

pub mod bus;
mod context;
pub mod ecs;
mod options;
mod registry;
pub mod secret;

pub use bus::PipelineBus;
pub use context::PluginContext;
pub use options::{CodecSpec, Options, Spanned, StringListMap};
pub use registry::{Constructor, Registry};
pub use secret::{redact_url, Secret};

/// The error for a `kafka` plugin in a build without the `kafka` feature.
#[cfg(not(feature = "kafka"))]
pub fn without_kafka(opts: &Options) -> crate::config::Error {
    opts.error(format!(
        "the {} {} plugin is not in this build: rebuild Sluice with the default features (`cargo build --release`, which needs a C compiler and OpenSSL's headers)",
        opts.plugin_name(),
        opts.kind()
    ))
}
