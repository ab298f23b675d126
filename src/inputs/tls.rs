//! TLS for server inputs (`tcp`, `beats`), with Logstash's option names:
//! `ssl_enabled`, `ssl_certificate`, `ssl_key`, `ssl_certificate_authorities`,
//! `ssl_client_authentication` (none, optional, required) and `ssl_supported_protocols`
//! (TLSv1.2, TLSv1.3). Certificates are read when the plugin is built, so a missing or
//! broken file is a configuration error at load time, not at the first connection.

use crate::config::Error;
use crate::plugin::Options;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::TlsAcceptor;

/// How long a client may take to finish the TLS handshake (Logstash: 10 s).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether clients must present a certificate signed by one of the configured CAs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    Optional,
    Required,
}

/// A server TLS configuration, ready to accept connections.
#[derive(Clone)]
pub struct TlsServer {
    acceptor: TlsAcceptor,
    client_auth: ClientAuth,
}

impl std::fmt::Debug for TlsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsServer")
            .field("client_auth", &self.client_auth)
            .finish_non_exhaustive()
    }
}

impl TlsServer {
    /// Takes the `ssl_*` options. `None` when `ssl_enabled` is false (the default).
    pub fn from_options(opts: &mut Options) -> Result<Option<TlsServer>, Error> {
        let enabled_pos = opts.value_pos("ssl_enabled");
        let enabled = opts.bool_or("ssl_enabled", false)?;
        let cert_pos = opts.value_pos("ssl_certificate");
        let cert = opts.string("ssl_certificate")?;
        let key_pos = opts.value_pos("ssl_key");
        let key = opts.string("ssl_key")?;
        let ca_pos = opts.value_pos("ssl_certificate_authorities");
        let cas = opts
            .string_list("ssl_certificate_authorities")?
            .unwrap_or_default();
        let auth_pos = opts.value_pos("ssl_client_authentication");
        let auth = match opts
            .string_or("ssl_client_authentication", "none")?
            .as_str()
        {
            "none" => ClientAuth::None,
            "optional" => ClientAuth::Optional,
            "required" => ClientAuth::Required,
            other => {
                return Err(opts.option_error(
                    "ssl_client_authentication",
                    &auth_pos,
                    format!("expected none, optional or required, got `{other}`"),
                ))
            }
        };
        let proto_pos = opts.value_pos("ssl_supported_protocols");
        let protocols = opts
            .string_list("ssl_supported_protocols")?
            .unwrap_or_else(|| vec!["TLSv1.2".into(), "TLSv1.3".into()]);
        if !enabled {
            return Ok(None);
        }
        let mut versions: Vec<&'static SupportedProtocolVersion> = Vec::new();
        for p in &protocols {
            versions.push(match p.as_str() {
                "TLSv1.2" => &rustls::version::TLS12,
                "TLSv1.3" => &rustls::version::TLS13,
                other => {
                    return Err(opts.option_error(
                        "ssl_supported_protocols",
                        &proto_pos,
                        format!("`{other}` is not supported (TLSv1.2, TLSv1.3)"),
                    ))
                }
            });
        }
        let (Some(cert), Some(key)) = (cert, key) else {
            return Err(opts.option_error(
                "ssl_enabled",
                &enabled_pos,
                "TLS needs both `ssl_certificate` and `ssl_key`",
            ));
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| opts.option_error("ssl_certificate", &cert_pos, format!("{cert}: {e}")))?;
        if certs.is_empty() {
            return Err(opts.option_error(
                "ssl_certificate",
                &cert_pos,
                format!("{cert}: no certificate in the file"),
            ));
        }
        let key = PrivateKeyDer::from_pem_file(&key)
            .map_err(|e| opts.option_error("ssl_key", &key_pos, format!("{key}: {e}")))?;
        let mut roots = RootCertStore::empty();
        for ca in &cas {
            let found = CertificateDer::pem_file_iter(ca)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| {
                    opts.option_error("ssl_certificate_authorities", &ca_pos, format!("{ca}: {e}"))
                })?;
            for c in found {
                roots.add(c).map_err(|e| {
                    opts.option_error("ssl_certificate_authorities", &ca_pos, format!("{ca}: {e}"))
                })?;
            }
        }
        if auth != ClientAuth::None && roots.is_empty() {
            return Err(opts.option_error(
                "ssl_client_authentication",
                &auth_pos,
                "client authentication needs `ssl_certificate_authorities`",
            ));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| opts.option_error("ssl_supported_protocols", &proto_pos, e))?;
        let builder = match auth {
            ClientAuth::None => builder.with_no_client_auth(),
            ClientAuth::Optional | ClientAuth::Required => {
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                let verifier = if auth == ClientAuth::Optional {
                    verifier.allow_unauthenticated()
                } else {
                    verifier
                };
                let verifier = verifier
                    .build()
                    .map_err(|e| opts.option_error("ssl_certificate_authorities", &ca_pos, e))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config = builder
            .with_single_cert(certs, key)
            .map_err(|e| opts.option_error("ssl_key", &key_pos, e))?;
        Ok(Some(TlsServer {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            client_auth: auth,
        }))
    }

    pub fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }

    pub fn client_auth(&self) -> ClientAuth {
        self.client_auth
    }

    /// Runs the handshake on `stream`, bounded by [`HANDSHAKE_TIMEOUT`].
    pub async fn accept<S>(
        &self,
        stream: S,
    ) -> Result<tokio_rustls::server::TlsStream<S>, std::io::Error>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor.accept(stream)).await {
            Ok(result) => result,
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "tls handshake timed out",
            )),
        }
    }
}
