//! MySQL and MariaDB as source and destination. Writes are multi-row
//! `INSERT … ON DUPLICATE KEY UPDATE` with bound values, one transaction per batch.
//! Type mapping: TYPES.md beside this file.

mod config;
mod destination;
mod source;
#[cfg(test)]
mod tests;

pub use config::{MysqlConfig, SECRET_FIELDS};
pub use destination::MysqlDestination;
pub use source::MysqlSource;
