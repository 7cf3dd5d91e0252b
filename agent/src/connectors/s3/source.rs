use async_trait::async_trait;
use idra_core::model::Cursor;

use super::config::{s3_error, S3Config};
use super::formats::{decode, Format};
use crate::connectors::types::{columns_of, Column};
use crate::connectors::{ConnectionSpec, ConnectorError, ReadBatch, ReadSpec, Source, TableInfo};

/// Lists the objects under the sync's folder in key order, after the last key read (the
/// sync's offset, `Cursor::ObjectKey`), and reads whole objects until a batch is full. Data
/// objects are recognised by extension (.jsonl, .csv, .parquet, each optionally .gz);
/// other objects are skipped.
pub struct S3Source {
    config: S3Config,
    client: aws_sdk_s3::Client,
}

impl S3Source {
    pub fn new(spec: &ConnectionSpec) -> Result<Self, ConnectorError> {
        let config = S3Config::from_spec(spec)?;
        Ok(Self {
            client: config.client(),
            config,
        })
    }

    /// Up to `max` data object keys under `folder` after `after`, and whether more remain.
    /// One page of a listing: its data objects, the last key listed (data or not), and
    /// whether more follow.
    async fn list(
        &self,
        folder: &str,
        after: Option<&str>,
        max: i32,
    ) -> Result<Listing, ConnectorError> {
        let mut req = self
            .client
            .list_objects_v2()
            .bucket(&self.config.bucket)
            .prefix(folder)
            .max_keys(max);
        if let Some(a) = after {
            req = req.start_after(a);
        }
        let out = req.send().await.map_err(|e| {
            s3_error(
                e,
                &format!("listing {} under `{folder}`", self.config.place()),
            )
        })?;
        let listed: Vec<&str> = out.contents().iter().filter_map(|o| o.key()).collect();
        Ok(Listing {
            data: listed
                .iter()
                .filter(|k| Format::of_key(k).is_some())
                .map(|k| k.to_string())
                .collect(),
            last: listed.last().map(|k| k.to_string()),
            truncated: out.is_truncated().unwrap_or(false),
        })
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, ConnectorError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.config.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| s3_error(e, &format!("reading `{key}`")))?;
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| ConnectorError::retryable(format!("reading `{key}`: {e}")))?;
        Ok(body.into_bytes().to_vec())
    }

    async fn read_object(
        &self,
        key: &str,
        columns: Option<&[Column]>,
    ) -> Result<arrow_array::RecordBatch, ConnectorError> {
        let (format, gzip) = Format::of_key(key).expect("listed keys are data objects");
        let body = self.get(key).await?;
        decode(&body, key, format, gzip, columns)
    }

    fn folder(&self, spec: &ReadSpec) -> Result<String, ConnectorError> {
        if spec.query.is_some() {
            return Err(ConnectorError::fatal(
                "custom queries do not apply to S3; set the table to the folder to read",
            ));
        }
        Ok(self.config.folder(spec.table.as_deref().unwrap_or("")))
    }
}

#[async_trait]
impl Source for S3Source {
    async fn test_connection(&self) -> Result<(), ConnectorError> {
        self.client
            .head_bucket()
            .bucket(&self.config.bucket)
            .send()
            .await
            .map(drop)
            .map_err(|e| s3_error(e, &format!("checking {}", self.config.place())))
    }

    /// The folders directly under the data source's prefix.
    async fn discover(&self) -> Result<Vec<TableInfo>, ConnectorError> {
        let out = self
            .client
            .list_objects_v2()
            .bucket(&self.config.bucket)
            .prefix(&self.config.prefix)
            .delimiter("/")
            .send()
            .await
            .map_err(|e| s3_error(e, &format!("listing {}", self.config.place())))?;
        Ok(out
            .common_prefixes()
            .iter()
            .filter_map(|p| p.prefix())
            .map(|p| TableInfo {
                name: p[self.config.prefix.len()..]
                    .trim_end_matches('/')
                    .to_string(),
                columns: Vec::new(),
            })
            .collect())
    }

    async fn columns(&self, spec: &ReadSpec) -> Result<Vec<Column>, ConnectorError> {
        let folder = self.folder(spec)?;
        let columns = match &self.config.schema {
            Some(s) => s.clone(),
            None => {
                let listing = self.list(&folder, None, 1000).await?;
                let Some(first) = listing.data.first() else {
                    return Err(ConnectorError::fatal(format!(
                        "no data objects under `{folder}` to take the fields from; declare them in the data source's `schema` option (e.g. id bigint, name text)"
                    )));
                };
                columns_of(&self.read_object(first, None).await?.schema())?
            }
        };
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
        let folder = self.folder(spec)?;
        let mut last = match after {
            Cursor::Start => None,
            Cursor::ObjectKey { key } => Some(key.clone()),
            other => {
                return Err(ConnectorError::fatal(format!(
                    "the offset ({}) is not an object key; reset the sync's offset",
                    other.describe()
                )))
            }
        };
        let mut batches = Vec::new();
        let mut rows = 0;
        let mut more = false;
        // Where the next listing starts: past every key seen, data or not. The cursor
        // (`last`) moves only to data objects: a marker such as `_SUCCESS` sorts after
        // the digits of later data objects, and a cursor left on it would skip them.
        let mut listed_to = last.clone();
        'listing: loop {
            let listing = self.list(&folder, listed_to.as_deref(), 1000).await?;
            for (i, key) in listing.data.iter().enumerate() {
                let batch = self.read_object(key, Some(columns)).await?;
                rows += batch.num_rows();
                batches.push(batch);
                last = Some(key.clone());
                if rows >= limit {
                    more = i + 1 < listing.data.len() || listing.truncated;
                    break 'listing;
                }
            }
            // Past the whole page, objects that hold no data included: listing again from
            // the last data object would return this same page forever when a page holds
            // none (folder markers, other files).
            if listing.last.is_some() {
                listed_to = listing.last;
            }
            if !listing.truncated {
                break;
            }
        }
        let schema = crate::connectors::types::schema_of(columns);
        let rows = arrow_select::concat::concat_batches(&schema, &batches)
            .map_err(|e| ConnectorError::fatal(format!("joining objects under `{folder}`: {e}")))?;
        let moved = match (&last, after) {
            (Some(k), Cursor::ObjectKey { key }) => k != key,
            (Some(_), _) => true,
            (None, _) => false,
        };
        Ok(ReadBatch {
            rows,
            end: match last {
                Some(key) if moved => Cursor::ObjectKey { key },
                _ => after.clone(),
            },
            more,
        })
    }
}

/// One page of objects under a folder.
struct Listing {
    /// Keys of objects in a format the source reads, in key order.
    data: Vec<String>,
    /// The last key of the page, data or not.
    last: Option<String>,
    truncated: bool,
}
