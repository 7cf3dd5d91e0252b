//! Request guards that apply to every route: only the server's own names are answered
//! (DNS rebinding), the client's address is determined once, cross-origin writes are
//! refused, and pages need a signed-in user.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use idra_app::api::SESSION_USER_KEY;
use idra_core::service::{ClientAddr, Services};
use tower_sessions::Session;

use crate::api::ApiError;

/// The `Host` names the server answers to. A page on attacker.example whose name the
/// attacker re-points at 127.0.0.1 (DNS rebinding) reaches the server as a same-origin page,
/// Origin and all; only its `Host: attacker.example` gives it away.
#[derive(Debug, Clone)]
pub struct AllowedHosts {
    /// Lower-case `host:port` (and bare `host` where the port is the scheme's default).
    exact: HashSet<String>,
    /// Names allowed with any port (`--allowed-host` without a port).
    names: HashSet<String>,
    /// Listening on every address: any IP literal with this port is one of ours (an IP
    /// literal cannot be re-pointed by DNS).
    any_ip_on_port: Option<u16>,
}

/// `host` and `port` as a Host header spells them (IPv6 in brackets).
fn authority(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Splits a Host header value into its host (lower case, IPv6 with brackets) and port.
fn split_host(value: &str) -> (String, Option<u16>) {
    let value = value.trim().to_ascii_lowercase();
    let (host, port) = match value.rfind(':') {
        Some(i) if !value[i..].contains(']') => (&value[..i], value[i + 1..].parse().ok()),
        _ => (value.as_str(), None),
    };
    (host.to_string(), port)
}

impl AllowedHosts {
    /// The listen address, `localhost`, `127.0.0.1` and `[::1]` on the listen port, the host of
    /// `public_url`, and `extra` names (`name` for any port, `name:port` for one).
    pub fn new(
        listen: SocketAddr,
        public_url: Option<&str>,
        extra: &[String],
    ) -> Result<Self, String> {
        let mut exact = HashSet::new();
        let port = listen.port();
        let mut add = |host: &str, port: u16, default_port: u16| {
            let host = host.to_ascii_lowercase();
            if port == default_port {
                exact.insert(host.clone());
            }
            exact.insert(authority(&host, port));
        };
        for local in ["localhost", "127.0.0.1", "[::1]"] {
            add(local, port, 80);
        }
        let any_ip_on_port = if listen.ip().is_unspecified() {
            Some(port)
        } else {
            add(&listen.ip().to_string(), port, 80);
            None
        };
        if let Some(url) = public_url {
            let uri: Uri = url
                .parse()
                .map_err(|e| format!("--public-url `{url}` is not a URL: {e}"))?;
            let default_port = match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
                Some("https") => 443,
                Some("http") => 80,
                _ => {
                    return Err(format!(
                        "--public-url `{url}` must start with http:// or https://"
                    ))
                }
            };
            let host = uri
                .host()
                .filter(|h| !h.is_empty())
                .ok_or_else(|| format!("--public-url `{url}` names no host"))?;
            add(host, uri.port_u16().unwrap_or(default_port), default_port);
        }
        let mut names = HashSet::new();
        for name in extra {
            match split_host(name) {
                (host, Some(port)) => {
                    exact.insert(authority(&host, port));
                }
                (host, None) => {
                    names.insert(host);
                }
            }
        }
        Ok(Self {
            exact,
            names,
            any_ip_on_port,
        })
    }

    pub fn allows(&self, host_header: &str) -> bool {
        let lower = host_header.trim().to_ascii_lowercase();
        if self.exact.contains(&lower) {
            return true;
        }
        let (host, port) = split_host(&lower);
        if self.names.contains(&host) {
            return true;
        }
        match self.any_ip_on_port {
            Some(listen_port) => {
                let literal = host.trim_start_matches('[').trim_end_matches(']');
                literal.parse::<IpAddr>().is_ok() && port.unwrap_or(80) == listen_port
            }
            None => false,
        }
    }
}

/// Refuses requests whose `Host` (or HTTP/2 `:authority`) is not one of the server's names,
/// with 421 and the option that would allow it. Requests that name no host at all come from
/// no browser and pass.
pub async fn refuse_unknown_host(
    State(allowed): State<Arc<AllowedHosts>>,
    req: Request,
    next: Next,
) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .map(|h| h.to_str().unwrap_or("(not text)").to_string())
        .or_else(|| req.uri().authority().map(|a| a.to_string()));
    match host {
        Some(host) if !allowed.allows(&host) => {
            let shown: String = host.chars().take(100).collect();
            ApiError::new(
                StatusCode::MISDIRECTED_REQUEST,
                format!(
                    "this server does not answer to the name `{shown}` (a page on another site \
                     may be trying to reach it): if users reach Idra at that name, start it with \
                     --public-url http://{shown} (https:// behind a TLS proxy), or add \
                     --allowed-host {shown}"
                ),
            )
            .with_field("Host")
            .into_response()
        }
        _ => next.run(req).await,
    }
}

