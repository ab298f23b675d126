//! The accept loop shared by the TCP-based inputs (`tcp`, `beats`): bind, accept until
//! shutdown, serve each connection on its own task, then let open connections finish.

use super::{InputContext, InputError};
use std::future::Future;
use std::net::SocketAddr;
use tokio::net::{TcpListener, TcpStream};

/// Binds `addr` and runs `on_accept` for every connection until shutdown. `on_accept`
/// returns the connection's task, or `None` to refuse it (it has then logged why).
pub async fn serve_connections<F, Fut>(
    plugin: &'static str,
    addr: &str,
    tls: bool,
    ctx: &InputContext,
    on_accept: F,
) -> Result<(), InputError>
where
    F: FnMut(TcpStream, SocketAddr) -> Option<Fut>,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = bind(plugin, addr).await?;
    serve_listener(plugin, listener, tls, ctx, on_accept).await
}

/// Binds a TCP listener on `addr`, with the error naming the plugin and the address.
pub async fn bind(plugin: &'static str, addr: &str) -> Result<TcpListener, InputError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| InputError::Io {
            context: format!("{plugin} input cannot listen on {addr}"),
            source,
        })
}

/// Runs the accept loop of [`serve_connections`] on a listener already bound, for inputs
/// that must bind more than one socket before they serve (syslog's TCP and UDP halves).
pub async fn serve_listener<F, Fut>(
    plugin: &'static str,
    listener: TcpListener,
    tls: bool,
    ctx: &InputContext,
    mut on_accept: F,
) -> Result<(), InputError>
where
    F: FnMut(TcpStream, SocketAddr) -> Option<Fut>,
    Fut: Future<Output = ()> + Send + 'static,
{
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    tracing::info!(input = ctx.id(), plugin, address = %addr, tls, "input listening");
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = ctx.shutdown().cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if let Some(task) = on_accept(stream, peer) {
                        // Its log lines name the pipeline and the input, as the listener's do.
                        connections.spawn(tracing::Instrument::in_current_span(task));
                    }
                }
                Err(e) => {
                    tracing::warn!(input = ctx.id(), plugin, error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    // Connections finish what they already read (and owe), then stop.
    while connections.join_next().await.is_some() {}
    Ok(())
}
