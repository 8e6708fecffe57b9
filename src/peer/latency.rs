//! How long a peer takes to answer, as `ewma` selection and the status page
//! see it: a peak-EWMA of the time to the response header (Finagle's and
//! Linkerd's estimate).
//!
//! A plain average hides a peer that has just turned slow behind its past;
//! peak-EWMA takes a slower sample at once and lets faster ones pull the
//! value down gradually, weighted by the time since the sample before. The
//! value also decays towards zero with the time since the last sample, when
//! it is read: a peer that was slow once and since got no requests (because
//! it was slow) looks cheaper and cheaper, until selection tries it again and
//! a new sample says how it is now.
//!
//! A request that has waited longer than the estimate says more than the
//! estimate: a peer that stops answering (a pause, a deadlock) has no new
//! samples to show it, so the estimate is read as at least the time since
//! the first request sent after the last one ended.
//!
//! Relaxed atomics, no lock: concurrent samples may overwrite each other
//! (one of them is lost), which moves an estimate a little and never breaks
//! it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A moment, in nanoseconds since the process's first call; never 0, so
/// that 0 can mean "never".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Tick(u64);

impl Tick {
    /// Now.
    #[inline]
    pub fn now() -> Tick {
        Tick::at(Instant::now())
    }

    /// The moment `instant` (the process's first tick if it is earlier).
    #[inline]
    pub fn at(instant: Instant) -> Tick {
        static EPOCH: OnceLock<Instant> = OnceLock::new();
        let epoch = *EPOCH.get_or_init(Instant::now);
        let nanos = instant.saturating_duration_since(epoch).as_nanos();
        Tick(u64::try_from(nanos).unwrap_or(u64::MAX).max(1))
    }

    /// The time from `earlier` to this moment (zero if `earlier` is later).
    #[inline]
    pub fn since(self, earlier: Tick) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// This moment as a number for an atomic (never 0).
    #[inline]
    pub fn as_u64(self) -> u64 {
        self.0
    }

    /// The moment `value` stands for; `None` for 0 ("never").
    #[inline]
    pub fn from_u64(value: u64) -> Option<Tick> {
        (value != 0).then_some(Tick(value))
    }
}

/// A peer's peak-EWMA response latency.
#[derive(Debug, Default)]
pub struct PeakEwma {
    /// The estimate at the last sample, in nanoseconds, as `f64` bits.
    nanos: AtomicU64,
    /// When the last sample came ([`Tick`]); 0 before the first.
    sampled_at: AtomicU64,
    /// When the first request sent since the last sample was sent; 0 when
    /// none has been.
    waiting_since: AtomicU64,
}

impl PeakEwma {
    /// Take in one response that took `latency`, at `now`; `decay` is the
    /// time over which an old estimate loses most of its weight.
    #[inline]
    pub fn record(&self, latency: Duration, now: Tick, decay: Duration) {
        let sample = latency.as_nanos() as f64;
        let estimate = match self.last() {
            Some((previous, at)) if sample < previous => {
                // Faster than the estimate: blend, by the time since the
                // sample before.
                let kept = decay_factor(now.since(at), decay);
                previous * kept + sample * (1.0 - kept)
            }
            // The first sample, or a slower one: it counts at once (peak).
            _ => sample,
        };
        self.nanos.store(estimate.to_bits(), Ordering::Relaxed);
        self.sampled_at.store(now.as_u64(), Ordering::Relaxed);
        self.waiting_since.store(0, Ordering::Relaxed);
    }

    /// A request is sent to the peer at `now`.
    #[inline]
    pub fn sent(&self, now: Tick) {
        if self.waiting_since.load(Ordering::Relaxed) == 0 {
            self.waiting_since.store(now.as_u64(), Ordering::Relaxed);
        }
    }

    /// A request to the peer has ended, answered or not: nothing waits
    /// since then (until the next request is sent).
    #[inline]
    pub fn ended(&self) {
        if self.waiting_since.load(Ordering::Relaxed) != 0 {
            self.waiting_since.store(0, Ordering::Relaxed);
        }
    }

