//! Event creation and serialisation: the per-event work every pipeline pays.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sluice::codecs::Decoder;
use sluice::event::field_ref::FieldRef;
use sluice::event::sprintf::Template;
use sluice::event::{parse_object, parse_value, Event, ObjectShape, Timestamp, Value};

/// A Filebeat document as the Beats input receives it: small nested maps.
const BEATS_DOCUMENT: &[u8] = br#"{"@timestamp":"2024-01-02T03:04:05.678Z","@metadata":{"beat":"filebeat","type":"_doc","version":"8.13.4"},"message":"192.168.1.10 - - [02/Jan/2024:03:04:05 +0000] \"GET /api/orders?page=2 HTTP/1.1\" 200 5123","host":{"name":"web-01"},"agent":{"type":"filebeat","version":"8.13.4"},"ecs":{"version":"8.0.0"},"log":{"file":{"path":"/var/log/app.log"},"offset":1234567},"id":42}"#;

const LINE: &[u8] = br#"{"timestamp":"2026-11-21T00:00:00.005000Z","level":"ERROR","service":"celery-worker","logger":"apps.cab.approvals","message":"Database connection pool exhausted (20/20 in use)","correlation_id":"025b413f-f06c-4e19-9865-3773afbd67f9","deployment_id":"4ef8aa38","risk_score":56.0}"#;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("event");
    g.throughput(Throughput::Elements(1));
    let now = Timestamp::now();

    g.bench_function("decode_json_line", |b| {
        let mut out = Vec::with_capacity(1);
        b.iter(|| {
            out.clear();
            Decoder::Json.decode(std::hint::black_box(LINE), now, &mut out);
        })
    });

    g.bench_function("parse_beats_document", |b| {
        let shape = ObjectShape {
            room: 2,
            metadata_room: Some(2),
        };
        b.iter(|| parse_object(std::hint::black_box(BEATS_DOCUMENT), shape))
    });

    g.bench_function("parse_value_beats_document", |b| {
        b.iter(|| parse_value(std::hint::black_box(BEATS_DOCUMENT)))
    });

    g.bench_function("from_plain_line", |b| {
        b.iter(|| Event::with_message(String::from("GET /health 200"), now))
    });

    let mut events = Vec::new();
    Decoder::Json.decode(LINE, now, &mut events);
    let event = events.remove(0);

    g.bench_function("to_json", |b| {
        let mut buf = Vec::with_capacity(512);
        b.iter(|| {
            buf.clear();
            event.write_json(&mut buf);
        })
    });

    let template =
        Template::parse("logs-%{service}-%{+YYYY.MM.dd}").unwrap_or_else(|e| panic!("{e}"));
    g.bench_function("sprintf_index_name", |b| b.iter(|| template.render(&event)));

    let nested = FieldRef::parse("[http][request][id]").unwrap_or_else(|e| panic!("{e}"));
    g.bench_function("nested_insert_get", |b| {
        b.iter(|| {
            let mut e = event.clone();
            e.insert(&nested, Value::from("abc"));
            std::hint::black_box(e.get(&nested).is_some())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
