//! What the `kafka` input and output share: the client options Logstash names
//! (`bootstrap_servers`, `client_id`, security, SSL and SASL) translated into
//! librdkafka properties, the pass-through hash for everything else, and the `Secret`
//! type that keeps passwords out of logs.
//!
//! Logstash's plugin runs the Java client; Sluice runs librdkafka. Where the two differ
//! (JKS trust stores, GSSAPI) the option is refused at load time with what to use
//! instead, rather than accepted and ignored.

use crate::config::Error;
use crate::plugin::Options;

/// A password option: its `Display` and `Debug` never show the value.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// librdkafka properties in the order they were set; later entries win.
#[derive(Clone, Default)]
pub struct ClientProperties {
    entries: Vec<(String, Property)>,
}

#[derive(Clone)]
enum Property {
    Plain(String),
    Secret(Secret),
}

impl std::fmt::Debug for ClientProperties {
    /// Secret values print as `<redacted>`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut m = f.debug_map();
        for (k, v) in &self.entries {
            match v {
                Property::Plain(s) => m.entry(k, s),
                Property::Secret(s) => m.entry(k, s),
            };
        }
        m.finish()
    }
}

impl ClientProperties {
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.entries
            .push((key.to_string(), Property::Plain(value.into())));
    }

    pub fn set_secret(&mut self, key: &str, value: Secret) {
        self.entries
            .push((key.to_string(), Property::Secret(value)));
    }

    /// The last value set for `key` (secrets included).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| match v {
                Property::Plain(s) => s.as_str(),
                Property::Secret(s) => s.expose(),
            })
    }

    /// The rdkafka configuration these properties describe.
    pub fn to_client_config(&self) -> rdkafka::ClientConfig {
        let mut cfg = rdkafka::ClientConfig::new();
        for (k, v) in &self.entries {
            match v {
                Property::Plain(s) => cfg.set(k, s),
                Property::Secret(s) => cfg.set(k, s.expose()),
            };
        }
        cfg
    }
}

/// Reads an integer option that librdkafka takes as a property, only when it is given,
/// so that librdkafka's own default applies otherwise.
pub fn int_property(
    opts: &mut Options,
    props: &mut ClientProperties,
    option: &str,
    property: &str,
    min: i64,
) -> Result<(), Error> {
    let pos = opts.value_pos(option);
    if let Some(n) = opts.int(option)? {
        if n < min {
            return Err(opts.option_error(option, &pos, format!("must be at least {min}")));
        }
        props.set(property, n.to_string());
    }
    Ok(())
}

/// One of a fixed set of words, Logstash's `:validate => [...]`.
pub fn choice(
    opts: &mut Options,
    option: &str,
    allowed: &[&str],
    default: &str,
) -> Result<String, Error> {
    let pos = opts.value_pos(option);
    let value = opts.string_or(option, default)?;
    if allowed.contains(&value.as_str()) {
        Ok(value)
    } else {
        Err(opts.option_error(
            option,
            &pos,
            format!("`{value}` is not one of {}", allowed.join(", ")),
        ))
    }
}

/// The options both plugins share, read into librdkafka properties. `client_id` is left
/// to the caller (the input defaults it to `logstash`, the output has none).
pub fn common_properties(opts: &mut Options) -> Result<ClientProperties, Error> {
    let mut props = ClientProperties::default();
    let servers = opts.string_or("bootstrap_servers", "localhost:9092")?;
    props.set("bootstrap.servers", servers);

    // Logstash maps its deprecated `default` to `use_all_dns_ips`; so does Sluice.
    let dns = choice(
        opts,
        "client_dns_lookup",
        &[
            "default",
            "use_all_dns_ips",
            "resolve_canonical_bootstrap_servers_only",
        ],
        "use_all_dns_ips",
    )?;
    let dns = if dns == "default" {
        tracing::warn!("client_dns_lookup `default` is deprecated, using `use_all_dns_ips`");
        "use_all_dns_ips".to_string()
    } else {
        dns
    };
    props.set("client.dns.lookup", dns);

    int_property(
        opts,
        &mut props,
        "metadata_max_age_ms",
        "metadata.max.age.ms",
        1,
    )?;
    int_property(
        opts,
        &mut props,
        "connections_max_idle_ms",
        "connections.max.idle.ms",
        0,
    )?;
    int_property(
        opts,
        &mut props,
        "reconnect_backoff_ms",
        "reconnect.backoff.ms",
        0,
    )?;
    int_property(opts, &mut props, "retry_backoff_ms", "retry.backoff.ms", 1)?;
    int_property(
        opts,
        &mut props,
        "send_buffer_bytes",
        "socket.send.buffer.bytes",
        -1,
    )?;
    int_property(
        opts,
        &mut props,
        "receive_buffer_bytes",
        "socket.receive.buffer.bytes",
        -1,
    )?;
    // Kafka's "-1 = OS default" is librdkafka's 0.
    for key in ["socket.send.buffer.bytes", "socket.receive.buffer.bytes"] {
        if props.get(key) == Some("-1") {
            props.set(key, "0");
        }
    }

    security(opts, &mut props)?;
    Ok(props)
}

