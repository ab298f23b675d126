//! The output's configuration: Logstash's elasticsearch output options, read and checked.

use super::bulk::{Action, VersionType};
use super::client::{Auth, ClientCertificate, Tls};
use crate::config::Error;
use crate::event::sprintf::Template;
use crate::outputs::RetryPolicy;
use crate::plugin::{Options, Secret};
use std::path::PathBuf;
use std::time::Duration;

/// Logstash's target bulk size.
pub const DEFAULT_BULK_MAX_BYTES: usize = 20 << 20;

/// Data stream naming (`data_stream => true`).
#[derive(Debug, Clone)]
pub struct DataStream {
    pub kind: String,
    pub dataset: String,
    pub namespace: String,
    /// Take type/dataset/namespace from the event's `[data_stream]` fields when set.
    pub auto_routing: bool,
    /// Add the `[data_stream]` fields to documents that lack them.
    pub sync_fields: bool,
}

/// Which template API a template goes to (`template_api`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateApi {
    /// By the template's shape: composable when it has a `template` object.
    Auto,
    /// `_template`.
    Legacy,
    /// `_index_template`.
    Composable,
}

/// An index template to install at start.
#[derive(Debug, Clone)]
pub struct TemplateSpec {
    pub name: String,
    pub body: serde_json::Value,
    pub overwrite: bool,
    pub api: TemplateApi,
}

impl TemplateSpec {
    /// The endpoint the template goes to.
    pub fn endpoint(&self) -> &'static str {
        match self.api {
            TemplateApi::Legacy => "_template",
            TemplateApi::Composable => "_index_template",
            TemplateApi::Auto if self.body.get("template").is_some_and(|t| t.is_object()) => {
                "_index_template"
            }
            TemplateApi::Auto => "_template",
        }
    }
}

/// Where a scripted update's script comes from (`script_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScriptKind {
    /// `inline`: `script` is the script's source.
    Inline,
    /// `indexed`: `script` is the id of a script stored in the cluster.
    Indexed,
}

/// A scripted update (`script` with `action => update`): the event goes to the script
/// as `params.<script_var_name>`.
#[derive(Debug, Clone)]
pub struct ScriptSpec {
    /// The source or stored id, `%{field}` expanded per event.
    pub script: Template,
    pub kind: ScriptKind,
    /// `script_lang`; none when given empty.
    pub lang: Option<String>,
    pub var_name: String,
    /// `scripted_upsert`: the script also creates missing documents.
    pub scripted_upsert: bool,
}

/// Logstash's elasticsearch options Sluice refuses, with why. A configuration that
/// names one fails at load instead of running without what it asked for.
const REFUSED: &[(&str, &str)] = &[
    ("cloud_id", "Elastic Cloud ids are not supported: give the deployment's URL in `hosts`"),
    ("cloud_auth", "Elastic Cloud credentials are not supported: use `user`/`password` or `api_key`"),
    ("ssl_keystore_path", "PKCS#12/JKS keystores are not supported: give the client certificate and its PKCS#8 key as PEM files in `ssl_certificate` and `ssl_key` (`openssl pkcs12 -in keystore.p12 -nokeys -out client.pem` and `openssl pkcs12 -in keystore.p12 -nocerts -nodes | openssl pkcs8 -topk8 -nocrypt -out client.key`)"),
    ("ssl_keystore_type", "PKCS#12/JKS keystores are not supported: give PEM files in `ssl_certificate` and `ssl_key`"),
    ("ssl_keystore_password", "PKCS#12/JKS keystores are not supported: give PEM files in `ssl_certificate` and `ssl_key`"),
    ("ssl_truststore_path", "JKS/PKCS12 truststores are not supported: give PEM files in `ssl_certificate_authorities`"),
    ("ssl_truststore_type", "JKS/PKCS12 truststores are not supported: give PEM files in `ssl_certificate_authorities`"),
    ("ssl_truststore_password", "JKS/PKCS12 truststores are not supported: give PEM files in `ssl_certificate_authorities`"),
    ("ssl_cipher_suites", "the TLS library's own safe cipher suites are used; choosing them is not supported"),
    ("cacert", "obsolete in Logstash: use `ssl_certificate_authorities`"),
    ("truststore", "obsolete in Logstash: use PEM files in `ssl_certificate_authorities`"),
    ("truststore_password", "obsolete in Logstash: use PEM files in `ssl_certificate_authorities`"),
    ("keystore", "obsolete in Logstash: use PEM files in `ssl_certificate` and `ssl_key`"),
    ("keystore_password", "obsolete in Logstash: use PEM files in `ssl_certificate` and `ssl_key`"),
    ("parameters", "extra URL query parameters are not supported yet"),
    ("parent", "parent/child documents are not supported"),
    ("join_field", "parent/child documents are not supported"),
    ("drop_error_types", "every document the cluster refuses goes to the dead letter queue; dropping by error type is not supported"),
];

