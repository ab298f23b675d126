//! Typed access to a plugin's options, used by every plugin's `build`. Each accessor
//! takes the option out; [`Options::finish`] then refuses whatever is left, so an
//! unknown option or a wrong type is an error at load time with its position.

use super::PluginContext;
use crate::config::ast::{self, Pos, ValueKind};
use crate::config::env;
use crate::config::Error;
use crate::event::field_ref::FieldRef;
use crate::event::sprintf::Template;
use std::sync::Arc;

/// Keys each with a list of strings, in the order written (grok's `match`).
pub type StringListMap = Vec<(String, Vec<String>)>;

/// A value with the position it was written at, so that a plugin that finds something
/// wrong with one entry of a list or hash (a bad field reference in
/// `mutate { rename => ... }`) can name that entry's `file:line:column`, not the plugin's.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    pub value: T,
    pub pos: Pos,
}

impl<T> std::ops::Deref for Spanned<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

/// The options of one plugin (or codec) instance.
#[derive(Debug, Clone)]
pub struct Options {
    plugin: String,
    kind: &'static str,
    pos: Pos,
    attributes: Vec<Option<ast::Attribute>>,
    context: Arc<PluginContext>,
}

/// A codec given as an option value: `codec => json_lines` or `codec => line { ... }`.
#[derive(Debug, Clone)]
pub struct CodecSpec {
    pub name: String,
    pub options: Options,
}

impl Options {
    /// `kind` names the plugin type in messages: "input", "filter", "output", "codec".
    pub fn new(plugin: &ast::Plugin, kind: &'static str, context: Arc<PluginContext>) -> Options {
        Options {
            plugin: plugin.name.clone(),
            kind,
            pos: plugin.pos.clone(),
            attributes: plugin.attributes.iter().cloned().map(Some).collect(),
            context,
        }
    }

    /// Options for a plugin written without any, e.g. a default codec.
    pub fn empty(
        plugin: &str,
        kind: &'static str,
        pos: Pos,
        context: Arc<PluginContext>,
    ) -> Options {
        Options {
            plugin: plugin.to_string(),
            kind,
            pos,
            attributes: Vec::new(),
            context,
        }
    }

    /// Options parsed from a string, for tests and tools: `parse_for_test("grok", "match => {...}")`.
    pub fn from_text(plugin: &str, kind: &'static str, body: &str) -> Result<Options, Error> {
        let src = format!("filter {{ {plugin} {{ {body} }} }}");
        let cfg = crate::config::parse(&src, "options", false)?;
        let item = cfg
            .sections
            .into_iter()
            .next()
            .and_then(|s| s.items.into_iter().next());
        match item {
            Some(ast::Item::Plugin(p)) => Ok(Options::new(&p, kind, Arc::default())),
            _ => Err(Error::Empty(format!("no plugin in `{body}`"))),
        }
    }

    pub fn context(&self) -> &Arc<PluginContext> {
        &self.context
    }

    /// The kind of plugin: "input", "filter", "output" or "codec".
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    pub fn plugin_name(&self) -> &str {
        &self.plugin
    }

    pub fn pos(&self) -> &Pos {
        &self.pos
    }

    /// An error at the plugin's position.
    pub fn error(&self, message: impl Into<String>) -> Error {
        Error::invalid(&self.pos, message)
    }

    /// An error about option `name` at `pos`.
    pub fn option_error(&self, name: &str, pos: &Pos, message: impl std::fmt::Display) -> Error {
        Error::invalid(
            pos,
            format!(
                "option `{name}` of {} {}: {message}",
                self.plugin, self.kind
            ),
        )
    }

    pub fn has(&self, name: &str) -> bool {
        self.attributes.iter().flatten().any(|a| a.name == name)
    }

    /// Takes the raw value of `name`. An option given several times is merged the way
    /// Logstash merges it: arrays concatenate, hashes combine, anything else is an error.
    pub fn take(&mut self, name: &str) -> Result<Option<ast::Value>, Error> {
        let mut found: Option<ast::Value> = None;
        for slot in self.attributes.iter_mut() {
            if slot.as_ref().map(|a| a.name == name) != Some(true) {
                continue;
            }
            let Some(attr) = slot.take() else { continue };
            found = Some(match found {
                None => attr.value,
                Some(prev) => merge(prev, attr.value).map_err(|pos| {
                    Error::invalid(
                        &pos,
                        format!(
                            "option `{name}` of {} {} is given more than once",
                            self.plugin, self.kind
                        ),
                    )
                })?,
            });
        }
        Ok(found)
    }