/// `security_protocol`, `sasl_*` and `ssl_*`.
fn security(opts: &mut Options, props: &mut ClientProperties) -> Result<(), Error> {
    let protocol = choice(
        opts,
        "security_protocol",
        &["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"],
        "PLAINTEXT",
    )?;
    props.set("security.protocol", protocol.to_lowercase());
    let sasl = protocol.starts_with("SASL");
    let ssl = protocol.ends_with("SSL");

    let mech_pos = opts.value_pos("sasl_mechanism");
    let mechanism = opts.string_or("sasl_mechanism", "GSSAPI")?;
    let service = opts.string("sasl_kerberos_service_name")?;
    let jaas_pos = opts.value_pos("sasl_jaas_config");
    let jaas = opts.string("sasl_jaas_config")?;
    let mut username = opts.string("sasl_username")?;
    let mut password = opts.string("sasl_password")?.map(Secret);
    if let Some(jaas) = &jaas {
        // Logstash's way to give PLAIN/SCRAM credentials: a JAAS line with
        // username="..." password="...". librdkafka takes them as properties.
        let (u, p) = jaas_credentials(jaas);
        if u.is_none() || p.is_none() {
            return Err(opts.option_error(
                "sasl_jaas_config",
                &jaas_pos,
                "expected username=\"...\" and password=\"...\" (a login module with credentials); \
                 or use sasl_username and sasl_password",
            ));
        }
        username = username.or(u);
        password = password.or(p.map(Secret));
    }
    if sasl {
        match mechanism.as_str() {
            "PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512" | "OAUTHBEARER" => {}
            "GSSAPI" => {
                return Err(opts.option_error(
                    "sasl_mechanism",
                    &mech_pos,
                    "GSSAPI (Kerberos) is not built into Sluice; use PLAIN, SCRAM-SHA-256, \
                     SCRAM-SHA-512 or OAUTHBEARER",
                ))
            }
            other => {
                return Err(opts.option_error(
                    "sasl_mechanism",
                    &mech_pos,
                    format!(
                        "`{other}` is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER"
                    ),
                ))
            }
        }
        props.set("sasl.mechanism", mechanism.clone());
        if let Some(u) = username {
            props.set("sasl.username", u);
        }
        if let Some(p) = password {
            props.set_secret("sasl.password", p);
        }
        if let Some(s) = service {
            props.set("sasl.kerberos.service.name", s);
        }
    }

    // SSL: librdkafka reads PEM and PKCS#12, not Java key stores.
    let ts_type_pos = opts.value_pos("ssl_truststore_type");
    let ts_type = opts.string("ssl_truststore_type")?;
    if let Some(t) = &ts_type {
        if !t.eq_ignore_ascii_case("PEM") {
            return Err(opts.option_error(
                "ssl_truststore_type",
                &ts_type_pos,
                format!("`{t}` trust stores cannot be read by Sluice; give a PEM file of CA certificates"),
            ));
        }
    }
    let ts_location = opts.string("ssl_truststore_location")?;
    let _ = opts.string("ssl_truststore_password")?; // PEM files carry no password
    let ks_type_pos = opts.value_pos("ssl_keystore_type");
    let ks_type = opts.string("ssl_keystore_type")?;
    if let Some(t) = &ks_type {
        if !t.eq_ignore_ascii_case("PKCS12") {
            return Err(opts.option_error(
                "ssl_keystore_type",
                &ks_type_pos,
                format!("`{t}` key stores cannot be read by Sluice; use a PKCS12 file"),
            ));
        }
    }
    let ks_location = opts.string("ssl_keystore_location")?;
    let ks_password = opts.string("ssl_keystore_password")?.map(Secret);
    let key_password = opts.string("ssl_key_password")?.map(Secret);
    let endpoint = opts.string_or("ssl_endpoint_identification_algorithm", "https")?;
    let cert = opts.string("ssl_certificate_location")?;
    let key = opts.string("ssl_key_location")?;
    if ssl {
        if let Some(l) = ts_location {
            props.set("ssl.ca.location", l);
        }
        if let Some(l) = ks_location {
            props.set("ssl.keystore.location", l);
        }
        if let Some(p) = ks_password {
            props.set_secret("ssl.keystore.password", p);
        }
        if let Some(l) = cert {
            props.set("ssl.certificate.location", l);
        }
        if let Some(l) = key {
            props.set("ssl.key.location", l);
        }
        if let Some(p) = key_password {
            props.set_secret("ssl.key.password", p);
        }
        props.set(
            "ssl.endpoint.identification.algorithm",
            if endpoint.is_empty() { "none" } else { "https" },
        );
    }
    Ok(())
}

