//! Users: seeding the first admin, signing in, and management by admins.

use std::net::IpAddr;

use chrono::{DateTime, Utc};

use super::{password, require, ServiceError, Services};
use crate::model::{NewUser, Role, User, UserRecord, ValidationError};
use crate::store::{decode, encode, Compare, KeyValue, Op, Txn};

pub const ADMIN_PASSWORD_ENV: &str = "IDRA_ADMIN_PASSWORD";

/// A session ends this long after its sign-in, however active it is.
pub const SESSION_MAX_AGE_SECS: i64 = 7 * 24 * 60 * 60;

/// Where a sign-in comes from, as the server determined it from the connection and the
/// proxies it was told to trust.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientAddr {
    /// The client's address: the connection's peer, or what a trusted proxy forwarded.
    pub ip: Option<IpAddr>,
    /// The client is on the machine the server runs on: a loopback connection that no proxy
    /// forwarded on behalf of someone elsewhere.
    pub this_machine: bool,
}

/// A successful sign-in: the user, and the session epoch the session must record.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: User,
    pub session_epoch: String,
}

/// A fresh session epoch: random, so that no earlier session of the name can match it.
fn new_epoch() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

impl Services {
    /// On the very first start, creates `admin` with `IDRA_ADMIN_PASSWORD` or "admin".
    /// Atomic with a marker key, so concurrent servers seed once and a deleted admin is
    /// never resurrected.
    pub async fn bootstrap(&self, admin_password: Option<String>) -> Result<bool, ServiceError> {
        let marker = self.keys.bootstrapped();
        if self.store.get(&marker).await?.is_some() {
            return Ok(false);
        }
        let (password, default_password) = match admin_password {
            Some(p) if !p.is_empty() => {
                User::validate_password(ADMIN_PASSWORD_ENV, &p)?;
                (p, false)
            }
            _ => ("admin".to_string(), true),
        };
        let record = UserRecord {
            user: User {
                username: "admin".into(),
                email: String::new(),
                role: Role::Admin,
                default_password,
                created_at: Utc::now(),
            },
            password_hash: self.hashing.hash(password).await,
            session_epoch: new_epoch(),
        };
        let key = self.keys.user("admin");
        let resp = self
            .store
            .txn(
                Txn::new()
                    .when(vec![Compare::missing(&marker), Compare::missing(&key)])
                    .and_then(vec![
                        Op::put(&marker, encode(&Utc::now()), None),
                        Op::put(&key, encode(&record), None),
                    ]),
            )
            .await?;
        Ok(resp.succeeded)
    }