    /// A string option (barewords and numbers accepted as text), `${VAR}` substituted.
    pub fn string(&mut self, name: &str) -> Result<Option<String>, Error> {
        let Some(v) = self.take(name)? else {
            return Ok(None);
        };
        self.scalar_text(name, &v).map(Some)
    }

    /// A secret option (`password`, `api_key`, ...): its value only prints as
    /// `<redacted>`, in errors and logs alike.
    pub fn secret(&mut self, name: &str) -> Result<Option<super::Secret>, Error> {
        Ok(self.string(name)?.map(super::Secret::new))
    }

    pub fn string_or(&mut self, name: &str, default: &str) -> Result<String, Error> {
        Ok(self.string(name)?.unwrap_or_else(|| default.to_string()))
    }

    pub fn required_string(&mut self, name: &str) -> Result<String, Error> {
        match self.string(name)? {
            Some(s) => Ok(s),
            None => Err(self.error(format!(
                "{} {} requires option `{name}`",
                self.plugin, self.kind
            ))),
        }
    }

    pub fn bool(&mut self, name: &str) -> Result<Option<bool>, Error> {
        let Some(v) = self.take(name)? else {
            return Ok(None);
        };
        match self.scalar_text(name, &v)?.as_str() {
            "true" => Ok(Some(true)),
            "false" => Ok(Some(false)),
            other => Err(self.option_error(
                name,
                &v.pos,
                format!("expected true or false, got `{other}`"),
            )),
        }
    }

    pub fn bool_or(&mut self, name: &str, default: bool) -> Result<bool, Error> {
        Ok(self.bool(name)?.unwrap_or(default))
    }

    pub fn int(&mut self, name: &str) -> Result<Option<i64>, Error> {
        let Some(v) = self.take(name)? else {
            return Ok(None);
        };
        let text = self.scalar_text(name, &v)?;
        text.trim().parse::<i64>().map(Some).map_err(|_| {
            self.option_error(name, &v.pos, format!("expected an integer, got `{text}`"))
        })
    }

    pub fn int_or(&mut self, name: &str, default: i64) -> Result<i64, Error> {
        Ok(self.int(name)?.unwrap_or(default))
    }

    /// A non-negative integer that fits `usize`.
    pub fn usize_or(&mut self, name: &str, default: usize) -> Result<usize, Error> {
        let pos = self.value_pos(name);
        match self.int(name)? {
            None => Ok(default),
            Some(n) => usize::try_from(n).map_err(|_| {
                self.option_error(
                    name,
                    &pos,
                    format!("expected a non-negative integer, got {n}"),
                )
            }),
        }
    }

    pub fn float(&mut self, name: &str) -> Result<Option<f64>, Error> {
        let Some(v) = self.take(name)? else {
            return Ok(None);
        };
        let text = self.scalar_text(name, &v)?;
        text.trim().parse::<f64>().map(Some).map_err(|_| {
            self.option_error(name, &v.pos, format!("expected a number, got `{text}`"))
        })
    }

    /// A list of strings; a single string is a list of one, as in Logstash.
    pub fn string_list(&mut self, name: &str) -> Result<Option<Vec<String>>, Error> {
        let Some(v) = self.take(name)? else {
            return Ok(None);
        };
        match &v.kind {
            ValueKind::Array(items) => items
                .iter()
                .map(|item| self.scalar_text(name, item))
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            _ => Ok(Some(vec![self.scalar_text(name, &v)?])),
        }
    }

