//! `dns` filter: forward (`resolve`: name → address) and reverse (`reverse`: address →
//! name) lookups on event fields, as Logstash's namesake.
//!
//! Where names come from, in order: the `hostsfile` files, the system's `/etc/hosts`,
//! then DNS (the `nameserver` addresses with their `search` domains and `ndots`, or the
//! system's `/etc/resolv.conf` when no `nameserver` is given). A forward lookup prefers
//! an IPv4 address, as Ruby's resolver does.
//!
//! Filters run on the pipeline's worker OS threads, so a lookup blocks its worker, as
//! it does in Logstash: each query waits at most `timeout` seconds and is tried
//! `max_retries` more times on timeout, and the whole lookup is cut off at
//! `timeout × (max_retries + 1)` plus a little, so a dead DNS server stalls a worker by
//! a bounded time. The queries run on a small runtime of the filter's own (one thread),
//! which the workers hand lookups to and wait on. A timeout tags the event
//! (`tag_on_timeout`, `_dnstimeout`); a name or address that does not resolve leaves
//! the event as it is. Either way the filter stops at that field (later fields are not
//! looked up) and `add_tag`/`add_field` are not applied, as in Logstash.
//!
//! `hit_cache_size`/`hit_cache_ttl` keep answers and `failed_cache_size`/
//! `failed_cache_ttl` keep failures (lookups not retried while cached); both are off
//! (size 0) by default, as in Logstash.