    /// The estimate at `now` in nanoseconds: the last one, decayed by the
    /// time since, and at least the time a request has waited unanswered;
    /// `None` before the first sample, unless a request waits.
    #[inline]
    pub fn nanos_at(&self, now: Tick, decay: Duration) -> Option<f64> {
        let estimate = self
            .last()
            .map(|(estimate, at)| estimate * decay_factor(now.since(at), decay));
        let waiting = Tick::from_u64(self.waiting_since.load(Ordering::Relaxed))
            .map(|since| now.since(since).as_nanos() as f64);
        match (estimate, waiting) {
            (Some(estimate), Some(waiting)) => Some(estimate.max(waiting)),
            (estimate, waiting) => estimate.or(waiting),
        }
    }

    /// The estimate and when it was made, if any sample came yet.
    #[inline]
    fn last(&self) -> Option<(f64, Tick)> {
        let at = Tick::from_u64(self.sampled_at.load(Ordering::Relaxed))?;
        Some((f64::from_bits(self.nanos.load(Ordering::Relaxed)), at))
    }
}

/// How much of an estimate `elapsed` old still counts: e^(-elapsed/decay).
#[inline]
fn decay_factor(elapsed: Duration, decay: Duration) -> f64 {
    (-(elapsed.as_nanos() as f64) / (decay.as_nanos() as f64).max(1.0)).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DECAY: Duration = Duration::from_secs(10);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn at(start: Tick, later: Duration) -> Tick {
        Tick(start.0 + later.as_nanos() as u64)
    }

    fn millis(ewma: &PeakEwma, now: Tick) -> f64 {
        ewma.nanos_at(now, DECAY).expect("a sample") / 1e6
    }

    #[test]
    fn a_slower_sample_counts_at_once_and_faster_ones_pull_it_down_gradually() {
        let ewma = PeakEwma::default();
        let start = Tick::now();
        assert_eq!(ewma.nanos_at(start, DECAY), None);
        ewma.record(ms(5), start, DECAY);
        assert!((millis(&ewma, start) - 5.0).abs() < 1e-9);
        // The peak: at once.
        ewma.record(ms(100), at(start, ms(1)), DECAY);
        assert!((millis(&ewma, at(start, ms(1))) - 100.0).abs() < 1e-9);
        // A fast sample a millisecond later barely moves it...
        ewma.record(ms(5), at(start, ms(2)), DECAY);
        let after_one = millis(&ewma, at(start, ms(2)));
        assert!((99.9..100.0).contains(&after_one), "{after_one}");
        // ...one ten seconds later takes most of the way (1 - 1/e).
        let later = at(start, Duration::from_millis(10_002));
        ewma.record(ms(5), later, DECAY);
        let blended = millis(&ewma, later);
        let expected = 5.0 + (after_one - 5.0) / std::f64::consts::E;
        assert!((blended - expected).abs() < 0.01, "{blended} vs {expected}");
    }

    #[test]
    fn an_estimate_decays_with_the_time_since_its_last_sample() {
        let ewma = PeakEwma::default();
        let start = Tick::now();
        ewma.record(ms(100), start, DECAY);
        let read = |after: Duration| millis(&ewma, at(start, after));
        assert!((read(DECAY) - 100.0 / std::f64::consts::E).abs() < 0.01);
        assert!(read(DECAY * 5) < 1.0);
        // Reading does not change it.
        assert!((read(Duration::ZERO) - 100.0).abs() < 1e-9);
    }

    #[test]
    fn a_request_waiting_unanswered_makes_the_peer_at_least_that_slow() {
        let ewma = PeakEwma::default();
        let start = Tick::now();
        ewma.sent(start);
        assert!((millis(&ewma, at(start, ms(30))) - 30.0).abs() < 1e-9);
        ewma.record(ms(40), at(start, ms(40)), DECAY);
        // Sent at 50 ms; more sent later do not move the wait's start.
        ewma.sent(at(start, ms(50)));
        ewma.sent(at(start, ms(60)));
        assert!((millis(&ewma, at(start, ms(70))) - 40.0).abs() < 0.2);
        assert!((millis(&ewma, at(start, ms(150))) - 100.0).abs() < 1e-9);
        // The answer ends the wait: the estimate decays again.
        ewma.record(ms(100), at(start, ms(150)), DECAY);
        let later = millis(&ewma, at(start, ms(500)));
        assert!((96.0..97.0).contains(&later), "{later}");
    }
}