/// Proxies whose `X-Forwarded-For` the server believes (`--trusted-proxy`); nobody else's.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(pub Vec<IpAddr>);

impl TrustedProxies {
    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|p| p.to_canonical() == ip)
    }
}

/// One `X-Forwarded-For` entry: an address, maybe with a port.
fn forwarded_ip(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            entry
                .strip_prefix('[')
                .and_then(|e| e.strip_suffix(']'))
                .and_then(|e| e.parse().ok())
        })
        .map(|ip| ip.to_canonical())
}

/// The client of a request from `peer`: `X-Forwarded-For` is read right to left only while
/// the hop that added the entry is a trusted proxy. "This machine" means a loopback client on
/// a loopback connection that no untrusted or unreadable forwarding got in between.
pub fn client_addr(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &TrustedProxies,
) -> ClientAddr {
    let Some(peer) = peer.map(|p| p.to_canonical()) else {
        return ClientAddr::default();
    };
    let xff: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    let other_forwarding =
        headers.contains_key(header::FORWARDED) || headers.contains_key("x-real-ip");
    let mut client = peer;
    let mut believed = true;
    if trusted.trusts(peer) {
        if xff.is_empty() && other_forwarding {
            // Forwarded in a form we do not read: the client is somewhere unknown.
            believed = false;
        }
        for entry in xff.iter().rev() {
            if !trusted.trusts(client) {
                break;
            }
            match forwarded_ip(entry) {
                Some(ip) => client = ip,
                None => {
                    believed = false;
                    break;
                }
            }
        }
    } else if !xff.is_empty() || other_forwarding {
        // A proxy we were not told to trust: its word is ignored, and the client is not
        // taken to be on this machine even if the proxy is.
        believed = false;
    }
    ClientAddr {
        ip: Some(client),
        this_machine: believed && peer.is_loopback() && client.is_loopback(),
    }
}

/// Determines the client once per request (see [`client_addr`]) for the handlers and the
/// UI's server functions, which read it as a request extension.
pub async fn resolve_client(
    State(trusted): State<Arc<TrustedProxies>>,
    mut req: Request,
    next: Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let client = client_addr(peer, req.headers(), &trusted);
    req.extensions_mut().insert(client);
    next.run(req).await
}

/// A state-changing request whose `Origin` is another site is refused (CSRF defence on top
/// of SameSite=Lax cookies). Requests without `Origin` (curl, scripts) pass.
pub async fn refuse_foreign_origin(req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let headers = req.headers();
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let origin_host = origin
            .split_once("://")
            .map(|(_, rest)| rest.trim_end_matches('/'));
        if origin_host.is_none() || origin_host != host {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "cross-origin request refused: Origin `{origin}` is not this server ({})",
                    host.unwrap_or("unknown host")
                ),
            )
            .with_field("Origin")
            .into_response();
        }
    } else if headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "cross-site")
    {
        return ApiError::new(StatusCode::FORBIDDEN, "cross-site request refused")
            .with_field("Origin")
            .into_response();
    }
    next.run(req).await
}

/// The UI's page paths (server functions, the API and assets answer for themselves).
fn is_page(path: &str) -> bool {
    matches!(
        path.trim_end_matches('/'),
        "" | "/syncs" | "/datasources" | "/offsets" | "/agents" | "/users" | "/account" | "/errors"
    )
}

