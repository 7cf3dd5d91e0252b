//! `/locks/<name>`: the lock service for other programs, compatible with the Metaparticle
//! sync sidecar protocol. GET 200 while held (404 when free); PUT takes or heartbeats (200)
//! or answers 409 when someone else holds it; DELETE releases. The holder comes from the
//! `X-Lock-Holder` header or `?holder=`; `?ttl=` seconds (default 30); `?mode=shared` for
//! shared holds.
//!
//! The service is off unless the operator turns it on with a token or opens it explicitly
//! ([`LockAccess`]): anyone reaching it could otherwise release others' locks or fill the
//! store. Every request first passes [`admit`] (service on, the address within its rate,
//! the token right). A new hold's secret is answered as `secret` and `X-Lock-Secret`, and
//! sent back the same way (`X-Lock-Secret` or `?secret=`) to renew or release it.
//! Metaparticle clients send no headers: they put `?token=` and `?holder=` in the lock URL,
//! ignore the secret, and are recognised by their address (see `idra_core::service::locks`)
//! — when the server knows it: a request forwarded by a proxy it does not trust has only
//! the proxy's address, shared by everyone behind it ([`address_believed`]).

mod rate;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use idra_core::service::locks::{
    self, Acquire, Caller, Limits, LockMode, Refusal, Release, DEFAULT_TTL_SECS, MAX_TTL_SECS,
};
use idra_core::service::{ClientAddr, Services};
use serde_json::json;

use crate::api::ApiError;
pub use rate::RateLimiter;
use rate::Standing;

/// Who may use the lock service.
#[derive(Clone, PartialEq, Eq)]
pub enum LockAccess {
    /// Nobody: every lock request is refused with how to turn the service on.
    Off,
    /// Clients that send this token (`Authorization: Bearer` or `?token=`).
    Token(String),
    /// Anyone who can reach the server (`--locks-open`).
    Open,
}

impl std::fmt::Debug for LockAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LockAccess::Off => f.write_str("Off"),
            LockAccess::Token(_) => f.write_str("Token(…)"),
            LockAccess::Open => f.write_str("Open"),
        }
    }
}

/// A token shorter than this is refused at start: it would be guessed.
pub const MIN_TOKEN_LEN: usize = 16;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum LockAccessError {
    #[error(
        "give either --lock-token or --locks-open, not both: an open lock service asks for no \
         token"
    )]
    Both,
    #[error(
        "--lock-token is too short: use at least {MIN_TOKEN_LEN} characters, e.g. the output of \
         `openssl rand -hex 32`"
    )]
    TooShort,
    #[error(
        "--lock-token may hold only letters, digits and `-._~`, so that clients can send it \
         unchanged in a URL (`?token=`); e.g. the output of `openssl rand -hex 32`"
    )]
    Characters,
}

impl LockAccess {
    /// From `--lock-token` and `--locks-open`.
    pub fn from_flags(token: Option<String>, open: bool) -> Result<Self, LockAccessError> {
        match (token, open) {
            (Some(_), true) => Err(LockAccessError::Both),
            (Some(t), false) if t.len() < MIN_TOKEN_LEN => Err(LockAccessError::TooShort),
            (Some(t), false)
                if !t
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c)) =>
            {
                Err(LockAccessError::Characters)
            }
            (Some(t), false) => Ok(LockAccess::Token(t)),
            (None, true) => Ok(LockAccess::Open),
            (None, false) => Ok(LockAccess::Off),
        }
    }
}

const OFF: &str = "the lock service is off on this server: start idra-server with \
    --lock-token <token> (IDRA_LOCK_TOKEN) so that programs must send the token, or with \
    --locks-open (IDRA_LOCKS_OPEN) to let anyone who can reach the server use it";

#[derive(Clone)]
struct Shared {
    services: Services,
    access: Arc<LockAccess>,
    limits: Limits,
    rate: Arc<RateLimiter>,
}

