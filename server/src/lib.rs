//! Idra's web server: the Leptos UI, the REST API and sessions, over one Store.

pub mod api;
pub mod cli;
mod locks;
mod metrics;
mod router;
mod security;
mod security_headers;
mod session_store;
mod startup;

pub use locks::{LockAccess, LockAccessError};
pub use router::{leptos_options, router, RouterConfig};
pub use startup::run;
