//! The `ruby` filter: Logstash's `ruby` filter on an embedded CRuby (the reference Ruby
//! interpreter), with its options (`code`, `init`, `path`, `script_params`,
//! `tag_on_exception`, `tag_with_exception_message`) and the Event API scripts use.
//!
//! Ruby runs on one thread of its own (see [`vm`]); a worker hands it whole batches.
//! Sluice adds one option, `timeout`: the seconds one event may spend in the script
//! before the script is interrupted and the event tagged (Logstash has no such bound).
//!
//! Without the `ruby` cargo feature the filter is not in the build, and a `ruby {}`
//! block is refused at load with how to get it.

#[cfg(feature = "ruby")]
mod api;
#[cfg(feature = "ruby")]
mod vm;

use super::Filter;
use crate::config::Error;
use crate::plugin::Options;

/// Builds a `ruby` filter (common options included).
#[cfg(feature = "ruby")]
pub fn build(opts: &mut Options) -> Result<Box<dyn Filter>, Error> {
    Ok(Box::new(enabled::RubyFilter::build(opts)?))
}

/// The error for `ruby {}` in a build without the `ruby` feature.
#[cfg(not(feature = "ruby"))]
pub fn build(opts: &mut Options) -> Result<Box<dyn Filter>, Error> {
    Err(opts.error(
        "the ruby filter plugin is not in this build: rebuild Sluice with the default features (`cargo build --release`, which needs Ruby's headers and libclang: Debian `apt-get install ruby-dev libclang-dev`)",
    ))
}

#[cfg(feature = "ruby")]
mod enabled {
    use super::api::{self, RbEvent};
    use super::vm;
    use crate::config::ast::{self, ValueKind};
    use crate::config::Error;
    use crate::event::{map_with_capacity, Event, Value};
    use crate::filters::common::CommonOptions;
    use crate::filters::Filter;
    use crate::plugin::Options;
    use magnus::prelude::*;
    use magnus::{Error as RbError, RArray, RModule, Ruby, TryConvert, Value as RValue};
    use std::sync::atomic::{AtomicU64, Ordering};

    /// Default of `timeout`: seconds one event may spend in the script.
    const DEFAULT_TIMEOUT_SECS: f64 = 5.0;

    static NEXT_ID: AtomicU64 = AtomicU64::new(1);

    /// One `ruby` filter; its Ruby side lives in the VM under `id`.
    pub struct RubyFilter {
        id: u64,
        common: CommonOptions,
        tag_on_exception: String,
    }

    /// What the VM needs to set a filter up.
    struct Spec {
        code: Option<String>,
        init: Option<String>,
        path: Option<String>,
        script: Option<String>,
        params: Value,
        tag_on_exception: String,
        tag_with_exception_message: bool,
        timeout: Option<f64>,
        label: String,
    }

    /// A batch's events after the script, each with whether `filter_matched` ran; or,
    /// when the runtime itself failed, the events back with the reason.
    type BatchOutcome = Result<Vec<(Event, bool)>, (Vec<Event>, String)>;

