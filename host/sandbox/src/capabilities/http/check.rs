//! The two checks every outgoing request passes: the request against the tool's `http` grants
//! (scheme, host, port, path prefix, method), then the address the host resolved against the
//! internal ranges a granted *name* may not reach.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use url::{Host, Url};

use crate::policy::{HttpGrant, Origin};

/// A request that matched a grant: where it goes, normalized.
#[derive(Clone, Debug)]
pub(super) struct Allowed {
    /// The grant that allows it.
    pub grant: HttpGrant,
    /// The request URL, normalized (dot segments resolved, host lowercased).
    pub url: Url,
}

impl Allowed {
    /// The path and query to put on the wire.
    pub fn path_and_query(&self) -> String {
        match self.url.query() {
            Some(query) => format!("{}?{query}", self.url.path()),
            None => self.url.path().to_owned(),
        }
    }
}

/// Checks `method uri` against `grants`. The error says which part no grant allows.
pub(super) fn authorize(
    grants: &[HttpGrant],
    method: &http::Method,
    uri: &http::Uri,
) -> Result<Allowed, String> {
    let url = Url::parse(&uri.to_string()).map_err(|e| format!("not a valid URL: {e}"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("credentials in the URL are not allowed".into());
    }
    let origin = Origin::of(&url)?;
    let same_origin: Vec<&HttpGrant> = grants.iter().filter(|g| g.origin == origin).collect();
    if same_origin.is_empty() {
        return Err(format!("no grant for {origin}"));
    }
    let path = url.path();
    let under_prefix: Vec<&&HttpGrant> = same_origin
        .iter()
        .filter(|g| is_under(path, &g.path_prefix))
        .collect();
    if under_prefix.is_empty() {
        let prefixes: Vec<&str> = same_origin.iter().map(|g| g.path_prefix.as_str()).collect();
        return Err(format!(
            "path `{path}` is outside the granted {}",
            prefixes.join(", ")
        ));
    }
    let grant = under_prefix
        .iter()
        .find(|g| g.methods.contains(method))
        .ok_or_else(|| format!("method {method} is not granted for this URL"))?;
    Ok(Allowed {
        grant: (**grant).clone(),
        url,
    })
}

/// How a denial record names the request `method uri`: without its query string (queries often
/// carry tokens) unless a grant for its origin sets `record_query`.
pub(super) fn describe(grants: &[HttpGrant], method: &http::Method, uri: &http::Uri) -> String {
    let full = uri.to_string();
    let Some(query) = uri.query() else {
        return format!("{method} {full}");
    };
    let keep_query = Url::parse(&full)
        .ok()
        .and_then(|url| Origin::of(&url).ok())
        .is_some_and(|origin| grants.iter().any(|g| g.record_query && g.origin == origin));
    if keep_query {
        return format!("{method} {full}");
    }
    let without = &full[..full.len() - query.len() - 1];
    format!("{method} {without}?[query omitted]")
}

/// Whether `path` is `prefix` or below it, segment-wise. Below a non-root prefix, an encoded
/// `/` or `\` and a dot segment carrying `;` parameters (`/api/..;/admin`) are refused: a server
/// that decodes the one or strips the other would see a different path.
fn is_under(path: &str, prefix: &str) -> bool {
    if prefix == "/" {
        return true;
    }
    let lower = path.to_ascii_lowercase();
    if lower.contains("%2f") || lower.contains("%5c") {
        return false;
    }
    let dot_segment = |segment: &str| {
        let name = segment
            .split(';')
            .next()
            .unwrap_or(segment)
            .replace("%2e", ".");
        name == "." || name == ".."
    };
    if lower.split('/').any(dot_segment) {
        return false;
    }
    let base = prefix.trim_end_matches('/');
    path == base
        || path
            .strip_prefix(base)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The internal range `ip` is in, if any: addresses a granted host *name* may not resolve to,
/// since that is how a tool reaches the host's own network (SSRF, DNS rebinding).
pub fn internal_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_range(v4),
        IpAddr::V6(v6) => v6_range(v6),
    }
}

