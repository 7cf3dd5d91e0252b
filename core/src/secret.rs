//! Secrets of data sources: sealed with ChaCha20-Poly1305 before they reach the store, and
//! representable in memory only as [`Secret`], which has no `Serialize` and redacts itself
//! in `Debug` — so a secret cannot end up in an API response or a log by accident.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use serde::{Deserialize, Serialize};

use crate::model::{ConnectorKind, DataSource, DataSourceInput, SecretInput};

pub const SECRET_KEY_ENV: &str = "IDRA_SECRET_KEY";
const KEY_FILE: &str = "secret.key";

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{SECRET_KEY_ENV} must be 32 random bytes in base64; generate one with `openssl rand -base64 32`")]
    BadKey,
    #[error("cluster mode needs {SECRET_KEY_ENV} (the same on every server and agent) to encrypt data source secrets; generate one with `openssl rand -base64 32`")]
    MissingKey,
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is readable by other users (mode {mode:o}); run `chmod 600 {path}`", path = .path.display())]
    KeyFileTooOpen { path: PathBuf, mode: u32 },
    #[error("secret `{field}` of data source {id} cannot be decrypted: it was sealed with a different {SECRET_KEY_ENV}. Restore the original key, or enter the secret again")]
    WrongKey { id: String, field: String },
    /// A kept secret asked for with another kind, connection string or target option than
    /// it was saved with: an editor could otherwise send it to a host of their choosing.
    #[error("{change} changed since the {field} was saved, and a saved secret goes only where it was saved for: type the {field} again")]
    TargetChanged { field: String, change: String },
}

/// A secret value in memory. Deliberately not `Serialize`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(••••)")
    }
}

/// A secret as stored: nonce and ciphertext, bound to its data source id, field name and
/// [`SecretTarget`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedSecret {
    nonce: String,
    ciphertext: String,
    /// False for secrets sealed before targets were bound (id and field only); they are
    /// sealed again, bound, the next time their data source is saved.
    #[serde(default)]
    bound: bool,
}

/// Where a data source's secrets may be used: its kind, its connection string (host, port,
/// database, user) and the options that decide where secrets are sent
/// ([`ConnectorKind::option_directs_secrets`]). Part of each secret's associated data, so a
/// secret opens only for the target it was sealed for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretTarget {
    kind: ConnectorKind,
    connection_string: String,
    options: BTreeMap<String, String>,
}

impl SecretTarget {
    pub fn new(
        kind: ConnectorKind,
        connection_string: &str,
        options: &BTreeMap<String, String>,
    ) -> Self {
        Self {
            kind,
            connection_string: connection_string.to_string(),
            options: options
                .iter()
                .filter(|(k, _)| kind.option_directs_secrets(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }

    /// What differs from `other`, in the words of the form's fields.
    fn change_from(&self, other: &SecretTarget) -> String {
        if self.kind != other.kind {
            return "the kind".into();
        }
        if self.connection_string != other.connection_string {
            return "the connection string".into();
        }
        let names: BTreeSet<&String> = self.options.keys().chain(other.options.keys()).collect();
        let changed: Vec<String> = names
            .into_iter()
            .filter(|n| self.options.get(*n) != other.options.get(*n))
            .map(|n| format!("option `{n}`"))
            .collect();
        changed.join(", ")
    }
}

#[derive(Clone)]
pub struct Cipher {
    aead: ChaCha20Poly1305,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher(••••)")
    }
}

impl Cipher {
    pub fn from_base64(key: &str) -> Result<Self, SecretError> {
        let bytes = B64.decode(key.trim()).map_err(|_| SecretError::BadKey)?;
        if bytes.len() != 32 {
            return Err(SecretError::BadKey);
        }
        Ok(Self {
            aead: ChaCha20Poly1305::new(Key::from_slice(&bytes)),
        })
    }

    /// The key from `IDRA_SECRET_KEY`; without it, in single mode (`data_dir` given), a key
    /// file generated once in the data dir with mode 0600.
    pub fn load(data_dir: Option<&Path>) -> Result<Self, SecretError> {
        if let Ok(key) = std::env::var(SECRET_KEY_ENV) {
            return Self::from_base64(&key);
        }
        let dir = data_dir.ok_or(SecretError::MissingKey)?;
        Self::from_key_file(&dir.join(KEY_FILE))
    }

    pub fn from_key_file(path: &Path) -> Result<Self, SecretError> {
        let io = |source| SecretError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(mut file) => {
                let key = ChaCha20Poly1305::generate_key(&mut OsRng);
                file.write_all(B64.encode(key).as_bytes()).map_err(io)?;
                file.sync_all().map_err(io)?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(e)),
        }
        let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(SecretError::KeyFileTooOpen {
                path: path.to_path_buf(),
                mode,
            });
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        Self::from_base64(&text)
    }

    fn aad(id: &str, field: &str, target: Option<&SecretTarget>) -> Vec<u8> {
        let mut aad = format!("idra/datasource/{id}/{field}").into_bytes();
        if let Some(target) = target {
            aad.push(b'\n');
            let json = serde_json::to_vec(target).expect("a target always serialises");
            aad.extend_from_slice(&json);
        }
        aad
    }

    pub fn seal(
        &self,
        id: &str,
        field: &str,
        target: &SecretTarget,
        secret: &Secret,
    ) -> SealedSecret {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = Self::aad(id, field, Some(target));
        let ciphertext = self
            .aead
            .encrypt(
                &nonce,
                Payload {
                    msg: secret.expose().as_bytes(),
                    aad: &aad,
                },
            )
            .expect("ChaCha20-Poly1305 encryption cannot fail for in-memory input");
        SealedSecret {
            nonce: B64.encode(nonce),
            ciphertext: B64.encode(ciphertext),
            bound: true,
        }
    }

    /// Opens a secret for `target`; a bound secret sealed for another target does not open.
    pub fn open(
        &self,
        id: &str,
        field: &str,
        target: &SecretTarget,
        sealed: &SealedSecret,
    ) -> Result<Secret, SecretError> {
        let wrong = || SecretError::WrongKey {
            id: id.to_string(),
            field: field.to_string(),
        };
        let nonce = B64.decode(&sealed.nonce).map_err(|_| wrong())?;
        let ct = B64.decode(&sealed.ciphertext).map_err(|_| wrong())?;
        if nonce.len() != 12 {
            return Err(wrong());
        }
        let aad = Self::aad(id, field, sealed.bound.then_some(target));
        let plain = self
            .aead
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &ct,
                    aad: &aad,
                },
            )
            .map_err(|_| wrong())?;
        String::from_utf8(plain).map(Secret).map_err(|_| wrong())
    }
}

