use async_trait::async_trait;
use futures::TryStreamExt;
use idra_core::model::{ConnectorKind, Cursor};
use mongodb::bson::{doc, oid::ObjectId, Bson, Document, Timestamp};
use mongodb::change_stream::event::{ChangeStreamEvent, ResumeToken};
use mongodb::change_stream::ChangeStream;
use mongodb::options::FullDocumentType;
use mongodb::{Client, Collection};
use tokio::sync::Mutex;

use super::bson::{infer_columns, to_value};
use super::config::{mongo_error, MongoConfig};
use crate::connectors::types::Column;
use crate::connectors::values::BatchBuilder;
use crate::connectors::{ConnectionSpec, ConnectorError, ReadBatch, ReadSpec, Source, TableInfo};

/// Documents sampled to infer fields when no `schema` is declared.
const SAMPLE: i64 = 100;

/// Queries a collection in (timestamp,) key order after the cursor, or follows its change
/// stream. A change stream's offset is the resume token of the last event copied, stored
/// whole (`Cursor::Token`), so a restart resumes exactly after it; a sync without one starts
/// at the oldest event the server still keeps.
pub struct MongoSource {
    config: MongoConfig,
    client: Mutex<Option<Client>>,
    stream: Mutex<Option<Following>>,
}

struct Following {
    collection: String,
    stream: ChangeStream<ChangeStreamEvent<Document>>,
    token: Option<String>,
}

impl MongoSource {
    pub fn new(spec: &ConnectionSpec) -> Result<Self, ConnectorError> {
        Ok(Self {
            config: MongoConfig::from_spec(spec)?,
            client: Mutex::new(None),
            stream: Mutex::new(None),
        })
    }

    async fn client(&self) -> Result<Client, ConnectorError> {
        let mut slot = self.client.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let c = self.config.client().await?;
        *slot = Some(c.clone());
        Ok(c)
    }

    async fn collection(&self, spec: &ReadSpec) -> Result<Collection<Document>, ConnectorError> {
        let name = spec.named("the collection to read", ConnectorKind::MongoDb)?;
        Ok(self
            .client()
            .await?
            .database(&self.config.database)
            .collection(name))
    }

    fn batch(
        docs: &[Document],
        columns: &[Column],
    ) -> Result<arrow_array::RecordBatch, ConnectorError> {
        let mut b = BatchBuilder::new(columns, docs.len());
        for d in docs {
            for (i, c) in columns.iter().enumerate() {
                b.push(i, to_value(d.get(&c.name).unwrap_or(&Bson::Null), c)?)?;
            }
            b.end_row();
        }
        b.finish()
    }

    async fn follow(
        &self,
        coll: &Collection<Document>,
        columns: &[Column],
        after: &Cursor,
        limit: usize,
    ) -> Result<ReadBatch, ConnectorError> {
        let token = match after {
            Cursor::Start => None,
            Cursor::Token { token } => Some(token.clone()),
            other => {
                return Err(ConnectorError::fatal(format!(
                    "the offset ({}) is not a change-stream resume token; reset the sync's offset",
                    other.describe()
                )))
            }
        };
        let mut state = self.stream.lock().await;
        let reuse = state
            .as_ref()
            .is_some_and(|f| f.collection == coll.name() && f.token == token);
        if !reuse {
            let mut watch = coll.watch().full_document(FullDocumentType::UpdateLookup);
            watch = match &token {
                Some(t) => {
                    let t: ResumeToken = serde_json::from_str(t).map_err(|e| {
                        ConnectorError::fatal(format!(
                            "the stored resume token cannot be read ({e}); reset the sync's offset"
                        ))
                    })?;
                    watch.resume_after(t)
                }
                // Oldest event the server keeps.
                None => watch.start_at_operation_time(Timestamp {
                    time: 1,
                    increment: 0,
                }),
            };
            let stream = watch.await.map_err(|e| {
                mongo_error(
                    e,
                    &format!("opening the change stream of `{}`", coll.name()),
                )
            })?;
            *state = Some(Following {
                collection: coll.name().to_string(),
                stream,
                token: token.clone(),
            });
        }
        let f = state.as_mut().expect("just opened");
        let mut docs = Vec::new();
        let mut events = 0;
        let deadline = tokio::time::Instant::now() + self.config.wait;
        while events < limit && tokio::time::Instant::now() < deadline {
            let next = tokio::time::timeout_at(deadline, f.stream.next_if_any()).await;
            let event = match next {
                Err(_) => break,
                Ok(Err(e)) => {
                    *state = None;
                    return Err(mongo_error(e, "reading the change stream"));
                }
                Ok(Ok(None)) => continue,
                Ok(Ok(Some(ev))) => ev,
            };
            events += 1;
            // Inserts, updates and replacements carry the document; deletes and other
            // events only move the position.
            if let Some(doc) = event.full_document {
                docs.push(doc);
            }
            if let Some(t) = f.stream.resume_token() {
                f.token =
                    Some(serde_json::to_string(&t).map_err(|e| {
                        ConnectorError::fatal(format!("encoding a resume token: {e}"))
                    })?);
            }
        }
        Ok(ReadBatch {
            rows: Self::batch(&docs, columns)?,
            end: match &f.token {
                Some(t) if f.token != token => Cursor::Token { token: t.clone() },
                _ => after.clone(),
            },
            more: events >= limit,
        })
    }
}

/// A cursor key back as the BSON it came from: `_id` hex strings are ObjectIds.
fn key_bson(key: &str, text: &str) -> Bson {
    if key == "_id" {
        if let Ok(o) = ObjectId::parse_str(text) {
            return Bson::ObjectId(o);
        }
    }
    match text.parse::<i64>() {
        Ok(i) => Bson::Int64(i),
        Err(_) => Bson::String(text.to_string()),
    }
}

