//! tower-sessions on top of our Store: each session is a key on its own lease, so it expires
//! in the store by itself and any server replica can serve any user.
//!
//! A signed-in session holds only while its user's session epoch is the one it was signed in
//! under (a new password, a new role or a deletion moves the epoch on) and for at most 7 days
//! after sign-in: [`StoreSessions::load`] checks both and ends the session otherwise. Saving
//! never re-creates a session that is gone (signed out, ended, expired).

use async_trait::async_trait;
use idra_app::api::{SESSION_EPOCH_KEY, SESSION_SIGNED_IN_AT_KEY, SESSION_USER_KEY};
use idra_core::service::Services;
use idra_core::store::{decode, encode, Compare, Op, StoreError, Txn};
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{Error, Result, SessionStore};

#[derive(Clone)]
pub struct StoreSessions {
    services: Services,
}

impl std::fmt::Debug for StoreSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreSessions")
            .field("backend", &self.services.store.backend())
            .finish()
    }
}

fn backend(e: StoreError) -> Error {
    Error::Backend(e.to_string())
}

/// The layer saves on every request (`always_save`), so that using the app extends the session.
/// Rewriting it each time would cost a lease and two writes per request (the dashboard polls
/// every second); the stored expiry is moved forward at most this often instead.
pub const TOUCH_EVERY: time::Duration = time::Duration::minutes(10);

/// The new record differs from the stored one only by an expiry less than [`TOUCH_EVERY`] later.
fn only_touched(key: &str, stored: &[u8], record: &Record) -> bool {
    let Ok(stored) = decode::<Record>(key, stored) else {
        return false;
    };
    let moved = record.expiry_date - stored.expiry_date;
    stored.data == record.data && moved >= time::Duration::ZERO && moved < TOUCH_EVERY
}

fn ttl_secs(record: &Record) -> i64 {
    (record.expiry_date - time::OffsetDateTime::now_utc())
        .whole_seconds()
        .max(1)
}

/// How many times a save retries when another request changed the session meanwhile.
const SAVE_ATTEMPTS: usize = 3;

impl StoreSessions {
    pub fn new(services: Services) -> Self {
        Self { services }
    }

    fn key(&self, id: &Id) -> String {
        self.services.keys.session(&id.to_string())
    }

    /// Whether a loaded record may be used: sessions without a user (nobody signed in) are
    /// always fine; a signed-in one must carry its epoch and sign-in time, and both must
    /// still hold.
    async fn still_holds(&self, record: &Record) -> Result<bool> {
        let Some(user) = record.data.get(SESSION_USER_KEY) else {
            return Ok(true);
        };
        let (Some(user), Some(epoch), Some(signed_in_at)) = (
            user.as_str(),
            record.data.get(SESSION_EPOCH_KEY).and_then(|v| v.as_str()),
            record
                .data
                .get(SESSION_SIGNED_IN_AT_KEY)
                .and_then(|v| v.as_i64()),
        ) else {
            // Signed in before epochs existed, or tampered with: sign in again.
            return Ok(false);
        };
        self.services
            .session_holds(user, epoch, signed_in_at, chrono::Utc::now())
            .await
            .map_err(|e| Error::Backend(e.to_string()))
    }

