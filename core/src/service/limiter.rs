//! Sign-in attempts are limited per username and per client address, in memory per server.
//!
//! An attempt is counted when it *starts*, before the deliberately slow password check, so
//! guesses sent in parallel cannot slip past the count: the sixth of 32 simultaneous guesses
//! for one user is refused at once. A successful sign-in gives its count back.
//!
//! - Per username: [`MAX_FAILURES_PER_USER`] failures within [`WINDOW`], then refused until
//!   the window ends.
//! - Per address: [`FREE_FAILURES_PER_IP`] failures, then each further attempt waits a delay
//!   that doubles from one second up to [`MAX_IP_DELAY`]. Many people share one address
//!   (NAT, a company proxy), so an address is slowed down, never shut out.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const MAX_FAILURES_PER_USER: u32 = 5;
pub const FREE_FAILURES_PER_IP: u32 = 20;
pub const MAX_IP_DELAY: Duration = Duration::from_secs(60);
pub const WINDOW: Duration = Duration::from_secs(15 * 60);

/// Past this many remembered users and addresses, expired entries are dropped (at most
/// every [`PRUNE_EVERY`]).
const PRUNE_ABOVE: usize = 10_000;
const PRUNE_EVERY: Duration = Duration::from_secs(10);

/// Where the limiter reads the time (tests move it forward instead of waiting).
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

#[derive(Debug, Clone, Copy)]
struct UserCount {
    failures: u32,
    started: Instant,
}

#[derive(Debug, Clone, Copy)]
struct AddressCount {
    failures: u32,
    last: Instant,
}

#[derive(Debug)]
struct Counts {
    users: HashMap<String, UserCount>,
    addresses: HashMap<IpAddr, AddressCount>,
    pruned: Instant,
}

pub struct LoginLimiter {
    counts: Mutex<Counts>,
    clock: Clock,
}

impl std::fmt::Debug for LoginLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginLimiter").finish_non_exhaustive()
    }
}

impl Default for LoginLimiter {
    fn default() -> Self {
        Self::with_clock(Arc::new(Instant::now))
    }
}

/// The delay an address waits after `failures` failures (none within the free ones).
fn address_delay(failures: u32) -> Duration {
    match failures.checked_sub(FREE_FAILURES_PER_IP) {
        None => Duration::ZERO,
        Some(over) => Duration::from_secs(1u64 << over.min(16)).min(MAX_IP_DELAY),
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

fn user_key(username: &str) -> String {
    username.to_ascii_lowercase()
}

/// A counted sign-in attempt. Dropping it leaves it counted as a failure; a success or an
/// attempt whose password was never checked gives the count back.
#[must_use = "an attempt counts as a failure unless it is settled"]
pub struct Attempt<'a> {
    limiter: &'a LoginLimiter,
    user: String,
    ip: Option<IpAddr>,
}

impl Attempt<'_> {
    /// The password was right: the user's count starts over, the address's attempt is
    /// given back.
    pub fn succeeded(self) {
        let mut c = self.limiter.lock();
        c.users.remove(&self.user);
        c.give_back_address(self.ip);
    }

    /// The password was never checked (the server was busy, the store failed): nothing is
    /// counted.
    pub fn void(self) {
        let mut c = self.limiter.lock();
        if let Some(u) = c.users.get_mut(&self.user) {
            u.failures = u.failures.saturating_sub(1);
            if u.failures == 0 {
                c.users.remove(&self.user);
            }
        }
        c.give_back_address(self.ip);
    }
}

impl Counts {
    fn give_back_address(&mut self, ip: Option<IpAddr>) {
        if let Some(ip) = ip {
            if let Some(a) = self.addresses.get_mut(&ip) {
                a.failures = a.failures.saturating_sub(1);
                if a.failures == 0 {
                    self.addresses.remove(&ip);
                }
            }
        }
    }

    fn prune(&mut self, now: Instant) {
        if self.users.len() + self.addresses.len() <= PRUNE_ABOVE
            || now.saturating_duration_since(self.pruned) < PRUNE_EVERY
        {
            return;
        }
        self.pruned = now;
        self.users
            .retain(|_, u| now.saturating_duration_since(u.started) < WINDOW);
        self.addresses
            .retain(|_, a| now.saturating_duration_since(a.last) < WINDOW);
    }
}