    impl RubyFilter {
        pub fn build(opts: &mut Options) -> Result<RubyFilter, Error> {
            let common = CommonOptions::from_options(opts)?;
            let code = opts.string("code")?;
            let init = opts.string("init")?;
            let path_pos = opts.value_pos("path");
            let path = opts.string("path")?;
            let params_pos = opts.value_pos("script_params");
            let params = match opts.take("script_params")? {
                None => Value::Map(map_with_capacity(0)),
                Some(v) => match &v.kind {
                    ValueKind::Hash(_) => param_value(opts, &v)?,
                    _ => {
                        return Err(opts.option_error(
                            "script_params",
                            &params_pos,
                            "expected a hash",
                        ))
                    }
                },
            };
            let tag_on_exception = opts.string_or("tag_on_exception", "_rubyexception")?;
            let tag_with_exception_message = opts.bool_or("tag_with_exception_message", false)?;
            let timeout_pos = opts.value_pos("timeout");
            let timeout = opts.float("timeout")?.unwrap_or(DEFAULT_TIMEOUT_SECS);
            if !(0.0..=86_400.0).contains(&timeout) {
                return Err(opts.option_error(
                    "timeout",
                    &timeout_pos,
                    "must be between 0 (no limit) and 86400 seconds",
                ));
            }
            let script = match (&code, &path) {
                (Some(_), None) => None,
                (None, Some(p)) => Some(std::fs::read_to_string(p).map_err(|e| {
                    opts.option_error("path", &path_pos, format!("cannot read script `{p}`: {e}"))
                })?),
                _ => {
                    return Err(opts.error(
                        "ruby filter: use either an inline script with the `code` option or a script file with `path`",
                    ))
                }
            };
            if path.is_some() && init.is_some() {
                tracing::warn!(at = %opts.pos(), "ruby filter: `init` is ignored with `path` (the script's `register` runs instead)");
            }
            let spec = Spec {
                code,
                init,
                path,
                script,
                params,
                tag_on_exception: tag_on_exception.clone(),
                tag_with_exception_message,
                timeout: (timeout > 0.0).then_some(timeout),
                label: opts.pos().to_string(),
            };
            let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
            vm::run(move |ruby| register(ruby, id, spec))
                .map_err(|e| opts.error(format!("ruby filter: {e}")))?
                .map_err(|e| opts.error(format!("ruby filter: {e}")))?;
            Ok(RubyFilter {
                id,
                common,
                tag_on_exception,
            })
        }
    }

    impl Filter for RubyFilter {
        fn filter(&self, events: &mut Vec<Event>) {
            if events.is_empty() {
                return;
            }
            let batch = std::mem::take(events);
            let count = batch.len();
            let id = self.id;
            // The worker's span, so the script's log lines name the pipeline and plugin.
            let span = tracing::Span::current();
            let outcome = vm::run(move |ruby| {
                let _in_span = span.enter();
                run_batch(ruby, id, batch)
            });
            match outcome {
                Ok(Ok(out)) => {
                    events.reserve(out.len());
                    for (mut e, matched) in out {
                        if matched && !self.common.is_empty() {
                            self.common.apply(&mut e);
                        }
                        events.push(e);
                    }
                }
                Ok(Err((back, reason))) => {
                    tracing::error!(reason = %reason, events = back.len(), "ruby filter failed on a batch: its events pass on tagged");
                    *events = back;
                    for e in events.iter_mut() {
                        e.add_tag(&self.tag_on_exception);
                    }
                }
                Err(e) => {
                    // The batch went to the VM with the job and did not come back (the
                    // job panicked there, or the VM thread is gone). Unwinding hands the
                    // failure to the worker, which counts the batch as failed and does
                    // not acknowledge it, so its input does not confirm it to the client
                    // (which sends it again) instead of the events vanishing here.
                    tracing::error!(error = %e, events = count, "ruby filter failed a batch: the ruby vm did not answer");
                    std::panic::resume_unwind(Box::new("the ruby vm did not answer for a batch"));
                }
            }
        }
    }

    impl Drop for RubyFilter {
        fn drop(&mut self) {
            let id = self.id;
            vm::spawn(move |ruby| {
                let _ = sluice(ruby).and_then(|m| m.funcall::<_, _, RValue>("unregister", (id,)));
            });
        }
    }

    fn sluice(ruby: &Ruby) -> Result<RModule, RbError> {
        ruby.define_module("Sluice")
    }

    fn register(ruby: &Ruby, id: u64, spec: Spec) -> Result<(), String> {
        let build = || -> Result<(), RbError> {
            let opts = ruby.hash_new();
            opts.aset("code", spec.code)?;
            opts.aset("init", spec.init)?;
            opts.aset("path", spec.path)?;
            opts.aset("script", spec.script)?;
            opts.aset("script_params", api::value_to_ruby(ruby, &spec.params)?)?;
            opts.aset("tag_on_exception", spec.tag_on_exception)?;
            opts.aset(
                "tag_with_exception_message",
                spec.tag_with_exception_message,
            )?;
            opts.aset("timeout", spec.timeout)?;
            opts.aset("label", spec.label)?;
            sluice(ruby)?.funcall::<_, _, RValue>("register", (id, opts))?;
            Ok(())
        };
        build().map_err(|e| describe(&e))
    }

