//! `http`, `http_limits` and `secrets`: the URLs a tool may request, the caps on each exchange,
//! and the headers the host injects for a granted host without the tool ever seeing them.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use url::{Host, Url};

use super::GrantError;
use crate::policy::units::{Bytes, Timeout};

/// Where requests go: scheme, host and port. Grants and secrets are keyed by it, so a secret for
/// `https://api.example.com` never travels to `http://api.example.com` or to another port.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Origin {
    /// `http` or `https`.
    pub scheme: HttpScheme,
    /// The host as written (lowercased; IPv6 without brackets).
    pub host: Host<String>,
    /// The port, explicit or the scheme's default.
    pub port: u16,
}

impl Origin {
    /// The origin of `url`, or why it has none.
    pub fn of(url: &Url) -> Result<Origin, String> {
        let scheme = match url.scheme() {
            "http" => HttpScheme::Http,
            "https" => HttpScheme::Https,
            other => return Err(format!("scheme `{other}` is not http or https")),
        };
        let (Some(host), Some(port)) = (url.host(), url.port_or_known_default()) else {
            return Err("the URL has no host".into());
        };
        Ok(Origin {
            scheme,
            host: host.to_owned(),
            port,
        })
    }

    /// The `Host` header for requests to it: the host in canonical form (IPv6 in brackets),
    /// with the port unless it is the scheme's default.
    pub fn authority(&self) -> String {
        if self.port == self.scheme.default_port() {
            self.host.to_string()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Whether the host is an IP literal on loopback or a private network, where plain HTTP
    /// does not cross an untrusted network.
    pub fn is_local_literal(&self) -> bool {
        match &self.host {
            Host::Ipv4(ip) => ip.is_loopback() || ip.is_private(),
            Host::Ipv6(ip) => ip.is_loopback() || ip.is_unique_local(),
            Host::Domain(_) => false,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme.as_str(), self.host, self.port)
    }
}

/// One URL prefix a tool may request, and with which methods.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpGrant {
    /// Scheme, host and port.
    pub origin: Origin,
    /// Requests must be to this path or below it (segment-wise); `/` allows every path.
    pub path_prefix: String,
    /// The methods allowed, uppercase.
    pub methods: Vec<http::Method>,
    /// Whether a host *name* may resolve to an internal address (loopback, private,
    /// link-local, ...). Never needed for an IP grant, which names its address explicitly.
    pub internal: bool,
    /// Whether denial records of requests to this origin keep the query string. Off by
    /// default: queries often carry tokens.
    pub record_query: bool,
}

/// The schemes a grant can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HttpScheme {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS, verified against the Mozilla root store.
    Https,
}

impl HttpScheme {
    /// The scheme as written in a URL.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpScheme::Http => "http",
            HttpScheme::Https => "https",
        }
    }

    /// The port a URL of this scheme means when it names none.
    pub fn default_port(self) -> u16 {
        match self {
            HttpScheme::Http => 80,
            HttpScheme::Https => 443,
        }
    }
}

impl fmt::Display for HttpGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let methods: Vec<&str> = self.methods.iter().map(http::Method::as_str).collect();
        write!(
            f,
            "{} {}{}",
            methods.join("+"),
            self.origin,
            self.path_prefix
        )?;
        if self.internal {
            f.write_str(" (internal addresses allowed)")?;
        }
        Ok(())
    }
}

/// Caps on the HTTP exchanges of one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// Most requests one call may send.
    pub requests: u32,
    /// Largest request body.
    pub request_body: Bytes,
    /// Largest response body; a longer one fails with `http-response-body-size`.
    pub response_body: Bytes,
    /// Largest header section, request or response.
    pub headers: Bytes,
    /// Time allowed to connect, to the first response byte, and between body chunks.
    pub timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            requests: 32,
            request_body: Bytes(1 << 20),
            response_body: Bytes(4 << 20),
            headers: Bytes(64 << 10),
            timeout: Duration::from_secs(10),
        }
    }
}

