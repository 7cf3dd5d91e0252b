//! Failed sign-ins are limited per username and per client address, in memory per server.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const MAX_FAILURES_PER_USER: u32 = 5;
pub const MAX_FAILURES_PER_IP: u32 = 20;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Subject {
    User(String),
    Ip(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Window {
    failures: u32,
    started: Instant,
}

#[derive(Debug, Default)]
pub struct LoginLimiter {
    windows: Mutex<HashMap<Subject, Window>>,
}

impl LoginLimiter {
    fn subjects(username: &str, ip: Option<IpAddr>) -> Vec<(Subject, u32)> {
        let mut v = vec![(
            Subject::User(username.to_ascii_lowercase()),
            MAX_FAILURES_PER_USER,
        )];
        if let Some(ip) = ip {
            v.push((Subject::Ip(ip), MAX_FAILURES_PER_IP));
        }
        v
    }

    /// `Err(seconds to wait)` when this user or address has used up its attempts.
    pub fn check(&self, username: &str, ip: Option<IpAddr>, now: Instant) -> Result<(), u64> {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let mut wait = 0u64;
        for (subject, max) in Self::subjects(username, ip) {
            if let Some(w) = windows.get(&subject).copied() {
                let elapsed = now.saturating_duration_since(w.started);
                if elapsed >= WINDOW {
                    windows.remove(&subject);
                } else if w.failures >= max {
                    wait = wait.max((WINDOW - elapsed).as_secs().max(1));
                }
            }
        }
        if wait > 0 {
            Err(wait)
        } else {
            Ok(())
        }
    }

    pub fn record_failure(&self, username: &str, ip: Option<IpAddr>, now: Instant) {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        for (subject, _) in Self::subjects(username, ip) {
            let w = windows.entry(subject).or_insert(Window {
                failures: 0,
                started: now,
            });
            if now.saturating_duration_since(w.started) >= WINDOW {
                *w = Window {
                    failures: 0,
                    started: now,
                };
            }
            w.failures += 1;
        }
    }

    /// A successful sign-in clears the user's count (not the address's).
    pub fn record_success(&self, username: &str) {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        windows.remove(&Subject::User(username.to_ascii_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_is_limited_after_max_failures_until_window_passes() {
        let l = LoginLimiter::default();
        let t0 = Instant::now();
        for _ in 0..MAX_FAILURES_PER_USER {
            assert!(l.check("admin", None, t0).is_ok());
            l.record_failure("admin", None, t0);
        }
        let wait = l.check("Admin", None, t0).unwrap_err();
        assert!(wait > 800 && wait <= 900, "{wait}");
        assert!(l.check("other", None, t0).is_ok());
        assert!(l.check("admin", None, t0 + WINDOW).is_ok());
    }

    #[test]
    fn address_is_limited_across_usernames() {
        let l = LoginLimiter::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let t0 = Instant::now();
        for i in 0..MAX_FAILURES_PER_IP {
            l.record_failure(&format!("u{i}"), Some(ip), t0);
        }
        assert!(l.check("fresh", Some(ip), t0).is_err());
        assert!(l.check("fresh", None, t0).is_ok());
    }

    #[test]
    fn success_clears_the_user_count() {
        let l = LoginLimiter::default();
        let t0 = Instant::now();
        for _ in 0..MAX_FAILURES_PER_USER - 1 {
            l.record_failure("ana", None, t0);
        }
        l.record_success("ana");
        l.record_failure("ana", None, t0);
        assert!(l.check("ana", None, t0).is_ok());
    }
}