fn v4_range(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, d] = ip.octets();
    Some(match (a, b, c, d) {
        (169, 254, 169, 254) | (169, 254, 170, 2) | (100, 100, 100, 200) => "cloud metadata",
        _ if ip.is_loopback() => "loopback",
        _ if ip.is_private() => "private",
        _ if ip.is_link_local() => "link-local",
        (0, ..) => "unspecified",
        (100, 64..=127, ..) => "shared (carrier-grade NAT)",
        (192, 0, 0, _) | (198, 18..=19, ..) => "reserved",
        _ if ip.is_broadcast() || a >= 240 => "reserved",
        _ if ip.is_multicast() => "multicast",
        _ if ip.is_documentation() => "documentation",
        _ => return None,
    })
}

fn v6_range(ip: Ipv6Addr) -> Option<&'static str> {
    // Addresses that embed an IPv4 address reach that address.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_range(v4);
    }
    let s = ip.segments();
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0]
        || (s[..6] == [0; 6] && !ip.is_unspecified() && !ip.is_loopback())
    {
        let [.., hi, lo] = s;
        return v4_range(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
    }
    Some(match s {
        [0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254] => "cloud metadata",
        _ if ip.is_loopback() => "loopback",
        _ if ip.is_unspecified() => "unspecified",
        _ if ip.is_unicast_link_local() => "link-local",
        [first, ..] if first & 0xffc0 == 0xfec0 => "site-local",
        _ if ip.is_unique_local() => "unique-local",
        _ if ip.is_multicast() => "multicast",
        [0x2001, 0x0db8, ..] => "documentation",
        _ => return None,
    })
}

/// Resolves the allowed request's host once and returns the addresses to connect to, each
/// checked. An IP grant names its address, so it is used as is; a name may only resolve to
/// public addresses unless its grant says `internal = true`.
pub(super) async fn resolve(
    allowed: &Allowed,
    timeout: Duration,
) -> Result<Vec<SocketAddr>, Refused> {
    let port = allowed.grant.origin.port;
    let domain = match &allowed.grant.origin.host {
        Host::Ipv4(ip) => return Ok(vec![SocketAddr::new(IpAddr::V4(*ip), port)]),
        Host::Ipv6(ip) => return Ok(vec![SocketAddr::new(IpAddr::V6(*ip), port)]),
        Host::Domain(domain) => domain.as_str(),
    };
    let addrs: Vec<SocketAddr> =
        match tokio::time::timeout(timeout, tokio::net::lookup_host((domain, port))).await {
            Err(_) => {
                return Err(Refused::Unresolved(format!(
                    "looking up `{domain}` timed out"
                )));
            }
            Ok(Err(e)) => {
                return Err(Refused::Unresolved(format!(
                    "cannot resolve `{domain}`: {e}"
                )));
            }
            Ok(Ok(addrs)) => addrs.collect(),
        };
    if addrs.is_empty() {
        return Err(Refused::Unresolved(format!("`{domain}` has no address")));
    }
    if !allowed.grant.internal
        && let Some((ip, range)) = addrs
            .iter()
            .find_map(|a| internal_range(a.ip()).map(|r| (a.ip(), r)))
    {
        return Err(Refused::Internal(format!(
            "`{domain}` resolves to {ip} ({range}); grant that address explicitly, or set \
             `internal = true` on the grant"
        )));
    }
    Ok(addrs)
}

