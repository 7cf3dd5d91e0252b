//! Idra's agent: connectors, the sync engine, single mode (syncs from a JSON file), and
//! membership in a cluster.

pub mod cluster;
pub mod config;
pub mod connectors;
pub mod engine;
pub mod membership;
pub mod probe;
