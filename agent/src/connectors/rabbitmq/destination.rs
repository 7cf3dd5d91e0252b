use async_trait::async_trait;
use idra_core::model::ConnectorKind;
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Confirmation, Connection, ExchangeKind};
use tokio::sync::Mutex;

use super::config::{amqp_error, RabbitConfig};
use crate::connectors::json::encode_rows;
use crate::connectors::types::{columns_of, Column};
use crate::connectors::{ConnectionSpec, ConnectorError, Destination, TableInfo, WriteRequest};

/// Publishes one persistent JSON message per row to the exchange with the sync's table as
/// routing key (`mandatory`, so an unroutable message is an error, not a silent drop), and
/// waits for the broker's confirms of the whole batch before the offset is committed.
/// At-least-once: a crash after the confirms and before the offset commit publishes the
/// batch again (each message carries `message_id` = sync:key for consumers to deduplicate).
pub struct RabbitDestination {
    config: RabbitConfig,
    channel: Mutex<Option<(Connection, Channel)>>,
}

impl RabbitDestination {
    pub fn new(spec: &ConnectionSpec) -> Result<Self, ConnectorError> {
        Ok(Self {
            config: RabbitConfig::from_spec(spec)?,
            channel: Mutex::new(None),
        })
    }

    async fn channel(&self) -> Result<Channel, ConnectorError> {
        let mut slot = self.channel.lock().await;
        if let Some((conn, ch)) = slot.as_ref() {
            if conn.status().connected() && ch.status().connected() {
                return Ok(ch.clone());
            }
        }
        let (conn, ch) = self.config.connect().await?;
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| amqp_error(e, "enabling publisher confirms"))?;
        *slot = Some((conn, ch.clone()));
        Ok(ch)
    }

    async fn reset(&self) {
        *self.channel.lock().await = None;
    }
}

#[async_trait]
impl Destination for RabbitDestination {
    fn kind(&self) -> ConnectorKind {
        ConnectorKind::RabbitMq
    }

    async fn test_connection(&self) -> Result<(), ConnectorError> {
        let (conn, _ch) = self.config.connect().await?;
        let _ = conn.close(200, "test done".into()).await;
        Ok(())
    }

    async fn discover(&self) -> Result<Vec<TableInfo>, ConnectorError> {
        Ok(Vec::new())
    }

    /// On the default exchange the table is a queue: declared (durable) unless
    /// `declare_queue = false`. A named exchange must already exist.
    async fn ensure_table(
        &self,
        table: &str,
        _columns: &[Column],
        _keys: &[String],
        _defer_keys: bool,
    ) -> Result<bool, ConnectorError> {
        if table.trim().is_empty() {
            return Err(ConnectorError::fatal(
                "table: set it to the routing key (on the default exchange: the queue name)",
            ));
        }
        let ch = self.channel().await?;
        let result = if self.config.exchange.is_empty() {
            if !self.config.declare_queue {
                return Ok(false);
            }
            ch.queue_declare(
                table.into(),
                QueueDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map(|q| q.message_count() == 0)
            .map_err(|e| amqp_error(e, &format!("declaring queue `{table}`")))
        } else {
            ch.exchange_declare(
                self.config.exchange.as_str().into(),
                ExchangeKind::Direct,
                ExchangeDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map(|_| false)
            .map_err(|e| amqp_error(e, &format!("exchange `{}`", self.config.exchange)))
        };
        if result.is_err() {
            self.reset().await;
        }
        result.map(|_| false)
    }

    async fn write(&self, req: WriteRequest<'_>) -> Result<(), ConnectorError> {
        let ch = self.channel().await?;
        let columns = columns_of(&req.rows.schema())?;
        let key_index = req
            .keys
            .first()
            .and_then(|k| columns.iter().position(|c| &c.name == k));
        let records = encode_rows(req.rows, &columns);
        let mut pending = Vec::with_capacity(records.len());
        for record in &records {
            let body = serde_json::to_vec(record)
                .map_err(|e| ConnectorError::fatal(format!("encoding a message: {e}")))?;
            let mut props = BasicProperties::default()
                .with_content_type("application/json".into())
                .with_delivery_mode(2);
            if let Some(i) = key_index {
                let key = &record[&columns[i].name];
                let key = key
                    .as_str()
                    .map(String::from)
                    .unwrap_or_else(|| key.to_string());
                props = props.with_message_id(format!("{}:{key}", req.commit.sync_id).into());
            }
            let confirm = ch
                .basic_publish(
                    self.config.exchange.as_str().into(),
                    req.table.into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..Default::default()
                    },
                    &body,
                    props,
                )
                .await;
            match confirm {
                Ok(c) => pending.push(c),
                Err(e) => {
                    self.reset().await;
                    return Err(amqp_error(e, "publishing"));
                }
            }
        }
        for confirm in pending {
            match confirm.await {
                Ok(Confirmation::Nack(_)) => {
                    self.reset().await;
                    return Err(ConnectorError::retryable(
                        "RabbitMQ refused to store a message (nack); the batch is sent again",
                    ));
                }
                Ok(Confirmation::Ack(Some(_))) => {
                    return Err(ConnectorError::fatal(format!(
                        "no queue is bound to exchange `{}` with routing key `{}`, so the messages would be dropped; bind a queue or fix the sync's table (the routing key)",
                        if self.config.exchange.is_empty() { "(default)" } else { &self.config.exchange },
                        req.table
                    )));
                }
                Ok(_) => {}
                Err(e) => {
                    self.reset().await;
                    return Err(amqp_error(e, "waiting for publisher confirms"));
                }
            }
        }
        Ok(())
    }
}
