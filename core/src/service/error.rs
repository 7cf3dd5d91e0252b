use crate::model::{Role, ValidationError};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("sign in first")]
    Unauthenticated,
    /// The one message for every failed sign-in: it never says whether the user exists.
    #[error("invalid username or password")]
    BadCredentials,
    #[error("too many failed sign-in attempts; try again in {retry_after_secs} seconds")]
    RateLimited { retry_after_secs: u64 },
    #[error("this needs the {needed} role (you are {have}); ask an admin")]
    Forbidden { needed: Role, have: Role },
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ServiceError {
    /// The input field the error is about, for the UI and the API's `{error, field}` body.
    pub fn field(&self) -> Option<&str> {
        match self {
            ServiceError::Invalid(v) => Some(&v.field),
            _ => None,
        }
    }
}
