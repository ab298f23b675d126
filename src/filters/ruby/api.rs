//! What Ruby scripts see of Sluice: `LogStash::Event` (a thin wrapper that owns one
//! Rust [`Event`] while a script holds it, so `get`/`set` reach the event's fields
//! directly instead of a Ruby copy of the whole event), `LogStash::Timestamp`, the
//! log function behind scripts' loggers, and the conversions between event values and
//! Ruby objects. Everything here runs on the VM thread (see `vm.rs`).

use crate::event::field_ref::{FieldRef, Root};
use crate::event::sprintf::Template;
use crate::event::{new_map, Event, Map, Timestamp, Value};
use magnus::prelude::*;
use magnus::value::ReprValue;
use magnus::{
    function, method, Error, Float, Integer, RArray, RHash, RModule, RString, Ruby, Symbol,
    Value as RValue,
};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// Nesting deeper than this in a value a script stores is refused (a hash that holds
/// itself would otherwise recurse without end).
const MAX_DEPTH: usize = 128;

/// The Ruby source of the rest of the API and of the filter runtime.
const PRELUDE: &str = include_str!("prelude.rb");

/// The Ruby object behind one `LogStash::Event`.
#[magnus::wrap(class = "LogStash::Event", free_immediately, size)]
pub struct RbEvent {
    slot: RefCell<Slot>,
}

/// The event itself, and what the filter runtime notes about it.
struct Slot {
    /// `None` once the event has left the filter (passed on or dropped): a script that
    /// kept the object can no longer reach it.
    event: Option<Event>,
    cancelled: bool,
    /// `filter_matched` ran: the common options (`add_field`, ...) apply.
    matched: bool,
}

impl RbEvent {
    pub fn new(event: Event) -> RbEvent {
        RbEvent {
            slot: RefCell::new(Slot {
                event: Some(event),
                cancelled: false,
                matched: false,
            }),
        }
    }

    /// Takes the event out, with whether the common options apply to it.
    pub fn take(&self) -> Option<(Event, bool)> {
        let mut slot = self.slot.try_borrow_mut().ok()?;
        let matched = slot.matched;
        slot.event.take().map(|e| (e, matched))
    }

    /// Drops the event it holds (one the filter cancelled), keeping memory bounded.
    pub fn release(&self) {
        if let Ok(mut slot) = self.slot.try_borrow_mut() {
            slot.event = None;
        }
    }

    fn read<R>(&self, ruby: &Ruby, f: impl FnOnce(&Event) -> R) -> Result<R, Error> {
        let slot = self
            .slot
            .try_borrow()
            .map_err(|_| runtime_error(ruby, "event is in use"))?;
        match &slot.event {
            Some(e) => Ok(f(e)),
            None => Err(gone(ruby)),
        }
    }

    fn write<R>(&self, ruby: &Ruby, f: impl FnOnce(&mut Event) -> R) -> Result<R, Error> {
        let mut slot = self
            .slot
            .try_borrow_mut()
            .map_err(|_| runtime_error(ruby, "event is in use"))?;
        match &mut slot.event {
            Some(e) => Ok(f(e)),
            None => Err(gone(ruby)),
        }
    }

    fn get(ruby: &Ruby, rb_self: &Self, reference: String) -> Result<RValue, Error> {
        let r = parse_ref(ruby, &reference)?;
        rb_self.read(ruby, |e| match lookup(e, &r) {
            Some(v) => v.to_ruby(ruby),
            None if is_metadata_root(&r) => Ok(ruby.hash_new().as_value()),
            None => Ok(ruby.qnil().as_value()),
        })?
    }

    fn set(ruby: &Ruby, rb_self: &Self, reference: String, value: RValue) -> Result<RValue, Error> {
        let r = parse_ref(ruby, &reference)?;
        let v = from_ruby(ruby, value, 0)?;
        let stored = rb_self.write(ruby, |e| e.insert(&r, v))?;
        if !stored {
            return Err(Error::new(
                ruby.exception_arg_error(),
                format!("cannot set `{reference}`: a field on its path is not a hash"),
            ));
        }
        Ok(value)
    }

    fn remove(ruby: &Ruby, rb_self: &Self, reference: String) -> Result<RValue, Error> {
        let r = parse_ref(ruby, &reference)?;
        match rb_self.write(ruby, |e| e.remove(&r))? {
            Some(v) => value_to_ruby(ruby, &v),
            None => Ok(ruby.qnil().as_value()),
        }
    }

