//! Kafka as source (a topic's partitions, positioned by the offset of each partition kept
//! as the sync's offset — no consumer group) and destination (JSON records keyed by the key
//! column, idempotent producer, every record of a batch acknowledged before the offset
//! commit). Allow-listed librdkafka properties pass through from the data source's options.
//! Options and type mapping: TYPES.md.

mod config;
mod destination;
mod source;
#[cfg(test)]
mod tests;

pub use config::{KafkaConfig, SECRET_FIELDS};
pub use destination::KafkaDestination;
pub use source::KafkaSource;