/// A header the host adds to every request to one granted origin.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    /// The header, e.g. `authorization`.
    pub header: http::HeaderName,
    /// The value, read from the host's environment when the whitelist loads.
    pub value: SecretValue,
    /// The environment variable it came from (for reviews; never the value).
    pub from_env: String,
    /// Whether the whitelist allowed sending it over plain HTTP to a host that is not a
    /// loopback or private IP literal (`insecure = true`).
    pub insecure: bool,
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({}: ${})", self.header, self.from_env)
    }
}

/// A secret header value. It prints as `[redacted]`, is not serializable, and is only read
/// where the host injects or redacts it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(http::HeaderValue);

impl SecretValue {
    /// A secret from its text (an API key, say); fails when it cannot be sent as a header value.
    pub fn new(text: &str) -> Result<SecretValue, http::header::InvalidHeaderValue> {
        let mut value = http::HeaderValue::from_str(text)?;
        value.set_sensitive(true);
        Ok(SecretValue(value))
    }

    /// The value to send, marked sensitive so HTTP libraries do not log it.
    pub fn header_value(&self) -> http::HeaderValue {
        self.0.clone()
    }

    /// The raw bytes, to build a header from or to redact echoes of; never log them.
    pub fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHttp {
    url: String,
    methods: Vec<String>,
    #[serde(default)]
    internal: bool,
    #[serde(default)]
    record_query: bool,
}

#[derive(Deserialize, Clone, Copy, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHttpLimits {
    requests: Option<u32>,
    request_body: Option<Bytes>,
    response_body: Option<Bytes>,
    headers: Option<Bytes>,
    timeout: Option<Timeout>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSecret {
    header: String,
    #[serde(alias = "from_env")]
    value_from_env: String,
    #[serde(default)]
    insecure: bool,
}

/// Checks `http` grant number `index`.
pub(super) fn check_http(raw: RawHttp, index: usize) -> Result<HttpGrant, GrantError> {
    let key = |field: &str| format!("http[{index}].{field}");
    let url = Url::parse(&raw.url).map_err(|e| (key("url"), format!("`{}`: {e}", raw.url)))?;
    let bad_url = |why: &str| (key("url"), format!("`{}`: {why}", raw.url));
    let origin = Origin::of(&url).map_err(|why| bad_url(&why))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad_url(
            "credentials do not belong in a URL; use `secrets` for them",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad_url(
            "a grant is a URL prefix: remove the query and fragment",
        ));
    }
    if raw.methods.is_empty() {
        return Err((
            key("methods"),
            "grant at least one method, such as [\"GET\"]".into(),
        ));
    }
    let mut methods = Vec::with_capacity(raw.methods.len());
    for (m, method) in raw.methods.iter().enumerate() {
        let upper = method.to_ascii_uppercase();
        let parsed = http::Method::from_bytes(upper.as_bytes())
            .ok()
            .filter(|_| !upper.is_empty())
            .ok_or_else(|| {
                (
                    format!("http[{index}].methods[{m}]"),
                    format!("`{method}` is not an HTTP method"),
                )
            })?;
        methods.push(parsed);
    }
    if raw.internal && !matches!(origin.host, Host::Domain(_)) {
        return Err((
            key("internal"),
            "an IP grant already names its address; `internal` is only for host names".into(),
        ));
    }
    Ok(HttpGrant {
        origin,
        path_prefix: url.path().to_owned(),
        methods,
        internal: raw.internal,
        record_query: raw.record_query,
    })
}

