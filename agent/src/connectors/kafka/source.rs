use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use idra_core::model::{ConnectorKind, Cursor};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use serde_json::Value as Json;
use tokio::sync::Mutex;

use super::config::{kafka_error, KafkaConfig};
use crate::connectors::json::{decode_records, infer_columns, message_records};
use crate::connectors::types::Column;
use crate::connectors::{ConnectionSpec, ConnectorError, ReadBatch, ReadSpec, Source, TableInfo};

/// Records sampled from the start of the topic to infer fields when no `schema` is declared.
const SAMPLE: usize = 100;
const METADATA_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads a topic by explicit assignment: the next offset of every partition is the sync's
/// offset (`Cursor::Partitions`), committed with the destination, never to a consumer group.
pub struct KafkaSource {
    config: KafkaConfig,
    consuming: Mutex<Option<Consuming>>,
}

struct Consuming {
    consumer: Arc<StreamConsumer>,
    topic: String,
    partitions: Vec<i32>,
    next: BTreeMap<i32, i64>,
}

/// A record's value as JSON records: an object, or an array of objects. Tombstones (no
/// value) carry no row.
pub(super) fn records_of(
    payload: Option<&[u8]>,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Result<Vec<Json>, ConnectorError> {
    let Some(body) = payload else {
        return Ok(Vec::new());
    };
    message_records(body).map_err(|start| {
        ConnectorError::fatal(format!(
            "topic `{topic}` partition {partition} offset {offset} is not a JSON object: {start}. Fix the producer, or move the sync's offset past it (Offsets page) to skip it"
        ))
    })
}

impl KafkaSource {
    pub fn new(spec: &ConnectionSpec) -> Result<Self, ConnectorError> {
        Ok(Self {
            config: KafkaConfig::from_spec(spec)?,
            consuming: Mutex::new(None),
        })
    }

    fn consumer(&self) -> Result<Arc<StreamConsumer>, ConnectorError> {
        let c: StreamConsumer = self
            .config
            .consumer_config()
            .create()
            .map_err(|e| kafka_error(e, "creating the consumer"))?;
        Ok(Arc::new(c))
    }

    /// Whether `topic` exists (asked as a consumer, which never creates topics).
    pub(super) async fn topic_exists(&self, topic: &str) -> Result<bool, ConnectorError> {
        let consumer = self.consumer()?;
        let t = topic.to_string();
        let metadata = tokio::task::spawn_blocking(move || {
            consumer.fetch_metadata(Some(&t), METADATA_TIMEOUT)
        })
        .await
        .map_err(|e| ConnectorError::retryable(format!("metadata task: {e}")))?
        .map_err(|e| kafka_error(e, &format!("reading the metadata of topic `{topic}`")))?;
        Ok(metadata
            .topics()
            .iter()
            .any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty()))
    }

    /// The topic's partitions (or the chosen ones, checked against the topic).
    async fn partitions(
        &self,
        consumer: &Arc<StreamConsumer>,
        topic: &str,
    ) -> Result<Vec<i32>, ConnectorError> {
        let c = consumer.clone();
        let t = topic.to_string();
        let metadata =
            tokio::task::spawn_blocking(move || c.fetch_metadata(Some(&t), METADATA_TIMEOUT))
                .await
                .map_err(|e| ConnectorError::retryable(format!("metadata task: {e}")))?
                .map_err(|e| kafka_error(e, &format!("reading the metadata of topic `{topic}`")))?;
        let found = metadata.topics().iter().find(|t| t.name() == topic);
        let all: Vec<i32> = match found {
            Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
                t.partitions().iter().map(|p| p.id()).collect()
            }
            _ => {
                return Err(ConnectorError::fatal(format!(
                    "topic `{topic}` does not exist on {}; check the sync's table",
                    self.config.brokers
                )))
            }
        };
        match &self.config.partitions {
            None => Ok(all),
            Some(chosen) => {
                if let Some(p) = chosen.iter().find(|p| !all.contains(p)) {
                    return Err(ConnectorError::fatal(format!(
                        "options: `partitions` names partition {p}, but topic `{topic}` has {all:?}"
                    )));
                }
                Ok(chosen.clone())
            }
        }
    }

    /// A consumer assigned to every partition at the position `next` gives (the start where
    /// it has none).
    async fn start(
        &self,
        topic: &str,
        next: &BTreeMap<i32, i64>,
    ) -> Result<Consuming, ConnectorError> {
        let consumer = self.consumer()?;
        let mut list = TopicPartitionList::new();
        let partitions = self.partitions(&consumer, topic).await?;
        for &p in &partitions {
            let offset = next
                .get(&p)
                .map_or(Offset::Beginning, |o| Offset::Offset(*o));
            list.add_partition_offset(topic, p, offset)
                .map_err(|e| kafka_error(e, "assigning partitions"))?;
        }
        consumer
            .assign(&list)
            .map_err(|e| kafka_error(e, &format!("assigning topic `{topic}`")))?;
        Ok(Consuming {
            consumer,
            topic: topic.to_string(),
            partitions,
            next: next.clone(),
        })
    }

    /// Where each partition ends now (its high watermark) and where it starts (its low one).
    async fn watermarks(c: &Consuming) -> Result<BTreeMap<i32, (i64, i64)>, ConnectorError> {
        let consumer = c.consumer.clone();
        let topic = c.topic.clone();
        let partitions = c.partitions.clone();
        tokio::task::spawn_blocking(move || {
            partitions
                .iter()
                .map(|p| {
                    consumer
                        .fetch_watermarks(&topic, *p, METADATA_TIMEOUT)
                        .map(|w| (*p, w))
                })
                .collect::<Result<BTreeMap<_, _>, _>>()
        })
        .await
        .map_err(|e| ConnectorError::retryable(format!("watermark task: {e}")))?
        .map_err(|e| kafka_error(e, &format!("reading the offsets of topic `{}`", c.topic)))
    }

    /// Up to `limit` records from `c`'s position, stopping once every partition reached the
    /// end it had when the read began. Caught up is decided by the brokers' high watermarks,
    /// not by a quiet spell, so a slow consumer start never passes for an empty topic.
    async fn take(
        &self,
        c: &mut Consuming,
        limit: usize,
    ) -> Result<(Vec<Json>, usize), ConnectorError> {
        let ends = Self::watermarks(c).await?;
        for (p, (low, high)) in &ends {
            // Past the end: the topic was recreated or truncated. `earliest` would copy the
            // whole partition again; a person must decide.
            if let Some(next) = c.next.get(p).filter(|next| **next > *high) {
                return Err(ConnectorError::fatal(format!(
                    "topic `{}` partition {p} ends at offset {high}, before the sync's position {next}: the topic was recreated or truncated. Reset the sync's offset to start over, or set it to where this partition should resume",
                    c.topic
                )));
            }
            if let Some(next) = c.next.get(p).filter(|next| **next < *low) {
                tracing::warn!(
                    topic = %c.topic,
                    partition = p,
                    missed = low - next,
                    "records between the sync's position and the oldest retained one were deleted by the topic's retention before Idra read them; resuming at the oldest"
                );
            }
        }
        let behind = |next: &BTreeMap<i32, i64>| {
            ends.iter()
                .any(|(p, (low, high))| next.get(p).copied().unwrap_or(*low).max(*low) < *high)
        };
        let mut records = Vec::new();
        let mut taken = 0;
        while taken < limit && behind(&c.next) {
            let msg = match tokio::time::timeout(self.config.wait, c.consumer.recv()).await {
                Ok(Ok(m)) => m,
                Ok(Err(e)) => return Err(kafka_error(e, &format!("reading topic `{}`", c.topic))),
                Err(_) => {
                    // Transaction markers take offsets without being records: the
                    // consumer's own position says whether it really is behind.
                    if let Ok(list) = c.consumer.position() {
                        for e in list.elements_for_topic(&c.topic) {
                            if let rdkafka::Offset::Offset(o) = e.offset() {
                                c.next.insert(e.partition(), o);
                            }
                        }
                    }
                    if !behind(&c.next) {
                        break;
                    }
                    return Err(ConnectorError::retryable(format!(
                        "topic `{}`: the brokers hold records up to {:?} but none arrived within {} ms; check the brokers (raise `wait_ms` for slow clusters)",
                        c.topic,
                        ends.iter().map(|(p, (_, h))| (*p, *h)).collect::<BTreeMap<_, _>>(),
                        self.config.wait.as_millis()
                    )));
                }
            };
            records.extend(records_of(
                msg.payload(),
                &c.topic,
                msg.partition(),
                msg.offset(),
            )?);
            c.next.insert(msg.partition(), msg.offset() + 1);
            taken += 1;
        }
        Ok((records, taken))
    }
}