pub fn router(services: Services, access: LockAccess) -> Router {
    router_with(
        services,
        access,
        Limits::default(),
        RateLimiter::new(rate::REQUESTS_PER_SEC, rate::BURST),
    )
}

fn router_with(
    services: Services,
    access: LockAccess,
    limits: Limits,
    rate: RateLimiter,
) -> Router {
    let shared = Shared {
        services,
        access: Arc::new(access),
        limits,
        rate: Arc::new(rate),
    };
    Router::new()
        .route("/{name}", get(status).put(acquire).delete(release))
        .route_layer(axum::middleware::from_fn_with_state(shared.clone(), admit))
        .with_state(shared)
}

/// The client of a lock request: its address as the server determined it, and whether
/// that is the client's own (see [`address_believed`]).
#[derive(Debug, Clone, Copy)]
struct LockClient {
    address: Option<IpAddr>,
    believed: bool,
}

/// The checks every lock request passes, in this order: the service is on; the client's
/// address is within its rate, counted apart for requests with and without the right token
/// (so that tokens cannot be guessed at full speed, and guesses use up none of the rate of
/// the clients with the token behind the same address); the token is right.
async fn admit(State(s): State<Shared>, mut req: Request, next: Next) -> Response {
    let token = match s.access.as_ref() {
        LockAccess::Off => return ApiError::new(StatusCode::FORBIDDEN, OFF).into_response(),
        LockAccess::Open => None,
        LockAccess::Token(token) => Some(token.as_str()),
    };
    let query = Query::<HashMap<String, String>>::try_from_uri(req.uri());
    let standing = match (token, &query) {
        (None, _) => Standing::Admitted,
        (Some(token), Ok(Query(query))) => {
            if given_token(req.headers(), query).is_some_and(|t| locks::secrets_match(t, token)) {
                Standing::Admitted
            } else {
                Standing::Refused
            }
        }
        (Some(_), Err(_)) => Standing::Refused,
    };
    let address = req.extensions().get::<ClientAddr>().and_then(|c| c.ip);
    if let Err(wait) = s.rate.admit(address, standing) {
        return ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("too many lock requests from your address; try again in {wait} seconds"),
        )
        .with_retry_after(wait)
        .into_response();
    }
    if let Err(e) = query {
        return ApiError::new(StatusCode::BAD_REQUEST, e.body_text())
            .with_field("query")
            .into_response();
    }
    if standing == Standing::Refused {
        let mut resp = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "send the lock service's token as `Authorization: Bearer <token>` or in the lock \
             URL as `?token=<token>`",
        )
        .with_field("token")
        .into_response();
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return resp;
    }
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let believed = address_believed(peer, address, req.headers());
    req.extensions_mut()
        .insert(LockClient { address, believed });
    next.run(req).await
}

/// Whether `client`, the address `security::client_addr` determined for a request from
/// `peer`, is the client's own, so that it may stand in for a hold's secret.
///
/// A request that carries no forwarding header came straight from its client (or through a
/// NAT, which no server can see: README says to send the secret there). One that carries
/// `X-Forwarded-For`, `Forwarded` or `X-Real-IP` came through a proxy: its client is known
/// only when a proxy named with `--trusted-proxy` forwarded it with a readable
/// `X-Forwarded-For`, and then the client differs from the peer. When the client is still
/// the peer, the proxy was not trusted (or forwarded in a form not read) and its address is
/// shared by everyone behind it. Any `X-Forwarded-For` entry that is no address means the
/// reading may have stopped at a trusted proxy's own address. This errs only towards "not
/// known" (a trusted proxy forwarding a client on the proxy's own machine, say), which
/// costs such a client its address, never anyone their hold.
///
/// `security::client_addr` decides the same question; it is asked again here from what it
/// leaves in the request, so that the lock service needs nothing more from it.
fn address_believed(peer: Option<IpAddr>, client: Option<IpAddr>, headers: &HeaderMap) -> bool {
    let forwarded = headers.contains_key("x-forwarded-for")
        || headers.contains_key(header::FORWARDED)
        || headers.contains_key("x-real-ip");
    if !forwarded {
        return true;
    }
    let (Some(peer), Some(client)) = (peer, client) else {
        return false;
    };
    let readable = headers.get_all("x-forwarded-for").iter().all(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .all(|e| forwarded_ip(e).is_some())
        })
    });
    readable && client.to_canonical() != peer.to_canonical()
}

