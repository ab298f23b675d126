//! `geoip` filter: where an IP address is, from a MaxMind database (GeoIP2/GeoLite2
//! City, Country, ASN, ISP, Anonymous-IP, Enterprise, Domain). The database type is read
//! from the file's metadata, as Logstash does, and decides which fields exist.
//!
//! Sluice ships no database and downloads none. Without one (no `database` option and
//! no `GeoLite2-<type>.mmdb` under `<path.data>/plugins/filters/geoip/`), the pipeline
//! still loads, with a warning, and every event is tagged `_geoip_database_unavailable`.
//! A file that exists but is not a MaxMind database is a configuration error.

use super::lru::{CacheStats, PerThreadLru};
use super::{EventFilter, Outcome};
use crate::config::Error;
use crate::event::field_ref::FieldRef;
use crate::event::{new_map, Event, Value};
use crate::plugin::ecs::Ecs;
use crate::plugin::Options;
use maxminddb::{geoip2, Reader};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const LOOKUP_FAILURE: &str = "_geoip_lookup_failure";
pub const DATABASE_UNAVAILABLE: &str = "_geoip_database_unavailable";

/// One output field, in Logstash's order. Each has an ECS name and a legacy name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Field {
    AutonomousSystemNumber,
    AutonomousSystemOrganization,
    CityName,
    CountryName,
    ContinentCode,
    ContinentName,
    CountryCode2,
    CountryCode3,
    Domain,
    Ip,
    Isp,
    PostalCode,
    DmaCode,
    RegionName,
    RegionCode,
    RegionIsoCode,
    Timezone,
    Location,
    Latitude,
    Longitude,
    Organization,
    Network,
    HostingProvider,
    TorExitNode,
    AnonymousVpn,
    Anonymous,
    PublicProxy,
    ResidentialProxy,
}

use Field::*;

const ALL_FIELDS: [Field; 28] = [
    AutonomousSystemNumber,
    AutonomousSystemOrganization,
    CityName,
    CountryName,
    ContinentCode,
    ContinentName,
    CountryCode2,
    CountryCode3,
    Domain,
    Ip,
    Isp,
    PostalCode,
    DmaCode,
    RegionName,
    RegionCode,
    RegionIsoCode,
    Timezone,
    Location,
    Latitude,
    Longitude,
    Organization,
    Network,
    HostingProvider,
    TorExitNode,
    AnonymousVpn,
    Anonymous,
    PublicProxy,
    ResidentialProxy,
];

impl Field {
    /// (name in `fields` and legacy output, ECS path; `None` when ECS has no such field).
    fn names(self) -> (&'static str, Option<&'static [&'static str]>) {
        match self {
            AutonomousSystemNumber => ("asn", Some(&["as", "number"])),
            AutonomousSystemOrganization => ("as_org", Some(&["as", "organization", "name"])),
            CityName => ("city_name", Some(&["geo", "city_name"])),
            CountryName => ("country_name", Some(&["geo", "country_name"])),
            ContinentCode => ("continent_code", Some(&["geo", "continent_code"])),
            ContinentName => ("continent_name", Some(&["geo", "continent_name"])),
            CountryCode2 => ("country_code2", Some(&["geo", "country_iso_code"])),
            CountryCode3 => ("country_code3", None),
            Domain => ("domain", Some(&["domain"])),
            Ip => ("ip", Some(&["ip"])),
            Isp => ("isp", Some(&["mmdb", "isp"])),
            PostalCode => ("postal_code", Some(&["geo", "postal_code"])),
            DmaCode => ("dma_code", Some(&["mmdb", "dma_code"])),
            RegionName => ("region_name", Some(&["geo", "region_name"])),
            RegionCode => ("region_code", Some(&["geo", "region_code"])),
            RegionIsoCode => ("region_iso_code", Some(&["geo", "region_iso_code"])),
            Timezone => ("timezone", Some(&["geo", "timezone"])),
            Location => ("location", Some(&["geo", "location"])),
            Latitude => ("latitude", Some(&["geo", "location", "lat"])),
            Longitude => ("longitude", Some(&["geo", "location", "lon"])),
            Organization => ("organization", Some(&["mmdb", "organization"])),
            Network => ("network", Some(&["ip_traits", "network"])),
            HostingProvider => ("hosting_provider", Some(&["ip_traits", "hosting_provider"])),
            TorExitNode => ("tor_exit_node", Some(&["ip_traits", "tor_exit_node"])),
            AnonymousVpn => ("anonymous_vpn", Some(&["ip_traits", "anonymous_vpn"])),
            Anonymous => ("anonymous", Some(&["ip_traits", "anonymous"])),
            PublicProxy => ("public_proxy", Some(&["ip_traits", "public_proxy"])),
            ResidentialProxy => (
                "residential_proxy",
                Some(&["ip_traits", "residential_proxy"]),
            ),
        }
    }

    /// The name `fields` takes (Logstash's enum constant, case-insensitive).
    fn option_name(self) -> &'static str {
        match self {
            AutonomousSystemNumber => "autonomous_system_number",
            AutonomousSystemOrganization => "autonomous_system_organization",
            other => other.names().0,
        }
    }