/// The filter and sort that read after `after` in (timestamp,) key order.
pub(super) fn position(
    spec: &ReadSpec,
    after: &Cursor,
) -> Result<(Document, Document), ConnectorError> {
    let key = spec.key.as_str();
    let sort = match &spec.timestamp {
        Some(ts) => doc! { ts.as_str(): 1, key: 1 },
        None => doc! { key: 1 },
    };
    let mut filter = match (after, &spec.timestamp) {
        (Cursor::Start, _) => doc! {},
        (Cursor::Id { last_id }, None) => doc! { key: { "$gt": last_id } },
        (Cursor::Token { token }, None) => {
            let j: serde_json::Value = serde_json::from_str(token).map_err(|e| {
                ConnectorError::fatal(format!(
                    "the stored key cannot be read ({e}); reset the sync's offset"
                ))
            })?;
            let b = Bson::try_from(j).map_err(|e| {
                ConnectorError::fatal(format!(
                    "the stored key cannot be read ({e}); reset the sync's offset"
                ))
            })?;
            doc! { key: { "$gt": b } }
        }
        (Cursor::Timestamp { last_ts, last_key }, Some(ts)) => {
            let at = super::bson::bson_date(*last_ts);
            doc! { "$or": [
                { ts.as_str(): { "$gt": at } },
                { ts.as_str(): at, key: { "$gt": key_bson(key, last_key) } },
            ] }
        }
        (other, _) => {
            return Err(ConnectorError::fatal(format!(
                "the offset ({}) does not fit this sync's mode; reset the sync's offset",
                other.describe()
            )))
        }
    };
    if let (Some(ts), Some(before)) = (&spec.timestamp, spec.settle_before) {
        let cutoff = doc! { ts.as_str(): { "$lt": super::bson::bson_date(before) } };
        filter = if filter.is_empty() {
            cutoff
        } else {
            doc! { "$and": [filter, cutoff] }
        };
    }
    Ok((filter, sort))
}

#[async_trait]
impl Source for MongoSource {
    async fn test_connection(&self) -> Result<(), ConnectorError> {
        self.client()
            .await?
            .database(&self.config.database)
            .list_collection_names()
            .await
            .map(drop)
            .map_err(|e| mongo_error(e, &format!("connecting to {}", self.config.display)))
    }

    async fn discover(&self) -> Result<Vec<TableInfo>, ConnectorError> {
        let db = self.client().await?.database(&self.config.database);
        let mut names = db
            .list_collection_names()
            .await
            .map_err(|e| mongo_error(e, "listing collections"))?;
        names.retain(|n| !n.starts_with("system."));
        names.sort();
        let mut out = Vec::new();
        for name in names {
            let docs: Vec<Document> = db
                .collection::<Document>(&name)
                .find(doc! {})
                .limit(SAMPLE)
                .await
                .map_err(|e| mongo_error(e, &format!("sampling `{name}`")))?
                .try_collect()
                .await
                .map_err(|e| mongo_error(e, &format!("sampling `{name}`")))?;
            out.push(TableInfo {
                name,
                columns: infer_columns(&docs),
            });
        }
        Ok(out)
    }

    async fn columns(&self, spec: &ReadSpec) -> Result<Vec<Column>, ConnectorError> {
        let coll = self.collection(spec).await?;
        let columns = match &self.config.schema {
            Some(s) => s.clone(),
            None => {
                let docs: Vec<Document> = coll
                    .find(doc! {})
                    .limit(SAMPLE)
                    .await
                    .map_err(|e| mongo_error(e, &format!("sampling `{}`", coll.name())))?
                    .try_collect()
                    .await
                    .map_err(|e| mongo_error(e, &format!("sampling `{}`", coll.name())))?;
                if docs.is_empty() {
                    return Err(ConnectorError::fatal(format!(
                        "collection `{}` is empty, so its fields cannot be inferred; declare them in the data source's `schema` option (e.g. _id text, name text)",
                        coll.name()
                    )));
                }
                infer_columns(&docs)
            }
        };
        if !self.config.change_stream {
            spec.cursor_columns(&columns)?;
        }
        Ok(columns)
    }

    async fn read(
        &self,
        spec: &ReadSpec,
        columns: &[Column],
        after: &Cursor,
        limit: usize,
    ) -> Result<ReadBatch, ConnectorError> {
        let coll = self.collection(spec).await?;
        if self.config.change_stream {
            return self.follow(&coll, columns, after, limit).await;
        }
        let (filter, sort) = position(spec, after)?;
        let docs: Vec<Document> = coll
            .find(filter)
            .sort(sort)
            .limit(limit as i64)
            .await
            .map_err(|e| mongo_error(e, &format!("reading `{}`", coll.name())))?
            .try_collect()
            .await
            .map_err(|e| mongo_error(e, &format!("reading `{}`", coll.name())))?;
        let rows = Self::batch(&docs, columns)?;
        // Integer keys (and timestamp cursors) are positioned by the rows like any keyed
        // source; other keys (ObjectIds, strings) keep their BSON form in the offset.
        match (docs.last().and_then(|d| d.get(&spec.key)), &spec.timestamp) {
            (Some(Bson::Int32(_) | Bson::Int64(_)), _) | (_, Some(_)) | (None, _) => {
                ReadBatch::keyed(rows, limit, spec, columns, after)
            }
            (Some(k), None) => Ok(ReadBatch {
                more: docs.len() >= limit,
                rows,
                end: Cursor::Token {
                    token: k.clone().into_relaxed_extjson().to_string(),
                },
            }),
        }
    }
}
