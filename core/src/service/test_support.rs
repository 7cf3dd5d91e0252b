//! Services on a fresh embedded store, and users of each role, for the services' tests.

use std::sync::Arc;

use super::Services;
use crate::model::{Role, User};
use crate::secret::Cipher;
use crate::store::{EmbeddedStore, Keys};

/// Services on a new embedded store with no users; the directory lives as long as the
/// returned guard.
pub async fn services() -> (Services, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(&dir.path().join("store"))
        .await
        .unwrap();
    let cipher = Cipher::from_key_file(&dir.path().join("secret.key")).unwrap();
    (Services::new(Arc::new(store), Keys::default(), cipher), dir)
}

/// A user of `role` (the services take the actor as given; no sign-in needed).
pub fn user(role: Role) -> User {
    User {
        username: format!("{role:?}").to_lowercase(),
        email: String::new(),
        role,
        default_password: false,
        created_at: chrono::Utc::now(),
    }
}