fn positions(cursor: &Cursor) -> Result<BTreeMap<i32, i64>, ConnectorError> {
    match cursor {
        Cursor::Start => Ok(BTreeMap::new()),
        Cursor::Partitions { offsets } => Ok(offsets.clone()),
        other => Err(ConnectorError::fatal(format!(
            "the offset ({}) is not a set of Kafka partition offsets; reset the sync's offset",
            other.describe()
        ))),
    }
}

#[async_trait]
impl Source for KafkaSource {
    async fn test_connection(&self) -> Result<(), ConnectorError> {
        let consumer = self.consumer()?;
        let result =
            tokio::task::spawn_blocking(move || consumer.fetch_metadata(None, METADATA_TIMEOUT))
                .await
                .map_err(|e| ConnectorError::retryable(format!("metadata task: {e}")))?;
        let Err(e) = result else { return Ok(()) };
        let e = kafka_error(e, "reading the cluster's metadata");
        // With SASL or TLS configured, brokers that hang up are usually refusing the login
        // or the protocol: say so. (A check is answered to a person, never retried.)
        match self.config.client.get("security.protocol") {
            Some(p) if e.is_retryable() && !p.eq_ignore_ascii_case("plaintext") => {
                Err(ConnectorError::fatal(format!(
                    "{}. With security.protocol = {p} this usually means the brokers refused the credentials or the protocol: check security.protocol, sasl.mechanisms, sasl.username and the data source's password",
                    e.message
                )))
            }
            _ => Err(e),
        }
    }