use super::{EventFilter, Outcome};
use crate::config::{ast, Error};
use crate::event::field_ref::FieldRef;
use crate::event::{Event, Value};
use crate::plugin::Options;
use hickory_resolver::config::{
    LookupIpStrategy, NameServerConfigGroup, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::ProtoErrorKind;
use hickory_resolver::{Name, ResolveError, Resolver};
use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Logstash's default `tag_on_timeout`.
pub const TIMEOUT_TAG: &str = "_dnstimeout";
/// The system hosts file, always consulted after `hostsfile`.
const SYSTEM_HOSTS: &str = "/etc/hosts";
/// Added to the lookup's deadline, for the scheduling of the resolver's own timeouts.
const DEADLINE_MARGIN: Duration = Duration::from_millis(100);

pub struct Dns {
    resolve: Vec<FieldRef>,
    reverse: Vec<FieldRef>,
    replace: bool,
    hosts: Hosts,
    resolver: Option<Resolver<TokioConnectionProvider>>,
    /// Runs the resolver's queries; `None` only while being dropped.
    runtime: Option<tokio::runtime::Runtime>,
    deadline: Duration,
    hit_cache: Option<TtlCache>,
    failed_cache: Option<TtlCache>,
    tag_on_timeout: Vec<String>,
}

/// What one lookup found.
#[derive(Debug, PartialEq)]
enum Answer {
    Found(String),
    NotFound,
    Timeout,
    Failed(String),
}

impl Dns {
    pub fn build(opts: &mut Options) -> Result<Dns, Error> {
        let resolve = field_list(opts, "resolve")?;
        let reverse = field_list(opts, "reverse")?;
        let action_pos = opts.value_pos("action");
        let replace = match opts.string_or("action", "append")?.as_str() {
            "append" => false,
            "replace" => true,
            other => {
                return Err(opts.option_error(
                    "action",
                    &action_pos,
                    format!("`{other}` is not append or replace"),
                ))
            }
        };
        let timeout = seconds(opts, "timeout", 0.5)?;
        let retries_pos = opts.value_pos("max_retries");
        let max_retries = opts.int_or("max_retries", 2)?;
        let max_retries = usize::try_from(max_retries)
            .map_err(|_| opts.option_error("max_retries", &retries_pos, "must not be negative"))?;
        let hit_cache = cache(opts, "hit_cache_size", "hit_cache_ttl", 60.0)?;
        let failed_cache = cache(opts, "failed_cache_size", "failed_cache_ttl", 5.0)?;
        let tag_on_timeout = opts
            .string_list("tag_on_timeout")?
            .unwrap_or_else(|| vec![TIMEOUT_TAG.to_string()]);
        let hosts_pos = opts.value_pos("hostsfile");
        let mut hosts = Hosts::default();
        for file in opts.string_list("hostsfile")?.unwrap_or_default() {
            hosts
                .load(Path::new(&file))
                .map_err(|e| opts.option_error("hostsfile", &hosts_pos, format!("{file}: {e}")))?;
        }
        // Like Ruby's resolver, a missing or unreadable system hosts file is no error.
        let _ = hosts.load(Path::new(SYSTEM_HOSTS));
        let nameserver = nameserver(opts)?;

        let mut options = ResolverOpts::default();
        options.timeout = timeout;
        options.attempts = max_retries;
        options.ip_strategy = LookupIpStrategy::Ipv4thenIpv6;
        options.use_hosts_file = ResolveHosts::Never;
        options.cache_size = 0;
        let config = match &nameserver {
            Some(ns) => {
                options.ndots = ns.ndots;
                Some(ResolverConfig::from_parts(
                    None,
                    ns.search.clone(),
                    NameServerConfigGroup::from_ips_clear(&ns.ips, ns.port, true),
                ))
            }
            None => match hickory_resolver::system_conf::read_system_conf() {
                Ok((config, system)) => {
                    options.ndots = system.ndots;
                    Some(config)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "dns filter: no system resolver configuration; only hosts files are used");
                    None
                }
            },
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("sluice-dns")
            .enable_all()
            .build()
            .map_err(|e| opts.error(format!("dns filter: cannot start its resolver: {e}")))?;
        let resolver = config.map(|config| {
            let _entered = runtime.enter();
            Resolver::builder_with_config(config, TokioConnectionProvider::default())
                .with_options(options)
                .build()
        });
        Ok(Dns {
            resolve,
            reverse,
            replace,
            hosts,
            resolver,
            runtime: Some(runtime),
            deadline: timeout * (max_retries as u32 + 1) + DEADLINE_MARGIN,
            hit_cache,
            failed_cache,
            tag_on_timeout,
        })
    }

    /// Waits for `lookup` on the filter's runtime, at most the lookup deadline.
    fn wait<T>(
        &self,
        lookup: impl std::future::Future<Output = Result<T, ResolveError>>,
    ) -> Result<T, Answer> {
        let Some(runtime) = &self.runtime else {
            return Err(Answer::Failed("resolver stopped".into()));
        };
        // The timer is made inside the runtime (it needs the runtime's clock).
        let deadline = self.deadline;
        match runtime.block_on(async move { tokio::time::timeout(deadline, lookup).await }) {
            Err(_) => Err(Answer::Timeout),
            Ok(Ok(found)) => Ok(found),
            Ok(Err(e)) if e.is_nx_domain() || e.is_no_records_found() => Err(Answer::NotFound),
            Ok(Err(e)) if is_timeout(&e) => Err(Answer::Timeout),
            Ok(Err(e)) => Err(Answer::Failed(e.to_string())),
        }
    }

    fn forward(&self, name: &str) -> Answer {
        if let Some(ip) = self.hosts.address(name) {
            return Answer::Found(ip.to_string());
        }
        let Some(resolver) = &self.resolver else {
            return Answer::NotFound;
        };
        // Unicode names are looked up in their ASCII (punycode) form.
        let Ok(fqdn) = Name::from_utf8(name) else {
            return Answer::Failed(format!("`{name}` is not a host name"));
        };
        match self.wait(resolver.lookup_ip(fqdn)) {
            Ok(found) => found
                .iter()
                .next()
                .map(|ip| Answer::Found(ip.to_string()))
                .unwrap_or(Answer::NotFound),
            Err(answer) => answer,
        }
    }

    fn backward(&self, ip: IpAddr) -> Answer {
        if let Some(name) = self.hosts.name(&ip) {
            return Answer::Found(name.to_string());
        }
        let Some(resolver) = &self.resolver else {
            return Answer::NotFound;
        };
        match self.wait(resolver.reverse_lookup(ip)) {
            Ok(found) => found
                .iter()
                .next()
                .map(|ptr| {
                    let name = ptr.0.to_utf8();
                    Answer::Found(name.strip_suffix('.').unwrap_or(&name).to_string())
                })
                .unwrap_or(Answer::NotFound),
            Err(answer) => answer,
        }
    }

    /// Looks `raw` up through the caches; `None` when a recent failure is cached.
    fn cached(&self, raw: &str, lookup: impl FnOnce() -> Answer) -> Option<Answer> {
        if self
            .failed_cache
            .as_ref()
            .is_some_and(|c| c.get(raw).is_some())
        {
            return None;
        }
        if let Some(hit) = self.hit_cache.as_ref().and_then(|c| c.get(raw)) {
            return Some(Answer::Found(hit));
        }
        let answer = lookup();
        match &answer {
            Answer::Found(v) => {
                if let Some(c) = &self.hit_cache {
                    c.put(raw, v.clone());
                }
            }
            Answer::NotFound | Answer::Timeout => {
                if let Some(c) = &self.failed_cache {
                    c.put(raw, String::new());
                }
            }
            Answer::Failed(_) => {}
        }
        Some(answer)
    }

    /// One field: Ok(true) looked up and set, Ok(false) missing (skipped, as Logstash
    /// does), Err(()) the filter stops here.
    fn field(&self, event: &mut Event, field: &FieldRef, reverse: bool) -> Result<bool, ()> {
        let (raw, is_array) = match event.get(field) {
            None => {
                tracing::warn!(field = %field, "dns filter: field missing; skipped");
                return Ok(false);
            }
            Some(Value::String(s)) => (s.clone(), false),
            Some(Value::Array(items)) if items.len() == 1 => match &items[0] {
                Value::String(s) => (s.clone(), true),
                _ => {
                    tracing::warn!(field = %field, "dns filter: cannot look up a non-string value");
                    return Err(());
                }
            },
            Some(Value::Array(_)) => {
                tracing::warn!(field = %field, "dns filter: cannot look up several values");
                return Err(());
            }
            Some(_) => {
                tracing::warn!(field = %field, "dns filter: cannot look up a non-string value");
                return Err(());
            }
        };
        let answer = if reverse {
            let Ok(ip) = raw.parse::<IpAddr>() else {
                tracing::debug!(field = %field, value = %raw, "dns filter: not an address");
                return Err(());
            };
            self.cached(&raw, || self.backward(ip))
        } else {
            self.cached(&raw, || self.forward(&raw))
        };
        let found = match answer {
            None => return Err(()),
            Some(Answer::Found(v)) => v,
            Some(Answer::NotFound) => {
                tracing::debug!(field = %field, value = %raw, "dns filter: no answer");
                return Err(());
            }
            Some(Answer::Timeout) => {
                tracing::debug!(field = %field, value = %raw, "dns filter: lookup timed out");
                for tag in &self.tag_on_timeout {
                    event.add_tag(tag);
                }
                return Err(());
            }
            Some(Answer::Failed(e)) => {
                tracing::error!(field = %field, value = %raw, error = %e, "dns filter: lookup failed");
                return Err(());
            }
        };
        let value = match (self.replace, is_array) {
            (true, false) => Value::String(found),
            (true, true) => Value::Array(vec![Value::String(found)]),
            (false, _) => Value::Array(vec![Value::String(raw), Value::String(found)]),
        };
        event.insert(field, value);
        Ok(true)
    }
}

impl EventFilter for Dns {
    fn apply(&self, event: &mut Event) -> Outcome {
        for f in &self.resolve {
            if self.field(event, f, false).is_err() {
                return Outcome::Failure;
            }
        }
        for f in &self.reverse {
            if self.field(event, f, true).is_err() {
                return Outcome::Failure;
            }
        }
        Outcome::Success
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        // Shut down without blocking: the filter may be dropped inside async code.
        self.resolver = None;
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

fn is_timeout(e: &ResolveError) -> bool {
    e.proto()
        .is_some_and(|p| matches!(p.kind(), ProtoErrorKind::Timeout))
}

fn field_list(opts: &mut Options, name: &str) -> Result<Vec<FieldRef>, Error> {
    let pos = opts.value_pos(name);
    let mut out = Vec::new();
    for f in opts.string_list(name)?.unwrap_or_default() {
        out.push(FieldRef::parse(&f).map_err(|e| opts.option_error(name, &pos, e))?);
    }
    Ok(out)
}

fn seconds(opts: &mut Options, name: &str, default: f64) -> Result<Duration, Error> {
    let pos = opts.value_pos(name);
    let s = opts.float(name)?.unwrap_or(default);
    if !(s.is_finite() && s > 0.0) {
        return Err(opts.option_error(name, &pos, "must be a positive number of seconds"));
    }
    Ok(Duration::from_secs_f64(s))
}

fn cache(
    opts: &mut Options,
    size: &str,
    ttl: &str,
    default_ttl: f64,
) -> Result<Option<TtlCache>, Error> {
    let pos = opts.value_pos(size);
    let n = opts.int_or(size, 0)?;
    let n =
        usize::try_from(n).map_err(|_| opts.option_error(size, &pos, "must not be negative"))?;
    let ttl = seconds(opts, ttl, default_ttl)?;
    Ok(NonZeroUsize::new(n).map(|n| TtlCache::new(n, ttl)))
}

/// The `nameserver` option: Logstash takes a list of addresses or a hash with
/// `address`, `search` and `ndots`.
struct Nameserver {
    ips: Vec<IpAddr>,
    port: u16,
    search: Vec<Name>,
    ndots: usize,
}

fn nameserver(opts: &mut Options) -> Result<Option<Nameserver>, Error> {
    let Some(value) = opts.take("nameserver")? else {
        return Ok(None);
    };
    let pos = value.pos.clone();
    let list = |opts: &Options, v: &ast::Value| -> Result<Vec<String>, Error> {
        match &v.kind {
            ast::ValueKind::Array(items) => items
                .iter()
                .map(|i| opts.scalar_text("nameserver", i))
                .collect(),
            _ => Ok(vec![opts.scalar_text("nameserver", v)?]),
        }
    };
    let (addresses, search, ndots) = match &value.kind {
        ast::ValueKind::Hash(entries) => {
            let mut addresses = None;
            let mut search = Vec::new();
            let mut ndots = 1usize;
            for e in entries {
                match e.key.as_str() {
                    "address" => addresses = Some(list(opts, &e.value)?),
                    "search" => search = list(opts, &e.value)?,
                    "ndots" => {
                        ndots = opts
                            .scalar_text("nameserver", &e.value)?
                            .parse()
                            .ok()
                            .filter(|n| *n > 0)
                            .ok_or_else(|| {
                                opts.option_error(
                                    "nameserver",
                                    &e.value.pos,
                                    "`ndots` must be positive",
                                )
                            })?
                    }
                    other => {
                        return Err(opts.option_error(
                            "nameserver",
                            &e.key_pos,
                            format!(
                                "unknown `nameserver` argument `{other}` (address, search, ndots)"
                            ),
                        ))
                    }
                }
            }
            let addresses = addresses.ok_or_else(|| {
                opts.option_error(
                    "nameserver",
                    &pos,
                    "the `nameserver` hash must include `address`",
                )
            })?;
            (addresses, search, ndots)
        }
        _ => (list(opts, &value)?, Vec::new(), 1),
    };
    if addresses.is_empty() {
        return Err(opts.option_error(
            "nameserver",
            &pos,
            "`nameserver` addresses cannot be empty",
        ));
    }
    if search.len() > 6 {
        return Err(opts.option_error(
            "nameserver",
            &pos,
            "at most 6 `search` domains are accepted",
        ));
    }
    // `address` or `address:port` (a port is a Sluice addition, for servers on a
    // non-standard port); all servers share one port.
    let mut ips = Vec::new();
    let mut port = 53;
    for a in &addresses {
        let (ip, p) = match a.parse::<std::net::SocketAddr>() {
            Ok(sa) => (sa.ip(), sa.port()),
            Err(_) => (
                a.parse::<IpAddr>().map_err(|_| {
                    opts.option_error("nameserver", &pos, format!("`{a}` is not an IP address"))
                })?,
                53,
            ),
        };
        ips.push(ip);
        port = p;
    }
    let search = search
        .iter()
        .map(|s| {
            Name::from_utf8(s).map_err(|e| {
                opts.option_error("nameserver", &pos, format!("search domain `{s}`: {e}"))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(Nameserver {
        ips,
        port,
        search,
        ndots,
    }))
}

/// Names and addresses from hosts files: the first entry for a name or an address wins,
/// files in the order given.
#[derive(Default)]
struct Hosts {
    addresses: HashMap<String, IpAddr>,
    names: HashMap<IpAddr, String>,
}

impl Hosts {
    fn load(&mut self, path: &Path) -> std::io::Result<()> {
        let text = std::fs::read_to_string(path)?;
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut words = line.split_whitespace();
            let Some(ip) = words.next().and_then(|w| w.parse::<IpAddr>().ok()) else {
                continue;
            };
            for (i, name) in words.enumerate() {
                if i == 0 {
                    self.names.entry(ip).or_insert_with(|| name.to_string());
                }
                self.addresses
                    .entry(name.to_ascii_lowercase())
                    .or_insert(ip);
            }
        }
        Ok(())
    }

    fn address(&self, name: &str) -> Option<IpAddr> {
        self.addresses.get(&name.to_ascii_lowercase()).copied()
    }

    fn name(&self, ip: &IpAddr) -> Option<&str> {
        self.names.get(ip).map(String::as_str)
    }
}

/// A least-recently-used cache whose entries expire `ttl` after they were stored.
struct TtlCache {
    entries: Mutex<lru::LruCache<String, (String, Instant)>>,
    ttl: Duration,
}

impl TtlCache {
    fn new(size: NonZeroUsize, ttl: Duration) -> TtlCache {
        TtlCache {
            entries: Mutex::new(lru::LruCache::new(size)),
            ttl,
        }
    }

    fn get(&self, key: &str) -> Option<String> {
        let mut entries = self.entries.lock().ok()?;
        match entries.get(key) {
            Some((v, at)) if at.elapsed() < self.ttl => Some(v.clone()),
            Some(_) => {
                entries.pop(key);
                None
            }
            None => None,
        }
    }

    fn put(&self, key: &str, value: String) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.put(key.to_string(), (value, Instant::now()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_files_forward_and_reverse_first_entry_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts");
        std::fs::write(
            &path,
            "# comment\n10.0.0.1 web-1.example.org web-1 # trailing\n10.0.0.2 web-1.example.org\n::1 v6host\nnot-an-ip name\n",
        )
        .unwrap();
        let mut h = Hosts::default();
        h.load(&path).unwrap();
        assert_eq!(h.address("WEB-1"), Some("10.0.0.1".parse().unwrap()));
        assert_eq!(
            h.address("web-1.example.org"),
            Some("10.0.0.1".parse().unwrap())
        );
        assert_eq!(
            h.name(&"10.0.0.1".parse().unwrap()),
            Some("web-1.example.org")
        );
        assert_eq!(
            h.name(&"10.0.0.2".parse().unwrap()),
            Some("web-1.example.org")
        );
        assert_eq!(h.address("v6host"), Some("::1".parse().unwrap()));
        assert_eq!(h.address("name"), None);
    }

    #[test]
    fn ttl_cache_expires() {
        let c = TtlCache::new(NonZeroUsize::new(2).unwrap(), Duration::from_millis(50));
        c.put("a", "1".into());
        assert_eq!(c.get("a").as_deref(), Some("1"));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(c.get("a"), None);
        c.put("a", "1".into());
        c.put("b", "2".into());
        c.put("c", "3".into());
        assert_eq!(c.get("a"), None, "bounded: the least recently used goes");
    }
}
