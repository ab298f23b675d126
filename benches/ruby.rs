//! Throughput of the `ruby` filter (events per second, one worker thread), on batches of
//! 125 events as the pipeline hands them over: a one-line `event.set` script, and a
//! script that walks a nested document and writes it back flattened. Every event crosses
//! to the Ruby VM thread and back, so this measures the whole path a worker sees.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use sluice::event::field_ref::FieldRef;
use sluice::event::{Event, Timestamp, Value};
use sluice::filters::{self, Filter};
use sluice::plugin::Options;

const BATCH: usize = 125;

fn build(body: &str) -> Box<dyn Filter> {
    let mut o = Options::from_text("ruby", "filter", body).unwrap_or_else(|e| panic!("{e}"));
    filters::build("ruby", &mut o).unwrap_or_else(|e| panic!("{e}"))
}

fn event(i: usize) -> Event {
    let mut e = Event::with_message(
        format!("GET /api/v1/items/{i} HTTP/1.1"),
        Timestamp::from_unix(1_700_000_000, 0).unwrap_or_else(Timestamp::now),
    );
    let doc = serde_json::json!({
        "user": { "id": i, "name": "ann", "roles": ["admin", "dev"] },
        "http": { "status": 200, "bytes": 512 + i, "headers": { "host": "example.org", "agent": "curl/8" } },
        "tags_extra": ["a", "b", "c"]
    });
    let doc: Value = serde_json::from_value(doc).unwrap_or_default();
    e.insert(&FieldRef::top("doc"), doc);
    e.insert(&FieldRef::top("n"), Value::Int(i as i64));
    e
}

fn bench(c: &mut Criterion, name: &str, f: &dyn Filter) {
    let data: Vec<Vec<Event>> = (0..16)
        .map(|b| (0..BATCH).map(|i| event(b * BATCH + i)).collect())
        .collect();
    let mut g = c.benchmark_group("ruby");
    g.throughput(Throughput::Elements(BATCH as u64));
    let mut i = 0;
    g.bench_function(name, |b| {
        b.iter_batched(
            || {
                i = (i + 1) % data.len();
                data[i].clone()
            },
            |mut v| {
                f.filter(&mut v);
                v
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn ruby(c: &mut Criterion) {
    bench(
        c,
        "event_set",
        &*build(r#"code => "event.set('n2', event.get('n') * 2)""#),
    );
    bench(
        c,
        "hash_walk_flatten",
        &*build(
            r#"init => "
                 def flatten(prefix, value, out)
                   case value
                   when Hash then value.each { |k, v| flatten(prefix.empty? ? k : prefix + '.' + k, v, out) }
                   when Array then value.each_with_index { |v, i| flatten(prefix + '.' + i.to_s, v, out) }
                   else out[prefix] = value
                   end
                   out
                 end"
               code => "event.set('flat', flatten('', event.get('doc'), {}))""#,
        ),
    );
}

criterion_group!(benches, ruby);
criterion_main!(benches);
