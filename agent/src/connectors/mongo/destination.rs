use async_trait::async_trait;
use idra_core::model::ConnectorKind;
use mongodb::bson::{doc, Bson, Document};
use mongodb::options::IndexOptions;
use mongodb::{Client, IndexModel};
use tokio::sync::Mutex;

use super::bson::to_bson;
use super::config::{mongo_error, MongoConfig};
use crate::connectors::types::{columns_of, Column};
use crate::connectors::values::value_at;
use crate::connectors::{
    ConnectionSpec, ConnectorError, Destination, Source, TableInfo, WriteRequest,
};

/// Inserts a batch with one `insertMany`, or upserts it by the key columns with one
/// `update` command holding a replace-with-upsert per row. Not fenced: at-least-once, and
/// upserts make a repeated batch harmless.
pub struct MongoDestination {
    config: MongoConfig,
    client: Mutex<Option<Client>>,
    probe: super::MongoSource,
}

impl MongoDestination {
    pub fn new(spec: &ConnectionSpec) -> Result<Self, ConnectorError> {
        Ok(Self {
            config: MongoConfig::from_spec(spec)?,
            client: Mutex::new(None),
            probe: super::MongoSource::new(spec)?,
        })
    }

    async fn db(&self) -> Result<mongodb::Database, ConnectorError> {
        let mut slot = self.client.lock().await;
        if slot.is_none() {
            *slot = Some(self.config.client().await?);
        }
        Ok(slot.as_ref().expect("set").database(&self.config.database))
    }
}

#[async_trait]
impl Destination for MongoDestination {
    fn kind(&self) -> ConnectorKind {
        ConnectorKind::MongoDb
    }

    async fn test_connection(&self) -> Result<(), ConnectorError> {
        self.probe.test_connection().await
    }

    async fn discover(&self) -> Result<Vec<TableInfo>, ConnectorError> {
        self.probe.discover().await
    }

    /// Collections appear on first write; a unique index on the key columns (other than
    /// `_id`) makes upserts find their document without a scan.
    async fn ensure_table(
        &self,
        table: &str,
        _columns: &[Column],
        keys: &[String],
        _defer_keys: bool,
    ) -> Result<bool, ConnectorError> {
        if table.trim().is_empty() {
            return Err(ConnectorError::fatal(
                "table: set it to the collection to write",
            ));
        }
        if keys.is_empty() || keys == ["_id"] {
            return Ok(false);
        }
        let mut spec = Document::new();
        for k in keys {
            spec.insert(k.clone(), 1);
        }
        let index = IndexModel::builder()
            .keys(spec)
            .options(
                IndexOptions::builder()
                    .unique(true)
                    .name("idra_key".to_string())
                    .build(),
            )
            .build();
        self.db()
            .await?
            .collection::<Document>(table)
            .create_index(index)
            .await
            .map_err(|e| mongo_error(e, &format!("creating the key index on `{table}`")))?;
        Ok(false)
    }

    async fn write(&self, req: WriteRequest<'_>) -> Result<(), ConnectorError> {
        let n = req.rows.num_rows();
        if n == 0 {
            return Ok(());
        }
        let columns = columns_of(&req.rows.schema())?;
        let mut docs = Vec::with_capacity(n);
        for row in 0..n {
            let mut d = Document::new();
            for (i, c) in columns.iter().enumerate() {
                d.insert(
                    c.name.clone(),
                    to_bson(value_at(req.rows.column(i), c.ty, row), c.ty)?,
                );
            }
            docs.push(d);
        }
        let db = self.db().await?;
        let what = format!("writing to `{}`", req.table);
        match req.mode {
            idra_core::model::WriteMode::Insert => {
                db.collection::<Document>(req.table)
                    .insert_many(docs)
                    .await
                    .map_err(|e| mongo_error(e, &what))?;
            }
            idra_core::model::WriteMode::Upsert => {
                let updates: Vec<Bson> = docs
                    .into_iter()
                    .map(|d| {
                        let mut q = Document::new();
                        for k in req.keys {
                            q.insert(k.clone(), d.get(k).cloned().unwrap_or(Bson::Null));
                        }
                        Bson::Document(doc! { "q": q, "u": d, "upsert": true })
                    })
                    .collect();
                let reply = db
                    .run_command(doc! { "update": req.table, "updates": updates, "ordered": true })
                    .await
                    .map_err(|e| mongo_error(e, &what))?;
                if let Ok(errors) = reply.get_array("writeErrors") {
                    if let Some(first) = errors.first() {
                        return Err(ConnectorError::fatal(format!(
                            "{what}: {} of {n} upserts failed, the first: {}",
                            errors.len(),
                            first.clone().into_relaxed_extjson()
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}
