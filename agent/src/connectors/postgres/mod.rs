//! Postgres as source and destination. Reads decode binary result values straight into
//! Arrow; writes go through binary COPY (into a staging table for upserts). Type mapping:
//! TYPES.md beside this file.

mod binary;
mod config;
mod destination;
mod source;
#[cfg(test)]
mod tests;

pub use config::{PostgresConfig, SECRET_FIELDS};
pub use destination::PostgresDestination;
pub use source::PostgresSource;
