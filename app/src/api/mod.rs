//! Server functions: the browser calls them over HTTP, the server runs them with the
//! signed-in user's role checked by `idra_core::service`.

mod auth;
mod codec;
mod datasources;
mod error;
mod overview;
#[cfg(feature = "ssr")]
pub mod server;
mod syncs;
mod users;

pub use auth::*;
pub use codec::{JsonAnswer, JsonArgs, JsonText};
pub use datasources::*;
pub use error::UiError;
pub use overview::*;
pub use syncs::*;
pub use users::*;

/// Session entry holding the signed-in username (shared with the REST API).
pub const SESSION_USER_KEY: &str = "user";
