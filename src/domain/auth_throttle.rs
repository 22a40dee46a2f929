//! Login throttling: after `max_failures` wrong passwords in a row from one address for one
//! user, that pair is refused for `lock` — even with the right password — so passwords cannot be
//! guessed online. Keyed by address *and* user, so an attacker cannot lock the administrator
//! out from elsewhere. Per node, in memory: a restart or another node starts afresh, which
//! bounds guesses per node and lock period rather than globally (Nacos has no throttling).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;
use std::time::Instant;

/// Pairs remembered at most; older records are dropped first when full.
const MAX_TRACKED: usize = 65_536;

struct Record {
    failures: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

pub struct Throttle {
    max_failures: u32,
    lock: Duration,
    pairs: Mutex<HashMap<(IpAddr, String), Record>>,
}

impl Throttle {
    pub fn new(max_failures: u32, lock: Duration) -> Throttle {
        Throttle { max_failures: max_failures.max(1), lock, pairs: Mutex::new(HashMap::new()) }
    }

    fn pairs(&self) -> std::sync::MutexGuard<'_, HashMap<(IpAddr, String), Record>> {
        self.pairs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `Err(seconds to wait)` while the pair is locked.
    pub fn check(&self, ip: IpAddr, user: &str, now: Instant) -> Result<(), u64> {
        let pairs = self.pairs();
        match pairs.get(&(ip, user.to_string())).and_then(|r| r.locked_until) {
            Some(until) if until > now => Err((until - now).as_secs().max(1)),
            _ => Ok(()),
        }
    }

    pub fn failed(&self, ip: IpAddr, user: &str, now: Instant) {
        let mut pairs = self.pairs();
        if pairs.len() >= MAX_TRACKED {
            let horizon = self.lock * 2;
            pairs.retain(|_, r| now.duration_since(r.last) < horizon);
            if pairs.len() >= MAX_TRACKED {
                pairs.clear();
            }
        }
        let r = pairs.entry((ip, user.to_string())).or_insert(Record { failures: 0, last: now, locked_until: None });
        // A lock that ran out starts a fresh count.
        if r.locked_until.is_some_and(|u| u <= now) {
            r.failures = 0;
            r.locked_until = None;
        }
        r.failures += 1;
        r.last = now;
        if r.failures >= self.max_failures {
            r.locked_until = Some(now + self.lock);
        }
    }

    pub fn succeeded(&self, ip: IpAddr, user: &str) {
        self.pairs().remove(&(ip, user.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_max_failures_per_address_and_user() {
        let t = Throttle::new(3, Duration::from_secs(60));
        let (a, b) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        let now = Instant::now();
        for _ in 0..2 {
            t.failed(a, "nacos", now);
        }
        assert!(t.check(a, "nacos", now).is_ok());
        t.failed(a, "nacos", now);
        assert_eq!(t.check(a, "nacos", now), Err(60));
        assert!(t.check(b, "nacos", now).is_ok(), "another address is not locked out");
        assert!(t.check(a, "alice", now).is_ok(), "another user is not locked out");
        let later = now + Duration::from_secs(61);
        assert!(t.check(a, "nacos", later).is_ok());
        t.failed(a, "nacos", later);
        assert!(t.check(a, "nacos", later).is_ok(), "the count restarts after a lock ran out");
        t.succeeded(a, "nacos");
        assert!(t.check(a, "nacos", later).is_ok());
    }
}