    fn include(ruby: &Ruby, rb_self: &Self, reference: String) -> Result<bool, Error> {
        let r = parse_ref(ruby, &reference)?;
        rb_self.read(ruby, |e| lookup(e, &r).is_some())
    }

    fn tag(ruby: &Ruby, rb_self: &Self, tag: String) -> Result<(), Error> {
        rb_self.write(ruby, |e| e.add_tag(&tag))
    }

    fn cancel(ruby: &Ruby, rb_self: &Self) -> Result<(), Error> {
        rb_self.set_cancelled(ruby, true)
    }

    fn uncancel(ruby: &Ruby, rb_self: &Self) -> Result<(), Error> {
        rb_self.set_cancelled(ruby, false)
    }

    fn set_cancelled(&self, ruby: &Ruby, cancelled: bool) -> Result<(), Error> {
        let mut slot = self
            .slot
            .try_borrow_mut()
            .map_err(|_| runtime_error(ruby, "event is in use"))?;
        slot.cancelled = cancelled;
        Ok(())
    }

    fn is_cancelled(&self) -> bool {
        self.slot.try_borrow().map(|s| s.cancelled).unwrap_or(false)
    }

    fn matched(&self) {
        if let Ok(mut slot) = self.slot.try_borrow_mut() {
            slot.matched = true;
        }
    }

    fn to_hash(ruby: &Ruby, rb_self: &Self) -> Result<RValue, Error> {
        rb_self.read(ruby, |e| map_to_ruby(ruby, e.fields()))?
    }

    fn to_hash_with_metadata(ruby: &Ruby, rb_self: &Self) -> Result<RValue, Error> {
        rb_self.read(ruby, |e| -> Result<RValue, Error> {
            let h = map_to_ruby(ruby, e.fields())?;
            if let Some(meta) = e.metadata().filter(|m| !m.is_empty()) {
                RHash::from_value(h)
                    .ok_or_else(|| runtime_error(ruby, "hash expected"))?
                    .aset("@metadata", map_to_ruby(ruby, meta)?)?;
            }
            Ok(h)
        })?
    }

    fn to_json(ruby: &Ruby, rb_self: &Self, _args: &[RValue]) -> Result<String, Error> {
        rb_self.read(ruby, |e| e.to_json_string())
    }

    fn clone_event(ruby: &Ruby, rb_self: &Self) -> Result<RbEvent, Error> {
        rb_self.read(ruby, |e| RbEvent::new(e.clone()))
    }

    fn sprintf(ruby: &Ruby, rb_self: &Self, format: String) -> Result<String, Error> {
        let t = Template::parse(&format)
            .map_err(|e| Error::new(ruby.exception_arg_error(), e.to_string()))?;
        rb_self.read(ruby, |e| t.render(e).into_owned())
    }

    fn timestamp(ruby: &Ruby, rb_self: &Self) -> Result<RValue, Error> {
        rb_self.read(ruby, |e| match e.timestamp() {
            Some(ts) => ruby.obj_wrap(RbTimestamp(ts)).as_value(),
            None => ruby.qnil().as_value(),
        })
    }

    fn set_timestamp(ruby: &Ruby, rb_self: &Self, value: RValue) -> Result<RValue, Error> {
        match from_ruby(ruby, value, 0)? {
            Value::Timestamp(ts) => {
                rb_self.write(ruby, |e| e.set_timestamp(ts))?;
                Ok(value)
            }
            _ => Err(Error::new(
                ruby.exception_type_error(),
                "@timestamp must be a LogStash::Timestamp",
            )),
        }
    }

    fn equals(ruby: &Ruby, rb_self: &Self, other: RValue) -> Result<bool, Error> {
        let Ok(other) = <&RbEvent>::try_convert(other) else {
            return Ok(false);
        };
        if std::ptr::eq(rb_self, other) {
            return Ok(true);
        }
        rb_self.read(ruby, |mine| other.read(ruby, |theirs| mine == theirs))?
    }

