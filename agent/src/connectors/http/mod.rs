//! An HTTP JSON API as source (paging through an endpoint) and destination (POSTing each
//! batch as a JSON array). Rows travel as JSON records (see `connectors/json.rs`); delivery
//! to the API is at-least-once. Options and type mapping: TYPES.md.

mod client;
mod config;
mod destination;
mod source;
#[cfg(test)]
mod tests;

pub use config::{HttpConfig, Pagination, SECRET_FIELDS};
pub use destination::HttpDestination;
pub use source::HttpSource;
