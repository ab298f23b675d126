//! The compiled filter and output sections: plugins and `if` branches as a tree that
//! routes sub-batches, never single events, through the pipeline.

use super::condition::Condition;
use crate::event::Event;
use crate::filters::Filter;
use crate::metrics::PluginFlow;
use std::time::Instant;

/// A node of the filter section.
pub enum FilterNode {
    Plugin {
        id: String,
        /// The plugin's name (`grok`, `mutate`, ...), for node stats.
        name: String,
        filter: Box<dyn Filter>,
        /// Its events in and out and its time, counted here rather than by each filter.
        flow: PluginFlow,
        /// Entered while it runs: its log lines name the pipeline and the plugin.
        span: tracing::Span,
    },
    Branch {
        cases: Vec<(Condition, Vec<FilterNode>)>,
        otherwise: Vec<FilterNode>,
    },
}

/// Runs the filter section over a batch in place.
///
/// Where the events of a batch take different branches, `ordered` (`pipeline.ordered`)
/// decides what leaves: grouped by branch (one filter call per branch: fastest), or in
/// the order the events came in (one call per run of neighbours that take the same
/// branch), so that events leave the outputs in the order they entered.
pub fn run_filters(nodes: &[FilterNode], events: &mut Vec<Event>, ordered: bool) {
    for node in nodes {
        if events.is_empty() {
            return;
        }
        match node {
            FilterNode::Plugin {
                filter, flow, span, ..
            } => {
                let (before, started) = (events.len(), Instant::now());
                span.in_scope(|| filter.filter(events));
                flow.record(before, events.len(), started.elapsed());
            }
            FilterNode::Branch { cases, otherwise } => {
                let pick = |e: &Event| {
                    cases
                        .iter()
                        .position(|(c, _)| c.eval(e))
                        .unwrap_or(cases.len())
                };
                let body = |i: usize| -> &[FilterNode] {
                    cases
                        .get(i)
                        .map_or(otherwise.as_slice(), |(_, b)| b.as_slice())
                };
                let picks: Vec<usize> = events.iter().map(pick).collect();
                let first = picks[0];
                if picks.iter().all(|p| *p == first) {
                    // The common case: the whole batch takes one branch.
                    run_filters(body(first), events, ordered);
                    continue;
                }
                if ordered {
                    let mut out = Vec::with_capacity(events.len());
                    let mut run = Vec::new();
                    let mut current = first;
                    for (e, p) in events.drain(..).zip(picks) {
                        if p != current {
                            run_filters(body(current), &mut run, ordered);
                            out.append(&mut run);
                            current = p;
                        }
                        run.push(e);
                    }
                    run_filters(body(current), &mut run, ordered);
                    out.append(&mut run);
                    *events = out;
                    continue;
                }
                let mut buckets: Vec<Vec<Event>> = (0..=cases.len()).map(|_| Vec::new()).collect();
                for (e, p) in events.drain(..).zip(picks) {
                    buckets[p].push(e);
                }
                for (i, mut bucket) in buckets.into_iter().enumerate() {
                    if !bucket.is_empty() {
                        run_filters(body(i), &mut bucket, ordered);
                        events.append(&mut bucket);
                    }
                }
            }
        }
    }
}

/// A node of the output section; plugins are indices into the pipeline's outputs.
pub enum OutputNode {
    Plugin(usize),
    Branch {
        cases: Vec<(Condition, Vec<OutputNode>)>,
        otherwise: Vec<OutputNode>,
    },
}

/// Sorts `events` into one list per output, following the output section's branches.
/// Each output appears once in the tree, so its list keeps the events' order.
pub fn route<'a>(nodes: &[OutputNode], events: &[&'a Event], per_output: &mut [Vec<&'a Event>]) {
    for node in nodes {
        match node {
            OutputNode::Plugin(i) => {
                if let Some(list) = per_output.get_mut(*i) {
                    list.extend_from_slice(events);
                }
            }
            OutputNode::Branch { cases, otherwise } => {
                let mut buckets: Vec<Vec<&'a Event>> =
                    (0..=cases.len()).map(|_| Vec::new()).collect();
                for e in events {
                    let i = cases
                        .iter()
                        .position(|(c, _)| c.eval(e))
                        .unwrap_or(cases.len());
                    buckets[i].push(e);
                }
                for (i, bucket) in buckets.iter().enumerate() {
                    if bucket.is_empty() {
                        continue;
                    }
                    let body = cases
                        .get(i)
                        .map_or(otherwise.as_slice(), |(_, b)| b.as_slice());
                    route(body, bucket, per_output);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Value;
    use crate::pipeline::build::compile;

    fn numbered(n: i64) -> Vec<Event> {
        (0..n)
            .map(|i| {
                let mut e = Event::new();
                e.insert_field("n", Value::String(i.to_string()));
                e
            })
            .collect()
    }

    fn order(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .map(|e| match e.get_field("n") {
                Some(Value::String(s)) => s.clone(),
                other => panic!("no n: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn ordered_keeps_the_order_through_branches_and_unordered_groups() {
        let text = r#"filter {
            if [n] =~ /[05]$/ { mutate { add_tag => ["fives"] } }
            else if [n] == "3" { clone { clones => ["copy"] } }
            else { mutate { add_tag => ["other"] } }
        }"#;
        let ast = crate::config::parse(text, "test", false).unwrap();
        let p = compile(&ast, Default::default()).unwrap();
        let mut ordered = numbered(12);
        run_filters(&p.filters, &mut ordered, true);
        let expected: Vec<String> = (0..12)
            .flat_map(|i| if i == 3 { vec![3, 3] } else { vec![i] })
            .map(|i: i32| i.to_string())
            .collect();
        assert_eq!(order(&ordered), expected);
        let mut grouped = numbered(12);
        run_filters(&p.filters, &mut grouped, false);
        assert_eq!(
            order(&grouped),
            ["0", "5", "10", "3", "3", "1", "2", "4", "6", "7", "8", "9", "11"]
        );
    }
}