/// Unauthenticated page loads go to /login; a signed-in user asking for /login goes home.
pub async fn require_login_for_pages(
    State(services): State<Services>,
    session: Session,
    req: Request,
    next: Next,
) -> Response {
    if req.method() != Method::GET {
        return next.run(req).await;
    }
    let path = req.uri().path().to_string();
    let login = path == "/login";
    if !login && !is_page(&path) {
        return next.run(req).await;
    }
    let username = session.get::<String>(SESSION_USER_KEY).await.ok().flatten();
    let signed_in = match username {
        Some(name) => matches!(services.user(&name).await, Ok(Some(_))),
        None => false,
    };
    match (signed_in, login) {
        (false, false) => Redirect::to("/login").into_response(),
        (true, true) => Redirect::to("/").into_response(),
        _ => next.run(req).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(listen: &str, public_url: Option<&str>, extra: &[&str]) -> AllowedHosts {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        AllowedHosts::new(listen.parse().unwrap(), public_url, &extra).unwrap()
    }

    #[test]
    fn the_listen_address_and_localhost_names_on_its_port() {
        let h = hosts("127.0.0.1:3000", None, &[]);
        for ok in [
            "127.0.0.1:3000",
            "localhost:3000",
            "LOCALHOST:3000",
            "[::1]:3000",
        ] {
            assert!(h.allows(ok), "{ok}");
        }
        for refused in [
            "attacker.example",
            "attacker.example:3000",
            "localhost",
            "localhost:3001",
            "127.0.0.1",
            "10.0.0.5:3000",
            "localhost.attacker.example:3000",
            "",
        ] {
            assert!(!h.allows(refused), "{refused}");
        }
        let v6 = hosts("[::1]:8080", None, &[]);
        assert!(v6.allows("[::1]:8080") && !v6.allows("[::2]:8080"));
        let port80 = hosts("127.0.0.1:80", None, &[]);
        assert!(port80.allows("localhost") && port80.allows("127.0.0.1:80"));
    }

    #[test]
    fn the_public_url_host_with_its_port() {
        let h = hosts("127.0.0.1:3000", Some("https://Idra.Example.com/"), &[]);
        assert!(h.allows("idra.example.com"));
        assert!(h.allows("idra.example.com:443"));
        assert!(!h.allows("idra.example.com:3000"));
        assert!(!h.allows("example.com"));
        let h = hosts("127.0.0.1:3000", Some("http://10.1.2.3:8080"), &[]);
        assert!(h.allows("10.1.2.3:8080") && !h.allows("10.1.2.3"));
        for bad in ["idra.example.com", "ftp://idra.example.com", "https://"] {
            let e = AllowedHosts::new("127.0.0.1:3000".parse().unwrap(), Some(bad), &[])
                .err()
                .unwrap_or_else(|| panic!("{bad} accepted"));
            assert!(e.contains("--public-url"), "{e}");
        }
    }

    #[test]
    fn allowed_hosts_with_or_without_a_port() {
        let h = hosts(
            "127.0.0.1:3000",
            None,
            &["idra-0.idra", "metrics.internal:9000"],
        );
        assert!(h.allows("idra-0.idra:3000") && h.allows("idra-0.idra"));
        assert!(h.allows("metrics.internal:9000") && !h.allows("metrics.internal:9001"));
    }

    /// Listening on every address: IP literals on the port are ours (DNS cannot re-point
    /// them), names still need --public-url or --allowed-host.
    #[test]
    fn every_address_allows_ip_literals_on_the_port() {
        let h = hosts("0.0.0.0:3000", None, &[]);
        assert!(h.allows("10.0.0.5:3000") && h.allows("[fe80::1]:3000"));
        assert!(!h.allows("10.0.0.5:3001"));
        assert!(!h.allows("attacker.example:3000"));
        assert!(h.allows("localhost:3000"));
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn forwarded_for_is_read_only_through_trusted_proxies() {
        let none = TrustedProxies::default();
        let local = TrustedProxies(vec!["127.0.0.1".parse().unwrap()]);
        let xff = headers(&[("x-forwarded-for", "203.0.113.9, 198.51.100.7")]);

        // Untrusted: the header is ignored, and a loopback peer is no longer "this machine".
        let c = client_addr(ip("127.0.0.1"), &xff, &none);
        assert_eq!(c.ip, ip("127.0.0.1"));
        assert!(!c.this_machine);
        let c = client_addr(
            ip("127.0.0.1"),
            &headers(&[("forwarded", "for=1.2.3.4")]),
            &none,
        );
        assert!(!c.this_machine);
        let c = client_addr(ip("127.0.0.1"), &HeaderMap::new(), &none);
        assert!(c.this_machine);
        let c = client_addr(ip("::ffff:127.0.0.1"), &HeaderMap::new(), &none);
        assert!(c.this_machine, "IPv4 loopback on a dual-stack socket");
        let c = client_addr(ip("198.51.100.7"), &HeaderMap::new(), &none);
        assert!(!c.this_machine);
        assert_eq!(
            client_addr(None, &HeaderMap::new(), &none),
            ClientAddr::default()
        );

        // Trusted: the rightmost entry the trusted proxy added; earlier ones are the
        // client's own claims.
        let c = client_addr(ip("127.0.0.1"), &xff, &local);
        assert_eq!(c.ip, ip("198.51.100.7"));
        assert!(!c.this_machine);
        let chain = TrustedProxies(vec![
            "127.0.0.1".parse().unwrap(),
            "198.51.100.7".parse().unwrap(),
        ]);
        assert_eq!(
            client_addr(ip("127.0.0.1"), &xff, &chain).ip,
            ip("203.0.113.9")
        );
        let c = client_addr(
            ip("127.0.0.1"),
            &headers(&[("x-forwarded-for", "[::1]:5000")]),
            &local,
        );
        assert_eq!(c.ip, ip("::1"));
        assert!(c.this_machine);
        let c = client_addr(
            ip("127.0.0.1"),
            &headers(&[("x-forwarded-for", "unknown")]),
            &local,
        );
        assert!(!c.this_machine, "an unreadable hop");
        // A proxy on another machine: its loopback clients are not on this machine.
        let remote_proxy = TrustedProxies(vec!["10.0.0.2".parse().unwrap()]);
        let c = client_addr(
            ip("10.0.0.2"),
            &headers(&[("x-forwarded-for", "127.0.0.1")]),
            &remote_proxy,
        );
        assert!(!c.this_machine);
    }
}
