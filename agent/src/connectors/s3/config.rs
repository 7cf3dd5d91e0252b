use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};

use super::formats::Format;
use crate::connectors::types::Column;
use crate::connectors::{options, ConnectionSpec, ConnectorError};

/// `secret_access_key` (or the form's Password) and `session_token`.
pub const SECRET_FIELDS: &[&str] = &["password", "secret_access_key", "session_token"];

const KNOWN_OPTIONS: &[&str] = &[
    "endpoint",
    "region",
    "access_key_id",
    "format",
    "compression",
    "path_style",
    "schema",
];

#[derive(Clone)]
pub struct S3Config {
    pub bucket: String,
    /// Key prefix from the connection string: empty, or ending in `/`.
    pub prefix: String,
    pub endpoint: Option<String>,
    pub region: String,
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
    pub format: Format,
    pub gzip: bool,
    pub path_style: bool,
    pub schema: Option<Vec<Column>>,
}

impl S3Config {
    pub fn from_spec(spec: &ConnectionSpec) -> Result<Self, ConnectorError> {
        options::only_known(spec, KNOWN_OPTIONS, "an S3 option")?;
        let cs = spec.connection_string.trim();
        let rest = cs.strip_prefix("s3://").ok_or_else(|| {
            ConnectorError::fatal(format!(
                "connection_string: `{cs}` is not s3://bucket/prefix (a custom server goes in the `endpoint` option)"
            ))
        })?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(ConnectorError::fatal(
                "connection_string: the bucket is missing; expected s3://bucket/prefix",
            ));
        }
        let prefix = prefix.trim_matches('/');
        let prefix = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        };
        let opt = |k: &str| spec.options.get(k).map(|v| v.trim().to_string());
        let access_key_id = opt("access_key_id").ok_or_else(|| {
            options::error(
                "access_key_id",
                "is required (with the secret access key in the Password)",
            )
        })?;
        let secret_access_key = spec
            .secret("secret_access_key")
            .or(spec.secret("password"))
            .ok_or_else(|| {
                ConnectorError::fatal(
                    "password: type the secret access key in the data source's Password",
                )
            })?
            .to_string();
        let format = match opt("format") {
            None => Format::JsonLines,
            Some(f) => Format::parse(&f).ok_or_else(|| {
                options::error("format", format!("is `{f}`; use jsonl, csv or parquet"))
            })?,
        };
        let gzip = match opt("compression").as_deref() {
            None | Some("none") => false,
            Some("gzip") if format == Format::Parquet => {
                return Err(options::error(
                    "compression",
                    "gzip applies to jsonl and csv; Parquet compresses inside (snappy)",
                ))
            }
            Some("gzip") => true,
            Some(other) => {
                return Err(options::error(
                    "compression",
                    format!("is `{other}`; use none or gzip"),
                ))
            }
        };
        let endpoint = opt("endpoint");
        if let Some(e) = &endpoint {
            url::Url::parse(e).map_err(|err| {
                options::error(
                    "endpoint",
                    format!("`{e}` is not a URL ({err}); e.g. http://127.0.0.1:9000"),
                )
            })?;
        }
        let path_style = options::flag(spec, "path_style", endpoint.is_some())?;
        Ok(Self {
            bucket: bucket.to_string(),
            prefix,
            endpoint,
            region: opt("region").unwrap_or_else(|| "us-east-1".into()),
            access_key_id,
            secret_access_key,
            session_token: spec.secret("session_token").map(String::from),
            format,
            gzip,
            path_style,
            schema: options::schema(spec)?,
        })
    }

    pub fn client(&self) -> aws_sdk_s3::Client {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let credentials = Credentials::new(
            &self.access_key_id,
            &self.secret_access_key,
            self.session_token.clone(),
            None,
            "idra-data-source",
        );
        let mut b = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(self.region.clone()))
            .credentials_provider(credentials)
            .force_path_style(self.path_style)
            .http_client(http);
        if let Some(e) = &self.endpoint {
            b = b.endpoint_url(e);
        }
        aws_sdk_s3::Client::from_conf(b.build())
    }

    /// Where a sync's table lives: `prefix` + table + `/`.
    pub fn folder(&self, table: &str) -> String {
        let t = table.trim_matches('/');
        if t.is_empty() {
            self.prefix.clone()
        } else {
            format!("{}{t}/", self.prefix)
        }
    }

    pub fn place(&self) -> String {
        match &self.endpoint {
            Some(e) => format!("bucket `{}` at {e}", self.bucket),
            None => format!("bucket `{}`", self.bucket),
        }
    }
}

/// Classifies an S3 error: credentials, permissions and missing buckets need the user;
/// network trouble and 5xx are retried.
pub fn s3_error<E>(e: SdkError<E>, what: &str) -> ConnectorError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match &e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => ConnectorError::retryable(format!(
            "{what}: cannot reach the S3 server ({}). Check the `endpoint` option and that the server is up",
            aws_sdk_s3::error::DisplayErrorContext(&e)
        )),
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            // HEAD answers carry no body, hence no code: fall back on the status.
            let code = se.err().code().map(String::from).unwrap_or_else(|| match status {
                403 => "AccessDenied".into(),
                404 => "NoSuchBucket".into(),
                s if s >= 500 => "InternalError".into(),
                s => format!("HTTP {s}"),
            });
            let message = se.err().message().unwrap_or_default().to_string();
            let text = format!("{what}: {code}: {message}");
            match code.as_str() {
                "InvalidAccessKeyId" | "SignatureDoesNotMatch" | "AccessDenied" | "InvalidToken"
                | "ExpiredToken" => ConnectorError::fatal(format!(
                    "{text}. S3 refused the credentials: check `access_key_id` and the secret access key in the Password"
                )),
                "NoSuchBucket" => ConnectorError::fatal(format!(
                    "{text}. Check the bucket in the connection string (s3://bucket/prefix)"
                )),
                "SlowDown" | "InternalError" | "ServiceUnavailable" | "RequestTimeout" => {
                    ConnectorError::retryable(text)
                }
                _ => ConnectorError::fatal(text),
            }
        }
        _ => ConnectorError::retryable(format!(
            "{what}: {}",
            aws_sdk_s3::error::DisplayErrorContext(&e)
        )),
    }
}