    /// Parses a `fields` entry, case-insensitively as Logstash does; the legacy output
    /// names (`asn`, `as_org`) are accepted too.
    pub fn parse(name: &str) -> Option<Field> {
        ALL_FIELDS.iter().copied().find(|f| {
            f.option_name().eq_ignore_ascii_case(name) || f.names().0.eq_ignore_ascii_case(name)
        })
    }
}

/// The kind of database, from its metadata `database_type`, matched as Logstash does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    City,
    Country,
    Domain,
    Asn,
    Isp,
    Enterprise,
    AnonymousIp,
    Unknown,
}

impl DatabaseKind {
    pub fn from_type(t: &str) -> DatabaseKind {
        if t.contains("City") {
            DatabaseKind::City
        } else if t.contains("Country") {
            DatabaseKind::Country
        } else if t.contains("GeoIP2-Domain") {
            DatabaseKind::Domain
        } else if t.contains("GeoLite2-ASN") {
            DatabaseKind::Asn
        } else if t.contains("GeoIP2-ISP") {
            DatabaseKind::Isp
        } else if t.contains("Enterprise") {
            DatabaseKind::Enterprise
        } else if t.contains("GeoIP2-Anonymous-IP") {
            DatabaseKind::AnonymousIp
        } else {
            DatabaseKind::Unknown
        }
    }

    fn default_fields(self, ecs: bool) -> Vec<Field> {
        match self {
            DatabaseKind::City => vec![
                Ip,
                CityName,
                ContinentCode,
                CountryName,
                CountryCode2,
                CountryCode3,
                PostalCode,
                DmaCode,
                RegionName,
                if ecs { RegionIsoCode } else { RegionCode },
                Timezone,
                Location,
                Latitude,
                Longitude,
            ],
            DatabaseKind::Country => vec![Ip, CountryCode2, CountryName, ContinentName],
            DatabaseKind::Domain => vec![Domain],
            DatabaseKind::Asn => vec![Ip, AutonomousSystemNumber, AutonomousSystemOrganization],
            DatabaseKind::Isp => vec![
                Ip,
                AutonomousSystemNumber,
                AutonomousSystemOrganization,
                Isp,
                Organization,
            ],
            DatabaseKind::AnonymousIp => vec![
                HostingProvider,
                TorExitNode,
                AnonymousVpn,
                Anonymous,
                PublicProxy,
                ResidentialProxy,
            ],
            DatabaseKind::Enterprise => vec![
                Ip,
                CountryCode2,
                CountryName,
                ContinentName,
                RegionIsoCode,
                RegionName,
                CityName,
                Location,
            ],
            DatabaseKind::Unknown => Vec::new(),
        }
    }
}

/// What one address resolves to: the fields to set, with their full references.
type Lookup = Option<Arc<[(FieldRef, Value)]>>;

struct Database {
    reader: Reader<Vec<u8>>,
    kind: DatabaseKind,
    /// Fields wanted, sorted in Logstash's order, each with its reference under target.
    fields: Vec<(Field, FieldRef)>,
    cache: PerThreadLru<Lookup>,
}

pub struct GeoIp {
    source: FieldRef,
    target: FieldRef,
    tag_on_failure: Vec<String>,
    /// `None`: no database was found; events are tagged `_geoip_database_unavailable`.
    database: Option<Database>,
}

