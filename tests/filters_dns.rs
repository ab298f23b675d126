//! The `dns` filter against a DNS server the test runs on 127.0.0.1 (answers built with
//! the DNS wire format library the resolver itself uses), and against a hosts file.

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, PTR};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use sluice::event::field_ref::FieldRef;
use sluice::event::{Event, Value};
use sluice::filters::{self, Filter};
use sluice::plugin::Options;
use std::collections::HashMap;
use std::net::{Ipv4Addr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A DNS server on 127.0.0.1: A and PTR records from its tables, NXDOMAIN otherwise;
/// names under `slow.` are never answered. Counts the questions it gets, by name.
struct DnsServer {
    port: u16,
    asked: Arc<Mutex<HashMap<String, u64>>>,
    total: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DnsServer {
    fn start(records: &[(&str, Ipv4Addr)]) -> DnsServer {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let port = socket.local_addr().unwrap().port();
        let a: HashMap<String, Ipv4Addr> = records
            .iter()
            .map(|(n, ip)| (format!("{n}."), *ip))
            .collect();
        let ptr: HashMap<String, String> = records
            .iter()
            .map(|(n, ip)| {
                let o = ip.octets();
                (
                    format!("{}.{}.{}.{}.in-addr.arpa.", o[3], o[2], o[1], o[0]),
                    format!("{n}."),
                )
            })
            .collect();
        let asked = Arc::new(Mutex::new(HashMap::new()));
        let total = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (asked2, total2, stop2) = (asked.clone(), total.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !stop2.load(Ordering::Relaxed) {
                let Ok((n, peer)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let Ok(request) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let Some(query) = request.queries().first() else {
                    continue;
                };
                let name = query.name().to_ascii().to_ascii_lowercase();
                total2.fetch_add(1, Ordering::Relaxed);
                *asked2.lock().unwrap().entry(name.clone()).or_insert(0) += 1;
                if name.starts_with("slow.") {
                    continue;
                }
                let mut response = Message::new();
                response
                    .set_id(request.id())
                    .set_message_type(MessageType::Response)
                    .set_op_code(request.op_code())
                    .set_recursion_desired(request.recursion_desired())
                    .set_recursion_available(true)
                    .set_authoritative(true);
                response.add_queries(request.queries().to_vec());
                let owner = query.name().clone();
                match query.query_type() {
                    RecordType::A if a.contains_key(&name) => {
                        response.add_answer(Record::from_rdata(owner, 60, RData::A(A(a[&name]))));
                    }
                    RecordType::PTR if ptr.contains_key(&name) => {
                        let target = Name::from_ascii(&ptr[&name]).unwrap();
                        response.add_answer(Record::from_rdata(owner, 60, RData::PTR(PTR(target))));
                    }
                    // The name exists but has no record of this type.
                    _ if a.contains_key(&name) => {}
                    _ => {
                        response.set_response_code(ResponseCode::NXDomain);
                    }
                }
                let _ = socket.send_to(&response.to_vec().unwrap(), peer);
            }
        });
        DnsServer {
            port,
            asked,
            total,
            stop,
            thread: Some(thread),
        }
    }

    fn asked(&self, name: &str) -> u64 {
        self.asked
            .lock()
            .unwrap()
            .iter()
            .filter(|(n, _)| n.starts_with(name))
            .map(|(_, c)| c)
            .sum()
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn build(body: &str) -> Box<dyn Filter> {
    let mut o = Options::from_text("dns", "filter", body).unwrap_or_else(|e| panic!("{e}"));
    let f = filters::build("dns", &mut o).unwrap_or_else(|e| panic!("{e}"));
    o.finish().unwrap();
    f
}

fn run(f: &dyn Filter, fields: &[(&str, &str)]) -> Event {
    let mut e = Event::new();
    for (k, v) in fields {
        e.insert(&FieldRef::parse(k).unwrap(), Value::String(v.to_string()));
    }
    let mut v = vec![e];
    f.filter(&mut v);
    v.pop().unwrap()
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

const WEB: Ipv4Addr = Ipv4Addr::new(10, 1, 2, 3);

#[test]
fn resolve_and_reverse_append_or_replace() {
    let server = DnsServer::start(&[("web.example.test", WEB)]);
    let ns = format!("nameserver => [\"127.0.0.1:{}\"]", server.port);
    let f = build(&format!(
        "resolve => [\"[host][name]\"] reverse => [\"ip\"] action => replace {ns} add_tag => [\"dns_ok\"]"
    ));
    let e = run(
        &*f,
        &[("[host][name]", "web.example.test"), ("ip", "10.1.2.3")],
    );
    assert_eq!(
        strings(e.get(&FieldRef::parse("[host][name]").unwrap())),
        ["10.1.2.3"]
    );
    assert_eq!(e.get_str("ip"), Some("web.example.test"));
    assert!(e.has_tag("dns_ok"));

    // As on a pipeline worker thread, which has entered the pipeline's runtime.
    let pipeline_runtime = tokio::runtime::Runtime::new().unwrap();
    let entered = pipeline_runtime.enter();
    let e = run(
        &*f,
        &[("[host][name]", "web.example.test"), ("ip", "10.1.2.3")],
    );
    assert_eq!(e.get_str("ip"), Some("web.example.test"));
    drop(entered);

    // append (the default): the field becomes [original, answer].
    let f = build(&format!("resolve => [\"source\"] {ns}"));
    let e = run(&*f, &[("source", "web.example.test")]);
    assert_eq!(
        strings(e.get_field("source")),
        ["web.example.test", "10.1.2.3"]
    );

    // A name that does not exist: the event is left as it was, add_tag not applied,
    // and the fields after it are not looked up.
    let f = build(&format!(
        "resolve => [\"a\", \"b\"] action => replace {ns} add_tag => [\"dns_ok\"]"
    ));
    let e = run(
        &*f,
        &[("a", "nowhere.example.test"), ("b", "web.example.test")],
    );
    assert_eq!(e.get_str("a"), Some("nowhere.example.test"));
    assert_eq!(e.get_str("b"), Some("web.example.test"));
    assert!(!e.has_tag("dns_ok"));
    assert!(e.get_field("tags").is_none());
    // A missing field is skipped; a reverse of a non-address stops the filter.
    let e = run(&*f, &[("b", "web.example.test")]);
    assert_eq!(e.get_str("b"), Some("10.1.2.3"));
    let f = build(&format!("reverse => [\"ip\"] {ns} add_tag => [\"dns_ok\"]"));
    assert!(!run(&*f, &[("ip", "not an ip")]).has_tag("dns_ok"));
}

#[test]
fn a_silent_server_times_out_within_the_bound_and_tags() {
    let server = DnsServer::start(&[]);
    let f = build(&format!(
        "resolve => [\"h\"] nameserver => [\"127.0.0.1:{}\"] timeout => 0.2 max_retries => 1",
        server.port
    ));
    let started = Instant::now();
    let e = run(&*f, &[("h", "slow.example.test")]);
    let took = started.elapsed();
    assert!(e.has_tag("_dnstimeout"), "{:?}", e.get_field("tags"));
    assert_eq!(e.get_str("h"), Some("slow.example.test"));
    assert!(took < Duration::from_millis(1500), "took {took:?}");
    assert!(server.asked("slow.") >= 1);
    let f = build(&format!(
        "resolve => [\"h\"] nameserver => [\"127.0.0.1:{}\"] timeout => 0.1 max_retries => 0 tag_on_timeout => [\"slow_dns\"]",
        server.port
    ));
    assert!(run(&*f, &[("h", "slow.example.test")]).has_tag("slow_dns"));
}

#[test]
fn hit_and_failed_caches_spare_the_server() {
    let server = DnsServer::start(&[("web.example.test", WEB)]);
    let f = build(&format!(
        "resolve => [\"h\"] action => replace nameserver => [\"127.0.0.1:{}\"] hit_cache_size => 100 failed_cache_size => 100 failed_cache_ttl => 60",
        server.port
    ));
    for _ in 0..5 {
        assert_eq!(
            run(&*f, &[("h", "web.example.test")]).get_str("h"),
            Some("10.1.2.3")
        );
        assert_eq!(
            run(&*f, &[("h", "nowhere.example.test")]).get_str("h"),
            Some("nowhere.example.test")
        );
    }
    assert_eq!(
        server.asked("web.example.test."),
        1,
        "the hit cache answers again"
    );
    let failed = server.asked("nowhere.example.test.");
    assert!(
        (1..=2).contains(&failed),
        "the failed cache answers again ({failed} questions)"
    );
    // Without caches every event asks.
    let f = build(&format!(
        "resolve => [\"h\"] nameserver => [\"127.0.0.1:{}\"]",
        server.port
    ));
    let before = server.total.load(Ordering::Relaxed);
    for _ in 0..3 {
        run(&*f, &[("h", "web.example.test")]);
    }
    assert_eq!(server.total.load(Ordering::Relaxed) - before, 3);
}

#[test]
fn search_domains_complete_short_names() {
    let server = DnsServer::start(&[("web.example.test", WEB)]);
    let f = build(&format!(
        "resolve => [\"h\"] action => replace nameserver => {{ address => [\"127.0.0.1:{}\"] search => [\"example.test\"] }}",
        server.port
    ));
    assert_eq!(run(&*f, &[("h", "web")]).get_str("h"), Some("10.1.2.3"));
}

#[test]
fn hostsfile_answers_before_dns() {
    let server = DnsServer::start(&[("web.example.test", WEB)]);
    let dir = tempfile::tempdir().unwrap();
    let hosts = dir.path().join("hosts");
    std::fs::write(
        &hosts,
        "10.9.9.9 fromfile.internal fromfile\n10.8.8.8 web.example.test\n",
    )
    .unwrap();
    let f = build(&format!(
        "resolve => [\"a\", \"b\"] reverse => [\"ip\"] action => replace hostsfile => [\"{}\"] nameserver => [\"127.0.0.1:{}\"]",
        hosts.display(),
        server.port
    ));
    let e = run(
        &*f,
        &[
            ("a", "fromfile"),
            ("b", "web.example.test"),
            ("ip", "10.9.9.9"),
        ],
    );
    assert_eq!(e.get_str("a"), Some("10.9.9.9"));
    assert_eq!(
        e.get_str("b"),
        Some("10.8.8.8"),
        "the hosts file wins over DNS"
    );
    assert_eq!(e.get_str("ip"), Some("fromfile.internal"));
    assert_eq!(server.total.load(Ordering::Relaxed), 0);
    // A hosts file alone, no nameserver option.
    let f = build(&format!(
        "resolve => [\"a\"] action => replace hostsfile => [\"{}\"]",
        hosts.display()
    ));
    assert_eq!(
        run(&*f, &[("a", "fromfile")]).get_str("a"),
        Some("10.9.9.9")
    );
}

#[test]
fn options_are_checked() {
    let bad = |body: &str| {
        let mut o = Options::from_text("dns", "filter", body).unwrap();
        filters::build("dns", &mut o).is_err()
    };
    assert!(bad("action => merge"));
    assert!(
        bad("nameserver => { search => [\"a\"] }"),
        "address is required"
    );
    assert!(bad("nameserver => { address => \"10.0.0.1\" ndots => 0 }"));
    assert!(bad(
        "nameserver => { address => \"10.0.0.1\" color => blue }"
    ));
    assert!(bad("nameserver => [\"not-an-ip\"]"));
    assert!(bad("hostsfile => [\"/nonexistent/hosts\"]"));
    assert!(bad("timeout => 0"));
    assert!(bad("hit_cache_size => -1"));
}