/// Why a request that matched a grant still may not be sent.
#[derive(Debug)]
pub(super) enum Refused {
    /// The name did not resolve.
    Unresolved(String),
    /// The name resolved to an internal address the grant does not allow.
    Internal(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(text: &str) -> Vec<HttpGrant> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("t.wasm"), b"").unwrap();
        let policy = crate::policy::Policy::parse(
            &format!(
                "[tools.t]\ncomponent = \"t.wasm\"\nsha256 = \"{}\"\n{text}",
                "0".repeat(64)
            ),
            &dir.path().join("harness.toml"),
        );
        match policy {
            Ok(p) => p.tools()["t"].grants.http.clone(),
            Err(e) => panic!("{e}"),
        }
    }

    fn check(grants: &[HttpGrant], method: &str, uri: &str) -> Result<String, String> {
        authorize(grants, &method.parse().unwrap(), &uri.parse().unwrap())
            .map(|a| a.path_and_query())
    }

    #[test]
    fn requests_match_scheme_host_port_prefix_and_method() {
        let g = grants(
            r#"http = [{ url = "https://api.example.com/v1", methods = ["GET"] },
                       { url = "http://127.0.0.1:8080", methods = ["POST"] }]"#,
        );
        assert_eq!(
            check(&g, "GET", "https://api.example.com/v1/weather?q=x").unwrap(),
            "/v1/weather?q=x"
        );
        assert_eq!(
            check(&g, "GET", "https://API.example.com:443/v1").unwrap(),
            "/v1"
        );
        assert!(check(&g, "POST", "http://127.0.0.1:8080/anything").is_ok());
        assert_eq!(
            check(&g, "GET", "https://api.example.com/v1/items;v=2").unwrap(),
            "/v1/items;v=2",
            "parameters on an ordinary segment are the server's business"
        );
        for (method, uri, says) in [
            (
                "GET",
                "http://api.example.com/v1/x",
                "no grant for http://api.example.com:80",
            ),
            ("GET", "https://api.example.com:8443/v1", "no grant"),
            ("GET", "https://evil.example.com/v1", "no grant"),
            (
                "GET",
                "https://api.example.com/v2",
                "outside the granted /v1",
            ),
            ("GET", "https://api.example.com/v10", "outside"),
            (
                "GET",
                "https://api.example.com/v1/../admin",
                "path `/admin` is outside",
            ),
            (
                "GET",
                "https://api.example.com/v1/%2e%2e/admin",
                "path `/admin` is outside",
            ),
            ("GET", "https://api.example.com/v1%2f..%2fadmin", "outside"),
            ("GET", "https://api.example.com/v1/..;/admin", "outside"),
            ("GET", "https://api.example.com/v1/.;x=1/admin", "outside"),
            ("GET", "https://api.example.com/v1/%2e%2e;/admin", "outside"),
            ("DELETE", "https://api.example.com/v1/x", "method DELETE"),
            ("GET", "http://127.0.0.1:8081/", "no grant"),
            ("POST", "http://[::1]:8080/", "no grant"),
            ("POST", "http://localhost:8080/", "no grant"),
        ] {
            let err = check(&g, method, uri).unwrap_err();
            assert!(err.contains(says), "{method} {uri}: {err}");
        }
    }

    #[test]
    fn denial_records_leave_the_query_out_unless_the_grant_keeps_it() {
        let g = grants(
            r#"http = [{ url = "https://api.example.com/v1", methods = ["GET"] },
                       { url = "https://debug.example.com", methods = ["GET"], record_query = true }]"#,
        );
        let describe = |uri: &str| describe(&g, &http::Method::GET, &uri.parse().unwrap());
        assert_eq!(
            describe("https://api.example.com/v2?token=abc"),
            "GET https://api.example.com/v2?[query omitted]"
        );
        assert_eq!(
            describe("https://other.example.com/?key=k"),
            "GET https://other.example.com/?[query omitted]"
        );
        assert_eq!(
            describe("https://debug.example.com/x?q=1"),
            "GET https://debug.example.com/x?q=1"
        );
        assert_eq!(
            describe("https://api.example.com/v2"),
            "GET https://api.example.com/v2"
        );
    }

    #[test]
    fn internal_ranges_are_named() {
        for (ip, range) in [
            ("127.0.0.1", "loopback"),
            ("10.0.0.1", "private"),
            ("172.16.5.4", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "cloud metadata"),
            ("169.254.1.1", "link-local"),
            ("0.0.0.0", "unspecified"),
            ("100.64.0.1", "shared (carrier-grade NAT)"),
            ("255.255.255.255", "reserved"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fe80::1", "link-local"),
            ("fc00::1", "unique-local"),
            ("fd00:ec2::254", "cloud metadata"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "cloud metadata"),
            ("64:ff9b::a00:1", "private"),
        ] {
            assert_eq!(internal_range(ip.parse().unwrap()), Some(range), "{ip}");
        }
        for ip in ["93.184.215.14", "2606:4700::6810:84e5", "8.8.8.8"] {
            assert_eq!(internal_range(ip.parse().unwrap()), None, "{ip}");
        }
    }
}
