//! SQL Server (TDS, through tiberius) as source (by id or timestamp cursor, tables or a
//! custom query) and destination (multi-row bound INSERTs or a MERGE upsert, with the
//! commit record, in one transaction per batch; fenced like the other SQL destinations).
//! The T-SQL text and type mapping live in `tsql.rs`. Type mapping: TYPES.md.

mod config;
mod destination;
mod source;
#[cfg(test)]
mod tests;
mod tsql;
mod values;

pub use config::{SqlServerConfig, SECRET_FIELDS};
pub use destination::SqlServerDestination;
pub use source::SqlServerSource;