    /// A hash of string keys to string values. Logstash also accepts an array of
    /// alternating keys and values (`add_field => ["a", "1"]`), and so does Sluice.
    pub fn string_map(&mut self, name: &str) -> Result<Option<Vec<(String, String)>>, Error> {
        let Some(pairs) = self.pairs(name)? else {
            return Ok(None);
        };
        pairs
            .into_iter()
            .map(|(k, v)| Ok((k, self.scalar_text(name, &v)?)))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// [`Options::string`] with the value's position.
    pub fn string_spanned(&mut self, name: &str) -> Result<Option<Spanned<String>>, Error> {
        let Some(v) = self.take(name)? else {
            return Ok(None);
        };
        Ok(Some(Spanned {
            value: self.scalar_text(name, &v)?,
            pos: v.pos.clone(),
        }))
    }

    /// [`Options::string_list`] with each item's position.
    pub fn string_list_spanned(
        &mut self,
        name: &str,
    ) -> Result<Option<Vec<Spanned<String>>>, Error> {
        let Some(v) = self.take(name)? else {
            return Ok(None);
        };
        let items = match &v.kind {
            ValueKind::Array(items) => items.iter().collect(),
            _ => vec![&v],
        };
        items
            .into_iter()
            .map(|item| {
                Ok(Spanned {
                    value: self.scalar_text(name, item)?,
                    pos: item.pos.clone(),
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// [`Options::string_map`] with the position of each key and each value.
    #[allow(clippy::type_complexity)]
    pub fn string_map_spanned(
        &mut self,
        name: &str,
    ) -> Result<Option<Vec<(Spanned<String>, Spanned<String>)>>, Error> {
        let Some(pairs) = self.pairs_spanned(name)? else {
            return Ok(None);
        };
        pairs
            .into_iter()
            .map(|(k, v)| {
                let value = Spanned {
                    value: self.scalar_text(name, &v)?,
                    pos: v.pos.clone(),
                };
                Ok((k, value))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// [`Options::pairs`] with each key's position (values carry their own).
    #[allow(clippy::type_complexity)]
    pub fn pairs_spanned(
        &mut self,
        name: &str,
    ) -> Result<Option<Vec<(Spanned<String>, ast::Value)>>, Error> {
        let Some(v) = self.take(name)? else {
            return Ok(None);
        };
        match v.kind {
            ValueKind::Hash(entries) => entries
                .into_iter()
                .map(|e| {
                    let key = env::substitute(&e.key)
                        .map_err(|err| self.option_error(name, &e.key_pos, err))?;
                    Ok((
                        Spanned {
                            value: key,
                            pos: e.key_pos,
                        },
                        e.value,
                    ))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            ValueKind::Array(items) if items.len() % 2 == 0 => {
                let mut out = Vec::with_capacity(items.len() / 2);
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    let key = Spanned {
                        value: self.scalar_text(name, &k)?,
                        pos: k.pos.clone(),
                    };
                    out.push((key, v));
                }
                Ok(Some(out))
            }
            _ => Err(self.option_error(
                name,
                &v.pos,
                "expected a hash like { \"key\" => \"value\" }",
            )),
        }
    }

    /// A hash whose values are a string or a list of strings, e.g. grok's `match`.
    pub fn string_list_map(&mut self, name: &str) -> Result<Option<StringListMap>, Error> {
        let Some(pairs) = self.pairs(name)? else {
            return Ok(None);
        };
        let mut out = Vec::with_capacity(pairs.len());
        for (k, v) in pairs {
            let values = match &v.kind {
                ValueKind::Array(items) => items
                    .iter()
                    .map(|i| self.scalar_text(name, i))
                    .collect::<Result<Vec<_>, _>>()?,
                _ => vec![self.scalar_text(name, &v)?],
            };
            out.push((k, values));
        }
        Ok(Some(out))
    }

    /// Key/value pairs from a hash or from an array of alternating keys and values.
    pub fn pairs(&mut self, name: &str) -> Result<Option<Vec<(String, ast::Value)>>, Error> {
        Ok(self
            .pairs_spanned(name)?
            .map(|pairs| pairs.into_iter().map(|(k, v)| (k.value, v)).collect()))
    }

    /// A field reference option.
    pub fn field_ref(&mut self, name: &str) -> Result<Option<FieldRef>, Error> {
        let pos = self.value_pos(name);
        match self.string(name)? {
            None => Ok(None),
            Some(s) => FieldRef::parse(&s)
                .map(Some)
                .map_err(|e| self.option_error(name, &pos, e)),
        }
    }

    /// A sprintf template option (`"%{[host][name]}-%{+YYYY.MM.dd}"`).
    pub fn template(&mut self, name: &str) -> Result<Option<Template>, Error> {
        let pos = self.value_pos(name);
        match self.string(name)? {
            None => Ok(None),
            Some(s) => Template::parse(&s)
                .map(Some)
                .map_err(|e| self.option_error(name, &pos, e)),
        }
    }

    /// The `codec` option: a bareword or a plugin value with its own options.
    pub fn codec(&mut self) -> Result<Option<CodecSpec>, Error> {
        let Some(v) = self.take("codec")? else {
            return Ok(None);
        };
        match v.kind {
            ValueKind::Plugin(p) => Ok(Some(CodecSpec {
                name: p.name.clone(),
                options: Options::new(&p, "codec", self.context.clone()),
            })),
            ValueKind::Bareword(name) | ValueKind::String(name) => Ok(Some(CodecSpec {
                options: Options::empty(&name, "codec", v.pos.clone(), self.context.clone()),
                name,
            })),
            _ => Err(self.option_error("codec", &v.pos, "expected a codec name")),
        }
    }

    /// Position of an option's value, or of the plugin when it is absent.
    pub fn value_pos(&self, name: &str) -> Pos {
        self.attributes
            .iter()
            .flatten()
            .find(|a| a.name == name)
            .map(|a| a.value.pos.clone())
            .unwrap_or_else(|| self.pos.clone())
    }

    /// Refuses every option nobody took: an unknown option is a load-time error.
    pub fn finish(self) -> Result<(), Error> {
        if let Some(attr) = self.attributes.into_iter().flatten().next() {
            return Err(Error::invalid(
                &attr.pos,
                format!(
                    "unknown option `{}` for {} {}",
                    attr.name, self.plugin, self.kind
                ),
            ));
        }
        Ok(())
    }

    /// The text of a scalar value with `${VAR}` substituted.
    pub fn scalar_text(&self, name: &str, v: &ast::Value) -> Result<String, Error> {
        let raw = match &v.kind {
            ValueKind::String(s) | ValueKind::Bareword(s) | ValueKind::Number(s) => s,
            ValueKind::Array(_) => {
                return Err(self.option_error(
                    name,
                    &v.pos,
                    "expected a single value, got an array",
                ))
            }
            ValueKind::Hash(_) => {
                return Err(self.option_error(name, &v.pos, "expected a single value, got a hash"))
            }
            ValueKind::Plugin(p) => {
                return Err(self.option_error(
                    name,
                    &v.pos,
                    format!("expected a single value, got plugin `{}`", p.name),
                ))
            }
        };
        env::substitute(raw).map_err(|e| self.option_error(name, &v.pos, e))
    }
}

/// Merges a repeated option; the error carries the position of the repetition.
fn merge(prev: ast::Value, next: ast::Value) -> Result<ast::Value, Pos> {
    match (prev.kind, next.kind) {
        (ValueKind::Array(mut a), ValueKind::Array(b)) => {
            a.extend(b);
            Ok(ast::Value {
                kind: ValueKind::Array(a),
                pos: prev.pos,
            })
        }
        (ValueKind::Hash(mut a), ValueKind::Hash(b)) => {
            a.extend(b);
            Ok(ast::Value {
                kind: ValueKind::Hash(a),
                pos: prev.pos,
            })
        }
        _ => Err(next.pos),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_entries_carry_their_own_positions() {
        let mut o = Options::from_text(
            "mutate",
            "filter",
            "rename => {\n  \"a\" => \"b\"\n  \"[bad\" => \"c\"\n}",
        )
        .unwrap();
        let pairs = o.string_map_spanned("rename").unwrap().unwrap();
        assert_eq!(pairs.len(), 2);
        let (key, value) = &pairs[1];
        assert_eq!(key.value, "[bad");
        assert_eq!(value.value, "c");
        // The second entry is on its own line, after the plugin's.
        assert_eq!(key.pos.line, pairs[0].0.pos.line + 1);
        assert!(value.pos.column > key.pos.column);
        let err = o.option_error("rename", &key.pos, "bad field reference");
        assert!(
            err.to_string().contains(&format!(":{}:", key.pos.line)),
            "{err}"
        );
        assert_ne!(key.pos.line, o.pos().line);
    }

    #[test]
    fn list_items_carry_their_own_positions() {
        let mut o = Options::from_text("x", "filter", "l => [\"a\",\n \"b\"]").unwrap();
        let items = o.string_list_spanned("l").unwrap().unwrap();
        assert_eq!(items[0].value, "a");
        assert_eq!(items[1].pos.line, items[0].pos.line + 1);
        let mut o = Options::from_text("x", "filter", "s => \"v\"").unwrap();
        let s = o.string_spanned("s").unwrap().unwrap();
        assert_eq!(*s, "v");
    }
}