impl RawHttpLimits {
    /// Applies the overrides to the defaults.
    pub(super) fn check(self) -> Result<HttpLimits, GrantError> {
        let base = HttpLimits::default();
        let limits = HttpLimits {
            requests: self.requests.unwrap_or(base.requests),
            request_body: self.request_body.unwrap_or(base.request_body),
            response_body: self.response_body.unwrap_or(base.response_body),
            headers: self.headers.unwrap_or(base.headers),
            timeout: self.timeout.map_or(base.timeout, |t| t.0),
        };
        if limits.requests == 0 {
            return Err((
                "http_limits.requests".into(),
                "0 requests would refuse every request; remove the `http` grant instead".into(),
            ));
        }
        if limits.headers.0 < 8 << 10 {
            return Err((
                "http_limits.headers".into(),
                format!(
                    "{} is below the 8 KiB every HTTP peer may send",
                    limits.headers
                ),
            ));
        }
        if limits.timeout.is_zero() {
            return Err((
                "http_limits.timeout".into(),
                "a timeout of 0 would fail every request".into(),
            ));
        }
        Ok(limits)
    }
}

/// Checks the `secrets` table: each key names one granted origin (`"https://api.example.com"`,
/// or a bare host granted on exactly one origin), a plain-HTTP origin needs a loopback or
/// private IP literal or `insecure = true`, and each value is read now from the host's
/// environment through `env`.
pub(super) fn check_secrets(
    raw: BTreeMap<String, RawSecret>,
    http: &[HttpGrant],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<BTreeMap<Origin, Secret>, GrantError> {
    let mut secrets = BTreeMap::new();
    for (written, secret) in raw {
        let key = |field: &str| format!("secrets.{written:?}{field}");
        let origin = secret_origin(&written, http).map_err(|message| (key(""), message))?;
        if origin.scheme == HttpScheme::Http && !origin.is_local_literal() && !secret.insecure {
            return Err((
                key(""),
                format!(
                    "{origin} is plain HTTP, so the secret would cross the network in clear; \
                     grant https, or set `insecure = true` on this secret to send it anyway"
                ),
            ));
        }
        let header = http::HeaderName::from_bytes(secret.header.as_bytes()).map_err(|_| {
            (
                key(".header"),
                format!("`{}` is not a header name", secret.header),
            )
        })?;
        if wasmtime_wasi_http::DEFAULT_FORBIDDEN_HEADERS.contains(&header) {
            return Err((
                key(".header"),
                format!("`{header}` is managed by the HTTP client and cannot carry a secret"),
            ));
        }
        let name = &secret.value_from_env;
        let value = env(name).filter(|v| !v.is_empty()).ok_or_else(|| {
            (
                key(".value_from_env"),
                format!("the environment variable `{name}` is not set (or empty) on the host"),
            )
        })?;
        let value = SecretValue::new(&value).map_err(|_| {
            (
                key(".value_from_env"),
                format!("`{name}` holds characters a header value cannot carry"),
            )
        })?;
        if let Some(previous) = secrets.insert(
            origin.clone(),
            Secret {
                header,
                value,
                from_env: name.clone(),
                insecure: secret.insecure,
            },
        ) {
            return Err((
                key(""),
                format!(
                    "{origin} already has a secret (from `{}`); give each origin one",
                    previous.from_env
                ),
            ));
        }
    }
    Ok(secrets)
}

/// The granted origin a `secrets` key names: an origin URL, or a bare host that exactly one
/// origin of the grants has.
fn secret_origin(written: &str, http: &[HttpGrant]) -> Result<Origin, String> {
    let granted: Vec<&Origin> = http.iter().map(|g| &g.origin).collect();
    if written.contains("://") {
        let url = Url::parse(written).map_err(|e| format!("`{written}`: {e}"))?;
        if url.path() != "/" || url.query().is_some() || !url.username().is_empty() {
            return Err(format!(
                "`{written}` must be an origin (scheme, host and port), such as \
                 \"https://api.example.com\""
            ));
        }
        let origin = Origin::of(&url).map_err(|why| format!("`{written}`: {why}"))?;
        if !granted.contains(&&origin) {
            return Err(format!(
                "no `http` grant is for {origin}; a secret is only sent to a granted origin"
            ));
        }
        return Ok(origin);
    }
    let host = Host::parse(written).map_err(|e| format!("`{written}` is not a host name: {e}"))?;
    let mut origins: Vec<&Origin> = granted.into_iter().filter(|o| o.host == host).collect();
    origins.sort();
    origins.dedup();
    match origins.as_slice() {
        [] => Err(format!(
            "no `http` grant names the host `{written}`; a secret is only sent to a granted origin"
        )),
        [origin] => Ok((*origin).clone()),
        several => {
            let listed: Vec<String> = several.iter().map(|o| format!("\"{o}\"")).collect();
            Err(format!(
                "`{written}` is granted on several origins ({}); key the secret by the one it \
                 is for",
                listed.join(", ")
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses the fields of an inline table, as written inside `http = [{ ... }]`.
    fn inline<T: serde::de::DeserializeOwned>(fields: &str) -> T {
        #[derive(Deserialize)]
        struct Wrap<T> {
            x: T,
        }
        toml::from_str::<Wrap<T>>(&format!("x = {{ {fields} }}"))
            .unwrap()
            .x
    }

    fn grant(fields: &str) -> Result<HttpGrant, GrantError> {
        check_http(inline(fields), 0)
    }

    #[test]
    fn urls_become_scheme_host_port_and_prefix() {
        let g = grant(r#"url = "https://API.example.com/v1/", methods = ["get"]"#).unwrap();
        assert_eq!(g.origin.scheme, HttpScheme::Https);
        assert_eq!(g.origin.host, Host::Domain("api.example.com".to_owned()));
        assert_eq!(g.origin.port, 443);
        assert_eq!(g.origin.authority(), "api.example.com");
        assert_eq!(g.path_prefix, "/v1/");
        assert_eq!(g.methods, [http::Method::GET]);
        let ip = grant(r#"url = "http://[::1]:8080", methods = ["POST"]"#).unwrap();
        assert_eq!(
            ip.origin.host,
            Host::<String>::Ipv6(std::net::Ipv6Addr::LOCALHOST)
        );
        assert_eq!((ip.origin.port, ip.path_prefix.as_str()), (8080, "/"));
        assert_eq!(ip.origin.authority(), "[::1]:8080");
        assert_eq!(ip.to_string(), "POST http://[::1]:8080/");
    }

    #[test]
    fn bad_grants_name_the_field() {
        for (text, key, says) in [
            (
                r#"url = "ftp://x.org", methods = ["GET"]"#,
                "http[0].url",
                "scheme `ftp`",
            ),
            (
                r#"url = "https://u:p@x.org", methods = ["GET"]"#,
                "http[0].url",
                "secrets",
            ),
            (
                r#"url = "https://x.org/?q=1", methods = ["GET"]"#,
                "http[0].url",
                "query",
            ),
            (
                r#"url = "not a url", methods = ["GET"]"#,
                "http[0].url",
                "not a url",
            ),
            (
                r#"url = "https://x.org", methods = []"#,
                "http[0].methods",
                "at least one",
            ),
            (
                r#"url = "https://x.org", methods = ["GE T"]"#,
                "http[0].methods[0]",
                "not an HTTP method",
            ),
            (
                r#"url = "http://10.0.0.1", methods = ["GET"], internal = true"#,
                "http[0].internal",
                "IP grant",
            ),
        ] {
            let (k, message) = grant(text).unwrap_err();
            assert_eq!(k, key, "{text}");
            assert!(message.contains(says), "{text}: {message}");
        }
    }

    #[test]
    fn secrets_need_a_granted_origin_and_a_set_variable() {
        let http = vec![
            grant(r#"url = "https://api.example.com", methods = ["GET"]"#).unwrap(),
            grant(r#"url = "https://both.example.com/a", methods = ["GET"]"#).unwrap(),
            grant(r#"url = "http://both.example.com/b", methods = ["GET"]"#).unwrap(),
            grant(r#"url = "https://both.example.com/c", methods = ["GET"]"#).unwrap(),
            grant(r#"url = "http://10.1.2.3:8080", methods = ["GET"]"#).unwrap(),
        ];
        let env = |name: &str| (name == "TOKEN").then(|| "Bearer s3cret".to_owned());
        let parse = |text: &str| {
            let raw: BTreeMap<String, RawSecret> = inline(text);
            check_secrets(raw, &http, &env)
        };
        let origin = |url: &str| Origin::of(&Url::parse(url).unwrap()).unwrap();

        let ok =
            parse(r#""api.example.com" = { header = "Authorization", value_from_env = "TOKEN" }"#)
                .unwrap();
        let secret = &ok[&origin("https://api.example.com")];
        assert_eq!(secret.header, http::header::AUTHORIZATION);
        assert_eq!(secret.value.bytes(), b"Bearer s3cret");
        assert!(secret.value.header_value().is_sensitive());
        assert!(
            !format!("{ok:?}").contains("s3cret"),
            "Debug must not show the value"
        );
        // An origin key picks one of a host's origins; a private literal may use plain HTTP.
        let keyed = parse(
            r#""https://both.example.com" = { header = "X-Key", value_from_env = "TOKEN" },
               "10.1.2.3" = { header = "X-Key", value_from_env = "TOKEN" }"#,
        )
        .unwrap();
        assert_eq!(
            keyed.keys().map(ToString::to_string).collect::<Vec<_>>(),
            ["http://10.1.2.3:8080", "https://both.example.com:443"]
        );
        let insecure = parse(
            r#""http://both.example.com" = { header = "X-Key", value_from_env = "TOKEN", insecure = true }"#,
        )
        .unwrap();
        assert!(insecure[&origin("http://both.example.com")].insecure);

        for (text, key, says) in [
            (
                r#""other.example.com" = { header = "Authorization", value_from_env = "TOKEN" }"#,
                "secrets.\"other.example.com\"",
                "no `http` grant names the host",
            ),
            (
                r#""https://api.example.com:8443" = { header = "X-Key", value_from_env = "TOKEN" }"#,
                "secrets.\"https://api.example.com:8443\"",
                "no `http` grant is for https://api.example.com:8443",
            ),
            (
                r#""https://api.example.com/v1" = { header = "X-Key", value_from_env = "TOKEN" }"#,
                "secrets.\"https://api.example.com/v1\"",
                "must be an origin",
            ),
            (
                r#""both.example.com" = { header = "X-Key", value_from_env = "TOKEN" }"#,
                "secrets.\"both.example.com\"",
                "several origins (\"http://both.example.com:80\", \"https://both.example.com:443\")",
            ),
            (
                r#""http://both.example.com" = { header = "X-Key", value_from_env = "TOKEN" }"#,
                "secrets.\"http://both.example.com\"",
                "plain HTTP",
            ),
            (
                r#""api.example.com" = { header = "Authorization", value_from_env = "MISSING" }"#,
                "secrets.\"api.example.com\".value_from_env",
                "`MISSING` is not set",
            ),
            (
                r#""api.example.com" = { header = "Host", value_from_env = "TOKEN" }"#,
                "secrets.\"api.example.com\".header",
                "managed by the HTTP client",
            ),
            (
                r#""api.example.com" = { header = "X-A", value_from_env = "TOKEN" },
                   "https://api.example.com" = { header = "X-B", value_from_env = "TOKEN" }"#,
                "secrets.\"https://api.example.com\"",
                "already has a secret",
            ),
        ] {
            let (k, message) = parse(text).unwrap_err();
            assert_eq!(k, key, "{text}");
            assert!(message.contains(says), "{text}: {message}");
        }
    }

    #[test]
    fn limits_default_and_reject_nonsense() {
        let limits = RawHttpLimits::default().check().unwrap();
        assert_eq!(limits, HttpLimits::default());
        let raw: RawHttpLimits = inline(r#"requests = 0"#);
        assert_eq!(raw.check().unwrap_err().0, "http_limits.requests");
        let raw: RawHttpLimits = inline(r#"headers = "1 KiB""#);
        assert_eq!(raw.check().unwrap_err().0, "http_limits.headers");
    }
}