/// What the store keeps under `datasources/<id>`: the public data source plus sealed secrets.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DataSourceRecord {
    #[serde(flatten)]
    pub source: DataSource,
    #[serde(default)]
    pub sealed: BTreeMap<String, SealedSecret>,
}

impl DataSourceRecord {
    /// Builds the record for a (normalised) input, keeping or replacing the secrets of
    /// `previous` as the input says. A kept secret must be kept for the same target: see
    /// [`DataSourceRecord::kept_secrets`].
    pub fn from_input(
        cipher: &Cipher,
        id: &str,
        input: DataSourceInput,
        previous: Option<&DataSourceRecord>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Self, SecretError> {
        let mut secrets = match previous {
            Some(p) => p.kept_secrets(cipher, &input)?,
            None => BTreeMap::new(),
        };
        for (name, action) in &input.secrets {
            if let SecretInput::Set(value) = action {
                secrets.insert(name.clone(), Secret::new(value.clone()));
            }
        }
        let target = SecretTarget::new(input.kind, &input.connection_string, &input.options);
        // Every secret is sealed again, so one sealed before targets were bound is bound now.
        let sealed: BTreeMap<String, SealedSecret> = secrets
            .iter()
            .map(|(name, secret)| (name.clone(), cipher.seal(id, name, &target, secret)))
            .collect();
        let source = DataSource {
            id: id.to_string(),
            name: input.name,
            kind: input.kind,
            connection_string: input.connection_string,
            options: input.options,
            secrets_set: sealed.keys().cloned().collect(),
            created_at: previous.map_or(now, |p| p.source.created_at),
            updated_at: now,
        };
        Ok(Self { source, sealed })
    }

    /// Where this record's secrets may be used.
    pub fn target(&self) -> SecretTarget {
        SecretTarget::new(
            self.source.kind,
            &self.source.connection_string,
            &self.source.options,
        )
    }

    /// Decrypts every secret, for the agent that connects with them.
    pub fn open_secrets(&self, cipher: &Cipher) -> Result<BTreeMap<String, Secret>, SecretError> {
        let target = self.target();
        self.sealed
            .iter()
            .map(|(name, s)| {
                Ok((
                    name.clone(),
                    cipher.open(&self.source.id, name, &target, s)?,
                ))
            })
            .collect()
    }

    /// The stored secrets an edited data source keeps (the input neither sets nor clears
    /// them, and its kind still has them), opened for the input's target. When the kind,
    /// the connection string or a target option changed, a kept secret is refused, naming
    /// it: the user types it again, so nobody sends a secret they do not know elsewhere.
    pub fn kept_secrets(
        &self,
        cipher: &Cipher,
        input: &DataSourceInput,
    ) -> Result<BTreeMap<String, Secret>, SecretError> {
        let target = SecretTarget::new(input.kind, &input.connection_string, &input.options);
        let saved_for = self.target();
        let mut kept = BTreeMap::new();
        for (name, sealed) in &self.sealed {
            let replaced = matches!(
                input.secrets.get(name),
                Some(SecretInput::Set(_) | SecretInput::Clear)
            );
            if replaced || !input.kind.secret_fields().contains(&name.as_str()) {
                continue;
            }
            if target != saved_for {
                return Err(SecretError::TargetChanged {
                    field: name.clone(),
                    change: saved_for.change_from(&target),
                });
            }
            kept.insert(
                name.clone(),
                cipher.open(&self.source.id, name, &target, sealed)?,
            );
        }
        Ok(kept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(cs: &str) -> DataSourceInput {
        DataSourceInput {
            name: "warehouse".into(),
            kind: ConnectorKind::Postgres,
            connection_string: cs.into(),
            options: BTreeMap::new(),
            secrets: BTreeMap::new(),
        }
        .normalize()
        .unwrap()
    }

    #[test]
    fn secrets_are_sealed_and_never_in_the_public_json() {
        let dir = tempfile::tempdir().unwrap();
        let cipher = Cipher::from_key_file(&dir.path().join("secret.key")).unwrap();
        let rec = DataSourceRecord::from_input(
            &cipher,
            "ds1",
            input("postgres://app:hunter2hunter2@db/prod"),
            None,
            chrono::Utc::now(),
        )
        .unwrap();
        let stored = serde_json::to_string(&rec).unwrap();
        assert!(!stored.contains("hunter2"), "plaintext at rest: {stored}");
        let public = serde_json::to_string(&rec.source).unwrap();
        assert!(!public.contains("hunter2"));
        assert!(!public.contains("sealed"));
        assert!(rec.source.secrets_set.contains("password"));
        let opened = rec.open_secrets(&cipher).unwrap();
        assert_eq!(opened["password"].expose(), "hunter2hunter2");
        assert_eq!(format!("{:?}", opened["password"]), "Secret(••••)");
    }

    #[test]
    fn keep_leaves_the_secret_and_clear_removes_it() {
        let cipher = Cipher::from_base64(&B64.encode([7u8; 32])).unwrap();
        let first = DataSourceRecord::from_input(
            &cipher,
            "ds1",
            input("postgres://app:pw-one-long@db/prod"),
            None,
            chrono::Utc::now(),
        )
        .unwrap();
        let mut edit = input("postgres://app@db/prod");
        edit.secrets.insert("password".into(), SecretInput::Keep);
        let kept = DataSourceRecord::from_input(
            &cipher,
            "ds1",
            edit.clone(),
            Some(&first),
            chrono::Utc::now(),
        )
        .unwrap();
        assert_eq!(
            kept.open_secrets(&cipher).unwrap()["password"].expose(),
            "pw-one-long"
        );
        edit.secrets.insert("password".into(), SecretInput::Clear);
        let cleared =
            DataSourceRecord::from_input(&cipher, "ds1", edit, Some(&kept), chrono::Utc::now())
                .unwrap();
        assert!(cleared.sealed.is_empty());
        assert!(cleared.source.secrets_set.is_empty());
    }

    fn target(cs: &str) -> SecretTarget {
        SecretTarget::new(ConnectorKind::Postgres, cs, &BTreeMap::new())
    }

    #[test]
    fn ciphertext_is_bound_to_its_field_and_key() {
        let cipher = Cipher::from_base64(&B64.encode([1u8; 32])).unwrap();
        let t = target("postgres://db/prod");
        let sealed = cipher.seal("ds1", "password", &t, &Secret::new("x"));
        assert!(cipher.open("ds2", "password", &t, &sealed).is_err());
        let other = Cipher::from_base64(&B64.encode([2u8; 32])).unwrap();
        assert!(matches!(
            other.open("ds1", "password", &t, &sealed),
            Err(SecretError::WrongKey { .. })
        ));
    }

    #[test]
    fn ciphertext_is_bound_to_its_target() {
        let cipher = Cipher::from_base64(&B64.encode([3u8; 32])).unwrap();
        let sealed = cipher.seal(
            "ds1",
            "password",
            &target("postgres://db/prod"),
            &Secret::new("x"),
        );
        assert!(cipher
            .open(
                "ds1",
                "password",
                &target("postgres://attacker.example/prod"),
                &sealed
            )
            .is_err());
        let as_mysql =
            SecretTarget::new(ConnectorKind::Mysql, "postgres://db/prod", &BTreeMap::new());
        assert!(cipher.open("ds1", "password", &as_mysql, &sealed).is_err());
    }

    #[test]
    fn a_kept_secret_is_refused_for_another_host_until_typed_again() {
        let cipher = Cipher::from_base64(&B64.encode([4u8; 32])).unwrap();
        let saved = DataSourceRecord::from_input(
            &cipher,
            "ds1",
            input("postgres://app:prod-password@db/prod"),
            None,
            chrono::Utc::now(),
        )
        .unwrap();
        let moved = input("postgres://app@attacker.example/prod");
        let err = saved.kept_secrets(&cipher, &moved).unwrap_err();
        assert!(
            matches!(&err, SecretError::TargetChanged { field, change } if field == "password" && change == "the connection string"),
            "{err:?}"
        );
        assert!(DataSourceRecord::from_input(
            &cipher,
            "ds1",
            moved.clone(),
            Some(&saved),
            chrono::Utc::now()
        )
        .is_err());
        let mut retyped = moved;
        retyped
            .secrets
            .insert("password".into(), SecretInput::Set("typed-again".into()));
        let rec =
            DataSourceRecord::from_input(&cipher, "ds1", retyped, Some(&saved), chrono::Utc::now())
                .unwrap();
        assert_eq!(
            rec.open_secrets(&cipher).unwrap()["password"].expose(),
            "typed-again"
        );
    }

    #[test]
    fn a_kept_secret_is_refused_when_a_target_option_changes() {
        let cipher = Cipher::from_base64(&B64.encode([5u8; 32])).unwrap();
        let mut s3 = DataSourceInput {
            name: "lake".into(),
            kind: ConnectorKind::S3,
            connection_string: "s3://bucket/prefix".into(),
            options: BTreeMap::from([("endpoint".into(), "http://minio:9000".into())]),
            secrets: BTreeMap::from([("secret_access_key".into(), SecretInput::Set("sk".into()))]),
        };
        let saved =
            DataSourceRecord::from_input(&cipher, "ds1", s3.clone(), None, chrono::Utc::now())
                .unwrap();
        s3.secrets.clear();
        s3.options.insert("format".into(), "csv".into());
        assert!(
            saved.kept_secrets(&cipher, &s3).is_ok(),
            "format does not direct secrets"
        );
        s3.options
            .insert("endpoint".into(), "http://attacker.example".into());
        let err = saved.kept_secrets(&cipher, &s3).unwrap_err();
        assert!(err.to_string().contains("option `endpoint`"), "{err}");
    }

    #[test]
    fn a_secret_sealed_before_targets_were_bound_opens_and_is_bound_on_save() {
        let cipher = Cipher::from_base64(&B64.encode([6u8; 32])).unwrap();
        let mut legacy = DataSourceRecord::from_input(
            &cipher,
            "ds1",
            input("postgres://app:old-password@db/prod"),
            None,
            chrono::Utc::now(),
        )
        .unwrap();
        // What a record written by an earlier version holds: sealed with id and field only.
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = Cipher::aad("ds1", "password", None);
        let ct = cipher
            .aead
            .encrypt(
                &nonce,
                Payload {
                    msg: b"old-password",
                    aad: &aad,
                },
            )
            .unwrap();
        let old = serde_json::json!({"nonce": B64.encode(nonce), "ciphertext": B64.encode(ct)});
        legacy
            .sealed
            .insert("password".into(), serde_json::from_value(old).unwrap());
        assert_eq!(
            legacy.open_secrets(&cipher).unwrap()["password"].expose(),
            "old-password"
        );
        let saved = DataSourceRecord::from_input(
            &cipher,
            "ds1",
            input("postgres://app@db/prod"),
            Some(&legacy),
            chrono::Utc::now(),
        )
        .unwrap();
        assert!(saved.sealed["password"].bound);
        assert_eq!(
            saved.open_secrets(&cipher).unwrap()["password"].expose(),
            "old-password"
        );
    }

    #[test]
    fn key_file_is_created_0600_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        let a = Cipher::from_key_file(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let b = Cipher::from_key_file(&path).unwrap();
        let t = target("postgres://db/prod");
        let sealed = a.seal("d", "password", &t, &Secret::new("v"));
        assert_eq!(b.open("d", "password", &t, &sealed).unwrap().expose(), "v");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            Cipher::from_key_file(&path),
            Err(SecretError::KeyFileTooOpen { .. })
        ));
    }

    #[test]
    fn bad_env_key_is_explained() {
        let err = Cipher::from_base64("not-base64!").unwrap_err();
        assert!(err.to_string().contains("openssl rand -base64 32"));
    }
}
