use std::collections::VecDeque;
use std::time::Duration;

use async_trait::async_trait;
use idra_core::model::ConnectorKind;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode as Code;

use super::config::{kafka_error, KafkaConfig};
use super::source::KafkaSource;
use crate::connectors::json::encode_rows;
use crate::connectors::types::{columns_of, Column};
use crate::connectors::{
    ConnectionSpec, ConnectorError, Destination, Source, TableInfo, WriteRequest,
};

/// Produces one JSON record per row, keyed by the key column, with an idempotent producer
/// (no duplicates from librdkafka's own retries); a batch is written once the brokers
/// acknowledged every record (acks=all), before the offset commit. At-least-once across a
/// crash between the acknowledgements and the offset commit.
pub struct KafkaDestination {
    config: KafkaConfig,
    producer: FutureProducer,
    probe: KafkaSource,
}

impl KafkaDestination {
    pub fn new(spec: &ConnectionSpec) -> Result<Self, ConnectorError> {
        let config = KafkaConfig::from_spec(spec)?;
        let producer: FutureProducer = config
            .producer_config()
            .create()
            .map_err(|e| kafka_error(e, "creating the producer"))?;
        Ok(Self {
            config,
            producer,
            probe: KafkaSource::new(spec)?,
        })
    }
}

async fn delivered(f: DeliveryFuture, topic: &str) -> Result<(), ConnectorError> {
    match f.await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((e, _))) => Err(kafka_error(e, &format!("producing to topic `{topic}`"))),
        Err(_) => Err(ConnectorError::retryable(format!(
            "producing to topic `{topic}`: the producer went away before the brokers answered"
        ))),
    }
}

#[async_trait]
impl Destination for KafkaDestination {
    fn kind(&self) -> ConnectorKind {
        ConnectorKind::Kafka
    }

    async fn test_connection(&self) -> Result<(), ConnectorError> {
        self.probe.test_connection().await
    }

    async fn discover(&self) -> Result<Vec<TableInfo>, ConnectorError> {
        self.probe.discover().await
    }

    /// Creates the topic when missing (`new_topic_partitions`, `new_topic_replication`).
    async fn ensure_table(
        &self,
        table: &str,
        _columns: &[Column],
        _keys: &[String],
        _defer_keys: bool,
    ) -> Result<bool, ConnectorError> {
        if table.trim().is_empty() {
            return Err(ConnectorError::fatal(
                "table: set it to the topic to produce to",
            ));
        }
        if self.probe.topic_exists(table).await? {
            return Ok(false);
        }
        let admin: AdminClient<DefaultClientContext> = self
            .config
            .client
            .create()
            .map_err(|e| kafka_error(e, "creating the admin client"))?;
        let replication = TopicReplication::Fixed(self.config.new_topic_replication);
        let topic = NewTopic::new(table, self.config.new_topic_partitions, replication);
        let opts = AdminOptions::new().request_timeout(Some(Duration::from_secs(10)));
        let cannot = |e: KafkaError| {
            let e = kafka_error(
                e,
                &format!("topic `{table}` does not exist and creating it failed"),
            );
            ConnectorError::fatal(format!(
                "{}; create the topic, or fix the sync's table",
                e.message
            ))
        };
        let results = admin.create_topics([&topic], &opts).await.map_err(cannot)?;
        match results.into_iter().next() {
            Some(Ok(_)) => Ok(true),
            Some(Err((_, Code::TopicAlreadyExists))) | None => Ok(false),
            Some(Err((_, code))) => Err(cannot(KafkaError::AdminOp(code))),
        }
    }

    async fn write(&self, req: WriteRequest<'_>) -> Result<(), ConnectorError> {
        let columns = columns_of(&req.rows.schema())?;
        let key_index = req
            .keys
            .first()
            .and_then(|k| columns.iter().position(|c| &c.name == k));
        let records = encode_rows(req.rows, &columns);
        let mut pending: VecDeque<DeliveryFuture> = VecDeque::with_capacity(records.len());
        for record in &records {
            let payload = serde_json::to_vec(record)
                .map_err(|e| ConnectorError::fatal(format!("encoding a record: {e}")))?;
            let key = key_index.map(|i| {
                let v = &record[&columns[i].name];
                v.as_str()
                    .map(String::from)
                    .unwrap_or_else(|| v.to_string())
            });
            loop {
                let mut r = FutureRecord::<String, Vec<u8>>::to(req.table).payload(&payload);
                if let Some(k) = &key {
                    r = r.key(k);
                }
                match self.producer.send_result(r) {
                    Ok(f) => {
                        pending.push_back(f);
                        break;
                    }
                    // librdkafka's queue is full: wait for the oldest record, then retry.
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                        match pending.pop_front() {
                            Some(f) => delivered(f, req.table).await?,
                            None => tokio::time::sleep(Duration::from_millis(10)).await,
                        }
                    }
                    Err((e, _)) => {
                        return Err(kafka_error(
                            e,
                            &format!("producing to topic `{}`", req.table),
                        ))
                    }
                }
            }
        }
        for f in pending {
            delivered(f, req.table).await?;
        }
        Ok(())
    }
}
