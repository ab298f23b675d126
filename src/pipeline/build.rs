//! AST → runnable pipeline: looks every plugin up in its registry, validates its
//! options (unknown option or wrong type is an error here, at load time), and compiles
//! conditions. Nothing is started: `-t` builds exactly this and stops.

use crate::config::ast::{self, Item, SectionKind};
use crate::config::Error;
use crate::filters;
use crate::inputs::{self, Decorator, Input};
use crate::outputs::{self, Output};
use crate::pipeline::condition::Condition;
use crate::pipeline::tree::{FilterNode, OutputNode};
use crate::plugin::{Options, PluginContext};
use std::collections::HashSet;
use std::sync::Arc;

/// An input ready to start.
pub struct CompiledInput {
    pub id: String,
    pub name: String,
    pub input: Box<dyn Input>,
    pub decorator: Decorator,
}

/// An output ready to receive batches.
pub struct CompiledOutput {
    pub id: String,
    pub name: String,
    pub output: Box<dyn Output>,
}

/// Everything a pipeline runs.
pub struct CompiledPipeline {
    /// Every plugin id of the pipeline.
    pub ids: HashSet<String>,
    pub inputs: Vec<CompiledInput>,
    pub filters: Vec<FilterNode>,
    pub outputs: Vec<CompiledOutput>,
    pub output_tree: Vec<OutputNode>,
}

struct Compiler {
    context: Arc<PluginContext>,
    ids: HashSet<String>,
    counter: usize,
    outputs: Vec<CompiledOutput>,
}

/// Compiles a parsed configuration.
pub fn compile(
    config: &ast::Config,
    context: Arc<PluginContext>,
) -> Result<CompiledPipeline, Error> {
    let mut c = Compiler {
        context,
        ids: HashSet::new(),
        counter: 0,
        outputs: Vec::new(),
    };
    let mut inputs = Vec::new();
    let mut filters = Vec::new();
    let mut output_tree = Vec::new();
    for section in &config.sections {
        match section.kind {
            SectionKind::Input => {
                for item in &section.items {
                    match item {
                        Item::Plugin(p) => inputs.push(c.input(p)?),
                        Item::Branch(b) => {
                            return Err(Error::invalid(
                                &b.pos,
                                "conditionals are not allowed in the input section",
                            ))
                        }
                    }
                }
            }
            SectionKind::Filter => filters.extend(c.filter_items(&section.items)?),
            SectionKind::Output => output_tree.extend(c.output_items(&section.items)?),
        }
    }
    // Logstash concatenates `conf.d/*.conf`, so a file of only `filter {}` or only
    // `output {}` is valid, and so is a pipeline without inputs or outputs; only a
    // configuration with nothing in it is an error.
    if config.sections.is_empty() {
        return Err(Error::Empty(
            "the configuration is empty: add an input, filter or output section".into(),
        ));
    }
    if inputs.is_empty() {
        tracing::warn!("the pipeline has no inputs: it receives no events");
    }
    if c.outputs.is_empty() {
        tracing::warn!("the pipeline has no outputs: events are dropped after the filters");
    }
    Ok(CompiledPipeline {
        ids: c.ids,
        inputs,
        filters,
        outputs: c.outputs,
        output_tree,
    })
}

impl Compiler {
    /// Takes the options every plugin has (`id`, `enable_metric`) and returns the id.
    fn common(&mut self, p: &ast::Plugin, opts: &mut Options) -> Result<String, Error> {
        let pos = opts.value_pos("id");
        let _ = opts.bool("enable_metric")?;
        self.counter += 1;
        // Metrics key plugins by id across the process, so the ids Sluice makes up for
        // a pipeline other than `main` name their pipeline.
        let id = match opts.string("id")? {
            Some(id) => id,
            None if self.context.pipeline_id == crate::settings::DEFAULT_PIPELINE_ID => {
                format!("{}-{}", p.name, self.counter)
            }
            None => format!("{}-{}-{}", self.context.pipeline_id, p.name, self.counter),
        };
        if !self.ids.insert(id.clone()) {
            return Err(Error::invalid(
                &pos,
                format!("plugin id `{id}` is used twice"),
            ));
        }
        Ok(id)
    }

    fn input(&mut self, p: &ast::Plugin) -> Result<CompiledInput, Error> {
        let mut opts = Options::new(p, "input", self.context.clone());
        let id = self.common(p, &mut opts)?;
        let decorator = Decorator::from_options(&mut opts)?;
        let input = inputs::build(&p.name, &mut opts)?;
        opts.finish()?;
        Ok(CompiledInput {
            id,
            name: p.name.clone(),
            input,
            decorator,
        })
    }

    fn filter_items(&mut self, items: &[Item]) -> Result<Vec<FilterNode>, Error> {
        let mut nodes = Vec::with_capacity(items.len());
        for item in items {
            nodes.push(match item {
                Item::Plugin(p) => {
                    let mut opts = Options::new(p, "filter", self.context.clone());
                    let id = self.common(p, &mut opts)?;
                    let filter = filters::build(&p.name, &mut opts)?;
                    opts.finish()?;
                    FilterNode::Plugin {
                        flow: crate::metrics::PluginFlow::of(&id),
                        span: super::plugin_span(&self.context.pipeline_id, &id, &p.name),
                        id,
                        name: p.name.clone(),
                        filter,
                    }
                }
                Item::Branch(b) => {
                    let mut cases = Vec::with_capacity(b.cases.len());
                    for case in &b.cases {
                        cases.push((
                            Condition::compile(&case.condition)?,
                            self.filter_items(&case.body)?,
                        ));
                    }
                    let otherwise = match &b.otherwise {
                        Some(body) => self.filter_items(body)?,
                        None => Vec::new(),
                    };
                    FilterNode::Branch { cases, otherwise }
                }
            });
        }
        Ok(nodes)
    }

    fn output_items(&mut self, items: &[Item]) -> Result<Vec<OutputNode>, Error> {
        let mut nodes = Vec::with_capacity(items.len());
        for item in items {
            nodes.push(match item {
                Item::Plugin(p) => {
                    let mut opts = Options::new(p, "output", self.context.clone());
                    let id = self.common(p, &mut opts)?;
                    let output = outputs::build(&p.name, &mut opts)?;
                    opts.finish()?;
                    self.outputs.push(CompiledOutput {
                        id,
                        name: p.name.clone(),
                        output,
                    });
                    OutputNode::Plugin(self.outputs.len() - 1)
                }
                Item::Branch(b) => {
                    let mut cases = Vec::with_capacity(b.cases.len());
                    for case in &b.cases {
                        cases.push((
                            Condition::compile(&case.condition)?,
                            self.output_items(&case.body)?,
                        ));
                    }
                    let otherwise = match &b.otherwise {
                        Some(body) => self.output_items(body)?,
                        None => Vec::new(),
                    };
                    OutputNode::Branch { cases, otherwise }
                }
            });
        }
        Ok(nodes)
    }
}
