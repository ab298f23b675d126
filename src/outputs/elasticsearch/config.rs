//! The output's configuration: Logstash's elasticsearch output options, read and checked.

use super::bulk::Action;
use super::client::{Auth, Tls};
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

/// An index template to install at start.
#[derive(Debug, Clone)]
pub struct TemplateSpec {
    pub name: String,
    pub body: serde_json::Value,
    pub overwrite: bool,
}

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
        if let Some(i) = index {
            cfg.index = i;
        }

        let user = opts.string("user")?;
        let password = opts.secret("password")?;
        let api_key = opts.secret("api_key")?;
        cfg.auth =
            match (user, password, api_key) {
                (None, None, None) => Auth::None,
                (Some(user), Some(password), None) => Auth::Basic { user, password },
                (None, None, Some(key)) => Auth::ApiKey(key),
                (Some(_), None, _) | (None, Some(_), _) => {
                    return Err(opts.error("elasticsearch output: give both `user` and `password`"))
                }
                (Some(_), Some(_), Some(_)) => return Err(opts.error(
                    "elasticsearch output: give either `user`/`password` or `api_key`, not both",
                )),
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
        let mode_pos = opts.value_pos("ssl_verification_mode");
        cfg.tls.verify = match opts.string_or("ssl_verification_mode", "full")?.as_str() {
            "full" => true,
            "none" => false,
            other => {
                return Err(opts.option_error(
                    "ssl_verification_mode",
                    &mode_pos,
                    format!("expected full or none, got `{other}`"),
                ))
            }
        };
        cfg.http_compression = opts.bool_or("http_compression", false)?;
        cfg.timeout = seconds(opts, "timeout", 60)?;
        cfg.retry = RetryPolicy::from_options(opts)?;
        cfg.resurrect_delay = seconds(opts, "resurrect_delay", 5)?;

        let manage = opts.bool_or("manage_template", true)?;
        let tpl_pos = opts.value_pos("template");
        let template_path = opts.string("template")?;
        let template_name = opts.string_or("template_name", "sluice")?;
        let overwrite = opts.bool_or("template_overwrite", false)?;
        if let (true, Some(path)) = (manage, template_path) {
            let text = std::fs::read(&path).map_err(|e| {
                opts.option_error("template", &tpl_pos, format!("cannot read {path}: {e}"))
            })?;
            let body: serde_json::Value = serde_json::from_slice(&text).map_err(|e| {
                opts.option_error("template", &tpl_pos, format!("{path} is not JSON: {e}"))
            })?;
            cfg.template = Some(TemplateSpec {
                name: template_name,
                body,
                overwrite,
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
        Ok(cfg)
    }
}