/// Logstash options that tune what Sluice does its own way; accepted so that configs
/// move over, and without effect (the reason is logged at debug level).
const WITHOUT_EFFECT: &[(&str, &str)] = &[
    ("pool_max", "the HTTP client keeps its own connection pool; `max_inflight` bounds concurrent requests"),
    ("pool_max_per_route", "the HTTP client keeps its own connection pool; `max_inflight` bounds concurrent requests"),
    ("validate_after_inactivity", "idle connections are checked by the HTTP client itself"),
    ("healthcheck_path", "a dead host is tried again after `resurrect_delay` with the next request, not a health check"),
    ("failure_type_logging_whitelist", "failures are logged when they start and change, not per document"),
    ("silence_errors_in_log", "failures are logged when they start and change, not per document"),
    ("sniffing_delay", "sniffing is off"),
    ("sniffing_path", "sniffing is off"),
];

/// Everything the output is configured with; [`ElasticsearchOutput::build`] fills it
/// from Logstash's options.
#[derive(Debug, Clone)]
pub struct Config {
    pub hosts: Vec<String>,
    pub index: Template,
    pub document_id: Option<Template>,
    pub action: Template,
    pub pipeline: Option<Template>,
    pub routing: Option<Template>,
    pub data_stream: Option<DataStream>,
    pub doc_as_upsert: bool,
    pub auth: Auth,
    pub tls: Tls,
    pub http_compression: bool,
    pub timeout: Duration,
    pub retry: RetryPolicy,
    pub resurrect_delay: Duration,
    pub template: Option<TemplateSpec>,
    pub dlq_custom_codes: Vec<u16>,
    pub max_inflight: usize,
    pub bulk_max_bytes: usize,
    /// `dlq_path`: a dead letter queue directory of this output's own.
    pub dlq_dir: Option<PathBuf>,
    /// `custom_headers`: sent with every request. The values may be credentials, so
    /// they are held as secrets and never printed.
    pub custom_headers: Vec<(String, Secret)>,
    /// `version`: the document's external version, `%{field}` expanded per event.
    pub version: Option<Template>,
    pub version_type: Option<VersionType>,
    /// `retry_on_conflict`, written on update actions.
    pub retry_on_conflict: u32,
    /// `upsert`: the JSON document an update creates when the id is missing.
    pub upsert: Option<Template>,
    pub script: Option<ScriptSpec>,
    /// Index lifecycle management, when in use: set up before the first bulk request.
    pub ilm: Option<Ilm>,
}

/// What ILM sets up in the cluster, as Logstash does before its first write: the
/// policy (only the default one is created), and the rollover alias with its first
/// index, which events are then written through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ilm {
    /// `ilm_rollover_alias`: the write alias events go to.
    pub rollover_alias: String,
    /// `ilm_pattern`: the suffix of the first index's name, date math allowed.
    pub pattern: String,
    /// `ilm_policy`.
    pub policy: String,
}

/// Logstash's default policy name: the only one the output creates when missing.
pub const DEFAULT_ILM_POLICY: &str = "logstash-policy";

impl Ilm {
    /// The first index, in Elasticsearch's date math syntax (`<logstash-{now/d}-000001>`).
    pub fn bootstrap_index(&self) -> String {
        format!("<{}-{}>", self.rollover_alias, self.pattern)
    }

    /// The policy Logstash creates when `ilm_policy` is its default and the cluster has
    /// none by that name: roll over at 25 GB or 30 days.
    pub fn default_policy() -> serde_json::Value {
        serde_json::json!({
            "policy": {"phases": {"hot": {"actions": {"rollover": {"max_size": "25gb", "max_age": "30d"}}}}}
        })
    }
}

/// `ilm_enabled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IlmEnabled {
    True,
    False,
    Auto,
}

