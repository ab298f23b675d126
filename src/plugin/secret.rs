//! Secrets in plugin options (`password`, `api_key`, credentials in URLs): a type that
//! cannot be printed by accident, and the helpers that keep them out of messages.
//!
//! A [`Secret`]'s `Display` and `Debug` are `<redacted>`; the value is read only where
//! it is used, with [`Secret::expose`]. Errors, `-t` output and logs that need to name
//! a URL use [`redact_url`].

pub use crate::config::error::{is_secret_option, REDACTED};
use std::borrow::Cow;

/// A secret option value. Printing it prints `<redacted>`.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself, for the one place that sends it (a header, a handshake).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(REDACTED)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({REDACTED})")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Secret {
        Secret(value)
    }
}

/// `url` with the password of its userinfo masked: `https://elastic:<redacted>@es:9200`.
/// Also masks a userinfo written without a scheme (`elastic:pw@es:9200`), as hosts
/// are often given. Borrowed when there is nothing to mask.
pub fn redact_url(url: &str) -> Cow<'_, str> {
    let (scheme, rest) = match url.find("://") {
        Some(at) => url.split_at(at + 3),
        None => ("", url),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let Some(at) = authority.rfind('@') else {
        return Cow::Borrowed(url);
    };
    let userinfo = &authority[..at];
    let user = match userinfo.find(':') {
        Some(colon) => &userinfo[..colon],
        // A lone userinfo may be a token: masked whole.
        None => "",
    };
    let mut out = String::with_capacity(url.len());
    out.push_str(scheme);
    if user.is_empty() {
        out.push_str(REDACTED);
    } else {
        out.push_str(user);
        out.push(':');
        out.push_str(REDACTED);
    }
    out.push_str(&authority[at..]);
    out.push_str(&rest[end..]);
    Cow::Owned(out)
}

/// `url` without its userinfo, and the credentials it held (percent-decoded): the
/// user and the password (empty when the userinfo has no `:`). The URL that is left
/// can reach an HTTP client, whose errors and logs print URLs, without the password.
pub fn split_userinfo(url: &str) -> (String, Option<(String, Secret)>) {
    let (scheme, rest) = match url.find("://") {
        Some(at) => url.split_at(at + 3),
        None => ("", url),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let Some(at) = authority.rfind('@') else {
        return (url.to_string(), None);
    };
    let userinfo = &authority[..at];
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let (user, password) = match userinfo.split_once(':') {
        Some((u, p)) => (decode(u), Secret::new(decode(p))),
        None => (decode(userinfo), Secret::default()),
    };
    let stripped = format!("{scheme}{}{}", &authority[at + 1..], &rest[end..]);
    (stripped, Some((user, password)))
}

/// Whether `url` carries credentials in its userinfo.
pub fn url_has_credentials(url: &str) -> bool {
    redact_url(url) != url
}

/// Why a connection would expose credentials, checked at load time: an `https://` URL
/// with TLS turned off (`ssl_enabled => false`) would silently become plain http, and
/// credentials over plain http are sent in clear text unless the user says
/// `allow_insecure_auth => true`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("host {host} is https:// but `ssl_enabled => false`: remove one of them")]
    HttpsWithoutTls { host: String },
    #[error("credentials would be sent in clear text to {host}: use https://, `ssl_enabled => true`, or `allow_insecure_auth => true`")]
    InsecureAuth { host: String },
}

/// Checks one host of an HTTP output. `ssl_enabled` is the option as given (`None`:
/// not given, the URL's scheme decides); `credentials` whether any are sent (`user`/
/// `password`, `api_key`, or in the URL). The host in the error is redacted.
pub fn check_transport(
    host: &str,
    ssl_enabled: Option<bool>,
    credentials: bool,
    allow_insecure_auth: bool,
) -> Result<(), TransportError> {
    let lower = host.trim().to_ascii_lowercase();
    let https = lower.starts_with("https://");
    let shown = || redact_url(host).into_owned();
    if https && ssl_enabled == Some(false) {
        return Err(TransportError::HttpsWithoutTls { host: shown() });
    }
    let tls = https || ssl_enabled == Some(true);
    let credentials = credentials || url_has_credentials(host);
    if credentials && !tls && !allow_insecure_auth {
        return Err(TransportError::InsecureAuth { host: shown() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_prints() {
        let s = Secret::new("hunter2");
        assert_eq!(s.to_string(), "<redacted>");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some(Secret(<redacted>))");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn url_passwords_are_redacted() {
        assert_eq!(
            redact_url("https://elastic:hunter2@es.example:9200/prefix?x=1"),
            "https://elastic:<redacted>@es.example:9200/prefix?x=1"
        );
        assert_eq!(
            redact_url("elastic:pw@es:9200"),
            "elastic:<redacted>@es:9200"
        );
        assert_eq!(redact_url("http://tok3n@es/"), "http://<redacted>@es/");
        assert!(matches!(redact_url("http://es:9200/a@b"), Cow::Borrowed(_)));
        assert!(url_has_credentials("https://a:b@h"));
        assert!(!url_has_credentials("https://h:9200"));
    }

    #[test]
    fn userinfo_is_split_off() {
        let (url, creds) = split_userinfo("https://elastic:hun%40ter2@es:9200/p?x=a@b");
        assert_eq!(url, "https://es:9200/p?x=a@b");
        let (user, password) = creds.unwrap();
        assert_eq!(user, "elastic");
        assert_eq!(password.expose(), "hun@ter2");
        let (url, creds) = split_userinfo("es:9200");
        assert_eq!(url, "es:9200");
        assert!(creds.is_none());
        let (url, creds) = split_userinfo("tok3n@es");
        assert_eq!(url, "es");
        assert_eq!(creds.unwrap().0, "tok3n");
    }

    #[test]
    fn insecure_transports_are_refused() {
        let err =
            check_transport("https://u:hunter2@es:9200", Some(false), false, false).unwrap_err();
        assert!(matches!(err, TransportError::HttpsWithoutTls { .. }));
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(matches!(
            check_transport("http://es:9200", None, true, false),
            Err(TransportError::InsecureAuth { .. })
        ));
        assert!(matches!(
            check_transport("http://u:p@es:9200", None, false, false),
            Err(TransportError::InsecureAuth { .. })
        ));
        assert!(check_transport("http://es:9200", None, true, true).is_ok());
        assert!(check_transport("es:9200", Some(true), true, false).is_ok());
        assert!(check_transport("https://es:9200", None, true, false).is_ok());
        assert!(check_transport("http://es:9200", None, false, false).is_ok());
    }
}