    /// `LogStash::Event.new(hash)`: a string `@timestamp` is parsed, `@metadata` goes to
    /// the metadata.
    fn create(ruby: &Ruby, data: RValue) -> Result<RbEvent, Error> {
        let mut map = match from_ruby(ruby, data, 0)? {
            Value::Map(m) => m,
            Value::Null => new_map(),
            _ => {
                return Err(Error::new(
                    ruby.exception_type_error(),
                    "LogStash::Event.new takes a hash",
                ))
            }
        };
        let meta = map.shift_remove("@metadata");
        let mut event = Event::from_map(map, Timestamp::now());
        if let Some(Value::Map(m)) = meta {
            *event.metadata_mut() = m;
        }
        Ok(RbEvent::new(event))
    }
}

/// `LogStash::Timestamp`: an instant with nanosecond precision, UTC.
#[magnus::wrap(class = "LogStash::Timestamp", free_immediately, size)]
pub struct RbTimestamp(Timestamp);

impl RbTimestamp {
    fn at(ruby: &Ruby, secs: i64, nanos: i64) -> Result<RbTimestamp, Error> {
        let (secs, nanos) = (
            secs.saturating_add(nanos.div_euclid(1_000_000_000)),
            nanos.rem_euclid(1_000_000_000),
        );
        u32::try_from(nanos)
            .ok()
            .and_then(|n| Timestamp::from_unix(secs, n))
            .map(RbTimestamp)
            .ok_or_else(|| Error::new(ruby.exception_range_error(), "timestamp out of range"))
    }

    fn parse(text: String) -> Option<RbTimestamp> {
        Timestamp::parse_iso8601(&text).map(RbTimestamp)
    }

    fn to_i(&self) -> i64 {
        self.0.unix_seconds()
    }

    fn nsec(&self) -> i64 {
        i64::from(self.0.datetime().timestamp_subsec_nanos())
    }

    fn to_iso8601(&self) -> String {
        self.0.to_iso8601()
    }
}

/// `Sluice.__log(level, filter_id, message, details)`: a script's log line, into
/// Sluice's log at the same level.
fn log(level: i64, id: String, message: String, details: String) {
    match level {
        0 => tracing::trace!(ruby_filter = %id, details = %details, "{message}"),
        1 => tracing::debug!(ruby_filter = %id, details = %details, "{message}"),
        2 => tracing::info!(ruby_filter = %id, details = %details, "{message}"),
        3 => tracing::warn!(ruby_filter = %id, details = %details, "{message}"),
        _ => tracing::error!(ruby_filter = %id, details = %details, "{message}"),
    }
}

fn log_enabled(level: i64) -> bool {
    match level {
        0 => tracing::enabled!(tracing::Level::TRACE),
        1 => tracing::enabled!(tracing::Level::DEBUG),
        2 => tracing::enabled!(tracing::Level::INFO),
        3 => tracing::enabled!(tracing::Level::WARN),
        _ => tracing::enabled!(tracing::Level::ERROR),
    }
}

/// Defines the Rust-backed classes, then evaluates the prelude.
pub fn install(ruby: &Ruby) -> Result<(), Error> {
    let logstash = ruby.define_module("LogStash")?;
    let event = logstash.define_class("Event", ruby.class_object())?;
    event.undef_default_alloc_func();
    event.define_singleton_method("__new", function!(RbEvent::create, 1))?;
    event.define_method("get", method!(RbEvent::get, 1))?;
    event.define_method("set", method!(RbEvent::set, 2))?;
    event.define_method("remove", method!(RbEvent::remove, 1))?;
    event.define_method("include?", method!(RbEvent::include, 1))?;
    event.define_method("tag", method!(RbEvent::tag, 1))?;
    event.define_method("cancel", method!(RbEvent::cancel, 0))?;
    event.define_method("uncancel", method!(RbEvent::uncancel, 0))?;
    event.define_method("cancelled?", method!(RbEvent::is_cancelled, 0))?;
    event.define_method("to_hash", method!(RbEvent::to_hash, 0))?;
    event.define_method(
        "to_hash_with_metadata",
        method!(RbEvent::to_hash_with_metadata, 0),
    )?;
    event.define_method("to_json", method!(RbEvent::to_json, -1))?;
    event.define_method("clone", method!(RbEvent::clone_event, 0))?;
    event.define_method("dup", method!(RbEvent::clone_event, 0))?;
    event.define_method("sprintf", method!(RbEvent::sprintf, 1))?;
    event.define_method("timestamp", method!(RbEvent::timestamp, 0))?;
    event.define_method("timestamp=", method!(RbEvent::set_timestamp, 1))?;
    event.define_method("==", method!(RbEvent::equals, 1))?;
    event.define_method("__sluice_matched", method!(RbEvent::matched, 0))?;

    let ts = logstash.define_class("Timestamp", ruby.class_object())?;
    ts.undef_default_alloc_func();
    ts.define_singleton_method("__at", function!(RbTimestamp::at, 2))?;
    ts.define_singleton_method("__parse", function!(RbTimestamp::parse, 1))?;
    ts.define_method("to_i", method!(RbTimestamp::to_i, 0))?;
    ts.define_method("nsec", method!(RbTimestamp::nsec, 0))?;
    ts.define_method("to_iso8601", method!(RbTimestamp::to_iso8601, 0))?;

    let sluice: RModule = ruby.define_module("Sluice")?;
    sluice.define_module_function("__log", function!(log, 4))?;
    sluice.define_module_function("__log_enabled", function!(log_enabled, 1))?;

    ruby.eval::<RValue>(PRELUDE).map(|_| ())
}