impl Config {
    /// Defaults for `hosts`.
    pub fn new(hosts: Vec<String>) -> Config {
        Config {
            hosts,
            index: parse_template("logs-%{+yyyy.MM.dd}"),
            document_id: None,
            action: parse_template("index"),
            pipeline: None,
            routing: None,
            data_stream: None,
            doc_as_upsert: false,
            auth: Auth::None,
            tls: Tls {
                enabled: None,
                certificate_authorities: Vec::new(),
                verify: true,
                client_certificate: None,
            },
            http_compression: false,
            timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            resurrect_delay: Duration::from_secs(5),
            template: None,
            dlq_custom_codes: Vec::new(),
            max_inflight: 4,
            bulk_max_bytes: DEFAULT_BULK_MAX_BYTES,
            dlq_dir: None,
            custom_headers: Vec::new(),
            version: None,
            version_type: None,
            retry_on_conflict: 1,
            upsert: None,
            script: None,
            ilm: None,
        }
    }
}

/// An event that cannot be sent at all, by position.
fn parse_template(s: &str) -> Template {
    // Only called with the constant defaults above, which parse.
    Template::parse(s).unwrap_or_else(|_| unreachable!("default template `{s}` parses"))
}

fn seconds(opts: &mut Options, name: &str, default: u64) -> Result<Duration, Error> {
    crate::outputs::seconds(opts, name, Duration::from_secs(default))
}

