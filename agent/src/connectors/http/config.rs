use std::time::Duration;

use idra_core::model::HTTP_CREDENTIAL_PARAMS;

use crate::connectors::types::Column;
use crate::connectors::{options, ConnectionSpec, ConnectorError};

/// `password` is the bearer token (or, with a `user`, the basic-auth password); `token` is
/// accepted as the bearer token's own name.
pub const SECRET_FIELDS: &[&str] = &["password", "token"];

/// How the source asks for the next page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pagination {
    /// `?<after_param>=<last key>&<limit_param>=<n>`: the API returns records with a greater
    /// key, in key order. Timestamp cursors also send `<after_param>_key=<last key>`.
    Key { after_param: String },
    /// `?<cursor_param>=<token>`: the API answers with the next page's token at
    /// `next_cursor_path` (absent or null on the last page).
    Cursor {
        cursor_param: String,
        next_cursor_path: String,
    },
    /// `?<page_param>=<n>` counting from `first_page`.
    Page { page_param: String, first_page: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    None,
    Bearer(String),
    Basic { user: String, password: String },
}

#[derive(Clone)]
pub struct HttpConfig {
    /// Base URL without credentials; a sync's table is a path under it.
    pub base: url::Url,
    pub auth: Auth,
    pub pagination: Pagination,
    pub limit_param: String,
    /// Dot path to the records array in a response; empty: the body is the array.
    pub records_path: String,
    pub schema: Option<Vec<Column>>,
    /// Retries of one request on 429, 5xx and network errors before the run fails (the
    /// engine then retries the run with its own backoff).
    pub max_retries: u32,
    pub retry_base: Duration,
    pub timeout: Duration,
    /// Records per POST; a larger batch is sent in several requests.
    pub max_batch: usize,
    /// Path checked by Test connection (default: the base URL).
    pub health_path: Option<String>,
    /// Endpoints offered by discovery (an API has no catalog to list).
    pub paths: Vec<String>,
}

impl std::fmt::Debug for HttpConfig {
    // Never prints the credentials.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("base", &self.base.as_str())
            .field("pagination", &self.pagination)
            .finish_non_exhaustive()
    }
}

const KNOWN_OPTIONS: &[&str] = &[
    "auth",
    "user",
    "pagination",
    "after_param",
    "cursor_param",
    "next_cursor_path",
    "page_param",
    "first_page",
    "limit_param",
    "records_path",
    "schema",
    "max_retries",
    "retry_base_ms",
    "timeout_secs",
    "max_batch",
    "health_path",
    "paths",
];

impl HttpConfig {
    pub fn from_spec(spec: &ConnectionSpec) -> Result<Self, ConnectorError> {
        options::only_known(spec, KNOWN_OPTIONS, "an HTTP API option")?;
        let mut base = url::Url::parse(spec.connection_string.trim()).map_err(|e| {
            ConnectorError::fatal(format!(
                "connection_string: not a URL ({e}); expected e.g. https://api.example.com/v1"
            ))
        })?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(ConnectorError::fatal(format!(
                "connection_string: scheme `{}` is not http or https",
                base.scheme()
            )));
        }
        let credential_param = base
            .query_pairs()
            .find(|(k, _)| HTTP_CREDENTIAL_PARAMS.contains(&k.to_ascii_lowercase().as_str()));
        if let Some((k, _)) = credential_param {
            return Err(ConnectorError::fatal(format!(
                "connection_string: the query parameter `{k}` looks like a credential; credentials never go in URLs (they end up in logs): put it in the data source's password"
            )));
        }
        // A user in the URL is the basic-auth user; it is sent in a header, never the URL.
        let url_user = (!base.username().is_empty()).then(|| base.username().to_string());
        let _ = base.set_username("");
        let _ = base.set_password(None);
        if !base.path().ends_with('/') {
            let p = format!("{}/", base.path());
            base.set_path(&p);
        }
        let user = spec.options.get("user").cloned().or(url_user);
        let secret = spec
            .secret("token")
            .or(spec.secret("password"))
            .map(String::from);
        let auth = match (spec.options.get("auth").map(|s| s.trim()), user, secret) {
            (Some("none"), _, _) => Auth::None,
            (Some("basic"), Some(user), Some(password)) => Auth::Basic { user, password },
            (Some("basic"), None, _) => {
                return Err(options::error("user", "is needed for basic auth (or put the user in the URL)"))
            }
            (Some("basic") | Some("bearer"), _, None) => {
                return Err(ConnectorError::fatal(
                    "password: this auth needs a password or token; type it in the data source's Password",
                ))
            }
            (Some("bearer"), _, Some(t)) => Auth::Bearer(t),
            (None, Some(user), Some(password)) => Auth::Basic { user, password },
            (None, None, Some(t)) => Auth::Bearer(t),
            (None, _, None) => Auth::None,
            (Some(other), _, _) => {
                return Err(options::error("auth", format!("is `{other}`; use none, bearer or basic")))
            }
        };
        let opt = |name: &str, default: &str| {
            spec.options
                .get(name)
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|| default.to_string())
        };
        let pagination = match opt("pagination", "key").as_str() {
            "key" => Pagination::Key {
                after_param: opt("after_param", "after"),
            },
            "cursor" => Pagination::Cursor {
                cursor_param: opt("cursor_param", "cursor"),
                next_cursor_path: opt("next_cursor_path", "next_cursor"),
            },
            "page" => Pagination::Page {
                page_param: opt("page_param", "page"),
                first_page: options::number(spec, "first_page", 1)?,
            },
            other => {
                return Err(options::error(
                    "pagination",
                    format!("is `{other}`; use key, cursor or page"),
                ))
            }
        };
        let schema = options::schema(spec)?;
        let max_batch: usize = options::number(spec, "max_batch", 1000)?;
        if max_batch == 0 {
            return Err(options::error("max_batch", "must be at least 1"));
        }
        Ok(Self {
            base,
            auth,
            pagination,
            limit_param: opt("limit_param", "limit"),
            records_path: opt("records_path", ""),
            schema,
            max_retries: options::number(spec, "max_retries", 5)?,
            retry_base: Duration::from_millis(options::number(spec, "retry_base_ms", 200)?),
            timeout: Duration::from_secs(options::number(spec, "timeout_secs", 30)?),
            max_batch,
            health_path: spec.options.get("health_path").cloned(),
            paths: spec
                .options
                .get("paths")
                .map(|p| {
                    p.split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    /// The URL of `path` (a sync's table, `health_path` or one of `paths`) under the base
    /// URL. A path that would leave the base URL (an absolute URL, `//host`, `..`) is
    /// refused: the data source's token goes only to the API it was saved for.
    pub fn url(&self, path: &str) -> Result<url::Url, ConnectorError> {
        let url = self.base.join(path.trim_start_matches('/')).map_err(|e| {
            ConnectorError::fatal(format!("table: `{path}` is not a URL path ({e})"))
        })?;
        let inside = url.origin() == self.base.origin() && url.path().starts_with(self.base.path());
        if !inside || path.split(['/', '?']).any(|segment| segment == "..") {
            return Err(ConnectorError::fatal(format!(
                "table: `{path}` leads outside the data source's URL {}; give a path under it (e.g. orders)",
                self.base
            )));
        }
        Ok(url)
    }
}