    /// An exception as `Class: message`.
    fn describe(e: &RbError) -> String {
        match e.value() {
            Some(v) if e.is_kind_of(magnus::Ruby::get_with(v).exception_exception()) => {
                format!("{}: {e}", v.class().inspect())
            }
            _ => e.to_string(),
        }
    }

    fn run_batch(ruby: &Ruby, id: u64, events: Vec<Event>) -> BatchOutcome {
        let input = ruby.ary_new_capa(events.len());
        let mut pending = events.into_iter();
        for e in pending.by_ref() {
            if input.push(ruby.obj_wrap(RbEvent::new(e))).is_err() {
                break;
            }
        }
        let leftover: Vec<Event> = pending.collect();
        let called = sluice(ruby).and_then(|m| m.funcall::<_, _, RArray>("run_batch", (id, input)));
        match called {
            Ok(out) if leftover.is_empty() => {
                let mut result = Vec::with_capacity(out.len());
                for v in out.into_iter() {
                    if let Some(pair) = wrapper(v).and_then(RbEvent::take) {
                        result.push(pair);
                    }
                }
                // What the script did not pass on (cancelled) is dropped now, not when
                // Ruby's collector gets to the wrapper.
                for v in input.into_iter() {
                    if let Some(w) = wrapper(v) {
                        w.release();
                    }
                }
                Ok(result)
            }
            other => {
                let reason = match other {
                    Err(e) => describe(&e),
                    Ok(_) => "could not hand the batch to ruby".to_string(),
                };
                let mut back: Vec<Event> = input
                    .into_iter()
                    .filter_map(|v| wrapper(v).and_then(RbEvent::take).map(|(e, _)| e))
                    .collect();
                back.extend(leftover);
                Err((back, reason))
            }
        }
    }

    fn wrapper(v: RValue) -> Option<&'static RbEvent> {
        <&RbEvent>::try_convert(v).ok()
    }

    /// A `script_params` value as the Ruby object Logstash would give the script:
    /// numbers as numbers, everything else as written.
    fn param_value(opts: &Options, v: &ast::Value) -> Result<Value, Error> {
        Ok(match &v.kind {
            ValueKind::Number(n) => match n.parse::<i64>() {
                Ok(i) => Value::Int(i),
                Err(_) => n
                    .parse::<f64>()
                    .map(Value::Float)
                    .unwrap_or_else(|_| Value::String(n.clone())),
            },
            ValueKind::String(_) | ValueKind::Bareword(_) => {
                Value::String(opts.scalar_text("script_params", v)?)
            }
            ValueKind::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|i| param_value(opts, i))
                    .collect::<Result<_, _>>()?,
            ),
            ValueKind::Hash(entries) => {
                let mut m = map_with_capacity(entries.len());
                for entry in entries {
                    m.insert(entry.key.clone(), param_value(opts, &entry.value)?);
                }
                Value::Map(m)
            }
            ValueKind::Plugin(p) => {
                return Err(opts.option_error(
                    "script_params",
                    &v.pos,
                    format!("a plugin (`{}`) is not a parameter value", p.name),
                ))
            }
        })
    }
}

#[cfg(all(test, not(feature = "ruby")))]
mod tests {
    use crate::plugin::Options;

    #[test]
    fn without_the_feature_ruby_is_refused_at_load_with_how_to_get_it() {
        let mut o = Options::from_text("ruby", "filter", r#"code => "1""#)
            .unwrap_or_else(|e| panic!("{e}"));
        let err = match super::build(&mut o) {
            Ok(_) => panic!("ruby {{}} loaded without the ruby feature"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("not in this build"), "{err}");
        assert!(err.contains("ruby-dev libclang-dev"), "{err}");
        assert!(err.contains("options:1:"), "{err}");
    }
}
