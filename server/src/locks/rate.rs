//! Requests per client address to the lock service: a token bucket per address, in memory
//! per server process. Every lock request can write to the store, so one client must not be
//! able to flood it (or guess tokens at full speed); well-behaved clients send a heartbeat
//! every few seconds per lock and never come near the limit.
//!
//! Requests with the service's token and requests without it (or with a wrong one) have a
//! bucket each per address: many clients can share an address (an ingress, a NAT), and one
//! of them without the token must not use up the requests of those with it, whose
//! heartbeats would then fail and their holds end.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use idra_core::service::locks::client_source;
use idra_core::service::Clock;

/// Sustained requests per second from one address.
pub const REQUESTS_PER_SEC: u32 = 20;
/// Requests one address may send at once before the rate applies.
pub const BURST: u32 = 60;

/// Past this many remembered addresses, those whose bucket has refilled are forgotten (at
/// most every [`PRUNE_EVERY`]): a forgotten address starts again with a full bucket, which
/// is exactly what it would have.
const PRUNE_ABOVE: usize = 10_000;
const PRUNE_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Whether a request carried the service's token (or the service asks for none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Standing {
    Admitted,
    Refused,
}

struct Buckets {
    by_source: HashMap<(Option<IpAddr>, Standing), Bucket>,
    pruned: Instant,
}

pub struct RateLimiter {
    per_sec: f64,
    burst: f64,
    buckets: Mutex<Buckets>,
    clock: Clock,
}

/// Whom a request is counted against: its address, or for IPv6 its /64 ([`client_source`]).
/// Requests whose address is unknown share one bucket.
fn source(ip: Option<IpAddr>) -> Option<IpAddr> {
    ip.map(client_source)
}

impl RateLimiter {
    pub fn new(per_sec: u32, burst: u32) -> Self {
        Self::with_clock(per_sec, burst, Arc::new(Instant::now))
    }

    pub fn with_clock(per_sec: u32, burst: u32, clock: Clock) -> Self {
        let now = clock();
        Self {
            per_sec: f64::from(per_sec.max(1)),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(Buckets {
                by_source: HashMap::new(),
                pruned: now,
            }),
            clock,
        }
    }

    fn refilled(&self, bucket: Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        (bucket.tokens + elapsed * self.per_sec).min(self.burst)
    }

    /// Counts a request from `ip` with its `standing`, or `Err(seconds to wait)` when its
    /// address has used up its requests of that standing.
    pub fn admit(&self, ip: Option<IpAddr>, standing: Standing) -> Result<(), u64> {
        let now = (self.clock)();
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if b.by_source.len() > PRUNE_ABOVE && now.saturating_duration_since(b.pruned) >= PRUNE_EVERY
        {
            b.pruned = now;
            let by_source = std::mem::take(&mut b.by_source);
            b.by_source = by_source
                .into_iter()
                .filter(|(_, bucket)| self.refilled(*bucket, now) < self.burst)
                .collect();
        }
        let bucket = b.by_source.entry((source(ip), standing)).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let tokens = self.refilled(*bucket, now);
        if tokens >= 1.0 {
            *bucket = Bucket {
                tokens: tokens - 1.0,
                at: now,
            };
            Ok(())
        } else {
            *bucket = Bucket { tokens, at: now };
            let wait = ((1.0 - tokens) / self.per_sec).ceil() as u64;
            Err(wait.max(1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: Standing = Standing::Admitted;

    fn limiter(per_sec: u32, burst: u32) -> (RateLimiter, Arc<Mutex<Instant>>) {
        let now = Arc::new(Mutex::new(Instant::now()));
        let clock = now.clone();
        (
            RateLimiter::with_clock(per_sec, burst, Arc::new(move || *clock.lock().unwrap())),
            now,
        )
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn a_burst_then_the_rate_and_the_wait_to_announce() {
        let (l, now) = limiter(2, 3);
        for _ in 0..3 {
            l.admit(ip("10.0.0.1"), OK).unwrap();
        }
        assert_eq!(l.admit(ip("10.0.0.1"), OK), Err(1));
        assert!(l.admit(ip("10.0.0.2"), OK).is_ok(), "other addresses go on");
        *now.lock().unwrap() += Duration::from_millis(500);
        assert!(
            l.admit(ip("10.0.0.1"), OK).is_ok(),
            "half a second refills one"
        );
        assert!(l.admit(ip("10.0.0.1"), OK).is_err());
        *now.lock().unwrap() += Duration::from_secs(60);
        for _ in 0..3 {
            l.admit(ip("10.0.0.1"), OK).unwrap();
        }
        assert!(
            l.admit(ip("10.0.0.1"), OK).is_err(),
            "never more than the burst"
        );

        let (slow, _) = limiter(1, 1);
        slow.admit(None, OK).unwrap();
        assert_eq!(
            slow.admit(None, OK),
            Err(1),
            "unknown addresses share one bucket"
        );
    }

    /// Requests without the token have their own bucket: they use up none of the requests
    /// of clients with the token at the same address, and the reverse.
    #[test]
    fn requests_without_the_token_are_counted_apart() {
        let (l, _) = limiter(1, 2);
        let a = ip("10.0.0.1");
        l.admit(a, Standing::Refused).unwrap();
        l.admit(a, Standing::Refused).unwrap();
        assert_eq!(l.admit(a, Standing::Refused), Err(1));
        l.admit(a, OK).unwrap();
        l.admit(a, OK).unwrap();
        assert_eq!(l.admit(a, OK), Err(1));
        assert_eq!(l.admit(a, Standing::Refused), Err(1));
    }

    #[test]
    fn an_ipv6_client_is_its_slash_64() {
        let (l, _) = limiter(1, 1);
        l.admit(ip("2001:db8:1:2::1"), OK).unwrap();
        assert!(l.admit(ip("2001:db8:1:2:ffff::9"), OK).is_err());
        assert!(l.admit(ip("2001:db8:1:3::1"), OK).is_ok());
        l.admit(ip("192.0.2.1"), OK).unwrap();
        assert!(
            l.admit(ip("::ffff:192.0.2.1"), OK).is_err(),
            "IPv4 on a dual-stack socket"
        );
    }

    #[test]
    fn idle_addresses_are_forgotten_when_many() {
        let (l, now) = limiter(10, 10);
        for i in 0..=PRUNE_ABOVE as u32 {
            l.admit(Some(IpAddr::from(i.to_be_bytes())), OK).unwrap();
        }
        *now.lock().unwrap() += Duration::from_secs(2);
        l.admit(ip("10.9.9.9"), OK).unwrap();
        assert_eq!(l.buckets.lock().unwrap().by_source.len(), 1);
    }
}