impl Config {
    /// Reads Logstash's options.
    pub fn from_options(opts: &mut Options) -> Result<Config, Error> {
        let hosts = opts
            .string_list("hosts")?
            .unwrap_or_else(|| vec!["//127.0.0.1".to_string()]);
        if hosts.is_empty() {
            return Err(opts.error("elasticsearch output: `hosts` is empty"));
        }
        let mut cfg = Config::new(hosts);
        let index_pos = opts.value_pos("index");
        let index = opts.template("index")?;
        cfg.document_id = opts.template("document_id")?;
        let action_pos = opts.value_pos("action");
        let action = opts.template("action")?;
        if let Some(a) = &action {
            if a.is_static() && Action::parse(a.source()).is_none() {
                return Err(opts.option_error(
                    "action",
                    &action_pos,
                    format!(
                        "expected index, create, update or delete, got `{}`",
                        a.source()
                    ),
                ));
            }
        }
        cfg.pipeline = opts.template("pipeline")?;
        cfg.routing = opts.template("routing")?;
        cfg.doc_as_upsert = opts.bool_or("doc_as_upsert", false)?;

        let ds_pos = opts.value_pos("data_stream");
        let data_stream = match opts.string("data_stream")?.as_deref() {
            None | Some("false") | Some("auto") => false,
            Some("true") => true,
            Some(other) => {
                return Err(opts.option_error(
                    "data_stream",
                    &ds_pos,
                    format!("expected true, false or auto, got `{other}`"),
                ))
            }
        };
        let ds = DataStream {
            kind: opts.string_or("data_stream_type", "logs")?,
            dataset: opts.string_or("data_stream_dataset", "generic")?,
            namespace: opts.string_or("data_stream_namespace", "default")?,
            auto_routing: opts.bool_or("data_stream_auto_routing", true)?,
            sync_fields: opts.bool_or("data_stream_sync_fields", true)?,
        };
        if data_stream {
            if index.is_some() {
                return Err(opts.option_error(
                    "index",
                    &index_pos,
                    "cannot be set together with `data_stream => true`",
                ));
            }
            if action.as_ref().is_some_and(|a| a.source() != "create") {
                return Err(opts.option_error(
                    "action",
                    &action_pos,
                    "data streams only accept `create`",
                ));
            }
            cfg.data_stream = Some(ds);
            cfg.action = parse_template("create");
        } else if let Some(a) = action {
            cfg.action = a;
        }
        let index_given = index.is_some();
        if let Some(i) = index {
            cfg.index = i;
        }

        let user = opts.string("user")?;
        let password = opts.secret("password")?;
        let api_key = opts.secret("api_key")?;
        cfg.auth = match (user, password, api_key) {
            (None, None, None) => Auth::None,
            (Some(user), Some(password), None) => Auth::Basic { user, password },
            (None, None, Some(key)) => Auth::ApiKey(key),
            // As Logstash: Basic credentials need both; one alone sends none.
            (Some(_), None, None) | (None, Some(_), None) => {
                tracing::warn!("elasticsearch output: `user` or `password` without the other: no credentials are sent");
                Auth::None
            }
            (Some(_), None, Some(key)) | (None, Some(_), Some(key)) => {
                tracing::warn!("elasticsearch output: `user` or `password` without the other is ignored; `api_key` is used");
                Auth::ApiKey(key)
            }
            (Some(_), Some(_), Some(_)) => {
                return Err(opts.error(
                    "elasticsearch output: give either `user`/`password` or `api_key`, not both",
                ))
            }
        };
        cfg.tls.enabled = opts.bool("ssl_enabled")?.or(opts.bool("ssl")?);
        // Credentials never travel in clear text by accident, and `https://` never
        // silently becomes plain http.
        let allow_insecure_auth = opts.bool_or("allow_insecure_auth", false)?;
        let hosts_pos = opts.value_pos("hosts");
        for host in &cfg.hosts {
            crate::plugin::secret::check_transport(
                host,
                cfg.tls.enabled,
                !matches!(cfg.auth, Auth::None),
                allow_insecure_auth,
            )
            .map_err(|e| opts.option_error("hosts", &hosts_pos, e))?;
        }
        // Credentials in a host URL (`https://user:password@es:9200`) become the
        // Basic credentials, held as a secret; the URL kept is the one without them,
        // since HTTP client errors and logs print URLs.
        let mut url_auth: Option<(String, Secret)> = None;
        for host in &mut cfg.hosts {
            let (stripped, creds) = crate::plugin::secret::split_userinfo(host);
            *host = stripped;
            let Some(creds) = creds else { continue };
            if !matches!(cfg.auth, Auth::None) {
                return Err(opts.option_error(
                    "hosts",
                    &hosts_pos,
                    "a host URL holds credentials and `user`/`password` or `api_key` are given too: keep one",
                ));
            }
            match &url_auth {
                Some(seen) if *seen != creds => {
                    return Err(opts.option_error(
                        "hosts",
                        &hosts_pos,
                        "host URLs hold different credentials: give the same to every host, or `user`/`password`",
                    ))
                }
                _ => url_auth = Some(creds),
            }
        }
        if let Some((user, password)) = url_auth {
            cfg.auth = Auth::Basic { user, password };
        }
        cfg.tls.certificate_authorities = opts
            .string_list("ssl_certificate_authorities")?
            .unwrap_or_default()
            .into_iter()
            .map(PathBuf::from)
            .collect();
        cfg.tls.client_certificate = client_certificate(opts)?;
        let mode_pos = opts.value_pos("ssl_verification_mode");
        let old_pos = opts.value_pos("ssl_certificate_verification");
        let old_verify = opts.bool("ssl_certificate_verification")?;
        let mode = opts.string("ssl_verification_mode")?;
        cfg.tls.verify = match (mode.as_deref(), old_verify) {
            (Some(_), Some(_)) => {
                return Err(opts.option_error(
                    "ssl_certificate_verification",
                    &old_pos,
                    "is the old name of `ssl_verification_mode`: give only one",
                ))
            }
            (None, Some(v)) => {
                tracing::warn!("elasticsearch output: `ssl_certificate_verification` is the old name of `ssl_verification_mode` (true: full, false: none)");
                v
            }
            (None | Some("full"), None) => true,
            (Some("none"), None) => false,
            (Some(other), None) => {
                return Err(opts.option_error(
                    "ssl_verification_mode",
                    &mode_pos,
                    format!("expected full or none, got `{other}`"),
                ))
            }
        };
        cfg.http_compression = opts.bool_or("http_compression", false)?;
        let level_pos = opts.value_pos("compression_level");
        match opts.int("compression_level")? {
            None => {}
            Some(0) => cfg.http_compression = false,
            Some(1..=9) => cfg.http_compression = true,
            Some(other) => {
                return Err(opts.option_error(
                    "compression_level",
                    &level_pos,
                    format!("expected 0 (off) to 9, got {other}"),
                ))
            }
        }
        cfg.timeout = seconds(opts, "timeout", 60)?;
        cfg.retry = RetryPolicy::from_options(opts)?;
        cfg.resurrect_delay = seconds(opts, "resurrect_delay", 5)?;

        let manage = opts.bool_or("manage_template", true)?;
        let tpl_pos = opts.value_pos("template");
        let template_path = opts.string("template")?;
        let template_name = opts.string_or("template_name", "sluice")?;
        let overwrite = opts.bool_or("template_overwrite", false)?;
        let api_pos = opts.value_pos("template_api");
        let api = match opts.string_or("template_api", "auto")?.as_str() {
            "auto" => TemplateApi::Auto,
            "legacy" => TemplateApi::Legacy,
            "composable" => TemplateApi::Composable,
            other => {
                return Err(opts.option_error(
                    "template_api",
                    &api_pos,
                    format!("expected auto, legacy or composable, got `{other}`"),
                ))
            }
        };
        let template_pattern = opts.string("template_pattern")?;
        if template_pattern.is_some() && (!manage || template_path.is_none()) {
            tracing::warn!("elasticsearch output: `template_pattern` has no effect without a `template` file to install");
        }
        if let (true, Some(path)) = (manage, template_path) {
            let text = std::fs::read(&path).map_err(|e| {
                opts.option_error("template", &tpl_pos, format!("cannot read {path}: {e}"))
            })?;
            let body: serde_json::Value = serde_json::from_slice(&text).map_err(|e| {
                opts.option_error("template", &tpl_pos, format!("{path} is not JSON: {e}"))
            })?;
            let body = with_index_patterns(body, template_pattern.as_deref())
                .map_err(|e| opts.option_error("template", &tpl_pos, format!("{path}: {e}")))?;
            cfg.template = Some(TemplateSpec {
                name: template_name,
                body,
                overwrite,
                api,
            });
        }

        let codes_pos = opts.value_pos("dlq_custom_codes");
        for code in opts.string_list("dlq_custom_codes")?.unwrap_or_default() {
            let c: u16 = code
                .trim()
                .parse()
                .ok()
                .filter(|c| (100..=599).contains(c))
                .ok_or_else(|| {
                    opts.option_error(
                        "dlq_custom_codes",
                        &codes_pos,
                        format!("`{code}` is not an HTTP status"),
                    )
                })?;
            cfg.dlq_custom_codes.push(c);
        }
        cfg.max_inflight = opts.usize_or("max_inflight", 4)?.max(1);
        cfg.bulk_max_bytes = opts
            .usize_or("bulk_max_bytes", DEFAULT_BULK_MAX_BYTES)?
            .max(1);
        cfg.dlq_dir = opts.string("dlq_path")?.map(PathBuf::from);

        cfg.custom_headers = custom_headers(opts)?;
        versioning(opts, &mut cfg)?;
        updates(opts, &mut cfg)?;

        let ecs = crate::plugin::ecs::Ecs::from_options(opts)?;
        ilm(opts, &mut cfg, index_given, ecs)?;
        if let Some(t) = opts.template("document_type")? {
            tracing::warn!(
                document_type = %t.source(),
                "elasticsearch output: document_type is ignored: Elasticsearch 7 deprecated mapping types and 8 removed them, so no type is sent"
            );
        }
        compatibility_options(opts)?;
        Ok(cfg)
    }
}