    /// Checks a sign-in. Every wrong username or password gives the same message.
    ///
    /// The attempt is counted before the password is checked (see `limiter`), and the check
    /// waits for one of the hashing slots. The default password signs in only from this
    /// machine.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        client: ClientAddr,
    ) -> Result<SignedIn, ServiceError> {
        let attempt = self
            .limiter
            .reserve(username, client.ip)
            .map_err(|retry_after_secs| ServiceError::RateLimited { retry_after_secs })?;
        let record = match User::validate_username(username) {
            Ok(()) => match self.user_record(username).await {
                Ok(record) => record,
                Err(e) => {
                    attempt.void();
                    return Err(e);
                }
            },
            Err(_) => None,
        };
        let phc = match &record {
            Some((r, _)) => r.password_hash.clone(),
            None => password::dummy_hash().await,
        };
        let Some(ok) = self.hashing.verify_sign_in(password.to_string(), phc).await else {
            attempt.void();
            return Err(ServiceError::Busy {
                retry_after_secs: 1,
            });
        };
        match (ok, record) {
            (true, Some((r, _))) if r.user.default_password && !client.this_machine => {
                // Counted as a failure: it must not become a free password oracle either.
                drop(attempt);
                Err(ServiceError::DefaultPasswordFromAfar)
            }
            (true, Some((r, _))) => {
                attempt.succeeded();
                Ok(SignedIn {
                    user: r.user,
                    session_epoch: r.session_epoch,
                })
            }
            // The attempt stays counted.
            _ => Err(ServiceError::BadCredentials),
        }
    }

    /// Whether a session signed in as `username` under `epoch` at `signed_in_at` (Unix
    /// seconds) still holds at `now`: the user exists, nothing ended their sessions since
    /// (new password, new role, deleted and maybe re-created), and it is younger than
    /// [`SESSION_MAX_AGE_SECS`].
    pub async fn session_holds(
        &self,
        username: &str,
        epoch: &str,
        signed_in_at: i64,
        now: DateTime<Utc>,
    ) -> Result<bool, ServiceError> {
        let age = now.timestamp().saturating_sub(signed_in_at);
        if !(0..SESSION_MAX_AGE_SECS).contains(&age) {
            return Ok(false);
        }
        Ok(self
            .user_record(username)
            .await?
            .is_some_and(|(r, _)| r.session_epoch == epoch))
    }

    /// The user a session belongs to, if it still exists.
    pub async fn user(&self, username: &str) -> Result<Option<User>, ServiceError> {
        Ok(self.user_record(username).await?.map(|(r, _)| r.user))
    }

    async fn user_record(
        &self,
        username: &str,
    ) -> Result<Option<(UserRecord, KeyValue)>, ServiceError> {
        let key = self.keys.user(username);
        match self.store.get(&key).await? {
            Some(kv) => Ok(Some((decode(&key, &kv.value)?, kv))),
            None => Ok(None),
        }
    }

    async fn all_user_records(&self) -> Result<Vec<(UserRecord, KeyValue)>, ServiceError> {
        let mut out = Vec::new();
        for kv in self.store.list_all(&self.keys.users()).await? {
            out.push((decode(&kv.key, &kv.value)?, kv));
        }
        Ok(out)
    }

    pub async fn list_users(&self, actor: &User) -> Result<Vec<User>, ServiceError> {
        require(actor, Role::Admin)?;
        Ok(self
            .all_user_records()
            .await?
            .into_iter()
            .map(|(r, _)| r.user)
            .collect())
    }

    pub async fn create_user(&self, actor: &User, new: NewUser) -> Result<User, ServiceError> {
        require(actor, Role::Admin)?;
        new.validate()?;
        let record = UserRecord {
            user: User {
                username: new.username.clone(),
                email: new.email,
                role: new.role,
                default_password: false,
                created_at: Utc::now(),
            },
            password_hash: self.hashing.hash(new.password).await,
            session_epoch: new_epoch(),
        };
        let key = self.keys.user(&new.username);
        let resp = self
            .store
            .txn(
                Txn::new()
                    .when(vec![Compare::missing(&key)])
                    .and_then(vec![Op::put(&key, encode(&record), None)]),
            )
            .await?;
        if !resp.succeeded {
            return Err(ValidationError::new(
                "username",
                format!("`{}` is taken; pick another username", new.username),
            )
            .into());
        }
        Ok(record.user)
    }

    /// Changes a role. Demoting the last admin is refused. A new role ends the user's
    /// sessions.
    pub async fn set_role(
        &self,
        actor: &User,
        username: &str,
        role: Role,
    ) -> Result<User, ServiceError> {
        require(actor, Role::Admin)?;
        self.update_user(username, |r| {
            if r.user.role != role {
                r.user.role = role;
                r.session_epoch = new_epoch();
            }
            Ok(())
        })
        .await
        .map(|r| r.user)
    }

    pub async fn set_email(
        &self,
        actor: &User,
        username: &str,
        email: String,
    ) -> Result<User, ServiceError> {
        require(actor, Role::Admin)?;
        User::validate_email(&email)?;
        self.update_user(username, |r| {
            r.user.email = email;
            Ok(())
        })
        .await
        .map(|r| r.user)
    }

    /// An admin sets someone's password, which ends that user's sessions.
    pub async fn reset_password(
        &self,
        actor: &User,
        username: &str,
        new_password: String,
    ) -> Result<User, ServiceError> {
        require(actor, Role::Admin)?;
        User::validate_password("password", &new_password)?;
        let hash = self.hashing.hash(new_password).await;
        self.update_user(username, |r| {
            r.password_hash = hash;
            r.user.default_password = false;
            r.session_epoch = new_epoch();
            Ok(())
        })
        .await
        .map(|r| r.user)
    }

    /// Anyone changes their own password, proving they know the current one. Their other
    /// sessions end; the caller moves the session that made the change to the returned
    /// epoch.
    pub async fn change_own_password(
        &self,
        actor: &User,
        current: String,
        new_password: String,
    ) -> Result<SignedIn, ServiceError> {
        User::validate_password("new_password", &new_password)?;
        let (record, _) = self
            .user_record(&actor.username)
            .await?
            .ok_or(ServiceError::Unauthenticated)?;
        // Guesses of the current password (from a stolen session, say) count like sign-ins.
        let attempt = self
            .limiter
            .reserve(&actor.username, None)
            .map_err(|retry_after_secs| ServiceError::RateLimited { retry_after_secs })?;
        if !self.hashing.verify(current, record.password_hash).await {
            return Err(
                ValidationError::new("current_password", "is not your current password").into(),
            );
        }
        attempt.succeeded();
        if new_password == "admin" {
            return Err(
                ValidationError::new("new_password", "must differ from the default").into(),
            );
        }
        let hash = self.hashing.hash(new_password).await;
        let updated = self
            .update_user(&actor.username, |r| {
                r.password_hash = hash;
                r.user.default_password = false;
                r.session_epoch = new_epoch();
                Ok(())
            })
            .await?;
        Ok(SignedIn {
            user: updated.user,
            session_epoch: updated.session_epoch,
        })
    }

    /// Deletes a user: never yourself, never the last admin.
    pub async fn delete_user(&self, actor: &User, username: &str) -> Result<(), ServiceError> {
        require(actor, Role::Admin)?;
        if actor.username == username {
            return Err(ServiceError::Conflict(
                "you cannot delete your own account; ask another admin".into(),
            ));
        }
        let all = self.all_user_records().await?;
        let (target, kv) = all
            .iter()
            .find(|(r, _)| r.user.username == username)
            .ok_or_else(|| ServiceError::NotFound(format!("user `{username}`")))?;
        let mut compares = vec![Compare::mod_revision(&kv.key, kv.mod_revision)];
        if target.user.role == Role::Admin {
            compares.extend(self.other_admins_guard(&all, username)?);
        }
        let resp = self
            .store
            .txn(
                Txn::new()
                    .when(compares)
                    .and_then(vec![Op::delete(&kv.key)]),
            )
            .await?;
        if !resp.succeeded {
            return Err(ServiceError::Conflict(
                "users changed while deleting; reload and try again".into(),
            ));
        }
        // Sessions of the deleted user stop working at their next request: they find no user,
        // and a user created later under the same name has another session epoch.
        Ok(())
    }

    /// Compares that hold only while at least one *other* admin exists unchanged.
    fn other_admins_guard(
        &self,
        all: &[(UserRecord, KeyValue)],
        except: &str,
    ) -> Result<Vec<Compare>, ServiceError> {
        let others: Vec<Compare> = all
            .iter()
            .filter(|(r, _)| r.user.role == Role::Admin && r.user.username != except)
            .map(|(_, kv)| Compare::mod_revision(&kv.key, kv.mod_revision))
            .collect();
        if others.is_empty() {
            return Err(ServiceError::Conflict(
                "this is the last admin; make another user admin first".into(),
            ));
        }
        Ok(others)
    }

    /// Read-modify-write of one user under compare-and-swap, keeping at least one admin.
    async fn update_user(
        &self,
        username: &str,
        change: impl FnOnce(&mut UserRecord) -> Result<(), ServiceError>,
    ) -> Result<UserRecord, ServiceError> {
        let all = self.all_user_records().await?;
        let (record, kv) = all
            .iter()
            .find(|(r, _)| r.user.username == username)
            .ok_or_else(|| ServiceError::NotFound(format!("user `{username}`")))?;
        let mut updated = record.clone();
        change(&mut updated)?;
        let mut compares = vec![Compare::mod_revision(&kv.key, kv.mod_revision)];
        if record.user.role == Role::Admin && updated.user.role != Role::Admin {
            compares.extend(self.other_admins_guard(&all, username)?);
        }
        let resp = self
            .store
            .txn(
                Txn::new()
                    .when(compares)
                    .and_then(vec![Op::put(&kv.key, encode(&updated), None)]),
            )
            .await?;
        if !resp.succeeded {
            return Err(ServiceError::Conflict(
                "this user changed meanwhile; reload and try again".into(),
            ));
        }
        Ok(updated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn services() -> (Services, tempfile::TempDir) {
        services_with(Some("admin-password-1")).await
    }

    /// Services on a fresh embedded store, admin seeded with `admin_password` (None: the
    /// default admin/admin).
    async fn services_with(admin_password: Option<&str>) -> (Services, tempfile::TempDir) {
        let (s, dir) = crate::service::test_support::services().await;
        assert!(s.bootstrap(admin_password.map(String::from)).await.unwrap());
        (s, dir)
    }

    const HERE: ClientAddr = ClientAddr {
        ip: None,
        this_machine: true,
    };

    async fn holds(s: &Services, name: &str, signed_in: &SignedIn) -> bool {
        s.session_holds(
            name,
            &signed_in.session_epoch,
            Utc::now().timestamp(),
            Utc::now(),
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn the_session_epoch_moves_with_password_role_and_re_creation() {
        let (s, _dir) = services().await;
        let admin = s.login("admin", "admin-password-1", HERE).await.unwrap();
        let new = NewUser {
            username: "ana".into(),
            password: "first-password-1".into(),
            role: Role::Editor,
            email: String::new(),
        };
        s.create_user(&admin.user, new.clone()).await.unwrap();
        let ana = s.login("ana", "first-password-1", HERE).await.unwrap();
        assert!(holds(&s, "ana", &ana).await);

        // What does not end sessions: a new email, the same role again.
        s.set_email(&admin.user, "ana", "ana@example.com".into())
            .await
            .unwrap();
        s.set_role(&admin.user, "ana", Role::Editor).await.unwrap();
        assert!(holds(&s, "ana", &ana).await);

        s.set_role(&admin.user, "ana", Role::Viewer).await.unwrap();
        assert!(!holds(&s, "ana", &ana).await, "a new role");
        let ana = s.login("ana", "first-password-1", HERE).await.unwrap();
        s.reset_password(&admin.user, "ana", "second-password-2".into())
            .await
            .unwrap();
        assert!(!holds(&s, "ana", &ana).await, "a reset password");
        let ana = s.login("ana", "second-password-2", HERE).await.unwrap();
        let changed = s
            .change_own_password(
                &ana.user,
                "second-password-2".into(),
                "third-password-3".into(),
            )
            .await
            .unwrap();
        assert!(!holds(&s, "ana", &ana).await, "a changed password");
        assert!(
            holds(&s, "ana", &changed).await,
            "the epoch it returns holds"
        );

        s.delete_user(&admin.user, "ana").await.unwrap();
        assert!(!holds(&s, "ana", &changed).await, "deleted");
        s.create_user(&admin.user, new).await.unwrap();
        assert!(!holds(&s, "ana", &changed).await, "re-created");
        assert!(holds(&s, "admin", &admin).await, "others keep theirs");
    }

    #[tokio::test]
    async fn a_session_holds_for_seven_days_after_sign_in() {
        let (s, _dir) = services().await;
        let admin = s.login("admin", "admin-password-1", HERE).await.unwrap();
        let now = Utc::now();
        let at =
            |age: i64| s.session_holds("admin", &admin.session_epoch, now.timestamp() - age, now);
        assert!(at(SESSION_MAX_AGE_SECS - 60).await.unwrap());
        assert!(!at(SESSION_MAX_AGE_SECS).await.unwrap());
        assert!(!at(-3600).await.unwrap(), "signed in in the future");
    }

    /// Parallel guesses are counted before their (slow) check: at most 5 passwords are
    /// checked, the others are refused without one.
    #[tokio::test]
    async fn parallel_guesses_are_counted_before_they_are_checked() {
        let (s, _dir) = services().await;
        let guesses = (0..32).map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                let client = ClientAddr {
                    ip: Some("198.51.100.7".parse().unwrap()),
                    this_machine: false,
                };
                s.login("admin", &format!("guess-{i}"), client).await
            })
        });
        let mut wrong = 0;
        for g in guesses.collect::<Vec<_>>() {
            match g.await.unwrap() {
                Err(ServiceError::BadCredentials) => wrong += 1,
                Err(ServiceError::RateLimited { .. }) => {}
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(wrong, 5);
        assert_eq!(s.hashing.verifications(), 5);
    }

    #[tokio::test]
    async fn the_default_password_signs_in_only_from_this_machine() {
        let (s, _dir) = services_with(None).await;
        let afar = ClientAddr {
            ip: Some("198.51.100.7".parse().unwrap()),
            this_machine: false,
        };
        assert!(matches!(
            s.login("admin", "admin", afar).await,
            Err(ServiceError::DefaultPasswordFromAfar)
        ));
        assert!(matches!(
            s.login("admin", "wrong", afar).await,
            Err(ServiceError::BadCredentials)
        ));
        let here = s.login("admin", "admin", HERE).await.unwrap();
        s.change_own_password(&here.user, "admin".into(), "a-better-password".into())
            .await
            .unwrap();
        s.login("admin", "a-better-password", afar).await.unwrap();
    }
}
