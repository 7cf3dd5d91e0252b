//! argon2id hashing, run off the async runtime (it is deliberately slow) and bounded: each
//! computation holds 19 MiB and a CPU for tens of milliseconds, so a burst of sign-ins must
//! wait for a slot instead of starting hundreds at once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use tokio::sync::{Semaphore, SemaphorePermit};

/// How long a sign-in waits for a free slot before it is answered "busy".
pub const SIGN_IN_QUEUE_WAIT: Duration = Duration::from_secs(1);

/// The slots for password hashing: one per CPU.
pub struct PasswordHashing {
    slots: Semaphore,
    queue_wait: Duration,
    verifications: AtomicU64,
}

impl std::fmt::Debug for PasswordHashing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHashing")
            .field("free_slots", &self.slots.available_permits())
            .field("queue_wait", &self.queue_wait)
            .finish()
    }
}

impl Default for PasswordHashing {
    /// One slot per CPU; a sign-in waits at most [`SIGN_IN_QUEUE_WAIT`] for one.
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::new(cpus, SIGN_IN_QUEUE_WAIT)
    }
}

impl PasswordHashing {
    pub fn new(slots: usize, queue_wait: Duration) -> Self {
        Self {
            slots: Semaphore::new(slots.max(1)),
            queue_wait,
            verifications: AtomicU64::new(0),
        }
    }

    /// Waits for a free slot (held until the permit is dropped).
    pub async fn slot(&self) -> SemaphorePermit<'_> {
        self.slots
            .acquire()
            .await
            .expect("the hashing semaphore is never closed")
    }

    /// Hashes a new password, waiting as long as it takes for a slot.
    pub async fn hash(&self, password: String) -> String {
        let _slot = self.slot().await;
        hash_now(password).await
    }

    /// Checks a password, waiting as long as it takes for a slot (for signed-in users).
    pub async fn verify(&self, password: String, phc: String) -> bool {
        let _slot = self.slot().await;
        self.verify_now(password, phc).await
    }

    /// Checks a sign-in's password, or `None` when no slot frees up within the queue wait:
    /// the server is busy and the password was not checked.
    pub async fn verify_sign_in(&self, password: String, phc: String) -> Option<bool> {
        let _slot = tokio::time::timeout(self.queue_wait, self.slot())
            .await
            .ok()?;
        Some(self.verify_now(password, phc).await)
    }

    /// How many passwords were checked so far.
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    async fn verify_now(&self, password: String, phc: String) -> bool {
        self.verifications.fetch_add(1, Ordering::Relaxed);
        tokio::task::spawn_blocking(move || {
            PasswordHash::new(&phc)
                .map(|parsed| {
                    Argon2::default()
                        .verify_password(password.as_bytes(), &parsed)
                        .is_ok()
                })
                .unwrap_or(false)
        })
        .await
        .expect("verification task panicked")
    }
}

async fn hash_now(password: String) -> String {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .expect("argon2 hashing with default parameters cannot fail")
            .to_string()
    })
    .await
    .expect("hashing task panicked")
}

/// A hash verified against when the user does not exist, so a failed sign-in takes the
/// same time either way and its timing does not reveal which usernames exist.
pub async fn dummy_hash() -> String {
    static DUMMY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    DUMMY
        .get_or_init(|| hash_now(uuid::Uuid::new_v4().to_string()))
        .await
        .clone()
}