/// The template's `index_patterns`: its own, else those of the ES 5 style `template`
/// string, else `template_pattern` (an option of older Logstash configs).
fn with_index_patterns(
    mut body: serde_json::Value,
    template_pattern: Option<&str>,
) -> Result<serde_json::Value, String> {
    let Some(obj) = body.as_object_mut() else {
        return Err("an index template is a JSON object".to_string());
    };
    if !obj.contains_key("index_patterns") {
        if let Some(serde_json::Value::String(p)) = obj.get("template").cloned() {
            obj.remove("template");
            obj.insert("index_patterns".to_string(), serde_json::json!([p]));
        } else if let Some(p) = template_pattern {
            obj.insert("index_patterns".to_string(), serde_json::json!([p]));
        }
    }
    Ok(body)
}

/// `ssl_certificate` + `ssl_key`: the client certificate for mutual TLS. Only the paths
/// are kept here (and may be printed); the files are read when the client is built.
fn client_certificate(opts: &mut Options) -> Result<Option<ClientCertificate>, Error> {
    let cert_pos = opts.value_pos("ssl_certificate");
    let key_pos = opts.value_pos("ssl_key");
    let cert = opts.string("ssl_certificate")?.filter(|s| !s.is_empty());
    let key = opts.string("ssl_key")?.filter(|s| !s.is_empty());
    match (cert, key) {
        (None, None) => Ok(None),
        (Some(certificate), Some(key)) => Ok(Some(ClientCertificate {
            certificate: PathBuf::from(certificate),
            key: PathBuf::from(key),
        })),
        (Some(_), None) => Err(opts.option_error(
            "ssl_certificate",
            &cert_pos,
            "needs `ssl_key`, the client certificate's private key (PEM, PKCS#8)",
        )),
        (None, Some(_)) => Err(opts.option_error(
            "ssl_key",
            &key_pos,
            "needs `ssl_certificate`, the client certificate it belongs to (PEM)",
        )),
    }
}

