use async_trait::async_trait;
use futures::StreamExt;
use idra_core::model::{ConnectorKind, Cursor};
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, Consumer};
use serde_json::Value as Json;
use tokio::sync::Mutex;

use super::config::{amqp_error, RabbitConfig};
use crate::connectors::json::{decode_records, infer_columns, message_records};
use crate::connectors::types::Column;
use crate::connectors::{ConnectionSpec, ConnectorError, ReadBatch, ReadSpec, Source, TableInfo};

/// Messages sampled (and left in the queue) to infer fields when no `schema` is declared.
const SAMPLE: usize = 100;

/// Consumes a queue with manual acknowledgements. Each read takes up to a batch of
/// deliveries; `acknowledge` acks them (multiple, up to the batch's last delivery tag) only
/// once the destination and the offset committed. Deliveries read but never acknowledged —
/// the run stopped or crashed — return to the queue when the connection closes.
pub struct RabbitSource {
    config: RabbitConfig,
    consuming: Mutex<Option<Consuming>>,
}

struct Consuming {
    _conn: Connection,
    channel: Channel,
    consumer: Consumer,
    queue: String,
}

/// The records of one message: a JSON object, or an array of them.
pub(super) fn records_of(body: &[u8], tag: u64, queue: &str) -> Result<Vec<Json>, ConnectorError> {
    message_records(body).map_err(|start| {
        ConnectorError::fatal(format!(
            "queue `{queue}`: message {tag} is not a JSON object (or array of objects): {start}. Move it away (e.g. a dead-letter queue) or fix the producer; the sync stops here rather than lose it"
        ))
    })
}

impl RabbitSource {
    pub fn new(spec: &ConnectionSpec) -> Result<Self, ConnectorError> {
        Ok(Self {
            config: RabbitConfig::from_spec(spec)?,
            consuming: Mutex::new(None),
        })
    }

    async fn start(&self, queue: &str, limit: usize) -> Result<Consuming, ConnectorError> {
        let (conn, channel) = self.config.connect().await?;
        // The reader runs one batch ahead of the acknowledgements: room for two batches.
        let prefetch = match self.config.prefetch {
            0 => u16::try_from(limit.saturating_mul(2)).unwrap_or(u16::MAX),
            n => n,
        };
        channel
            .basic_qos(prefetch, BasicQosOptions::default())
            .await
            .map_err(|e| amqp_error(e, "setting the prefetch"))?;
        let consumer = channel
            .basic_consume(
                queue.into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| amqp_error(e, &format!("consuming queue `{queue}`")))?;
        Ok(Consuming {
            _conn: conn,
            channel,
            consumer,
            queue: queue.to_string(),
        })
    }
}

#[async_trait]
impl Source for RabbitSource {
    async fn test_connection(&self) -> Result<(), ConnectorError> {
        let (conn, _channel) = self.config.connect().await?;
        let _ = conn.close(200, "test done".into()).await;
        Ok(())
    }

    /// AMQP cannot list queues (that is the management plugin's HTTP API).
    async fn discover(&self) -> Result<Vec<TableInfo>, ConnectorError> {
        Ok(Vec::new())
    }

    async fn columns(&self, spec: &ReadSpec) -> Result<Vec<Column>, ConnectorError> {
        let queue = spec.named("the queue to consume", ConnectorKind::RabbitMq)?;
        let columns = match &self.config.schema {
            Some(s) => s.clone(),
            None => {
                // Peek without acknowledging, then close: the broker requeues the messages.
                let (conn, channel) = self.config.connect().await?;
                let mut records = Vec::new();
                while records.len() < SAMPLE {
                    let got = channel
                        .basic_get(queue.into(), BasicGetOptions { no_ack: false })
                        .await
                        .map_err(|e| amqp_error(e, &format!("reading queue `{queue}`")))?;
                    let Some(m) = got else { break };
                    records.extend(records_of(
                        &m.delivery.data,
                        m.delivery.delivery_tag,
                        queue,
                    )?);
                }
                let _ = conn.close(200, "sampled".into()).await;
                if records.is_empty() {
                    return Err(ConnectorError::fatal(format!(
                        "queue `{queue}` is empty, so its fields cannot be inferred; declare them in the data source's `schema` option (e.g. id bigint, name text)"
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
        let queue = spec.named("the queue to consume", ConnectorKind::RabbitMq)?;
        let mut state = self.consuming.lock().await;
        if state.as_ref().is_none_or(|c| c.queue != queue) {
            *state = Some(self.start(queue, limit).await?);
        }
        let consuming = state.as_mut().expect("just started");
        let mut records = Vec::new();
        let mut last_tag = None;
        let mut messages = 0;
        while messages < limit {
            match tokio::time::timeout(self.config.wait, consuming.consumer.next()).await {
                Err(_) => break, // drained for now
                Ok(None) => {
                    *state = None;
                    return Err(ConnectorError::retryable(format!(
                        "queue `{queue}`: the broker cancelled the consumer (queue deleted?)"
                    )));
                }
                Ok(Some(Err(e))) => {
                    *state = None;
                    return Err(amqp_error(e, &format!("consuming queue `{queue}`")));
                }
                Ok(Some(Ok(delivery))) => {
                    records.extend(records_of(&delivery.data, delivery.delivery_tag, queue)?);
                    last_tag = Some(delivery.delivery_tag);
                    messages += 1;
                }
            }
        }
        let rows =
            decode_records(&records, columns).map_err(|e| e.context(format!("queue `{queue}`")))?;
        Ok(ReadBatch {
            rows,
            // The queue itself keeps the position; the offset records the last delivery
            // of this consumer, which `acknowledge` acks.
            end: last_tag.map_or_else(|| after.clone(), |t| Cursor::Id { last_id: t as i64 }),
            more: messages >= limit,
        })
    }

    fn acknowledges_deliveries(&self) -> bool {
        true
    }

    async fn acknowledge(&self, through: &Cursor) -> Result<(), ConnectorError> {
        let Cursor::Id { last_id } = through else {
            return Ok(());
        };
        let state = self.consuming.lock().await;
        let Some(consuming) = state.as_ref() else {
            return Ok(());
        };
        consuming
            .channel
            .basic_ack(*last_id as u64, BasicAckOptions { multiple: true })
            .await
            .map_err(|e| amqp_error(e, &format!("acknowledging on queue `{}`", consuming.queue)))
    }
}
