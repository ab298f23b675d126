//! Parsing and compiling pipeline configurations: start-up and reload cost.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sluice::config::parse;
use sluice::pipeline::build::compile;
use std::sync::Arc;

/// A realistic pipeline section repeated to a few hundred lines.
fn config(repeats: usize) -> String {
    let block = r#"
filter {
  # Parse JSON application logs and enrich them.
  if [message] =~ /^\{/ {
    json { source => "message" target => "app" }
  }
  correlation { }
  mutate {
    add_field => { "environment" => "${ENVIRONMENT:production}" "cluster" => 'eu-1' }
    rename => { "[app][level]" => "level" }
    convert => { "[http][status]" => "integer" "bytes" => "integer" }
    gsub => [ "message", "\s+", " " ]
  }
  if [level] in ["ERROR", "CRITICAL"] and !("noisy" in [tags]) {
    mutate { add_tag => ["error"] }
  } else if [http][status] >= 500 or [http][status] == 429 {
    mutate { add_tag => ["server_error", "retry"] }
  } else {
    mutate { remove_field => ["[app][debug]", "headers"] }
  }
}
"#;
    let mut s = String::from("input { stdin { codec => json_lines } tcp { port => 5000 } }\n");
    for _ in 0..repeats {
        s.push_str(block);
    }
    s.push_str(
        "output { if \"error\" in [tags] { stdout { codec => json_lines } } else { null {} } }\n",
    );
    s
}

fn bench(c: &mut Criterion) {
    let text = config(20);
    let mut g = c.benchmark_group("config");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("parse_500_lines", |b| {
        b.iter(|| parse(std::hint::black_box(&text), "bench.conf", false))
    });
    let ast = match parse(&text, "bench.conf", false) {
        Ok(ast) => ast,
        Err(e) => panic!("bench config does not parse: {e}"),
    };
    g.bench_function("compile_500_lines", |b| {
        b.iter(|| compile(std::hint::black_box(&ast), Arc::default()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
