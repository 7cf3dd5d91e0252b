//! Headers every answer carries (pages, API answers, redirects, refusals, static files),
//! so browsers refuse framing, content sniffing, foreign scripts and plain-http downgrades.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use axum::Router;

/// What the page needs and nothing more. Scripts: leptos' `HydrationScripts` and the
/// streamed Suspense chunks are inline `<script>`s, so `'unsafe-inline'` (leptos can use
/// nonces instead, but only with its `nonce` feature and per-response CSP); the wasm
/// module is compiled by `WebAssembly.instantiate`, which needs `'wasm-unsafe-eval'`
/// (not `'unsafe-eval'`). Everything else (CSS, the wasm file, server functions, the
/// favicon) is this origin. `frame-ancestors` is the modern X-Frame-Options.
const POLICY: &str = "default-src 'self'; script-src 'self' 'unsafe-inline' 'wasm-unsafe-eval'; \
                      object-src 'none'; base-uri 'self'; form-action 'self'; \
                      frame-ancestors 'none'";

/// `cargo leptos watch` reloads pages over a websocket on another port (LEPTOS_RELOAD_PORT),
/// which `'self'` does not cover.
const LIVE_RELOAD: &str = "; connect-src 'self' ws: wss:";

/// One year, the value preload lists ask for. No `includeSubDomains`: sibling hosts of the
/// public URL are not ours to pin to https.
const HSTS: &str = "max-age=31536000";

/// Wraps the whole router, outside the session and guard layers, so their own answers
/// (redirects to /login, cross-origin refusals) carry the headers too.
///
/// `https`: users reach the server over https (`--public-url https://…`). HSTS is sent only
/// then: a browser that once saw it refuses plain http to the host for a year, which would
/// lock out users of a deployment meant to be reached over http (say, behind a proxy that
/// also offers https).
/// `live_reload`: the page carries cargo-leptos' reload script (LEPTOS_WATCH is set).
pub fn apply(router: Router, https: bool, live_reload: bool) -> Router {
    let headers = Arc::new(headers(https, live_reload));
    router.layer(axum::middleware::map_response_with_state(headers, add))
}

fn headers(https: bool, live_reload: bool) -> HeaderMap {
    let mut policy = POLICY.to_string();
    if live_reload {
        policy.push_str(LIVE_RELOAD);
    }
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_str(&policy).expect("the policy is ASCII"),
    );
    // For browsers without CSP level 2; same rule as `frame-ancestors 'none'`.
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if https {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
    h
}

/// Sets (replaces) each header: the policy is the server's, one place, not a handler's.
async fn add(State(headers): State<Arc<HeaderMap>>, mut response: Response) -> Response {
    for (name, value) in headers.iter() {
        response.headers_mut().insert(name, value.clone());
    }
    response
}