fn runtime_error(ruby: &Ruby, message: &str) -> Error {
    Error::new(ruby.exception_runtime_error(), message.to_string())
}

fn gone(ruby: &Ruby) -> Error {
    runtime_error(
        ruby,
        "this event has left the ruby filter (passed on or cancelled): keep event.clone or event.to_hash to use it later",
    )
}

/// Parsed field references by their text, kept on the VM thread: a script names the
/// same few fields on every event. Cleared when full, so a script that makes up
/// names per event cannot grow it.
const MAX_CACHED_REFS: usize = 4096;

thread_local! {
    static REFS: RefCell<HashMap<String, Rc<FieldRef>>> = RefCell::new(HashMap::new());
}

fn parse_ref(ruby: &Ruby, text: &str) -> Result<Rc<FieldRef>, Error> {
    if let Some(r) = REFS.with(|c| c.borrow().get(text).cloned()) {
        return Ok(r);
    }
    let r = Rc::new(
        FieldRef::parse(text).map_err(|e| Error::new(ruby.exception_arg_error(), e.to_string()))?,
    );
    REFS.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= MAX_CACHED_REFS {
            c.clear();
        }
        c.insert(text.to_string(), r.clone());
    });
    Ok(r)
}

fn is_metadata_root(r: &FieldRef) -> bool {
    r.root() == Root::Metadata && r.path().is_empty()
}

/// The value at `r`; the bare `[@metadata]` is the metadata map itself.
fn lookup<'a>(e: &'a Event, r: &FieldRef) -> Option<LookedUp<'a>> {
    if is_metadata_root(r) {
        return e.metadata().map(LookedUp::Map);
    }
    e.get(r).map(LookedUp::Value)
}

enum LookedUp<'a> {
    Value(&'a Value),
    Map(&'a Map),
}

impl LookedUp<'_> {
    fn to_ruby(&self, ruby: &Ruby) -> Result<RValue, Error> {
        match self {
            LookedUp::Value(v) => value_to_ruby(ruby, v),
            LookedUp::Map(m) => map_to_ruby(ruby, m),
        }
    }
}

/// An event value as a Ruby object: a copy, as in Logstash (changing the returned hash
/// does not change the event; `event.set` does).
pub fn value_to_ruby(ruby: &Ruby, v: &Value) -> Result<RValue, Error> {
    Ok(match v {
        Value::Null => ruby.qnil().as_value(),
        Value::Bool(b) => {
            if *b {
                ruby.qtrue().as_value()
            } else {
                ruby.qfalse().as_value()
            }
        }
        Value::Int(i) => ruby.integer_from_i64(*i).as_value(),
        Value::Float(f) => ruby.float_from_f64(*f).as_value(),
        Value::String(s) => ruby.str_new(s).as_value(),
        Value::Timestamp(ts) => ruby.obj_wrap(RbTimestamp(*ts)).as_value(),
        Value::Array(items) => {
            let a = ruby.ary_new_capa(items.len());
            for item in items {
                a.push(value_to_ruby(ruby, item)?)?;
            }
            a.as_value()
        }
        Value::Map(m) => map_to_ruby(ruby, m)?,
    })
}

pub fn map_to_ruby(ruby: &Ruby, m: &Map) -> Result<RValue, Error> {
    let h = ruby.hash_new();
    for (k, v) in m {
        h.aset(ruby.str_new(k), value_to_ruby(ruby, v)?)?;
    }
    Ok(h.as_value())
}

