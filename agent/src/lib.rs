//! Idra's agent: connectors, the sync engine, single mode (syncs from a JSON file), and
//! membership in a cluster.

pub mod cluster;
/// The single-mode file formats and import/export live in idra-core (the server uses them too).
pub use idra_core::config;
pub mod connectors;
pub mod engine;
pub mod membership;
pub mod probe;
