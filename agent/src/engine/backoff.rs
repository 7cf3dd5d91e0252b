use std::time::Duration;

/// Exponential backoff for retryable errors: 1 s, 2 s, 4 s … capped at 60 s.
#[derive(Debug, Clone)]
pub struct Backoff {
    attempt: u32,
    base: Duration,
    max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            attempt: 0,
            base: Duration::from_secs(1),
            max: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    pub fn with_base(base: Duration) -> Self {
        Self {
            base,
            ..Self::default()
        }
    }

    pub fn next_delay(&mut self) -> Duration {
        let d = self
            .base
            .saturating_mul(1u32 << self.attempt.min(16))
            .min(self.max);
        self.attempt += 1;
        d
    }

    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// First runs are spread over at most this long.
pub const MAX_FIRST_RUN_JITTER: Duration = Duration::from_secs(5);

/// A random delay in [0, min(poll, 5 s)) before a sync's first run, so syncs started
/// together (an agent starting, a failed agent's syncs moving) do not all query their
/// sources in the same instant. Bounded by the poll interval, so a sync still runs once
/// within its first interval.
pub fn first_run_delay(poll: Duration) -> Duration {
    let bound = poll.min(MAX_FIRST_RUN_JITTER).as_nanos() as u64;
    if bound == 0 {
        return Duration::ZERO;
    }
    // 62 random bits of a v4 UUID (its low half, less the variant bits).
    let random = uuid::Uuid::new_v4().as_u64_pair().1 & (u64::MAX >> 2);
    Duration::from_nanos(random % bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_run_delays_are_spread_below_the_poll_and_five_seconds() {
        let short = Duration::from_millis(1000);
        let delays: Vec<Duration> = (0..200).map(|_| first_run_delay(short)).collect();
        assert!(delays.iter().all(|d| *d < short));
        let (min, max) = (delays.iter().min().unwrap(), delays.iter().max().unwrap());
        assert!(*max - *min > Duration::from_millis(500), "{min:?}..{max:?}");
        let hourly = Duration::from_secs(3600);
        assert!((0..200).all(|_| first_run_delay(hourly) < MAX_FIRST_RUN_JITTER));
        assert_eq!(first_run_delay(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn doubles_up_to_the_cap() {
        let mut b = Backoff::default();
        let delays: Vec<u64> = (0..8).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(delays, vec![1, 2, 4, 8, 16, 32, 60, 60]);
        b.reset();
        assert_eq!(b.next_delay().as_secs(), 1);
    }
}