/// `custom_headers`: names and values checked here, so a bad one fails at load.
fn custom_headers(opts: &mut Options) -> Result<Vec<(String, Secret)>, Error> {
    let pos = opts.value_pos("custom_headers");
    let mut out = Vec::new();
    for (name, value) in opts.string_map("custom_headers")?.unwrap_or_default() {
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(opts.option_error(
                "custom_headers",
                &pos,
                format!("`{name}` is not a valid HTTP header name"),
            ));
        }
        // The value is not quoted back: it may be a credential.
        if reqwest::header::HeaderValue::from_str(&value).is_err() {
            return Err(opts.option_error(
                "custom_headers",
                &pos,
                format!("the value of `{name}` is not a valid HTTP header value (control characters or non-ASCII bytes)"),
            ));
        }
        out.push((name, Secret::new(value)));
    }
    Ok(out)
}

/// `version` and `version_type`: external versioning, written on every action line.
fn versioning(opts: &mut Options, cfg: &mut Config) -> Result<(), Error> {
    let version_pos = opts.value_pos("version");
    let type_pos = opts.value_pos("version_type");
    cfg.version = opts.template("version")?.filter(|t| !t.source().is_empty());
    cfg.version_type = match opts.string("version_type")?.as_deref() {
        None => None,
        Some("force") => {
            return Err(opts.option_error(
                "version_type",
                &type_pos,
                "`force` was removed in Elasticsearch 6 (and OpenSearch never had it): use external or external_gte",
            ))
        }
        Some(text) => Some(VersionType::parse(text).ok_or_else(|| {
            opts.option_error(
                "version_type",
                &type_pos,
                format!("expected internal, external, external_gt or external_gte, got `{text}`"),
            )
        })?),
    };
    if let Some(v) = &cfg.version {
        if v.is_static() && v.source().trim().parse::<i64>().map_or(true, |n| n < 0) {
            return Err(opts.option_error(
                "version",
                &version_pos,
                format!(
                    "`{}` is not a version: a non-negative integer, or a %{{field}} that holds one",
                    v.source()
                ),
            ));
        }
        if !cfg.version_type.is_some_and(VersionType::is_external) {
            tracing::warn!("elasticsearch output: `version` without `version_type => external` (or external_gte): Elasticsearch 7+ and OpenSearch refuse internal versions on index actions");
        }
    }
    if cfg.data_stream.is_some() && (cfg.version.is_some() || cfg.version_type.is_some()) {
        let pos = if cfg.version.is_some() {
            version_pos
        } else {
            type_pos
        };
        return Err(opts.option_error(
            "version",
            &pos,
            "`version`/`version_type` cannot be set together with `data_stream => true`",
        ));
    }
    Ok(())
}

