use async_trait::async_trait;
use idra_core::model::ConnectorKind;

use super::client::Client;
use super::config::HttpConfig;
use super::source::HttpSource;
use crate::connectors::json::encode_rows;
use crate::connectors::types::{columns_of, Column};
use crate::connectors::{
    ConnectionSpec, ConnectorError, Destination, Source, TableInfo, WriteRequest,
};

/// POSTs each batch to `<base>/<table>` as a JSON array (in requests of at most
/// `max_batch` records). A 2xx answer is the commit; there is no commit record on the other
/// side, so a crash between the POST and the offset commit sends that batch again.
pub struct HttpDestination {
    client: Client,
    probe: HttpSource,
}

impl HttpDestination {
    pub fn new(spec: &ConnectionSpec) -> Result<Self, ConnectorError> {
        Ok(Self {
            client: Client::new(HttpConfig::from_spec(spec)?)?,
            probe: HttpSource::new(spec)?,
        })
    }
}

#[async_trait]
impl Destination for HttpDestination {
    fn kind(&self) -> ConnectorKind {
        ConnectorKind::Http
    }

    async fn test_connection(&self) -> Result<(), ConnectorError> {
        self.probe.test_connection().await
    }

    async fn discover(&self) -> Result<Vec<TableInfo>, ConnectorError> {
        Ok(self
            .client
            .config
            .paths
            .iter()
            .map(|p| TableInfo {
                name: p.clone(),
                columns: Vec::new(),
            })
            .collect())
    }

    async fn ensure_table(
        &self,
        table: &str,
        _columns: &[Column],
        _keys: &[String],
        _defer_keys: bool,
    ) -> Result<bool, ConnectorError> {
        self.client.config.url(table)?;
        Ok(false)
    }

    async fn write(&self, req: WriteRequest<'_>) -> Result<(), ConnectorError> {
        let url = self.client.config.url(req.table)?;
        let columns = columns_of(&req.rows.schema())?;
        let records = encode_rows(req.rows, &columns);
        for chunk in records.chunks(self.client.config.max_batch) {
            let body = serde_json::to_vec(chunk)
                .map_err(|e| ConnectorError::fatal(format!("encoding the batch: {e}")))?;
            self.client.post_json(&url, body).await?;
        }
        Ok(())
    }
}
