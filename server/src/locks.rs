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
//! ignore the secret, and are recognised by their address (see `idra_core::service::locks`).

mod rate;

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use idra_core::service::locks::{
    self, Acquire, Caller, Limits, LockMode, Refusal, Release, DEFAULT_TTL_SECS,
};
use idra_core::service::{ClientAddr, Services};
use serde_json::json;

use crate::api::ApiError;
pub use rate::RateLimiter;

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

/// The checks every lock request passes, in this order: the service is on; the client's
/// address is within its rate (counted before the token, so tokens cannot be guessed at
/// full speed); the token is right.
async fn admit(State(s): State<Shared>, req: Request, next: Next) -> Response {
    let token = match s.access.as_ref() {
        LockAccess::Off => return ApiError::new(StatusCode::FORBIDDEN, OFF).into_response(),
        LockAccess::Open => None,
        LockAccess::Token(token) => Some(token.as_str()),
    };
    let client = req.extensions().get::<ClientAddr>().and_then(|c| c.ip);
    if let Err(wait) = s.rate.admit(client) {
        return ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("too many lock requests from your address; try again in {wait} seconds"),
        )
        .with_retry_after(wait)
        .into_response();
    }
    if let Some(token) = token {
        let query = match Query::<HashMap<String, String>>::try_from_uri(req.uri()) {
            Ok(Query(q)) => q,
            Err(e) => {
                return ApiError::new(StatusCode::BAD_REQUEST, e.body_text())
                    .with_field("query")
                    .into_response()
            }
        };
        if !given_token(req.headers(), &query).is_some_and(|t| locks::secrets_match(t, token)) {
            let mut resp = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "send the lock service's token as `Authorization: Bearer <token>` or in the \
                 lock URL as `?token=<token>`",
            )
            .with_field("token")
            .into_response();
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return resp;
        }
    }
    next.run(req).await
}

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
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
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
    let ttl = match query.get("ttl") {
        None => DEFAULT_TTL_SECS,
        Some(t) => t.parse().map_err(|_| {
            ApiError::new(StatusCode::BAD_REQUEST, "ttl must be whole seconds").with_field("ttl")
        })?,
    };
    let who = holder(&headers, &query);
    let secret = secret(&headers, &query);
    let caller = Caller {
        holder: &who,
        secret: secret.as_deref(),
        address: client.and_then(|Extension(c)| c.ip),
    };
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
    Ok(match outcome {
        Acquire::Held {
            state,
            secret: None,
        } => (StatusCode::OK, Json(body(&state))).into_response(),
        Acquire::Held {
            state,
            secret: Some(secret),
        } => {
            let mut b = body(&state);
            b["secret"] = json!(secret);
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
            if matches!(reason, Refusal::NotYours { .. } | Refusal::Ended { .. }) {
                b["field"] = json!("secret");
            }
            (StatusCode::CONFLICT, Json(b)).into_response()
        }
    })
}

async fn release(
    State(s): State<Shared>,
    Path(name): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    client: Option<Extension<ClientAddr>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let who = holder(&headers, &query);
    let secret = secret(&headers, &query);
    let caller = Caller {
        holder: &who,
        secret: secret.as_deref(),
        address: client.and_then(|Extension(c)| c.ip),
    };
    Ok(
        match locks::release(s.services.store.as_ref(), &s.services.keys, &name, caller).await? {
            Release::Released => StatusCode::OK.into_response(),
            Release::NotHeld => {
                ApiError::not_found(format!("`{who}` holds no lock `{name}`")).into_response()
            }
            Release::NotYours => ApiError::new(
                StatusCode::FORBIDDEN,
                Refusal::NotYours { name, holder: who }.to_string(),
            )
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

    /// One request from the client address `from` (as `resolve_client` determines it).
    async fn call(
        app: &Router,
        from: &str,
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
            ip: Some(from.parse().unwrap()),
            this_machine: false,
        });
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
        let r = call(&app, B, "DELETE", "/l?holder=a", &[]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        assert_eq!(r.json["field"], "secret");
        let r = call(&app, B, "DELETE", "/l?holder=a&secret=guess", &[]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);

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
            max_holders: 2,
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
        assert!(r.json["error"].as_str().unwrap().contains("2 holders"));
        let r = call(&app, A, "PUT", "/c?holder=x", &[]).await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert!(r.json["error"].as_str().unwrap().contains("2 locks"));
    }

    /// (e) Past its burst an address is answered 429 with Retry-After, before its token is
    /// even looked at; other addresses go on.
    #[tokio::test]
    async fn an_address_past_its_rate_waits() {
        let now = Arc::new(std::sync::Mutex::new(Instant::now()));
        let clock = now.clone();
        let rate = RateLimiter::with_clock(1, 2, Arc::new(move || *clock.lock().unwrap()));
        let (app, _dir) = app_with(LockAccess::Token(TOKEN.into()), Limits::default(), rate).await;
        let uri = format!("/l?token={TOKEN}");
        assert_eq!(
            call(&app, A, "GET", &uri, &[]).await.status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            call(&app, A, "GET", "/l?token=guess", &[]).await.status,
            StatusCode::UNAUTHORIZED
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
