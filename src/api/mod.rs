//! The HTTP API: the status page, the error statistics API, Logstash's node stats and
//! Prometheus `/metrics`.
//!
//! It runs on a thread and runtime of its own, so a saturated pipeline does not make the
//! monitoring of it unresponsive. Like Logstash, it binds the first free port of
//! `--api.http.port` (a range, `9600-9700` by default) and refuses to start when none is
//! free. Serving a non-loopback address requires `--api.auth.token` unless
//! `--api.allow_insecure` says otherwise. The same thread snapshots the error statistics
//! store to `--path.data` once a minute and when the API stops.

mod handlers;
mod node;

use crate::settings::{Secret, Settings};
use crate::stats;
use std::net::{IpAddr, SocketAddr, TcpListener, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the error statistics are written to disk (when they changed).
const SNAPSHOT_INTERVAL: Duration = Duration::from_secs(60);

/// Why the API could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot resolve --api.http.host `{host}`: {source}")]
    Resolve {
        host: String,
        source: std::io::Error,
    },
    #[error("refusing to serve the HTTP API on {host}, which is not a loopback address, without --api.auth.token (or SLUICE_API_TOKEN); give a token, or --api.allow_insecure to serve it unauthenticated")]
    Insecure { host: String },
    #[error("cannot bind the HTTP API to {host} on any port in {first}-{last}: {last_error}")]
    Bind {
        host: String,
        first: u16,
        last: u16,
        last_error: std::io::Error,
    },
    #[error("cannot start the HTTP API thread: {0}")]
    Thread(std::io::Error),
}

/// What the handlers share.
pub(crate) struct State {
    pub token: Option<Secret>,
    pub http_address: String,
    pub settings: Settings,
    pub node_id: String,
}

/// The running API (and snapshotter); [`Api::stop`] ends both and writes a last snapshot.
pub struct Api {
    address: Option<SocketAddr>,
    stop: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Api {
    /// Where the API listens (`None` when `--api.enabled=false`).
    pub fn address(&self) -> Option<SocketAddr> {
        self.address
    }

    /// Stops serving, writes the error statistics snapshot and waits for both.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.cancel();
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::error!("the HTTP API thread panicked");
            }
        }
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Binds the first free port of `first..=last` on `host`.
fn bind(host: &str, first: u16, last: u16) -> Result<TcpListener, Error> {
    let mut last_error = std::io::Error::other("empty port range");
    for port in first..=last {
        let addrs = (host, port)
            .to_socket_addrs()
            .map_err(|source| Error::Resolve {
                host: host.to_string(),
                source,
            })?;
        for addr in addrs {
            match TcpListener::bind(addr) {
                Ok(l) => return Ok(l),
                Err(e) => last_error = e,
            }
        }
    }
    Err(Error::Bind {
        host: host.to_string(),
        first,
        last,
        last_error,
    })
}

/// Whether every address `host` names is a loopback address.
fn is_loopback(host: &str) -> Result<bool, Error> {
    let addrs: Vec<IpAddr> = (host, 0)
        .to_socket_addrs()
        .map_err(|source| Error::Resolve {
            host: host.to_string(),
            source,
        })?
        .map(|a| a.ip())
        .collect();
    Ok(!addrs.is_empty() && addrs.iter().all(IpAddr::is_loopback))
}

/// Reloads the error statistics snapshot, binds the API (unless disabled) and starts
/// serving it and snapshotting on a thread of its own.
pub fn start(settings: &Settings) -> Result<Api, Error> {
    let snapshot = stats::snapshot_path(&settings.data_dir);
    match stats::global().load(&snapshot) {
        Ok(true) => tracing::info!(path = %snapshot.display(), "error statistics reloaded"),
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, "starting with empty error statistics"),
    }
    let listener = if settings.api_enabled {
        if settings.api_token.is_none()
            && !settings.api_allow_insecure
            && !is_loopback(&settings.api_host)?
        {
            return Err(Error::Insecure {
                host: settings.api_host.clone(),
            });
        }
        let l = bind(&settings.api_host, settings.api_port, settings.api_port_end)?;
        l.set_nonblocking(true).map_err(Error::Thread)?;
        Some(l)
    } else {
        None
    };
    let address = listener.as_ref().and_then(|l| l.local_addr().ok());
    if let Some(a) = address {
        tracing::info!(address = %a, auth = settings.api_token.is_some(), "http api listening");
    }
    let state = Arc::new(State {
        token: settings.api_token.clone(),
        http_address: address.map(|a| a.to_string()).unwrap_or_default(),
        settings: settings.clone(),
        node_id: crate::filters::correlation::new_uuid(),
    });
    let stop = CancellationToken::new();
    let thread = {
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("sluice-api".into())
            .spawn(move || serve(listener, state, snapshot, stop))
            .map_err(Error::Thread)?
    };
    Ok(Api {
        address,
        stop,
        thread: Some(thread),
    })
}

fn serve(
    listener: Option<TcpListener>,
    state: Arc<State>,
    snapshot: PathBuf,
    stop: CancellationToken,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the http api runtime");
            return;
        }
    };
    runtime.block_on(async move {
        let server = listener.map(|l| {
            let stop = stop.clone();
            tokio::spawn(async move {
                let listener = match tokio::net::TcpListener::from_std(l) {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot serve the http api");
                        return;
                    }
                };
                let app = handlers::router(state);
                let served = axum::serve(listener, app)
                    .with_graceful_shutdown(stop.cancelled_owned())
                    .await;
                if let Err(e) = served {
                    tracing::error!(error = %e, "the http api stopped");
                }
            })
        });
        let mut tick = tokio::time::interval(SNAPSHOT_INTERVAL);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => save(&snapshot),
                _ = stop.cancelled() => break,
            }
        }
        save(&snapshot);
        if let Some(server) = server {
            // Open keep-alive connections must not hold the exit up.
            let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
        }
    });
}

fn save(path: &std::path::Path) {
    let store = stats::global();
    if !store.is_dirty() {
        return;
    }
    match store.save(path) {
        Ok(()) => tracing::debug!(path = %path.display(), "error statistics saved"),
        Err(e) => tracing::warn!(error = %e, "error statistics not saved"),
    }
}
