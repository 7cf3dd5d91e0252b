//! SQLite files as source and destination. Values are stored in SQLite's storage classes
//! with declared column types that say how to read them back. Type mapping: TYPES.md.

mod config;
mod destination;
mod source;
#[cfg(test)]
mod tests;

pub use config::{confine, dir, set_dir, SqliteConfig, IDRA_FILES, SECRET_FIELDS};
pub use destination::SqliteDestination;
pub use source::SqliteSource;
