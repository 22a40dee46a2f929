//! Latency histogram and per-run statistics of `batata-bench`.

use std::time::Duration;

/// Log-linear latency histogram in nanoseconds, in the style of HdrHistogram: values below 128
/// are exact, above that every power-of-two range is cut into 128 equal buckets, so a bucket is
/// at most 1/128 (< 0.8%) of its value wide from 1 µs up to the 68.7 s cap. A fixed bucket layout
/// makes merging a plain element-wise sum, and recording is an index computation plus an add.
#[derive(Clone, Debug)]
pub(crate) struct Histogram {
    pub(crate) counts: Vec<u64>,
    pub(crate) total: u64,
    pub(crate) sum_ns: u128,
    /// Exact, not bucketed: the worst case deserves no rounding.
    pub(crate) max_ns: u64,
}

pub(crate) const SUB_BITS: u32 = 7;
pub(crate) const SUB: usize = 1 << SUB_BITS;
pub(crate) const MAX_BITS: u32 = 36;
pub(crate) const MAX_NS: u64 = (1 << MAX_BITS) - 1;
pub(crate) const BUCKETS: usize = SUB + (MAX_BITS - SUB_BITS) as usize * SUB;

impl Default for Histogram {
    fn default() -> Self {
        let counts = vec![0; BUCKETS];
        Histogram { counts, total: 0, sum_ns: 0, max_ns: 0 }
    }
}

impl Histogram {
    pub(crate) fn index(ns: u64) -> usize {
        let v = ns.min(MAX_NS);
        if v < SUB as u64 {
            return v as usize;
        }
        // Each power of two [2^(SUB_BITS+shift), 2^(SUB_BITS+shift+1)) gets SUB buckets 2^shift wide:
        // the top SUB_BITS+1 bits of v select the bucket.
        let shift = 63 - v.leading_zeros() - SUB_BITS;
        SUB + shift as usize * SUB + ((v >> shift) as usize - SUB)
    }

    /// Smallest and largest value recorded in bucket `i`.
    pub(crate) fn bounds(i: usize) -> (u64, u64) {
        if i < SUB {
            return (i as u64, i as u64);
        }
        let shift = ((i - SUB) / SUB) as u32;
        let sub = ((i - SUB) % SUB + SUB) as u64;
        (sub << shift, ((sub + 1) << shift) - 1)
    }

    pub(crate) fn record(&mut self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.counts[Self::index(ns)] += 1;
        self.total += 1;
        self.sum_ns += u128::from(ns);
        self.max_ns = self.max_ns.max(ns);
    }

    pub(crate) fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.sum_ns += other.sum_ns;
        self.max_ns = self.max_ns.max(other.max_ns);
    }

    /// The value at quantile `q` (0..=1): the midpoint of the bucket holding the
    /// ceil(q * count)-th smallest sample, capped by (and for q = 1, equal to) the exact
    /// maximum. 0 when empty.
    pub(crate) fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        if rank == self.total {
            return self.max_ns;
        }
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let (lo, hi) = Self::bounds(i);
                return (lo + (hi - lo) / 2).min(self.max_ns);
            }
        }
        self.max_ns
    }

    pub(crate) fn mean(&self) -> u64 {
        let mean = self.sum_ns.checked_div(u128::from(self.total));
        mean.map_or(0, |m| m as u64)
    }
}

/// Why a request failed; each kind is counted separately (the discriminant indexes
/// [`Stats::errors`] and [`KIND_NAMES`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Answered with a status other than 200.
    Status,
    /// 200 but not the expected body (config-publish answers "false" on a refused write).
    BadBody,
    Timeout,
    Connect,
    /// Anything else, e.g. the connection reset mid-request.
    Other,
}

pub(crate) const KIND_NAMES: [&str; 5] = ["status", "bad_body", "timeout", "connect", "other"];

pub(crate) struct Failure {
    pub(crate) kind: Kind,
    pub(crate) detail: String,
}

impl Failure {
    pub(crate) fn from_reqwest(e: reqwest::Error) -> Failure {
        // Check the timeout first: a connect that times out is reported as both.
        let kind = match (e.is_timeout(), e.is_connect()) {
            (true, _) => Kind::Timeout,
            (false, true) => Kind::Connect,
            (false, false) => Kind::Other,
        };
        // reqwest's message omits the cause ("connection refused" etc.); append the chain.
        let mut detail = e.to_string();
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            detail = format!("{detail}: {c}");
            cause = c.source();
        }
        Failure { kind, detail }
    }
}

/// What one worker (and, merged, the whole run) observed inside the measurement window.
#[derive(Default)]
pub(crate) struct Stats {
    pub(crate) latency: Histogram,
    /// Open loop only: how late each request left compared with its schedule. Tokio timers tick
    /// in milliseconds, so this shows how much of the latency is the generator's own slack.
    pub(crate) send_lag: Histogram,
    pub(crate) errors: [u64; KIND_NAMES.len()],
    /// Open loop only: requests due inside the window but never sent because the worker was
    /// still behind schedule at the end (too few workers for the rate).
    pub(crate) unsent: u64,
    pub(crate) first_error: Option<String>,
}

impl Stats {
    pub(crate) fn record(&mut self, result: Result<(), Failure>, latency: Duration) {
        match result {
            Ok(()) => self.latency.record(latency),
            Err(f) => {
                self.errors[f.kind as usize] += 1;
                self.first_error.get_or_insert(f.detail);
            }
        }
    }

    pub(crate) fn merge(&mut self, other: Stats) {
        self.latency.merge(&other.latency);
        self.send_lag.merge(&other.send_lag);
        for (a, b) in self.errors.iter_mut().zip(other.errors) {
            *a += b;
        }
        self.unsent += other.unsent;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    pub(crate) fn error_total(&self) -> u64 {
        self.errors.iter().sum()
    }
}