impl LoginLimiter {
    pub fn with_clock(clock: Clock) -> Self {
        let now = clock();
        Self {
            counts: Mutex::new(Counts {
                users: HashMap::new(),
                addresses: HashMap::new(),
                pruned: now,
            }),
            clock,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts an attempt for `username` from `ip` before its password is checked, or
    /// `Err(seconds to wait)` when this user or address must wait. Checking and counting
    /// happen under one lock, so parallel attempts are counted one by one.
    pub fn reserve(&self, username: &str, ip: Option<IpAddr>) -> Result<Attempt<'_>, u64> {
        let now = (self.clock)();
        let user = user_key(username);
        let mut c = self.lock();
        c.prune(now);

        let mut wait = 0u64;
        if let Some(u) = c.users.get(&user) {
            let elapsed = now.saturating_duration_since(u.started);
            if elapsed < WINDOW && u.failures >= MAX_FAILURES_PER_USER {
                wait = ceil_secs(WINDOW - elapsed).max(1);
            }
        }
        if let Some(a) = ip.and_then(|ip| c.addresses.get(&ip)) {
            let since = now.saturating_duration_since(a.last);
            let delay = address_delay(a.failures);
            if since < WINDOW && since < delay {
                wait = wait.max(ceil_secs(delay - since).max(1));
            }
        }
        if wait > 0 {
            return Err(wait);
        }

        let u = c.users.entry(user.clone()).or_insert(UserCount {
            failures: 0,
            started: now,
        });
        if now.saturating_duration_since(u.started) >= WINDOW {
            *u = UserCount {
                failures: 0,
                started: now,
            };
        }
        u.failures += 1;
        if let Some(ip) = ip {
            let a = c.addresses.entry(ip).or_insert(AddressCount {
                failures: 0,
                last: now,
            });
            if now.saturating_duration_since(a.last) >= WINDOW {
                a.failures = 0;
            }
            a.failures += 1;
            a.last = now;
        }
        Ok(Attempt {
            limiter: self,
            user,
            ip,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A limiter whose clock the test moves.
    fn limiter() -> (LoginLimiter, Arc<Mutex<Instant>>) {
        let now = Arc::new(Mutex::new(Instant::now()));
        let clock = now.clone();
        (
            LoginLimiter::with_clock(Arc::new(move || *clock.lock().unwrap())),
            now,
        )
    }

    fn advance(now: &Mutex<Instant>, by: Duration) {
        *now.lock().unwrap() += by;
    }

    #[test]
    fn user_is_limited_after_max_failures_until_window_passes() {
        let (l, now) = limiter();
        for _ in 0..MAX_FAILURES_PER_USER {
            drop(l.reserve("admin", None).unwrap());
        }
        let wait = l.reserve("Admin", None).err().unwrap();
        assert!(wait > 800 && wait <= 900, "{wait}");
        assert!(l.reserve("other", None).is_ok());
        advance(&now, WINDOW);
        assert!(l.reserve("admin", None).is_ok());
    }

    /// Attempts in flight count: the sixth starts while five are being checked.
    #[test]
    fn attempts_count_before_they_are_checked() {
        let (l, _) = limiter();
        let pending: Vec<_> = (0..MAX_FAILURES_PER_USER)
            .map(|_| l.reserve("admin", None).unwrap())
            .collect();
        assert!(l.reserve("admin", None).is_err());
        // One of them was never checked (the server was busy): its slot comes back.
        let mut pending = pending.into_iter();
        pending.next().unwrap().void();
        assert!(l.reserve("admin", None).is_ok());
    }

    #[test]
    fn an_address_is_slowed_down_more_and_more_but_never_locked_out() {
        let (l, now) = limiter();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for i in 0..FREE_FAILURES_PER_IP {
            drop(l.reserve(&format!("u{i}"), Some(ip)).unwrap());
        }
        let mut waits = Vec::new();
        for i in 0..10 {
            let wait = l.reserve(&format!("v{i}"), Some(ip)).err().unwrap();
            waits.push(wait);
            advance(&now, Duration::from_secs(wait));
            drop(l.reserve(&format!("v{i}"), Some(ip)).unwrap());
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60, 60]);
        // No address is needed to reach this user, and other addresses go on.
        assert!(l.reserve("fresh", None).is_ok());
        assert!(l
            .reserve("fresh", Some("10.0.0.2".parse().unwrap()))
            .is_ok());
        // A quiet window forgets the address.
        advance(&now, WINDOW);
        assert!(l.reserve("fresh", Some(ip)).is_ok());
    }

    #[test]
    fn success_clears_the_user_count_and_gives_the_address_attempt_back() {
        let (l, _) = limiter();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..MAX_FAILURES_PER_USER - 1 {
            drop(l.reserve("ana", Some(ip)).unwrap());
        }
        l.reserve("ana", Some(ip)).unwrap().succeeded();
        for _ in 0..MAX_FAILURES_PER_USER {
            drop(l.reserve("ana", Some(ip)).unwrap());
        }
        assert!(l.reserve("ana", Some(ip)).is_err());
        assert_eq!(
            l.lock().addresses[&ip].failures,
            2 * MAX_FAILURES_PER_USER - 1
        );
    }
}
