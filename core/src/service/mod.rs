//! Business rules shared by the UI's server functions and the REST API, so that roles are
//! enforced in exactly one place. Every operation takes the acting user.

mod catalog;
mod error;
mod limiter;
pub mod locks;
mod overview;
mod password;
pub mod probe;
mod sync_cache;
#[cfg(test)]
mod test_support;
mod users;

pub use users::{ClientAddr, SignedIn, ADMIN_PASSWORD_ENV, SESSION_MAX_AGE_SECS};

use std::sync::Arc;

pub use error::ServiceError;
pub use limiter::{
    Attempt, Clock, LoginLimiter, FREE_FAILURES_PER_IP, MAX_FAILURES_PER_USER, MAX_IP_DELAY, WINDOW,
};
pub use password::PasswordHashing;

use crate::model::{Role, User};
use crate::secret::Cipher;
use crate::store::{Keys, Store};

/// Everything a request handler needs, cheap to clone.
#[derive(Clone)]
pub struct Services {
    pub store: Arc<dyn Store>,
    pub keys: Keys,
    pub cipher: Cipher,
    pub limiter: Arc<LoginLimiter>,
    /// Slots for password hashing, one per CPU.
    pub hashing: Arc<PasswordHashing>,
    /// Connection checks through the connectors (the server provides them).
    pub probe: Option<Arc<dyn probe::Probe>>,
    syncs: Arc<sync_cache::SyncCache>,
}

impl Services {
    pub fn new(store: Arc<dyn Store>, keys: Keys, cipher: Cipher) -> Self {
        Self {
            store,
            keys,
            cipher,
            limiter: Arc::new(LoginLimiter::default()),
            hashing: Arc::new(PasswordHashing::default()),
            probe: None,
            syncs: Arc::default(),
        }
    }

    pub fn with_probe(mut self, probe: Arc<dyn probe::Probe>) -> Self {
        self.probe = Some(probe);
        self
    }
}

/// Refuses unless `actor` has at least `needed`.
pub fn require(actor: &User, needed: Role) -> Result<(), ServiceError> {
    if actor.role.allows(needed) {
        Ok(())
    } else {
        Err(ServiceError::Forbidden {
            needed,
            have: actor.role,
        })
    }
}
