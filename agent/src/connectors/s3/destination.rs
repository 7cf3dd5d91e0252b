use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use idra_core::model::ConnectorKind;
use tokio::sync::Mutex;

use super::config::{s3_error, S3Config};
use super::formats::{encode, Format};
use crate::connectors::types::Column;
use crate::connectors::{
    ConnectionSpec, ConnectorError, Destination, Source, TableInfo, WriteRequest,
};

/// Writes each batch as one object `<prefix><table>/<sync id>/<sequence>.<ext>`: the
/// 20-digit sequence continues after the highest one already there, so keys sort in
/// write order (which is the order the S3 source reads them in). An object is written
/// whole or not at all; a crash between the upload and the offset commit uploads the
/// batch again under the next sequence: at-least-once.
pub struct S3Destination {
    config: S3Config,
    client: aws_sdk_s3::Client,
    probe: super::S3Source,
    next: Mutex<HashMap<String, u64>>,
}

impl S3Destination {
    pub fn new(spec: &ConnectionSpec) -> Result<Self, ConnectorError> {
        let config = S3Config::from_spec(spec)?;
        Ok(Self {
            client: config.client(),
            probe: super::S3Source::new(spec)?,
            config,
            next: Mutex::new(HashMap::new()),
        })
    }

    /// The sequence after the highest object already in `dir`.
    async fn first_sequence(&self, dir: &str) -> Result<u64, ConnectorError> {
        let mut highest = None;
        let mut token = None;
        loop {
            let mut req = self
                .client
                .list_objects_v2()
                .bucket(&self.config.bucket)
                .prefix(dir);
            if let Some(t) = token.take() {
                req = req.continuation_token(t);
            }
            let out = req.send().await.map_err(|e| {
                s3_error(e, &format!("listing {} under `{dir}`", self.config.place()))
            })?;
            for key in out.contents().iter().filter_map(|o| o.key()) {
                let name = &key[dir.len()..];
                if let Some(n) = name.split('.').next().and_then(|s| s.parse::<u64>().ok()) {
                    highest = highest.max(Some(n));
                }
            }
            match out.next_continuation_token() {
                Some(t) if out.is_truncated().unwrap_or(false) => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(highest.map_or(1, |n| n + 1))
    }
}

pub(super) fn object_key(dir: &str, sequence: u64, format: Format, gzip: bool) -> String {
    format!("{dir}{sequence:020}.{}", format.extension(gzip))
}

#[async_trait]
impl Destination for S3Destination {
    fn kind(&self) -> ConnectorKind {
        ConnectorKind::S3
    }

    async fn test_connection(&self) -> Result<(), ConnectorError> {
        self.probe.test_connection().await
    }

    async fn discover(&self) -> Result<Vec<TableInfo>, ConnectorError> {
        self.probe.discover().await
    }

    async fn ensure_table(
        &self,
        table: &str,
        _: &[Column],
        _: &[String],
        _: bool,
    ) -> Result<bool, ConnectorError> {
        if table.trim_matches('/').is_empty() && self.config.prefix.is_empty() {
            return Err(ConnectorError::fatal(
                "table: set it to the folder (key prefix) to write under",
            ));
        }
        Ok(false)
    }

    async fn write(&self, req: WriteRequest<'_>) -> Result<(), ConnectorError> {
        if req.rows.num_rows() == 0 {
            return Ok(());
        }
        let dir = format!("{}{}/", self.config.folder(req.table), req.commit.sync_id);
        let mut next = self.next.lock().await;
        let mut sequence = match next.get(&dir) {
            Some(n) => *n,
            None => self.first_sequence(&dir).await?,
        };
        let body = encode(req.rows, self.config.format, self.config.gzip)?;
        // Written only if no object has the name (If-None-Match: *): a former holder still
        // running (paused past its lock) and the new one each count their own sequence, and
        // a plain PUT of the same name would replace the other's rows. When the name is
        // taken, continue after the highest object there.
        // Names this write: when the answer to a PUT that landed is lost and the retry
        // finds the name taken, the object's metadata tells whether it is this write.
        let write_id = uuid::Uuid::new_v4().simple().to_string();
        let mut attempts = 0;
        loop {
            let key = object_key(&dir, sequence, self.config.format, self.config.gzip);
            match self.put(&key, body.clone(), &write_id).await {
                Ok(()) => break,
                Err(PutError::Taken) if self.written_by(&key, &write_id).await => break,
                Err(PutError::Taken) if attempts < 5 => {
                    attempts += 1;
                    sequence = self.first_sequence(&dir).await?.max(sequence + 1);
                }
                Err(PutError::Taken) => {
                    return Err(ConnectorError::retryable(format!(
                        "writing under `{dir}` in {}: another writer keeps taking the next object name; retrying",
                        self.config.place()
                    )))
                }
                Err(PutError::Failed(e)) => return Err(e),
            }
        }
        next.insert(dir, sequence + 1);
        Ok(())
    }
}

/// Object metadata naming the write that put it.
const WRITE_ID: &str = "idra-write";

enum PutError {
    /// An object with that name exists (412 Precondition Failed).
    Taken,
    Failed(ConnectorError),
}

impl S3Destination {
    /// Whether the object `key` is the one this write (`write_id`) put.
    async fn written_by(&self, key: &str, write_id: &str) -> bool {
        let head = self
            .client
            .head_object()
            .bucket(&self.config.bucket)
            .key(key)
            .send()
            .await;
        head.ok()
            .and_then(|h| h.metadata().and_then(|m| m.get(WRITE_ID).cloned()))
            .as_deref()
            == Some(write_id)
    }

    async fn put(&self, key: &str, body: Vec<u8>, write_id: &str) -> Result<(), PutError> {
        let content_type = match self.config.format {
            Format::JsonLines => "application/x-ndjson",
            Format::Csv => "text/csv",
            Format::Parquet => "application/vnd.apache.parquet",
        };
        let mut put = self
            .client
            .put_object()
            .bucket(&self.config.bucket)
            .key(key)
            .if_none_match("*")
            .metadata(WRITE_ID, write_id)
            .content_type(content_type)
            .body(ByteStream::from(body));
        if self.config.gzip {
            put = put.content_encoding("gzip");
        }
        match put.send().await {
            Ok(_) => Ok(()),
            Err(e) if e.raw_response().map(|r| r.status().as_u16()) == Some(412) => {
                Err(PutError::Taken)
            }
            Err(e) => Err(PutError::Failed(s3_error(
                e,
                &format!("writing `{key}` to {}", self.config.place()),
            ))),
        }
    }
}
