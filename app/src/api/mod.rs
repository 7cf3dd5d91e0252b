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
/// Session entry holding the user's session epoch at sign-in: when the user's epoch moves
/// on (new password, new role, deleted), the session ends.
pub const SESSION_EPOCH_KEY: &str = "epoch";
/// Session entry holding the sign-in time (Unix seconds): sessions end 7 days after it.
pub const SESSION_SIGNED_IN_AT_KEY: &str = "signed_in_at";
