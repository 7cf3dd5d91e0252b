//! Users: seeding the first admin, signing in, and management by admins.

use std::net::IpAddr;
use std::time::Instant;

use chrono::Utc;

use super::{password, require, ServiceError, Services};
use crate::model::{NewUser, Role, User, UserRecord, ValidationError};
use crate::store::{decode, encode, Compare, KeyValue, Op, Txn};

pub const ADMIN_PASSWORD_ENV: &str = "IDRA_ADMIN_PASSWORD";

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
            password_hash: password::hash(password).await,
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

    /// Checks a sign-in. Every failure gives the same message.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        ip: Option<IpAddr>,
    ) -> Result<User, ServiceError> {
        if let Err(retry_after_secs) = self.limiter.check(username, ip, Instant::now()) {
            return Err(ServiceError::RateLimited { retry_after_secs });
        }
        let record = match User::validate_username(username) {
            Ok(()) => self.user_record(username).await?,
            Err(_) => None,
        };
        let phc = match &record {
            Some((r, _)) => r.password_hash.clone(),
            None => password::dummy_hash().await,
        };
        let ok = password::verify(password.to_string(), phc).await && record.is_some();
        match (ok, record) {
            (true, Some((r, _))) => {
                self.limiter.record_success(username);
                Ok(r.user)
            }
            _ => {
                self.limiter.record_failure(username, ip, Instant::now());
                Err(ServiceError::BadCredentials)
            }
        }
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
            password_hash: password::hash(new.password).await,
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

    /// Changes a role. Demoting the last admin is refused.
    pub async fn set_role(
        &self,
        actor: &User,
        username: &str,
        role: Role,
    ) -> Result<User, ServiceError> {
        require(actor, Role::Admin)?;
        self.update_user(username, |r| {
            r.user.role = role;
            Ok(())
        })
        .await
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
    }

    /// An admin sets someone's password.
    pub async fn reset_password(
        &self,
        actor: &User,
        username: &str,
        new_password: String,
    ) -> Result<User, ServiceError> {
        require(actor, Role::Admin)?;
        User::validate_password("password", &new_password)?;
        let hash = password::hash(new_password).await;
        self.update_user(username, |r| {
            r.password_hash = hash;
            r.user.default_password = false;
            Ok(())
        })
        .await
    }

    /// Anyone changes their own password, proving they know the current one.
    pub async fn change_own_password(
        &self,
        actor: &User,
        current: String,
        new_password: String,
    ) -> Result<User, ServiceError> {
        User::validate_password("new_password", &new_password)?;
        let (record, _) = self
            .user_record(&actor.username)
            .await?
            .ok_or(ServiceError::Unauthenticated)?;
        if !password::verify(current, record.password_hash).await {
            return Err(
                ValidationError::new("current_password", "is not your current password").into(),
            );
        }
        if new_password == "admin" {
            return Err(
                ValidationError::new("new_password", "must differ from the default").into(),
            );
        }
        let hash = password::hash(new_password).await;
        self.update_user(&actor.username, |r| {
            r.password_hash = hash;
            r.user.default_password = false;
            Ok(())
        })
        .await
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
        // Sessions of the deleted user stop working at their next request: every request
        // loads the user afresh.
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
    ) -> Result<User, ServiceError> {
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
        Ok(updated.user)
    }
}
