//! `cidr` filter: checks addresses against networks and, on a match, applies the
//! common options (`add_tag`, `add_field`, ...). Networks come from `network` (each
//! a sprintf template, comma-separated lists allowed) or a file (`network_path`,
//! split on `separator`, re-read every `refresh_interval` seconds).

use super::common::CommonOptions;
use super::Filter;
use crate::config::Error;
use crate::event::field_ref::FieldRef;
use crate::event::sprintf::Template;
use crate::event::{Event, Value};
use crate::plugin::Options;
use ipnet::IpNet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

enum Addresses {
    Templates(Vec<Template>),
    Field(FieldRef),
}

struct NetworkFile {
    path: PathBuf,
    separator: String,
    refresh: Duration,
    next_refresh: Mutex<Instant>,
}

pub struct Cidr {
    addresses: Addresses,
    networks: Vec<Template>,
    /// Networks from `network_path`, replaced on refresh.
    file_networks: RwLock<Arc<Vec<IpNet>>>,
    file: Option<NetworkFile>,
    common: CommonOptions,
}

/// An address or network as Ruby's IPAddr accepts it: `10.0.0.0/8` or a bare address.
fn parse_net(text: &str) -> Option<IpNet> {
    let t = text.trim();
    t.parse::<IpNet>()
        .ok()
        .or_else(|| t.parse::<IpAddr>().ok().map(IpNet::from))
}

fn read_networks(path: &PathBuf, separator: &str) -> Result<Vec<IpNet>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    Ok(text
        .split(separator)
        .filter(|s| !s.trim().is_empty())
        .filter_map(|s| {
            let n = parse_net(s);
            if n.is_none() {
                tracing::warn!(network = s, "cidr: invalid IP network, skipping");
            }
            n
        })
        .collect())
}

impl Cidr {
    pub fn build(opts: &mut Options) -> Result<Cidr, Error> {
        let common = CommonOptions::from_options(opts)?;
        let address_pos = opts.value_pos("address");
        let address = opts.string_list("address")?.unwrap_or_default();
        let address_field = opts.field_ref("address_field")?;
        let addresses = match (address_field, address.is_empty()) {
            (Some(_), false) => {
                return Err(opts.error(
                    "cidr: the options `address` and `address_field` are mutually exclusive",
                ))
            }
            (Some(f), true) => Addresses::Field(f),
            (None, _) => Addresses::Templates(
                address
                    .iter()
                    .map(|a| {
                        Template::parse(a)
                            .map_err(|e| opts.option_error("address", &address_pos, e))
                    })
                    .collect::<Result<_, _>>()?,
            ),
        };
        let network_pos = opts.value_pos("network");
        let networks: Vec<Template> = opts
            .string_list("network")?
            .unwrap_or_default()
            .iter()
            .map(|n| Template::parse(n).map_err(|e| opts.option_error("network", &network_pos, e)))
            .collect::<Result<_, _>>()?;
        let path_pos = opts.value_pos("network_path");
        let path = opts.string("network_path")?;
        let refresh = opts.int_or("refresh_interval", 600)?;
        let separator = opts.string_or("separator", "\n")?.replace("\\n", "\n");
        if path.is_some() && !networks.is_empty() {
            return Err(
                opts.error("cidr: the options `network` and `network_path` are mutually exclusive")
            );
        }
        let (file, file_networks) = match path {
            None => (None, Vec::new()),
            Some(p) => {
                let path = PathBuf::from(&p);
                let nets = read_networks(&path, &separator).map_err(|e| {
                    opts.option_error("network_path", &path_pos, format!("{p}: {e}"))
                })?;
                let refresh = Duration::from_secs(refresh.max(0) as u64);
                (
                    Some(NetworkFile {
                        path,
                        separator,
                        refresh,
                        next_refresh: Mutex::new(Instant::now() + refresh),
                    }),
                    nets,
                )
            }
        };
        Ok(Cidr {
            addresses,
            networks,
            file_networks: RwLock::new(Arc::new(file_networks)),
            file,
            common,
        })
    }

    fn maybe_refresh(&self) {
        let Some(f) = &self.file else { return };
        if f.refresh.is_zero() {
            return;
        }
        let mut next = f.next_refresh.lock().unwrap_or_else(|p| p.into_inner());
        if Instant::now() < *next {
            return;
        }
        *next = Instant::now() + f.refresh;
        match read_networks(&f.path, &f.separator) {
            Ok(n) if !n.is_empty() => {
                *self
                    .file_networks
                    .write()
                    .unwrap_or_else(|p| p.into_inner()) = Arc::new(n);
            }
            Ok(_) => {
                tracing::error!(path = %f.path.display(), "cidr: network file is empty; keeping the old list")
            }
            Err(e) => {
                tracing::error!(path = %f.path.display(), error = %e, "cidr: cannot read the network file; keeping the old list")
            }
        }
    }

    fn addresses(&self, event: &Event) -> Vec<IpAddr> {
        let texts: Vec<String> = match &self.addresses {
            Addresses::Templates(ts) => ts.iter().map(|t| t.render(event).into_owned()).collect(),
            Addresses::Field(f) => match event.get(f) {
                Some(Value::Array(items)) => items.iter().map(Value::to_display_string).collect(),
                Some(v) => vec![v.to_display_string()],
                None => Vec::new(),
            },
        };
        texts
            .iter()
            .filter_map(|t| {
                let ip = t.trim().parse::<IpAddr>().ok();
                if ip.is_none() {
                    tracing::debug!(address = %t, "cidr: invalid IP address, skipping");
                }
                ip
            })
            .collect()
    }
}

impl Filter for Cidr {
    fn filter(&self, events: &mut Vec<Event>) {
        self.maybe_refresh();
        let file_networks = self
            .file_networks
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for e in events.iter_mut() {
            let ips = self.addresses(e);
            if ips.is_empty() {
                continue;
            }
            let matched = if self.file.is_some() {
                ips.iter()
                    .any(|ip| file_networks.iter().any(|n| n.contains(ip)))
            } else {
                let nets: Vec<IpNet> = self
                    .networks
                    .iter()
                    .flat_map(|t| {
                        t.render(e)
                            .split(',')
                            .filter_map(parse_net)
                            .collect::<Vec<_>>()
                    })
                    .collect();
                ips.iter().any(|ip| nets.iter().any(|n| n.contains(ip)))
            };
            if matched {
                self.common.apply(e);
            }
        }
    }
}
