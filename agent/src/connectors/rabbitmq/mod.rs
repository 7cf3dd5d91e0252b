//! RabbitMQ (AMQP 0-9-1) as source (a queue, consumed with manual acks that are sent only
//! after the destination and the offset committed) and destination (an exchange and routing
//! key, publisher confirms per batch). One JSON object per message (`connectors/json.rs`).
//! Options and type mapping: TYPES.md.

mod config;
mod destination;
mod source;
#[cfg(test)]
mod tests;

pub use config::{RabbitConfig, SECRET_FIELDS};
pub use destination::RabbitDestination;
pub use source::RabbitSource;