/// One `X-Forwarded-For` entry as `security::client_addr` reads it: an address, maybe with a
/// port or in brackets.
fn forwarded_ip(entry: &str) -> Option<IpAddr> {
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
}

/// The caller of a lock request.
fn caller_of<'a>(
    holder: &'a str,
    secret: Option<&'a str>,
    client: Option<LockClient>,
) -> Caller<'a> {
    Caller {
        holder,
        secret,
        address: client.and_then(|c| c.address),
        address_believed: client.is_some_and(|c| c.believed),
    }
}

/// What a client behind a proxy the server does not trust is told when it takes a hold.
const ADDRESS_UNKNOWN: &str = "this request came through a proxy the server does not trust \
    (or forwarded its client in a form the server does not read), so its address proves \
    nothing: renew and release this hold with its secret (X-Lock-Secret or ?secret=); \
    without it, heartbeats are refused (409). An operator can name the proxy with \
    --trusted-proxy";

/// The token a request carries: its `Authorization` header when it has one, else
/// `?token=` (for clients that cannot send headers).
fn given_token<'a>(headers: &'a HeaderMap, query: &'a HashMap<String, String>) -> Option<&'a str> {
    match headers.get(header::AUTHORIZATION) {
        Some(v) => v.to_str().ok()?.strip_prefix("Bearer "),
        None => query.get("token").map(String::as_str),
    }
}

fn holder(headers: &HeaderMap, query: &HashMap<String, String>) -> String {
    headers
        .get("x-lock-holder")
        .and_then(|v| v.to_str().ok())
        .map(String::from)
        .or_else(|| query.get("holder").cloned())
        .unwrap_or_default()
}

fn secret(headers: &HeaderMap, query: &HashMap<String, String>) -> Option<String> {
    headers
        .get("x-lock-secret")
        .and_then(|v| v.to_str().ok())
        .map(String::from)
        .or_else(|| query.get("secret").cloned())
}

/// What anyone with access may see of a lock: its mode, holders and their expiry. The
/// secrets and addresses that prove a holder stay in the store.
fn body(state: &locks::LockState) -> serde_json::Value {
    json!({
        "mode": state.mode,
        "holders": state.holders.iter().map(|(h, hold)| json!({"holder": h, "expires_at": hold.expires_at})).collect::<Vec<_>>(),
    })
}

async fn status(State(s): State<Shared>, Path(name): Path<String>) -> Result<Response, ApiError> {
    Ok(
        match locks::status(s.services.store.as_ref(), &s.services.keys, &name).await? {
            Some(state) => (StatusCode::OK, Json(body(&state))).into_response(),
            None => ApiError::not_found(format!("lock `{name}` is free")).into_response(),
        },
    )
}

