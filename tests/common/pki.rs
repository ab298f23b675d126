//! A throwaway public-key infrastructure for TLS tests: a CA, a server certificate for
//! 127.0.0.1 and localhost, and a client certificate, all signed by that CA and written
//! as PEM files.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};

pub struct Pki {
    /// PEM files: the CA, the server's certificate and key, the client's.
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// The client key file's text (to check it never reaches a log).
    pub client_key_pem: String,
    pub ca_der: CertificateDer<'static>,
    pub server_der: CertificateDer<'static>,
    server_key_der: Vec<u8>,
    pub client_der: CertificateDer<'static>,
    client_key_der: Vec<u8>,
}

impl Pki {
    /// Generates the CA and both certificates (the client's named `client_name`) and
    /// writes them into `dir`.
    pub fn new(dir: &Path, client_name: &str) -> Pki {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "sluice test ca");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let server_key = KeyPair::generate().unwrap();
        let mut server =
            CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
        server
            .distinguished_name
            .push(DnType::CommonName, "sluice test server");
        let server = server.signed_by(&server_key, &issuer).unwrap();
        let client_key = KeyPair::generate().unwrap();
        let mut client = CertificateParams::new(vec![client_name.to_string()]).unwrap();
        client
            .distinguished_name
            .push(DnType::CommonName, "sluice test client");
        let client = client.signed_by(&client_key, &issuer).unwrap();
        let write = |name: &str, text: &str| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let client_key_pem = client_key.serialize_pem();
        Pki {
            ca: write("ca.pem", &ca_cert.pem()),
            cert: write("server.pem", &server.pem()),
            key: write("server.key", &server_key.serialize_pem()),
            client_cert: write("client.pem", &client.pem()),
            client_key: write("client.key", &client_key_pem),
            client_key_pem,
            ca_der: ca_cert.der().clone(),
            server_der: server.der().clone(),
            server_key_der: server_key.serialize_der(),
            client_der: client.der().clone(),
            client_key_der: client_key.serialize_der(),
        }
    }

    pub fn server_key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::try_from(self.server_key_der.clone()).unwrap()
    }

    pub fn client_key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::try_from(self.client_key_der.clone()).unwrap()
    }

    /// Trusts this CA alone.
    pub fn roots(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_der.clone()).unwrap();
        roots
    }
}