/// The update options: `retry_on_conflict`, `upsert` and the scripted update ones.
fn updates(opts: &mut Options, cfg: &mut Config) -> Result<(), Error> {
    let pos = opts.value_pos("retry_on_conflict");
    cfg.retry_on_conflict = match opts.int("retry_on_conflict")? {
        None => 1,
        Some(n) => u32::try_from(n).map_err(|_| {
            opts.option_error(
                "retry_on_conflict",
                &pos,
                format!("expected 0 or a positive number, got {n}"),
            )
        })?,
    };
    let upsert_pos = opts.value_pos("upsert");
    cfg.upsert = opts.template("upsert")?.filter(|t| !t.source().is_empty());
    if let Some(u) = &cfg.upsert {
        if u.is_static()
            && !serde_json::from_str::<serde_json::Value>(u.source()).is_ok_and(|v| v.is_object())
        {
            return Err(opts.option_error(
                "upsert",
                &upsert_pos,
                "must be a JSON object (the document an update creates when the id is missing)",
            ));
        }
    }
    let script_pos = opts.value_pos("script");
    let script = opts.template("script")?.filter(|t| !t.source().is_empty());
    let type_pos = opts.value_pos("script_type");
    let kind = match opts.string_list("script_type")?.as_deref() {
        None => ScriptKind::Inline,
        Some([one]) if one == "inline" => ScriptKind::Inline,
        Some([one]) if one == "indexed" => ScriptKind::Indexed,
        Some([one]) if one == "file" => {
            return Err(opts.option_error(
                "script_type",
                &type_pos,
                "`file` scripts were removed in Elasticsearch 6: store the script in the cluster (`PUT _scripts/<id>`) and use `script_type => indexed`",
            ))
        }
        Some(other) => {
            return Err(opts.option_error(
                "script_type",
                &type_pos,
                format!("expected inline or indexed, got `{}`", other.join(", ")),
            ))
        }
    };
    let lang = opts.string_or("script_lang", "painless")?;
    let var_name = opts.string_or("script_var_name", "event")?;
    let scripted_upsert = opts.bool_or("scripted_upsert", false)?;
    let Some(script) = script else {
        if scripted_upsert {
            tracing::warn!(
                "elasticsearch output: `scripted_upsert` has no effect without `script`"
            );
        }
        return Ok(());
    };
    if cfg.data_stream.is_some() {
        return Err(opts.option_error(
            "script",
            &script_pos,
            "scripted updates cannot be used with `data_stream => true` (data streams only take `create`)",
        ));
    }
    if cfg.action.is_static() && cfg.action.source() != "update" {
        tracing::warn!(action = %cfg.action.source(), "elasticsearch output: `script` only applies to `action => update`");
    }
    cfg.script = Some(ScriptSpec {
        script,
        kind,
        lang: Some(lang).filter(|l| !l.is_empty()),
        var_name,
        scripted_upsert,
    });
    Ok(())
}

/// `ilm_*`: when ILM is in use, events go to the rollover alias, and the output sets up
/// the policy and the alias's first index before its first write (see
/// [`Ilm`]). OpenSearch has no ILM API (it has ISM): there, leave `ilm_enabled` unset
/// or false.
fn ilm(
    opts: &mut Options,
    cfg: &mut Config,
    index_given: bool,
    ecs: crate::plugin::ecs::Ecs,
) -> Result<(), Error> {
    let pos = opts.value_pos("ilm_enabled");
    let enabled = match opts.string("ilm_enabled")?.as_deref() {
        None | Some("auto") => IlmEnabled::Auto,
        Some("true") => IlmEnabled::True,
        Some("false") => IlmEnabled::False,
        Some(other) => {
            return Err(opts.option_error(
                "ilm_enabled",
                &pos,
                format!("expected true, false or auto, got `{other}`"),
            ))
        }
    };
    let alias = opts.string("ilm_rollover_alias")?;
    let alias_pos = opts.value_pos("ilm_rollover_alias");
    let pattern = opts.string_or("ilm_pattern", "{now/d}-000001")?;
    let policy = opts.string_or("ilm_policy", DEFAULT_ILM_POLICY)?;
    if let Some(a) = &alias {
        if a.contains("%{") {
            return Err(opts.option_error(
                "ilm_rollover_alias",
                &alias_pos,
                "cannot hold %{field} references (as in Logstash)",
            ));
        }
    }
    // Logstash: ILM is used unless disabled or data streams are on, and then only
    // when `index` is its default or a rollover alias is given. Sluice's default
    // index is its own, so `auto` with neither set keeps it.
    let in_use = cfg.data_stream.is_none()
        && match enabled {
            IlmEnabled::False => false,
            IlmEnabled::Auto => alias.is_some(),
            IlmEnabled::True => !index_given || alias.is_some(),
        };
    if !in_use {
        return Ok(());
    }
    let alias = alias.unwrap_or_else(|| {
        if ecs.enabled() {
            "ecs-logstash"
        } else {
            "logstash"
        }
        .to_string()
    });
    if index_given {
        tracing::warn!(index = %cfg.index.source(), rollover_alias = %alias, "elasticsearch output: ILM replaces `index` with the rollover alias, as in Logstash");
    }
    if let Some(t) = cfg.template.as_mut() {
        with_lifecycle(&mut t.body, &alias, &policy);
    }
    cfg.index = Template::parse(&alias)
        .map_err(|e| opts.option_error("ilm_rollover_alias", &alias_pos, e))?;
    cfg.ilm = Some(Ilm {
        rollover_alias: alias,
        pattern,
        policy,
    });
    Ok(())
}