/// A Ruby object as an event value. Strings become UTF-8 (invalid bytes replaced),
/// symbols their names, Time and LogStash::Timestamp timestamps, other numbers floats;
/// anything else is a TypeError that names its class.
pub fn from_ruby(ruby: &Ruby, v: RValue, depth: usize) -> Result<Value, Error> {
    if depth > MAX_DEPTH {
        return Err(Error::new(
            ruby.exception_arg_error(),
            format!("value nested deeper than {MAX_DEPTH} levels (does a hash hold itself?)"),
        ));
    }
    if v.is_nil() {
        return Ok(Value::Null);
    }
    if let Some(s) = RString::from_value(v) {
        return Ok(Value::String(ruby_string(ruby, s)?));
    }
    if let Some(i) = Integer::from_value(v) {
        return Ok(match i.to_i64() {
            Ok(n) => Value::Int(n),
            Err(_) => Value::Float(v.funcall::<_, _, f64>("to_f", ())?),
        });
    }
    if let Some(f) = Float::from_value(v) {
        return Ok(Value::Float(f.to_f64()));
    }
    if v.is_kind_of(ruby.class_true_class()) {
        return Ok(Value::Bool(true));
    }
    if v.is_kind_of(ruby.class_false_class()) {
        return Ok(Value::Bool(false));
    }
    if let Some(h) = RHash::from_value(v) {
        let mut m = crate::event::map_with_capacity(h.len());
        let mut err = None;
        h.foreach(|k: RValue, val: RValue| {
            let key = match hash_key(ruby, k) {
                Ok(key) => key,
                Err(e) => {
                    err = Some(e);
                    return Ok(magnus::r_hash::ForEach::Stop);
                }
            };
            match from_ruby(ruby, val, depth + 1) {
                Ok(val) => {
                    m.insert(key, val);
                    Ok(magnus::r_hash::ForEach::Continue)
                }
                Err(e) => {
                    err = Some(e);
                    Ok(magnus::r_hash::ForEach::Stop)
                }
            }
        })?;
        if let Some(e) = err {
            return Err(e);
        }
        return Ok(Value::Map(m));
    }
    if let Some(a) = RArray::from_value(v) {
        let mut items = Vec::with_capacity(a.len());
        for item in a.into_iter() {
            items.push(from_ruby(ruby, item, depth + 1)?);
        }
        return Ok(Value::Array(items));
    }
    if let Ok(ts) = <&RbTimestamp>::try_convert(v) {
        return Ok(Value::Timestamp(ts.0));
    }
    if let Some(sym) = Symbol::from_value(v) {
        return Ok(Value::String(sym.name()?.into_owned()));
    }
    if let Some(t) = magnus::Time::from_value(v) {
        let secs: i64 = t.funcall("to_i", ())?;
        let nanos: i64 = t.funcall("nsec", ())?;
        return Ok(Value::Timestamp(RbTimestamp::at(ruby, secs, nanos)?.0));
    }
    if let Ok(e) = <&RbEvent>::try_convert(v) {
        return e.read(ruby, |e| Value::Map(e.fields().clone()));
    }
    if v.respond_to("to_f", false)? && v.is_kind_of(ruby.class_numeric()) {
        return Ok(Value::Float(v.funcall("to_f", ())?));
    }
    Err(Error::new(
        ruby.exception_type_error(),
        format!("cannot store a {} in an event", class_name(v)),
    ))
}

fn class_name(v: RValue) -> String {
    v.class().inspect()
}

fn hash_key(ruby: &Ruby, k: RValue) -> Result<String, Error> {
    if let Some(s) = RString::from_value(k) {
        return ruby_string(ruby, s);
    }
    if let Some(sym) = Symbol::from_value(k) {
        return Ok(sym.name()?.into_owned());
    }
    let s: RString = k.funcall("to_s", ())?;
    ruby_string(ruby, s)
}

/// A Ruby string as UTF-8 text, converting other encodings and replacing invalid bytes.
fn ruby_string(ruby: &Ruby, s: RString) -> Result<String, Error> {
    if let Ok(text) = s.to_string() {
        return Ok(text);
    }
    let sluice: RModule = ruby.define_module("Sluice")?;
    let fixed: RString = sluice.funcall("utf8", (s,))?;
    fixed.to_string()
}