async fn acquire(
    State(s): State<Shared>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    client: Option<Extension<LockClient>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let client = client.map(|Extension(c)| c);
    let mode = match query.get("mode").map(String::as_str) {
        None | Some("exclusive") => LockMode::Exclusive,
        Some("shared") => LockMode::Shared,
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("mode `{other}` is not exclusive or shared"),
            )
            .with_field("mode"))
        }
    };
    let ttl: i64 = match query.get("ttl") {
        None => DEFAULT_TTL_SECS,
        Some(t) => t.parse().map_err(|_| {
            ApiError::new(StatusCode::BAD_REQUEST, "ttl must be whole seconds").with_field("ttl")
        })?,
    };
    let who = holder(&headers, &query);
    let secret = secret(&headers, &query);
    let caller = caller_of(&who, secret.as_deref(), client);
    let outcome = locks::acquire(
        s.services.store.as_ref(),
        &s.services.keys,
        &name,
        caller,
        mode,
        ttl,
        s.limits,
    )
    .await?;
    // A longer TTL is cut to the longest (the holders' `expires_at` show it too).
    let granted = ttl.min(MAX_TTL_SECS);
    Ok(match outcome {
        Acquire::Held {
            state,
            secret: None,
        } => {
            let mut b = body(&state);
            b["ttl"] = json!(granted);
            (StatusCode::OK, Json(b)).into_response()
        }
        Acquire::Held {
            state,
            secret: Some(secret),
        } => {
            let mut b = body(&state);
            b["ttl"] = json!(granted);
            b["secret"] = json!(secret);
            if !caller.address_believed {
                b["warning"] = json!(ADDRESS_UNKNOWN);
            }
            let mut resp = (StatusCode::OK, Json(b)).into_response();
            let h = resp.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&secret) {
                h.insert("x-lock-secret", v);
            }
            // The answer carries a secret: no cache keeps it.
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Acquire::Refused { reason, state } => {
            let mut b = state.as_ref().map(body).unwrap_or_else(|| json!({}));
            b["error"] = json!(reason.to_string());
            if matches!(
                reason,
                Refusal::NotYours { .. } | Refusal::AddressUnknown { .. } | Refusal::Ended { .. }
            ) {
                b["field"] = json!("secret");
            }
            (StatusCode::CONFLICT, Json(b)).into_response()
        }
    })
}

