//! The options every filter shares (`add_field`, `add_tag`, `remove_field`,
//! `remove_tag`), applied only when the filter succeeded, as in Logstash.

use crate::config::Error;
use crate::event::field_ref::FieldRef;
use crate::event::sprintf::Template;
use crate::event::{Event, Value};
use crate::plugin::Options;

/// A field name that may be a template: static names are parsed once.
#[derive(Debug, Clone)]
pub enum FieldName {
    Static(FieldRef),
    Dynamic(Template),
}

impl FieldName {
    pub fn parse(text: &str) -> Result<FieldName, String> {
        let t = Template::parse(text).map_err(|e| e.to_string())?;
        if t.is_static() {
            FieldRef::parse(text)
                .map(FieldName::Static)
                .map_err(|e| e.to_string())
        } else {
            Ok(FieldName::Dynamic(t))
        }
    }

    /// The reference for this event; `None` when a dynamic name renders invalid.
    pub fn resolve(&self, event: &Event) -> Option<std::borrow::Cow<'_, FieldRef>> {
        match self {
            FieldName::Static(r) => Some(std::borrow::Cow::Borrowed(r)),
            FieldName::Dynamic(t) => FieldRef::parse(&t.render(event))
                .ok()
                .map(std::borrow::Cow::Owned),
        }
    }
}

/// The shared options of one filter instance.
#[derive(Debug, Clone, Default)]
pub struct CommonOptions {
    add_field: Vec<(FieldName, Template)>,
    add_tag: Vec<Template>,
    remove_field: Vec<FieldName>,
    remove_tag: Vec<Template>,
}

impl CommonOptions {
    pub fn from_options(opts: &mut Options) -> Result<CommonOptions, Error> {
        let mut common = CommonOptions::default();
        let pos = opts.value_pos("add_field");
        for (k, v) in opts.string_map("add_field")?.unwrap_or_default() {
            let name = FieldName::parse(&k).map_err(|e| opts.option_error("add_field", &pos, e))?;
            let value = Template::parse(&v).map_err(|e| opts.option_error("add_field", &pos, e))?;
            common.add_field.push((name, value));
        }
        let pos = opts.value_pos("add_tag");
        for t in opts.string_list("add_tag")?.unwrap_or_default() {
            common
                .add_tag
                .push(Template::parse(&t).map_err(|e| opts.option_error("add_tag", &pos, e))?);
        }
        let pos = opts.value_pos("remove_field");
        for f in opts.string_list("remove_field")?.unwrap_or_default() {
            common.remove_field.push(
                FieldName::parse(&f).map_err(|e| opts.option_error("remove_field", &pos, e))?,
            );
        }
        let pos = opts.value_pos("remove_tag");
        for t in opts.string_list("remove_tag")?.unwrap_or_default() {
            common
                .remove_tag
                .push(Template::parse(&t).map_err(|e| opts.option_error("remove_tag", &pos, e))?);
        }
        Ok(common)
    }

    pub fn is_empty(&self) -> bool {
        self.add_field.is_empty()
            && self.add_tag.is_empty()
            && self.remove_field.is_empty()
            && self.remove_tag.is_empty()
    }

    /// Applies the options to an event the filter succeeded on.
    pub fn apply(&self, event: &mut Event) {
        for (name, value) in &self.add_field {
            let v = value.render(event).into_owned();
            if let Some(r) = name.resolve(event).map(|r| r.into_owned()) {
                event.add_value(&r, Value::String(v));
            }
        }
        for tag in &self.add_tag {
            let t = tag.render(event).into_owned();
            event.add_tag(&t);
        }
        for name in &self.remove_field {
            if let Some(r) = name.resolve(event).map(|r| r.into_owned()) {
                event.remove(&r);
            }
        }
        for tag in &self.remove_tag {
            let t = tag.render(event).into_owned();
            event.remove_tag(&t);
        }
    }
}
