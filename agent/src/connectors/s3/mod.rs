//! S3 and S3-compatible stores as destination (each batch one object, JSON lines, CSV or
//! Parquet, optionally gzipped, under `prefix/table/sync/` with a monotonic sequence in its
//! name) and source (objects listed in key order after the last key read). Path-style
//! addressing and a custom endpoint reach any S3-compatible server. Options and type
//! mapping: TYPES.md.

mod config;
mod destination;
mod formats;
mod source;
#[cfg(test)]
mod tests;

pub use config::{S3Config, SECRET_FIELDS};
pub use destination::S3Destination;
pub use formats::Format;
pub use source::S3Source;