/// DELETE answers 404 whenever it releases nothing, as it did before holds had owners
/// (Metaparticle clients know 200 and 404): whether the holder holds nothing or the request
/// does not prove to be it, which the message and `field: secret` tell apart.
async fn release(
    State(s): State<Shared>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    client: Option<Extension<LockClient>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let who = holder(&headers, &query);
    let secret = secret(&headers, &query);
    let caller = caller_of(&who, secret.as_deref(), client.map(|Extension(c)| c));
    Ok(
        match locks::release(s.services.store.as_ref(), &s.services.keys, &name, caller).await? {
            Release::Released => StatusCode::OK.into_response(),
            Release::NotHeld => {
                ApiError::not_found(format!("`{who}` holds no lock `{name}`")).into_response()
            }
            Release::Refused(reason) => ApiError::not_found(reason.to_string())
                .with_field("secret")
                .into_response(),
        },
    )
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use idra_core::secret::Cipher;
    use idra_core::store::{EmbeddedStore, Keys, Store};
    use tower::ServiceExt;

    use super::*;

    const TOKEN: &str = "0123456789abcdef";

    struct Resp {
        status: StatusCode,
        headers: HeaderMap,
        json: serde_json::Value,
    }

    /// One request from the client address `from` (as `resolve_client` determines it), on
    /// a connection from that address.
    async fn call(
        app: &Router,
        from: &str,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
    ) -> Resp {
        call_via(app, from, from, method, uri, headers).await
    }

    /// One request on a connection from `peer` whose client `resolve_client` found to be
    /// `client`.
    async fn call_via(
        app: &Router,
        peer: &str,
        client: &str,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut req = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let mut req = req.body(Body::empty()).unwrap();
        req.extensions_mut().insert(ClientAddr {
            ip: Some(client.parse().unwrap()),
            this_machine: false,
        });
        req.extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(peer.parse().unwrap(), 40_000)));
        let resp = app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        Resp {
            status,
            headers,
            json: serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        }
    }

    async fn app_with(
        access: LockAccess,
        limits: Limits,
        rate: RateLimiter,
    ) -> (Router, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(EmbeddedStore::open(&dir.path().join("s")).await.unwrap());
        let services = Services::new(
            store,
            Keys::default(),
            Cipher::from_key_file(&dir.path().join("k")).unwrap(),
        );
        (router_with(services, access, limits, rate), dir)
    }

    async fn app(access: LockAccess) -> (Router, tempfile::TempDir) {
        app_with(access, Limits::default(), RateLimiter::new(1000, 1000)).await
    }

    const A: &str = "10.0.0.1";
    const B: &str = "10.0.0.2";

    #[tokio::test]
    async fn metaparticle_protocol() {
        let (app, _dir) = app(LockAccess::Open).await;
        let status = |from, method, uri: &str, holder: Option<&str>| {
            let holder = holder.map(String::from);
            let app = app.clone();
            let uri = uri.to_string();
            async move {
                let headers: Vec<(&str, &str)> = holder
                    .as_deref()
                    .map(|h| vec![("X-Lock-Holder", h)])
                    .unwrap_or_default();
                call(&app, from, method, &uri, &headers).await.status
            }
        };
        assert_eq!(
            status(A, "GET", "/leader", None).await,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status(A, "PUT", "/leader?ttl=10", Some("pod-a")).await,
            StatusCode::OK
        );
        let r = call(&app, B, "GET", "/leader", &[]).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json["holders"][0]["holder"], "pod-a");
        assert_eq!(
            status(A, "PUT", "/leader", Some("pod-a")).await,
            StatusCode::OK,
            "heartbeat"
        );
        assert_eq!(
            status(B, "PUT", "/leader?holder=pod-b", None).await,
            StatusCode::CONFLICT
        );
        assert_eq!(
            status(B, "DELETE", "/leader?holder=pod-b", None).await,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status(A, "DELETE", "/leader", Some("pod-a")).await,
            StatusCode::OK
        );
        assert_eq!(
            status(B, "PUT", "/leader", Some("pod-b")).await,
            StatusCode::OK
        );
        // Shared holds coexist; an exclusive one waits for none.
        assert_eq!(
            status(A, "PUT", "/cache?mode=shared", Some("r1")).await,
            StatusCode::OK
        );
        assert_eq!(
            status(B, "PUT", "/cache?mode=shared", Some("r2")).await,
            StatusCode::OK
        );
        assert_eq!(
            status(A, "PUT", "/cache", Some("w")).await,
            StatusCode::CONFLICT
        );
        let r = call(&app, A, "PUT", "/x", &[]).await;
        assert_eq!(
            (r.status, r.json["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("holder"))
        );
        assert_eq!(
            status(A, "PUT", "/x?mode=sometimes", Some("a")).await,
            StatusCode::BAD_REQUEST
        );
    }

    #[tokio::test]
    async fn off_refuses_every_route_and_names_the_flags() {
        let (app, _dir) = app(LockAccess::Off).await;
        for method in ["GET", "PUT", "DELETE"] {
            let r = call(&app, A, method, "/l?holder=a", &[]).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN);
            let e = r.json["error"].as_str().unwrap();
            assert!(
                e.contains("--lock-token") && e.contains("--locks-open"),
                "{e}"
            );
        }
    }

    /// (b) The token by header or `?token=`; anything else is 401 with a JSON error.
    #[tokio::test]
    async fn a_token_is_required_when_configured() {
        let (app, _dir) = app(LockAccess::Token(TOKEN.into())).await;
        let bearer = format!("Bearer {TOKEN}");
        for (uri, headers) in [
            ("/l?holder=a", vec![]),
            ("/l?holder=a", vec![("Authorization", "Bearer wrong")]),
            ("/l?holder=a", vec![("Authorization", TOKEN)]),
            ("/l?holder=a&token=wrong", vec![]),
            // A wrong header is not rescued by a right query.
            (
                "/l?holder=a&token=0123456789abcdef",
                vec![("Authorization", "Bearer wrong")],
            ),
        ] {
            let r = call(&app, A, "PUT", uri, &headers).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{uri} {headers:?}");
            assert_eq!(r.json["field"], "token");
            assert!(r.json["error"].as_str().unwrap().contains("?token="));
            assert_eq!(r.headers[header::WWW_AUTHENTICATE], "Bearer");
        }
        let r = call(
            &app,
            A,
            "PUT",
            "/l?holder=a",
            &[("Authorization", bearer.as_str())],
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        let r = call(&app, A, "GET", &format!("/l?token={TOKEN}"), &[]).await;
        assert_eq!(r.status, StatusCode::OK);
    }

    #[test]
    fn access_from_the_flags() {
        assert_eq!(LockAccess::from_flags(None, false), Ok(LockAccess::Off));
        assert_eq!(LockAccess::from_flags(None, true), Ok(LockAccess::Open));
        assert_eq!(
            LockAccess::from_flags(Some(TOKEN.into()), false),
            Ok(LockAccess::Token(TOKEN.into()))
        );
        assert_eq!(
            LockAccess::from_flags(Some(TOKEN.into()), true),
            Err(LockAccessError::Both)
        );
        assert_eq!(
            LockAccess::from_flags(Some("short".into()), false),
            Err(LockAccessError::TooShort)
        );
        assert_eq!(
            LockAccess::from_flags(Some("0123456789abcdef+/==".into()), false),
            Err(LockAccessError::Characters)
        );
        assert!(!format!("{:?}", LockAccess::Token(TOKEN.into())).contains(TOKEN));
    }

    /// (c, d) The secret of a new hold comes in the body and a header, uncached; GET never
    /// shows it; without it, or from elsewhere, the hold is neither renewed nor released.
    #[tokio::test]
    async fn a_new_hold_answers_with_its_secret() {
        let (app, _dir) = app(LockAccess::Open).await;
        let r = call(&app, A, "PUT", "/l?holder=a", &[]).await;
        assert_eq!(r.status, StatusCode::OK);
        let secret = r.json["secret"].as_str().unwrap().to_string();
        assert_eq!(r.headers["x-lock-secret"], secret.as_str());
        assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");

        let r = call(&app, B, "GET", "/l", &[]).await;
        assert_eq!(r.json["holders"][0]["holder"], "a");
        assert!(!r.json.to_string().contains(&secret));
        assert!(r.json["holders"][0].get("secret").is_none());

        let r = call(&app, B, "PUT", "/l?holder=a", &[]).await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert_eq!(r.json["field"], "secret");
        assert_eq!(r.json["holders"][0]["holder"], "a");
        // DELETE releases nothing: 404, as when the caller holds nothing, with why.
        let r = call(&app, B, "DELETE", "/l?holder=a", &[]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(r.json["field"], "secret");
        assert!(r.json["error"].as_str().unwrap().contains("secret"));
        let r = call(&app, B, "DELETE", "/l?holder=a&secret=guess", &[]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert_eq!(r.json["field"], "secret");
        let r = call(&app, B, "DELETE", "/l?holder=nobody", &[]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        assert!(r.json.get("field").is_none(), "{}", r.json);

        let r = call(&app, B, "PUT", "/l?holder=a", &[("X-Lock-Secret", &secret)]).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.json.get("secret").is_none() && r.headers.get("x-lock-secret").is_none());
        let r = call(
            &app,
            B,
            "DELETE",
            &format!("/l?holder=a&secret={secret}"),
            &[],
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        // The secret of an ended hold takes nothing.
        let r = call(&app, A, "PUT", "/l?holder=a", &[("X-Lock-Secret", &secret)]).await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert!(r.json["error"].as_str().unwrap().contains("ended"));
    }

    /// (e) The caps answer 409 with a JSON error that says which.
    #[tokio::test]
    async fn full_answers_say_which_cap() {
        let limits = Limits {
            max_locks: 2,
            max_holders: 3,
            max_holds_per_address: 3,
        };
        let (app, _dir) = app_with(LockAccess::Open, limits, RateLimiter::new(1000, 1000)).await;
        for uri in [
            "/a?holder=x&mode=shared",
            "/a?holder=y&mode=shared",
            "/b?holder=x",
        ] {
            assert_eq!(call(&app, A, "PUT", uri, &[]).await.status, StatusCode::OK);
        }
        let r = call(&app, A, "PUT", "/a?holder=z&mode=shared", &[]).await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        let e = r.json["error"].as_str().unwrap();
        assert!(e.contains("address already has 3 holds"), "{e}");
        assert!(e.contains("--trusted-proxy"), "{e}");
        let r = call(&app, B, "PUT", "/a?holder=z&mode=shared", &[]).await;
        assert_eq!(r.status, StatusCode::OK);
        let r = call(&app, B, "PUT", "/a?holder=w&mode=shared", &[]).await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert!(r.json["error"].as_str().unwrap().contains("3 holders"));
        let r = call(&app, B, "PUT", "/c?holder=x", &[]).await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert!(r.json["error"].as_str().unwrap().contains("2 locks"));
    }

    /// An address is the client's own when nothing forwarded the request, or when a trusted
    /// proxy's readable X-Forwarded-For named it; otherwise it is a proxy's.
    #[test]
    fn an_address_is_believed_only_when_no_untrusted_proxy_stands_between() {
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        let headers = |pairs: &[(&str, &str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.append(
                    axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    HeaderValue::from_str(v).unwrap(),
                );
            }
            h
        };
        let (proxy, pod) = ("10.9.0.1", "10.1.0.1");
        // Straight from the client.
        assert!(address_believed(ip(pod), ip(pod), &headers(&[])));
        // Through a trusted proxy: `client_addr` took the client from X-Forwarded-For.
        let xff = headers(&[("X-Forwarded-For", pod)]);
        assert!(address_believed(ip(proxy), ip(pod), &xff));
        let v6 = headers(&[("X-Forwarded-For", "[2001:db8::1]:5000, 10.9.0.2")]);
        assert!(address_believed(ip(proxy), ip("2001:db8::1"), &v6));
        // Through a proxy that is not trusted: the client is still the peer.
        for h in [
            xff.clone(),
            headers(&[("Forwarded", "for=10.1.0.1")]),
            headers(&[("X-Real-IP", pod)]),
            headers(&[("X-Forwarded-For", "")]),
        ] {
            assert!(!address_believed(ip(proxy), ip(proxy), &h), "{h:?}");
        }
        // An entry that is no address: the reading may have stopped at a trusted proxy.
        let unreadable = headers(&[("X-Forwarded-For", "unknown, 10.9.0.2")]);
        assert!(!address_believed(ip(proxy), ip("10.9.0.2"), &unreadable));
        // IPv4 on a dual-stack socket is the same address.
        assert!(!address_believed(
            ip("::ffff:10.9.0.1"),
            ip(proxy),
            &headers(&[("X-Forwarded-For", pod)])
        ));
        // No connection address known: nothing to compare with.
        assert!(!address_believed(None, ip(pod), &xff));
    }

    /// Behind a proxy that is not trusted, everyone has the proxy's address: a hold taken
    /// there answers only to its secret (the answer says so), and no request from there
    /// proves a holder by the address: PUT 409, DELETE 404, naming --trusted-proxy.
    #[tokio::test]
    async fn behind_an_untrusted_proxy_only_the_secret_proves_a_holder() {
        let (app, _dir) = app(LockAccess::Open).await;
        const PROXY: &str = "10.9.0.1";
        let pod_a = [("X-Forwarded-For", "10.1.0.1")];
        let other = [("X-Forwarded-For", "10.1.0.2")];
        let r = call(&app, PROXY, "PUT", "/leader?holder=pod-a", &pod_a).await;
        assert_eq!(r.status, StatusCode::OK);
        let secret = r.json["secret"].as_str().unwrap().to_string();
        assert!(r.json["warning"]
            .as_str()
            .unwrap()
            .contains("--trusted-proxy"));
        for headers in [&pod_a, &other] {
            let r = call(&app, PROXY, "PUT", "/leader?holder=pod-a", headers).await;
            assert_eq!(r.status, StatusCode::CONFLICT);
            assert_eq!(r.json["field"], "secret");
            assert!(r.json["error"]
                .as_str()
                .unwrap()
                .contains("--trusted-proxy"));
            let r = call(&app, PROXY, "DELETE", "/leader?holder=pod-a", headers).await;
            assert_eq!(r.status, StatusCode::NOT_FOUND);
            assert_eq!(r.json["field"], "secret");
            assert!(r.json["error"]
                .as_str()
                .unwrap()
                .contains("--trusted-proxy"));
        }
        let r = call(&app, PROXY, "DELETE", "/leader?holder=pod-a", &[]).await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "nor the proxy's own machine"
        );
        let r = call(
            &app,
            PROXY,
            "PUT",
            "/leader?holder=pod-a",
            &[pod_a[0], ("X-Lock-Secret", &secret)],
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        // Through a trusted proxy (the client differs from the peer): the address counts.
        let other = [("X-Forwarded-For", "10.1.0.3")];
        let r = call_via(&app, PROXY, "10.1.0.3", "PUT", "/l?holder=b", &other).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.json.get("warning").is_none());
        let r = call_via(&app, PROXY, "10.1.0.3", "PUT", "/l?holder=b", &other).await;
        assert_eq!(r.status, StatusCode::OK, "heartbeat");
        assert_eq!(r.json["ttl"], DEFAULT_TTL_SECS);
        let r = call_via(&app, PROXY, "10.1.0.3", "DELETE", "/l?holder=b", &other).await;
        assert_eq!(r.status, StatusCode::OK);
    }

    /// A TTL longer than an hour is cut to an hour, and the answer says what was granted.
    #[tokio::test]
    async fn a_long_ttl_is_cut_to_an_hour() {
        let (app, _dir) = app(LockAccess::Open).await;
        let r = call(&app, A, "PUT", "/l?holder=a&ttl=86400", &[]).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json["ttl"], MAX_TTL_SECS);
        let r = call(&app, A, "PUT", "/l?holder=a&ttl=0", &[]).await;
        assert_eq!(
            (r.status, r.json["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("ttl"))
        );
    }

    /// (e) Past its burst an address is answered 429 with Retry-After; requests without
    /// the right token have a burst of their own, so guesses are slowed down as much but use
    /// up nothing of the clients with the token at the same address; other addresses go on.
    #[tokio::test]
    async fn an_address_past_its_rate_waits() {
        let now = Arc::new(std::sync::Mutex::new(Instant::now()));
        let clock = now.clone();
        let rate = RateLimiter::with_clock(1, 2, Arc::new(move || *clock.lock().unwrap()));
        let (app, _dir) = app_with(LockAccess::Token(TOKEN.into()), Limits::default(), rate).await;
        let uri = format!("/l?token={TOKEN}");
        for guess in ["/l?token=guess", "/l"] {
            let status = call(&app, A, "GET", guess, &[]).await.status;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{guess}");
        }
        let r = call(&app, A, "GET", "/l?token=guess", &[]).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            call(&app, A, "GET", &uri, &[]).await.status,
            StatusCode::NOT_FOUND,
            "the guesses used up nothing of the token's requests"
        );
        assert_eq!(
            call(&app, A, "GET", &uri, &[]).await.status,
            StatusCode::NOT_FOUND
        );
        for uri in [uri.as_str(), "/l?token=guess"] {
            let r = call(&app, A, "GET", uri, &[]).await;
            assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
            assert_eq!(r.headers[header::RETRY_AFTER], "1");
            assert!(r.json["error"].as_str().unwrap().contains("try again"));
        }
        assert_eq!(
            call(&app, B, "GET", &uri, &[]).await.status,
            StatusCode::NOT_FOUND
        );
        *now.lock().unwrap() += std::time::Duration::from_secs(1);
        assert_eq!(
            call(&app, A, "GET", &uri, &[]).await.status,
            StatusCode::NOT_FOUND
        );
    }
}