impl GeoIp {
    pub fn build(opts: &mut Options) -> Result<GeoIp, Error> {
        let ecs = Ecs::from_options(opts)?;
        let source_text = opts.required_string("source")?;
        let source_pos = opts.value_pos("source");
        let source = FieldRef::parse(&source_text)
            .map_err(|e| opts.option_error("source", &source_pos, e))?;
        let target_pos = opts.value_pos("target");
        let target_text = match opts.string("target")? {
            Some(t) => t,
            None if !ecs.enabled() => "geoip".to_string(),
            None => match source_text.strip_suffix("[ip]") {
                Some(parent) if !parent.is_empty() => parent.to_string(),
                _ => {
                    return Err(opts.option_error(
                        "target",
                        &target_pos,
                        "in ECS compatibility mode geoip requires a `target` when `source` is not an `ip` sub-field such as [client][ip]",
                    ))
                }
            },
        };
        let target = FieldRef::parse(&target_text)
            .map_err(|e| opts.option_error("target", &target_pos, e))?;
        if ecs.enabled()
            && !(target.is_top_level()
                && matches!(
                    target.path()[0].as_str(),
                    "client" | "destination" | "host" | "observer" | "server" | "source"
                ))
        {
            tracing::warn!(target = %target, "ECS expects the geoip target to be one of client, destination, host, observer, server, source");
        }
        let fields_pos = opts.value_pos("fields");
        let fields = opts
            .string_list("fields")?
            .unwrap_or_default()
            .iter()
            .map(|f| {
                Field::parse(f).ok_or_else(|| {
                    opts.option_error(
                        "fields",
                        &fields_pos,
                        format!(
                            "unknown field `{f}` (valid: {})",
                            ALL_FIELDS
                                .iter()
                                .map(|f| f.option_name())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let type_pos = opts.value_pos("default_database_type");
        let default_type = opts.string_or("default_database_type", "City")?;
        if default_type != "City" && default_type != "ASN" {
            return Err(opts.option_error(
                "default_database_type",
                &type_pos,
                format!("`{default_type}` is not one of City, ASN (case matters)"),
            ));
        }
        let cache_pos = opts.value_pos("cache_size");
        let cache_size = opts.usize_or("cache_size", 1000)?;
        if cache_size == 0 {
            return Err(opts.option_error("cache_size", &cache_pos, "must be greater than 0"));
        }
        let tag_on_failure = opts
            .string_list("tag_on_failure")?
            .unwrap_or_else(|| vec![LOOKUP_FAILURE.to_string()]);
        let db_pos = opts.value_pos("database");
        let path = match opts.string("database")? {
            Some(p) => PathBuf::from(p),
            None => opts
                .context()
                .data_dir
                .join("plugins/filters/geoip")
                .join(format!("GeoLite2-{default_type}.mmdb")),
        };
        let database = match open(&path) {
            Ok(Some(reader)) => {
                let kind = DatabaseKind::from_type(&reader.metadata.database_type);
                if kind == DatabaseKind::Unknown {
                    tracing::warn!(path = %path.display(), database_type = %reader.metadata.database_type, "geoip database type is not supported; lookups will find nothing");
                }
                let mut wanted = if fields.is_empty() {
                    kind.default_fields(ecs.enabled())
                } else {
                    fields
                };
                wanted.sort();
                wanted.dedup();
                let fields = wanted
                    .into_iter()
                    .filter_map(|f| {
                        let (legacy, ecs_path) = f.names();
                        let mut path: Vec<&str> = Vec::new();
                        if ecs.enabled() {
                            path.extend(ecs_path?.iter().copied());
                        } else {
                            path.push(legacy);
                        }
                        let text = format!("{target}[{}]", path.join("]["));
                        FieldRef::parse(&text).ok().map(|r| (f, r))
                    })
                    .collect();
                Some(Database {
                    reader,
                    kind,
                    fields,
                    cache: PerThreadLru::new(cache_size),
                })
            }
            Ok(None) => {
                tracing::warn!(path = %path.display(), "geoip database not found; events will be tagged _geoip_database_unavailable (free GeoLite2 databases: https://dev.maxmind.com/geoip/geolite2-free-geolocation-data)");
                None
            }
            Err(e) => {
                return Err(opts.option_error(
                    "database",
                    &db_pos,
                    format!("{} is not a valid MaxMind database: {e}", path.display()),
                ))
            }
        };
        Ok(GeoIp {
            source,
            target,
            tag_on_failure,
            database,
        })
    }

    /// Cache statistics over all worker threads (benchmarks, tests).
    pub fn cache_stats(&self) -> CacheStats {
        self.database
            .as_ref()
            .map(|d| d.cache.stats())
            .unwrap_or_default()
    }

    fn fail(&self, event: &mut Event) -> Outcome {
        for t in &self.tag_on_failure {
            event.add_tag(t);
        }
        Outcome::Failure
    }
}

/// Opens a database; `Ok(None)` when the file does not exist.
fn open(path: &Path) -> Result<Option<Reader<Vec<u8>>>, maxminddb::MaxMindDbError> {
    match std::fs::read(path) {
        Ok(bytes) => Reader::from_source(bytes).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

impl EventFilter for GeoIp {
    fn apply(&self, event: &mut Event) -> Outcome {
        let Some(db) = &self.database else {
            event.add_tag(DATABASE_UNAVAILABLE);
            return Outcome::Failure;
        };
        let text = match event.get(&self.source) {
            Some(Value::String(s)) => s.as_str(),
            Some(Value::Array(items)) => match items.first() {
                Some(Value::String(s)) => s.as_str(),
                _ => return self.fail(event),
            },
            _ => return self.fail(event),
        };
        let text = text.trim();
        if text.is_empty() {
            return self.fail(event);
        }
        let found = db.cache.get_or_insert_with(text, |t| db.lookup(t));
        let Some(found) = found else {
            return self.fail(event);
        };
        if event.get(&self.target).is_none() {
            event.insert(&self.target, Value::Map(new_map()));
        }
        for (r, v) in found.iter() {
            event.insert(r, v.clone());
        }
        Outcome::Success
    }
}

fn name_en<'a>(names: &Option<std::collections::BTreeMap<&'a str, &'a str>>) -> Option<&'a str> {
    names.as_ref().and_then(|n| n.get("en").copied())
}

fn location(lat: Option<f64>, lon: Option<f64>) -> Option<Value> {
    let (lat, lon) = (lat?, lon?);
    let mut m = new_map();
    m.insert("lat".into(), Value::Float(lat));
    m.insert("lon".into(), Value::Float(lon));
    Some(Value::Map(m))
}

/// The address as Logstash writes it (Java's `getHostAddress`): IPv6 in full, each
/// group in lowercase hex without leading zeros and without `::` shortening.
fn java_host_address(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => v6
            .segments()
            .iter()
            .map(|g| format!("{g:x}"))
            .collect::<Vec<_>>()
            .join(":"),
    }
}

fn network(ip: IpAddr, prefix: usize) -> Option<String> {
    let prefix = u8::try_from(prefix).ok()?;
    ipnet::IpNet::new(ip, prefix)
        .ok()
        .map(|n| n.trunc().to_string())
}

/// The record's values, gathered uniformly whatever the database kind.
#[derive(Default)]
struct Record<'a> {
    asn: Option<u32>,
    as_org: Option<&'a str>,
    city: Option<&'a str>,
    country_name: Option<&'a str>,
    country_code: Option<&'a str>,
    continent_code: Option<&'a str>,
    continent_name: Option<&'a str>,
    domain: Option<&'a str>,
    isp: Option<&'a str>,
    organization: Option<&'a str>,
    postal: Option<&'a str>,
    metro_code: Option<u16>,
    region_name: Option<&'a str>,
    region_code: Option<&'a str>,
    timezone: Option<&'a str>,
    latitude: Option<f64>,
    longitude: Option<f64>,
    network: Option<String>,
    anonymous: [Option<bool>; 6],
}

impl Database {
    /// Looks `text` up; `None` when it is not an address, not in the database, or the
    /// record has nothing to say (a City record without a location, as in Logstash).
    fn lookup(&self, text: &str) -> Lookup {
        let ip: IpAddr = match text.parse() {
            Ok(ip) => ip,
            Err(_) => {
                tracing::debug!(value = text, "geoip source is not an IP address");
                return None;
            }
        };
        let rec = match self.record(ip) {
            Ok(Some(r)) => r,
            Ok(None) => return None,
            Err(e) => {
                tracing::error!(error = %e, ip = text, "geoip database lookup failed");
                return None;
            }
        };
        if self.kind == DatabaseKind::City && rec.latitude.is_none() && rec.longitude.is_none() {
            return None;
        }
        let mut out: Vec<(FieldRef, Value)> = Vec::with_capacity(self.fields.len());
        let s = |v: Option<&str>| v.map(|s| Value::String(s.to_string()));
        for (field, r) in &self.fields {
            let value = match field {
                AutonomousSystemNumber => rec.asn.map(|n| Value::Int(i64::from(n))),
                AutonomousSystemOrganization => s(rec.as_org),
                CityName => s(rec.city),
                CountryName => s(rec.country_name),
                ContinentCode => s(rec.continent_code),
                ContinentName => s(rec.continent_name),
                // Logstash has always put the two-letter code here too.
                CountryCode2 | CountryCode3 => s(rec.country_code),
                Domain => s(rec.domain),
                Ip => match self.kind {
                    DatabaseKind::Domain | DatabaseKind::Unknown => None,
                    _ => Some(Value::String(java_host_address(ip))),
                },
                Isp => s(rec.isp),
                PostalCode => s(rec.postal),
                DmaCode => rec.metro_code.map(|c| Value::Int(i64::from(c))),
                RegionName => s(rec.region_name),
                RegionCode => s(rec.region_code),
                RegionIsoCode => match (rec.country_code, rec.region_code) {
                    (Some(c), Some(r)) => Some(Value::String(format!("{c}-{r}"))),
                    _ => None,
                },
                Timezone => s(rec.timezone),
                Location => location(rec.latitude, rec.longitude),
                Latitude => rec.latitude.map(Value::Float),
                Longitude => rec.longitude.map(Value::Float),
                Organization => s(rec.organization),
                Network => rec.network.clone().map(Value::String),
                HostingProvider => rec.anonymous[0].map(Value::Bool),
                TorExitNode => rec.anonymous[1].map(Value::Bool),
                AnonymousVpn => rec.anonymous[2].map(Value::Bool),
                Anonymous => rec.anonymous[3].map(Value::Bool),
                PublicProxy => rec.anonymous[4].map(Value::Bool),
                ResidentialProxy => rec.anonymous[5].map(Value::Bool),
            };
            if let Some(v) = value {
                out.push((r.clone(), v));
            }
        }
        if out.is_empty() {
            None
        } else {
            Some(out.into())
        }
    }

    fn record(&self, ip: IpAddr) -> Result<Option<Record<'_>>, maxminddb::MaxMindDbError> {
        let r = &self.reader;
        let mut rec = Record::default();
        match self.kind {
            DatabaseKind::City => {
                let Some(c) = r.lookup::<geoip2::City>(ip)? else {
                    return Ok(None);
                };
                rec.city = c.city.as_ref().and_then(|x| name_en(&x.names));
                if let Some(x) = &c.continent {
                    rec.continent_code = x.code;
                    rec.continent_name = name_en(&x.names);
                }
                if let Some(x) = &c.country {
                    rec.country_code = x.iso_code;
                    rec.country_name = name_en(&x.names);
                }
                if let Some(x) = &c.location {
                    rec.latitude = x.latitude;
                    rec.longitude = x.longitude;
                    rec.timezone = x.time_zone;
                    rec.metro_code = x.metro_code;
                }
                rec.postal = c.postal.as_ref().and_then(|p| p.code);
                if let Some(sub) = c.subdivisions.as_ref().and_then(|s| s.last()) {
                    rec.region_name = name_en(&sub.names);
                    rec.region_code = sub.iso_code;
                }
            }
            DatabaseKind::Country => {
                let Some(c) = r.lookup::<geoip2::Country>(ip)? else {
                    return Ok(None);
                };
                if let Some(x) = &c.continent {
                    rec.continent_code = x.code;
                    rec.continent_name = name_en(&x.names);
                }
                if let Some(x) = &c.country {
                    rec.country_code = x.iso_code;
                    rec.country_name = name_en(&x.names);
                }
            }
            DatabaseKind::Asn => {
                let (Some(a), prefix) = r.lookup_prefix::<geoip2::Asn>(ip)? else {
                    return Ok(None);
                };
                rec.asn = a.autonomous_system_number;
                rec.as_org = a.autonomous_system_organization;
                rec.network = network(ip, prefix);
            }
            DatabaseKind::Isp => {
                let Some(a) = r.lookup::<geoip2::Isp>(ip)? else {
                    return Ok(None);
                };
                rec.asn = a.autonomous_system_number;
                rec.as_org = a.autonomous_system_organization;
                rec.isp = a.isp;
                rec.organization = a.organization;
            }
            DatabaseKind::Domain => {
                let Some(d) = r.lookup::<geoip2::Domain>(ip)? else {
                    return Ok(None);
                };
                rec.domain = d.domain;
            }
            DatabaseKind::AnonymousIp => {
                let Some(a) = r.lookup::<geoip2::AnonymousIp>(ip)? else {
                    return Ok(None);
                };
                rec.anonymous = flags(
                    a.is_hosting_provider,
                    a.is_tor_exit_node,
                    a.is_anonymous_vpn,
                    a.is_anonymous,
                    a.is_public_proxy,
                    a.is_residential_proxy,
                );
            }
            DatabaseKind::Enterprise => {
                let (Some(e), prefix) = r.lookup_prefix::<geoip2::Enterprise>(ip)? else {
                    return Ok(None);
                };
                rec.city = e.city.as_ref().and_then(|x| name_en(&x.names));
                if let Some(x) = &e.continent {
                    rec.continent_code = x.code;
                    rec.continent_name = name_en(&x.names);
                }
                if let Some(x) = &e.country {
                    rec.country_code = x.iso_code;
                    rec.country_name = name_en(&x.names);
                }
                if let Some(x) = &e.location {
                    rec.latitude = x.latitude;
                    rec.longitude = x.longitude;
                    rec.timezone = x.time_zone;
                }
                if let Some(sub) = e.subdivisions.as_ref().and_then(|s| s.last()) {
                    rec.region_name = name_en(&sub.names);
                    rec.region_code = sub.iso_code;
                }
                rec.network = network(ip, prefix);
                if let Some(t) = &e.traits {
                    rec.asn = t.autonomous_system_number;
                    rec.as_org = t.autonomous_system_organization;
                    rec.isp = t.isp;
                    rec.organization = t.organization;
                    // Logstash reports these as false when the record omits them.
                    let f = |b: Option<bool>| Some(b.unwrap_or(false));
                    rec.anonymous = [
                        f(t.is_hosting_provider),
                        f(t.is_tor_exit_node),
                        f(t.is_anonymous_vpn),
                        f(t.is_anonymous),
                        f(t.is_public_proxy),
                        f(t.is_residential_proxy),
                    ];
                }
            }
            DatabaseKind::Unknown => return Ok(None),
        }
        Ok(Some(rec))
    }
}

/// Anonymous-IP flags; an absent flag is false, as MaxMind's readers report it.
fn flags(
    hosting: Option<bool>,
    tor: Option<bool>,
    vpn: Option<bool>,
    anonymous: Option<bool>,
    public_proxy: Option<bool>,
    residential: Option<bool>,
) -> [Option<bool>; 6] {
    [hosting, tor, vpn, anonymous, public_proxy, residential].map(|b| Some(b.unwrap_or(false)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_parse_case_insensitively() {
        assert_eq!(Field::parse("CITY_NAME"), Some(CityName));
        assert_eq!(Field::parse("as_org"), Some(AutonomousSystemOrganization));
        assert_eq!(Field::parse("nope"), None);
    }

    #[test]
    fn database_kind_follows_the_metadata_type() {
        assert_eq!(DatabaseKind::from_type("GeoLite2-City"), DatabaseKind::City);
        assert_eq!(
            DatabaseKind::from_type("GeoIP2-Enterprise"),
            DatabaseKind::Enterprise
        );
        assert_eq!(DatabaseKind::from_type("GeoLite2-ASN"), DatabaseKind::Asn);
        assert_eq!(
            DatabaseKind::from_type("DBIP-City-Lite"),
            DatabaseKind::City
        );
        assert_eq!(DatabaseKind::from_type("Foo"), DatabaseKind::Unknown);
    }
}
