//! MongoDB as source (a collection by `_id` or another key, by a timestamp field, or a
//! change stream whose resume token is the sync's offset) and destination (bulk insert, or
//! bulk upsert by the key columns in one `update` command per batch). Documents map to
//! columns through `bson.rs`. Options and type mapping: TYPES.md.

mod bson;
mod config;
mod destination;
mod source;
#[cfg(test)]
mod tests;

pub use config::{MongoConfig, SECRET_FIELDS};
pub use destination::MongoDestination;
pub use source::MongoSource;