    async fn revoke(&self, lease: i64) -> std::result::Result<(), StoreError> {
        match self.services.store.revoke_lease(lease).await {
            Ok(()) | Err(StoreError::LeaseNotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl SessionStore for StoreSessions {
    async fn create(&self, record: &mut Record) -> Result<()> {
        let store = &self.services.store;
        loop {
            let key = self.key(&record.id);
            let lease = store.grant_lease(ttl_secs(record)).await.map_err(backend)?;
            let resp = store
                .txn(
                    Txn::new()
                        .when(vec![Compare::missing(&key)])
                        .and_then(vec![Op::put(&key, encode(record), Some(lease))]),
                )
                .await
                .map_err(backend)?;
            if resp.succeeded {
                return Ok(());
            }
            // An id collision (astronomically rare): drop the lease and draw a new id.
            let _ = self.revoke(lease).await;
            record.id = Id::default();
        }
    }

    /// Writes the session only over the version it read, and never when it is gone: a
    /// request that loaded the session before a sign-out must not bring it back when it
    /// finishes after it.
    async fn save(&self, record: &Record) -> Result<()> {
        let store = &self.services.store;
        let key = self.key(&record.id);
        for _ in 0..SAVE_ATTEMPTS {
            let Some(previous) = store.get(&key).await.map_err(backend)? else {
                return Ok(());
            };
            if only_touched(&key, &previous.value, record) {
                return Ok(());
            }
            let lease = store.grant_lease(ttl_secs(record)).await.map_err(backend)?;
            let resp = store
                .txn(
                    Txn::new()
                        .when(vec![Compare::mod_revision(&key, previous.mod_revision)])
                        .and_then(vec![Op::put(&key, encode(record), Some(lease))]),
                )
                .await
                .map_err(backend)?;
            if !resp.succeeded {
                // Signed out, ended or saved by another request meanwhile: look again.
                let _ = self.revoke(lease).await;
                continue;
            }
            if previous.lease != 0 && previous.lease != lease {
                // The old lease now holds nothing; ending it keeps etcd's lease table small.
                if let Err(e) = self.revoke(previous.lease).await {
                    tracing::warn!(error = %e, "could not revoke a replaced session lease");
                }
            }
            return Ok(());
        }
        tracing::warn!(
            "a session kept changing while being saved; this request's change is dropped"
        );
        Ok(())
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        let key = self.key(id);
        let Some(kv) = self.services.store.get(&key).await.map_err(backend)? else {
            return Ok(None);
        };
        let record: Record = decode(&key, &kv.value).map_err(|e| Error::Decode(e.to_string()))?;
        if record.expiry_date <= time::OffsetDateTime::now_utc() {
            return Ok(None);
        }
        if !self.still_holds(&record).await? {
            // Ended (new password or role, user deleted, too old): remove it for good.
            self.delete(id).await?;
            return Ok(None);
        }
        Ok(Some(record))
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        let key = self.key(id);
        let store = &self.services.store;
        if let Some(kv) = store.get(&key).await.map_err(backend)? {
            if kv.lease != 0 {
                self.revoke(kv.lease).await.map_err(backend)?;
            }
            store.delete(&key).await.map_err(backend)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use idra_core::secret::Cipher;
    use idra_core::store::{EmbeddedStore, Keys};
    use std::sync::Arc;
    use time::OffsetDateTime;

    async fn sessions() -> (StoreSessions, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&dir.path().join("store"))
            .await
            .unwrap();
        let cipher = Cipher::from_key_file(&dir.path().join("secret.key")).unwrap();
        let services = Services::new(Arc::new(store), Keys::default(), cipher);
        (StoreSessions::new(services), dir)
    }

    async fn revision(s: &StoreSessions, id: &Id) -> i64 {
        s.services
            .store
            .get(&s.key(id))
            .await
            .unwrap()
            .unwrap()
            .mod_revision
    }

    #[tokio::test]
    async fn activity_extends_a_session_with_one_write_per_touch_interval() {
        let (s, _dir) = sessions().await;
        let start = OffsetDateTime::now_utc() + time::Duration::hours(12);
        let mut record = Record {
            id: Id::default(),
            data: [("note".to_string(), serde_json::json!("kept"))].into(),
            expiry_date: start,
        };
        s.create(&mut record).await.unwrap();
        let created = revision(&s, &record.id).await;

        record.expiry_date = start + time::Duration::minutes(1);
        s.save(&record).await.unwrap();
        assert_eq!(
            revision(&s, &record.id).await,
            created,
            "a small move is not written"
        );

        record.expiry_date = start + TOUCH_EVERY;
        s.save(&record).await.unwrap();
        let touched = revision(&s, &record.id).await;
        assert!(touched > created, "a move of TOUCH_EVERY is written");
        let loaded = s.load(&record.id).await.unwrap().unwrap();
        assert_eq!(loaded.expiry_date, record.expiry_date);

        record.data.insert("note".into(), serde_json::json!(1));
        s.save(&record).await.unwrap();
        assert!(
            revision(&s, &record.id).await > touched,
            "changed data is always written"
        );
        assert_eq!(s.load(&record.id).await.unwrap().unwrap().data, record.data);
    }

    /// Finding 5: a request that loaded the session before a sign-out and finishes after it
    /// must not write the session back. The real layer, with the interleaving forced.
    #[tokio::test]
    async fn a_request_in_flight_during_sign_out_does_not_revive_the_session() {
        use axum::body::Body;
        use axum::http::{header, Request};
        use axum::routing::{get, post};
        use tokio::sync::Notify;
        use tower::ServiceExt;
        use tower_sessions::{Expiry, Session, SessionManagerLayer};

        let (s, _dir) = sessions().await;
        let loaded = Arc::new(Notify::new());
        let finish = Arc::new(Notify::new());
        let (l, f) = (loaded.clone(), finish.clone());
        let app = axum::Router::new()
            .route(
                "/in",
                post(|session: Session| async move {
                    session.insert("note", 1).await.unwrap();
                }),
            )
            .route(
                "/slow",
                get(move |session: Session| async move {
                    let _: Option<i32> = session.get("note").await.unwrap();
                    l.notify_one();
                    f.notified().await;
                }),
            )
            .route(
                "/out",
                post(|session: Session| async move { session.flush().await.unwrap() }),
            )
            .route(
                "/note",
                get(|session: Session| async move {
                    format!("{:?}", session.get::<i32>("note").await.unwrap())
                }),
            )
            .layer(
                SessionManagerLayer::new(s.clone())
                    .with_expiry(Expiry::OnInactivity(time::Duration::hours(12)))
                    .with_always_save(true),
            );
        let call = |method: &str, uri: &str, cookie: Option<&str>| {
            let mut req = Request::builder().method(method).uri(uri);
            if let Some(c) = cookie {
                req = req.header(header::COOKIE, c);
            }
            app.clone().oneshot(req.body(Body::empty()).unwrap())
        };
        let signed_in = call("POST", "/in", None).await.unwrap();
        let cookie = signed_in.headers()[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();

        let slow = tokio::spawn(call("GET", "/slow", Some(&cookie)));
        loaded.notified().await;
        call("POST", "/out", Some(&cookie)).await.unwrap();
        finish.notify_one();
        slow.await.unwrap().unwrap();

        assert!(
            s.services
                .store
                .list_all(&s.services.keys.sessions())
                .await
                .unwrap()
                .is_empty(),
            "the signed-out session was written back"
        );
        let note = call("GET", "/note", Some(&cookie)).await.unwrap();
        let body = http_body_util::BodyExt::collect(note.into_body())
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(&body[..], b"None");
    }
}
