//! Secrets of data sources: sealed with ChaCha20-Poly1305 before they reach the store, and
//! representable in memory only as [`Secret`], which has no `Serialize` and redacts itself
//! in `Debug` — so a secret cannot end up in an API response or a log by accident.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use serde::{Deserialize, Serialize};

use crate::model::{DataSource, DataSourceInput, SecretInput};

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

/// A secret as stored: nonce and ciphertext, bound to its data source id and field name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedSecret {
    nonce: String,
    ciphertext: String,
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

    fn aad(id: &str, field: &str) -> Vec<u8> {
        format!("idra/datasource/{id}/{field}").into_bytes()
    }

    pub fn seal(&self, id: &str, field: &str, secret: &Secret) -> SealedSecret {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = Self::aad(id, field);
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
        }
    }

    pub fn open(
        &self,
        id: &str,
        field: &str,
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
        let aad = Self::aad(id, field);
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
    /// `previous` as the input says.
    pub fn from_input(
        cipher: &Cipher,
        id: &str,
        input: DataSourceInput,
        previous: Option<&DataSourceRecord>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Self {
        let mut sealed = previous.map(|p| p.sealed.clone()).unwrap_or_default();
        // Secrets that no longer belong to the kind are dropped with a kind change.
        sealed.retain(|name, _| input.kind.secret_fields().contains(&name.as_str()));
        for (name, action) in &input.secrets {
            match action {
                SecretInput::Keep => {}
                SecretInput::Clear => {
                    sealed.remove(name);
                }
                SecretInput::Set(value) => {
                    sealed.insert(
                        name.clone(),
                        cipher.seal(id, name, &Secret::new(value.clone())),
                    );
                }
            }
        }
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
        Self { source, sealed }
    }

    /// Decrypts every secret, for the agent that connects with them.
    pub fn open_secrets(&self, cipher: &Cipher) -> Result<BTreeMap<String, Secret>, SecretError> {
        self.sealed
            .iter()
            .map(|(name, s)| Ok((name.clone(), cipher.open(&self.source.id, name, s)?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ConnectorKind;

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
        );
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
        );
        let mut edit = input("postgres://app@db/prod");
        edit.secrets.insert("password".into(), SecretInput::Keep);
        let kept = DataSourceRecord::from_input(
            &cipher,
            "ds1",
            edit.clone(),
            Some(&first),
            chrono::Utc::now(),
        );
        assert_eq!(
            kept.open_secrets(&cipher).unwrap()["password"].expose(),
            "pw-one-long"
        );
        edit.secrets.insert("password".into(), SecretInput::Clear);
        let cleared =
            DataSourceRecord::from_input(&cipher, "ds1", edit, Some(&kept), chrono::Utc::now());
        assert!(cleared.sealed.is_empty());
        assert!(cleared.source.secrets_set.is_empty());
    }

    #[test]
    fn ciphertext_is_bound_to_its_field_and_key() {
        let cipher = Cipher::from_base64(&B64.encode([1u8; 32])).unwrap();
        let sealed = cipher.seal("ds1", "password", &Secret::new("x"));
        assert!(cipher.open("ds2", "password", &sealed).is_err());
        let other = Cipher::from_base64(&B64.encode([2u8; 32])).unwrap();
        assert!(matches!(
            other.open("ds1", "password", &sealed),
            Err(SecretError::WrongKey { .. })
        ));
    }

    #[test]
    fn key_file_is_created_0600_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        let a = Cipher::from_key_file(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let b = Cipher::from_key_file(&path).unwrap();
        let sealed = a.seal("d", "password", &Secret::new("v"));
        assert_eq!(b.open("d", "password", &sealed).unwrap().expose(), "v");
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
