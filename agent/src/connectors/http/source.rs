use async_trait::async_trait;
use idra_core::model::{ConnectorKind, Cursor};
use serde_json::Value as Json;

use super::client::{at_path, Client};
use super::config::{HttpConfig, Pagination};
use crate::connectors::json::{decode_records, infer_columns};
use crate::connectors::types::Column;
use crate::connectors::{ConnectionSpec, ConnectorError, ReadBatch, ReadSpec, Source, TableInfo};

/// Records sampled to infer columns when the data source declares no `schema`.
const SAMPLE: usize = 100;

pub struct HttpSource {
    client: Client,
}

impl HttpSource {
    pub fn new(spec: &ConnectionSpec) -> Result<Self, ConnectorError> {
        Ok(Self {
            client: Client::new(HttpConfig::from_spec(spec)?)?,
        })
    }

    fn config(&self) -> &HttpConfig {
        &self.client.config
    }

    /// The query parameters that ask for the page after `after`.
    pub(super) fn page_query(
        config: &HttpConfig,
        after: &Cursor,
        limit: usize,
    ) -> Result<Vec<(String, String)>, ConnectorError> {
        let mut q = vec![(config.limit_param.clone(), limit.to_string())];
        let mismatch = || {
            ConnectorError::fatal(format!(
                "the offset ({}) does not fit the data source's pagination ({:?}); reset the offset or fix `pagination`",
                after.describe(),
                config.pagination
            ))
        };
        match (&config.pagination, after) {
            (_, Cursor::Start) => {
                if let Pagination::Page {
                    page_param,
                    first_page,
                } = &config.pagination
                {
                    q.push((page_param.clone(), first_page.to_string()));
                }
            }
            (Pagination::Key { after_param }, Cursor::Id { last_id }) => {
                q.push((after_param.clone(), last_id.to_string()));
            }
            (Pagination::Key { after_param }, Cursor::Timestamp { last_ts, last_key }) => {
                q.push((
                    after_param.clone(),
                    last_ts.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                ));
                q.push((format!("{after_param}_key"), last_key.clone()));
            }
            (Pagination::Cursor { cursor_param, .. }, Cursor::Token { token }) => {
                q.push((cursor_param.clone(), token.clone()));
            }
            (Pagination::Page { page_param, .. }, Cursor::Token { token }) => {
                token.parse::<u64>().map_err(|_| mismatch())?;
                q.push((page_param.clone(), token.clone()));
            }
            _ => return Err(mismatch()),
        }
        Ok(q)
    }

    /// Whether page `page` has any record (page pagination).
    async fn has_page(&self, path: &str, page: u64, limit: usize) -> Result<bool, ConnectorError> {
        let at = Cursor::Token {
            token: page.to_string(),
        };
        Ok(!self.fetch(path, &at, limit).await?.0.is_empty())
    }

    async fn fetch(
        &self,
        path: &str,
        after: &Cursor,
        limit: usize,
    ) -> Result<(Vec<Json>, Json), ConnectorError> {
        let url = self.config().url(path)?;
        let query = Self::page_query(self.config(), after, limit)?;
        let body = self.client.get_json(&url, &query).await?;
        let path_shown = if self.config().records_path.is_empty() {
            "the answer itself".to_string()
        } else {
            format!("`{}`", self.config().records_path)
        };
        let records = match at_path(&body, &self.config().records_path) {
            Some(Json::Array(a)) => a.clone(),
            _ => {
                return Err(ConnectorError::fatal(format!(
                    "{path}: {path_shown} is not an array of records; set the data source's `records_path` option to the field holding them (e.g. data.items)"
                )))
            }
        };
        Ok((records, body))
    }

    async fn sample_columns(&self, path: &str) -> Result<Vec<Column>, ConnectorError> {
        if let Some(schema) = &self.config().schema {
            return Ok(schema.clone());
        }
        let (records, _) = self.fetch(path, &Cursor::Start, SAMPLE).await?;
        if records.is_empty() {
            return Err(ConnectorError::fatal(format!(
                "{path}: the endpoint returned no records to infer the fields from; declare them in the data source's `schema` option (e.g. id bigint, name text)"
            )));
        }
        Ok(infer_columns(&records))
    }
}

#[async_trait]
impl Source for HttpSource {
    async fn test_connection(&self) -> Result<(), ConnectorError> {
        let url = self
            .config()
            .url(self.config().health_path.as_deref().unwrap_or(""))?;
        self.client.check(&url).await
    }

    /// An API has no catalog: the paths listed in the `paths` option, with their fields.
    async fn discover(&self) -> Result<Vec<TableInfo>, ConnectorError> {
        let mut out = Vec::new();
        for path in &self.config().paths {
            out.push(TableInfo {
                name: path.clone(),
                columns: self.sample_columns(path).await?,
            });
        }
        Ok(out)
    }

    async fn columns(&self, spec: &ReadSpec) -> Result<Vec<Column>, ConnectorError> {
        let columns = self
            .sample_columns(spec.named(
                "the endpoint's path under the data source's URL (e.g. orders)",
                ConnectorKind::Http,
            )?)
            .await?;
        spec.cursor_columns(&columns)?;
        Ok(columns)
    }

    async fn read(
        &self,
        spec: &ReadSpec,
        columns: &[Column],
        after: &Cursor,
        limit: usize,
    ) -> Result<ReadBatch, ConnectorError> {
        let path = spec.named(
            "the endpoint's path under the data source's URL (e.g. orders)",
            ConnectorKind::Http,
        )?;
        let (records, body) = self.fetch(path, after, limit).await?;
        let rows = decode_records(&records, columns).map_err(|e| e.context(path))?;
        let full = records.len() >= limit;
        Ok(match &self.config().pagination {
            Pagination::Key { .. } => ReadBatch::keyed(rows, limit, spec, columns, after)?,
            Pagination::Cursor {
                next_cursor_path, ..
            } => {
                let next = match at_path(&body, next_cursor_path) {
                    Some(Json::String(s)) if !s.is_empty() => Some(s.clone()),
                    Some(Json::Number(n)) => Some(n.to_string()),
                    _ => None,
                };
                let current = match after {
                    Cursor::Token { token } => Some(token.clone()),
                    _ => None,
                };
                match next {
                    // Guard against an API that hands back the token it was given.
                    Some(next) if Some(&next) != current.as_ref() => ReadBatch {
                        rows,
                        end: Cursor::Token { token: next },
                        more: true,
                    },
                    // The last page: stay on its token, so records appended to it later are
                    // read next time (those already read come again: at-least-once).
                    _ => ReadBatch {
                        rows,
                        end: after.clone(),
                        more: false,
                    },
                }
            }
            Pagination::Page { first_page, .. } => {
                let page = match after {
                    Cursor::Token { token } => token.parse().unwrap_or(*first_page),
                    _ => *first_page,
                };
                // A full page is done; a partial one is read again next time — unless the
                // page after it has records: then the API serves fewer per page than asked
                // (many cap the page size), and this page is done too.
                let capped =
                    !full && !records.is_empty() && self.has_page(path, page + 1, limit).await?;
                // Records appended to this page between the two requests belong to it:
                // read it once more before moving past it.
                let rows = if capped {
                    let (again, _) = self.fetch(path, after, limit).await?;
                    decode_records(&again, columns).map_err(|e| e.context(path))?
                } else {
                    rows
                };
                let done = full || capped;
                let next = if done { page + 1 } else { page };
                ReadBatch {
                    rows,
                    end: Cursor::Token {
                        token: next.to_string(),
                    },
                    more: done,
                }
            }
        })
    }
}