    async fn discover(&self) -> Result<Vec<TableInfo>, ConnectorError> {
        let consumer = self.consumer()?;
        let metadata =
            tokio::task::spawn_blocking(move || consumer.fetch_metadata(None, METADATA_TIMEOUT))
                .await
                .map_err(|e| ConnectorError::retryable(format!("metadata task: {e}")))?
                .map_err(|e| kafka_error(e, "listing topics"))?;
        let mut topics: Vec<TableInfo> = metadata
            .topics()
            .iter()
            .filter(|t| !t.name().starts_with("__"))
            .map(|t| TableInfo {
                name: t.name().to_string(),
                columns: Vec::new(),
            })
            .collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(topics)
    }

    async fn columns(&self, spec: &ReadSpec) -> Result<Vec<Column>, ConnectorError> {
        let topic = spec.named("the topic to read", ConnectorKind::Kafka)?;
        let columns = match &self.config.schema {
            Some(s) => s.clone(),
            None => {
                let mut sample = self.start(topic, &BTreeMap::new()).await?;
                let (records, _) = self.take(&mut sample, SAMPLE).await?;
                if records.is_empty() {
                    return Err(ConnectorError::fatal(format!(
                        "topic `{topic}` has no records to infer the fields from; declare them in the data source's `schema` option (e.g. id bigint, name text)"
                    )));
                }
                infer_columns(&records)
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
        let topic = spec.named("the topic to read", ConnectorKind::Kafka)?;
        let from = positions(after)?;
        let mut state = self.consuming.lock().await;
        // Keep consuming where the last read ended; reassign when asked for another place.
        let reuse = state.as_ref().is_some_and(|c| {
            c.topic == topic && from.iter().all(|(p, o)| c.next.get(p) == Some(o))
        });
        if !reuse {
            *state = Some(self.start(topic, &from).await?);
        }
        let c = state.as_mut().expect("just started");
        let (records, taken) = match self.take(c, limit).await {
            Ok(r) => r,
            Err(e) => {
                *state = None;
                return Err(e);
            }
        };
        let rows =
            decode_records(&records, columns).map_err(|e| e.context(format!("topic `{topic}`")))?;
        let end = if taken > 0 {
            let mut offsets = from;
            offsets.extend(c.next.iter().map(|(p, o)| (*p, *o)));
            Cursor::Partitions { offsets }
        } else {
            after.clone()
        };
        Ok(ReadBatch {
            rows,
            end,
            more: taken >= limit,
        })
    }
}
