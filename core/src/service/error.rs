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
    /// Every password-hashing slot stayed busy: the password was not checked.
    #[error("too many sign-ins at once; try again in {retry_after_secs} seconds")]
    Busy { retry_after_secs: u64 },
    /// The right password, but it is still the default one and the client is elsewhere.
    #[error(
        "this account still has the default password, so it signs in only from the machine \
         Idra runs on: sign in there (http://127.0.0.1 on Idra's port, or through an SSH \
         tunnel) and change the password; or give the first password with IDRA_ADMIN_PASSWORD \
         when Idra starts on an empty store"
    )]
    DefaultPasswordFromAfar,
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

impl From<crate::secret::SecretError> for ServiceError {
    fn from(e: crate::secret::SecretError) -> Self {
        match e {
            crate::secret::SecretError::TargetChanged { ref field, .. } => ServiceError::Invalid(
                ValidationError::new(format!("secrets.{field}"), e.to_string()),
            ),
            other => ServiceError::Conflict(other.to_string()),
        }
    }
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
