//! Requests with authentication and the retry rules shared by source and destination:
//! 2xx is success; 429, 5xx and network errors are retried with exponential backoff (or
//! after the server's `Retry-After`); 401/403 and other 4xx need the user and fail at once.

use std::time::Duration;

use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::Value as Json;

use super::config::{Auth, HttpConfig};
use crate::connectors::ConnectorError;

/// Longest wait honoured from a `Retry-After` header, so a confused server cannot park a
/// sync for hours; the engine's own backoff takes over after the retries.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

pub struct Client {
    http: reqwest::Client,
    pub config: HttpConfig,
}

fn snippet(body: &str) -> String {
    let body = body.trim();
    match body.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &body[..i]),
        None => body.to_string(),
    }
}

/// Where a request went, for messages: the URL without its query (which may carry cursors).
fn place(url: &url::Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.to_string()
}

impl Client {
    pub fn new(config: HttpConfig) -> Result<Self, ConnectorError> {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .user_agent(concat!("idra/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConnectorError::fatal(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self { http, config })
    }

    fn authed(&self, rb: RequestBuilder) -> RequestBuilder {
        match &self.config.auth {
            Auth::None => rb,
            Auth::Bearer(token) => rb.bearer_auth(token),
            Auth::Basic { user, password } => rb.basic_auth(user, Some(password)),
        }
    }

    fn backoff(&self, attempt: u32, resp: Option<&Response>) -> Duration {
        let retry_after = resp
            .and_then(|r| r.headers().get(reqwest::header::RETRY_AFTER))
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        match retry_after {
            Some(d) => d.min(MAX_RETRY_AFTER),
            None => (self.config.retry_base * 2u32.saturating_pow(attempt)).min(MAX_BACKOFF),
        }
    }

    /// Sends the request `build` makes, retrying per the rules above.
    async fn send(
        &self,
        url: &url::Url,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Response, ConnectorError> {
        let at = place(url);
        let mut attempt = 0;
        loop {
            let last = attempt >= self.config.max_retries;
            match self.authed(build()).send().await {
                Err(e) => {
                    // reqwest's message would repeat the URL with its query: drop it.
                    let e = e.without_url();
                    if last {
                        return Err(ConnectorError::retryable(format!(
                            "cannot reach {at} after {} attempts: {e}. Check the URL and that the API is up",
                            attempt + 1
                        )));
                    }
                    tracing::debug!(%at, attempt, error = %e, "HTTP request failed; retrying");
                    tokio::time::sleep(self.backoff(attempt, None)).await;
                }
                Ok(resp) if resp.status().is_success() => return Ok(resp),
                Ok(resp)
                    if resp.status() == StatusCode::TOO_MANY_REQUESTS
                        || resp.status().is_server_error() =>
                {
                    let status = resp.status();
                    if last {
                        let body = resp.text().await.unwrap_or_default();
                        return Err(ConnectorError::retryable(format!(
                            "{at} answered HTTP {status} {} times: {}. The sync tries again later",
                            attempt + 1,
                            snippet(&body)
                        )));
                    }
                    let wait = self.backoff(attempt, Some(&resp));
                    tracing::debug!(%at, attempt, %status, wait_ms = wait.as_millis() as u64, "HTTP request refused for now; retrying");
                    tokio::time::sleep(wait).await;
                }
                Ok(resp)
                    if matches!(
                        resp.status(),
                        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
                    ) =>
                {
                    return Err(ConnectorError::fatal(format!(
                        "{at} refused the credentials (HTTP {}). Check the data source's password or token (and `user` for basic auth)",
                        resp.status()
                    )));
                }
                Ok(resp) => {
                    let status = resp.status();
                    let body = resp.text().await.unwrap_or_default();
                    let hint = if status == StatusCode::NOT_FOUND {
                        ". Check the sync's table (the path under the data source's URL)"
                    } else {
                        ""
                    };
                    return Err(ConnectorError::fatal(format!(
                        "{at} answered HTTP {status}: {}{hint}",
                        snippet(&body)
                    )));
                }
            }
            attempt += 1;
        }
    }

    pub async fn get_json(
        &self,
        url: &url::Url,
        query: &[(String, String)],
    ) -> Result<Json, ConnectorError> {
        let resp = self
            .send(url, || self.http.get(url.clone()).query(query))
            .await?;
        let text = resp.text().await.map_err(|e| {
            ConnectorError::retryable(format!(
                "{}: reading the answer failed: {}",
                place(url),
                e.without_url()
            ))
        })?;
        serde_json::from_str(&text).map_err(|e| {
            ConnectorError::fatal(format!(
                "{} did not answer JSON ({e}): {}",
                place(url),
                snippet(&text)
            ))
        })
    }

    /// Any answer below 500 other than 401/403 shows the API is there and accepts us.
    pub async fn check(&self, url: &url::Url) -> Result<(), ConnectorError> {
        let resp = self
            .authed(self.http.get(url.clone()))
            .send()
            .await
            .map_err(|e| {
                ConnectorError::retryable(format!(
                    "cannot reach {}: {}. Check the URL and that the API is up",
                    place(url),
                    e.without_url()
                ))
            })?;
        match resp.status() {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(ConnectorError::fatal(format!(
                "{} refused the credentials (HTTP {}). Check the data source's password or token (and `user` for basic auth)",
                place(url),
                resp.status()
            ))),
            s if s.is_server_error() => Err(ConnectorError::retryable(format!(
                "{} answered HTTP {s}",
                place(url)
            ))),
            _ => Ok(()),
        }
    }

    pub async fn post_json(&self, url: &url::Url, body: Vec<u8>) -> Result<(), ConnectorError> {
        self.send(url, || {
            self.http
                .post(url.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
        })
        .await
        .map(drop)
    }
}

/// The value at a dot path (`data.items`); the whole value for an empty path.
pub fn at_path<'a>(v: &'a Json, path: &str) -> Option<&'a Json> {
    if path.is_empty() {
        return Some(v);
    }
    path.split('.').try_fold(v, |v, part| match v {
        Json::Object(m) => m.get(part),
        Json::Array(a) => part.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}
