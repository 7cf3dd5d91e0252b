//! Idra's core: the domain model (compiles to wasm), and behind the `store` feature the
//! Store contract with its two backends, secret encryption and the services that enforce
//! roles for both the UI and the REST API.

pub mod model;

#[cfg(feature = "store")]
pub mod config;
#[cfg(feature = "store")]
pub mod secret;
#[cfg(feature = "store")]
pub mod service;
#[cfg(feature = "store")]
pub mod store;