/// What Logstash does to the managed template under ILM: it matches the alias's
/// indices (`<alias>-*`) and names the policy and the alias in the index settings, so
/// that every index the rollover creates is managed too.
fn with_lifecycle(body: &mut serde_json::Value, alias: &str, policy: &str) {
    let Some(obj) = body.as_object_mut() else {
        return;
    };
    // The legacy pattern key (`"template": "logstash-*"`) gives way to index_patterns.
    if obj
        .get("template")
        .is_some_and(serde_json::Value::is_string)
    {
        obj.remove("template");
    }
    obj.insert(
        "index_patterns".to_string(),
        serde_json::json!([format!("{alias}-*")]),
    );
    // A composable template keeps its settings under `template`; a legacy one at the top.
    let holder = match obj.get_mut("template") {
        Some(serde_json::Value::Object(t)) => t,
        _ => obj,
    };
    let settings = holder
        .entry("settings")
        .or_insert_with(|| serde_json::json!({}));
    if let Some(settings) = settings.as_object_mut() {
        if settings.contains_key("index.lifecycle.name")
            || settings.contains_key("index.lifecycle.rollover_alias")
        {
            tracing::info!("elasticsearch output: overwriting the template's index lifecycle name and rollover alias, as ILM is in use");
        }
        settings.insert(
            "index.lifecycle.name".to_string(),
            serde_json::json!(policy),
        );
        settings.insert(
            "index.lifecycle.rollover_alias".to_string(),
            serde_json::json!(alias),
        );
    }
}

/// The rest of Logstash's option list: each accepted (with what it means here) or
/// refused with why.
fn compatibility_options(opts: &mut Options) -> Result<(), Error> {
    for (name, why) in REFUSED {
        if opts.has(name) {
            let pos = opts.value_pos(name);
            return Err(opts.option_error(name, &pos, format!("is not supported: {why}")));
        }
    }
    let sniffing_pos = opts.value_pos("sniffing");
    if opts.bool_or("sniffing", false)? {
        return Err(opts.option_error(
            "sniffing",
            &sniffing_pos,
            "is not supported: list the cluster's nodes in `hosts`",
        ));
    }
    for (name, why) in WITHOUT_EFFECT {
        if opts.take(name)?.is_some() {
            tracing::debug!(
                option = name,
                why,
                "elasticsearch output option accepted without effect"
            );
        }
    }
    let pos = opts.value_pos("dlq_on_failed_indexname_interpolation");
    if !opts.bool_or("dlq_on_failed_indexname_interpolation", true)? {
        return Err(opts.option_error(
            "dlq_on_failed_indexname_interpolation",
            &pos,
            "false is not supported: a document whose index name cannot be rendered goes to the dead letter queue",
        ));
    }
    let pos = opts.value_pos("proxy");
    if opts.string("proxy")?.is_some_and(|p| !p.is_empty()) {
        return Err(opts.option_error("proxy", &pos, "is not supported yet"));
    }
    for (name, default) in [("path", "/"), ("bulk_path", "/_bulk")] {
        let pos = opts.value_pos(name);
        if let Some(p) = opts.string(name)? {
            if !p.is_empty() && p != default {
                return Err(opts.option_error(
                    name,
                    &pos,
                    format!("is not supported: requests go to `{default}` of each host"),
                ));
            }
        }
    }
    let pos = opts.value_pos("ssl_supported_protocols");
    if let Some(protocols) = opts.string_list("ssl_supported_protocols")? {
        let mut p: Vec<&str> = protocols.iter().map(String::as_str).collect();
        p.sort_unstable();
        if !p.is_empty() && p != ["TLSv1.2", "TLSv1.3"] {
            return Err(opts.option_error(
                "ssl_supported_protocols",
                &pos,
                "Sluice speaks TLSv1.2 and TLSv1.3 (TLSv1.1 is not safe); choosing among them is not supported",
            ));
        }
    }
    Ok(())
}