/// `username="..."` and `password="..."` out of a JAAS configuration line.
fn jaas_credentials(jaas: &str) -> (Option<String>, Option<String>) {
    let find = |name: &str| -> Option<String> {
        let mut rest = jaas;
        while let Some(i) = rest.find(name) {
            let before_ok = i == 0 || !rest.as_bytes()[i - 1].is_ascii_alphanumeric();
            let after = rest[i + name.len()..].trim_start();
            if before_ok {
                if let Some(after) = after.strip_prefix('=') {
                    let after = after.trim_start();
                    if let Some(quoted) = after.strip_prefix('"') {
                        return quoted.find('"').map(|end| quoted[..end].to_string());
                    }
                }
            }
            rest = &rest[i + name.len()..];
        }
        None
    };
    (find("username"), find("password"))
}

/// Copies a pass-through hash (`producer_config`, `consumer_config`) into `props`,
/// after Sluice's own settings so that it can override them.
pub fn pass_through(
    opts: &mut Options,
    option: &str,
    props: &mut ClientProperties,
    reserved: &[&str],
) -> Result<(), Error> {
    let pos = opts.value_pos(option);
    for (k, v) in opts.string_map(option)?.unwrap_or_default() {
        if reserved.contains(&k.as_str()) {
            return Err(opts.option_error(
                option,
                &pos,
                format!("`{k}` is managed by Sluice and cannot be overridden"),
            ));
        }
        if k.contains("password") || k.contains("secret") {
            props.set_secret(&k, Secret(v));
        } else {
            props.set(&k, v);
        }
    }
    Ok(())
}

/// Checks the properties against librdkafka itself, so that a wrong pass-through key or
/// value is a load-time error at the plugin, not a failure at run time.
pub fn validate(opts: &Options, props: &ClientProperties, producer: bool) -> Result<(), Error> {
    let cfg = props.to_client_config();
    let result = if producer {
        cfg.create::<rdkafka::producer::BaseProducer>().map(|_| ())
    } else {
        cfg.create::<rdkafka::consumer::BaseConsumer>().map(|_| ())
    };
    result.map_err(|e| opts.error(format!("{} {}: {e}", opts.plugin_name(), opts.kind())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(body: &str) -> Result<ClientProperties, Error> {
        let mut o = Options::from_text("kafka", "output", body)?;
        let p = common_properties(&mut o)?;
        o.finish()?;
        Ok(p)
    }

    #[test]
    fn defaults_follow_logstash() {
        let p = props("").unwrap();
        assert_eq!(p.get("bootstrap.servers"), Some("localhost:9092"));
        assert_eq!(p.get("security.protocol"), Some("plaintext"));
        assert_eq!(p.get("client.dns.lookup"), Some("use_all_dns_ips"));
        assert_eq!(p.get("sasl.mechanism"), None);
    }

    #[test]
    fn sasl_credentials_from_jaas_and_secrets_redacted() {
        let p = props(
            r#"security_protocol => "SASL_SSL" sasl_mechanism => "SCRAM-SHA-512"
               sasl_jaas_config => 'org.apache.kafka.common.security.scram.ScramLoginModule required username=x username="alice" password="s3cr3t";'
               ssl_truststore_location => "/etc/ca.pem""#,
        )
        .unwrap();
        assert_eq!(p.get("sasl.username"), Some("alice"));
        assert_eq!(p.get("sasl.password"), Some("s3cr3t"));
        assert_eq!(p.get("ssl.ca.location"), Some("/etc/ca.pem"));
        let shown = format!("{p:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn what_librdkafka_cannot_do_is_refused_with_the_alternative() {
        let e = props(r#"security_protocol => "SASL_PLAINTEXT""#).unwrap_err();
        assert!(e.to_string().contains("GSSAPI"), "{e}");
        let e = props(r#"ssl_truststore_type => "JKS""#).unwrap_err();
        assert!(e.to_string().contains("PEM"), "{e}");
        let e = props(r#"security_protocol => "TLS""#).unwrap_err();
        assert!(e.to_string().contains("PLAINTEXT"), "{e}");
    }
}
