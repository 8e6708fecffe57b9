//! Slow start: a peer that comes back (UP again, added, enabled again by an
//! operator) takes a growing share of the traffic, from 10 % of its weight
//! to all of it over the upstream's `slow_start` window (HAProxy's
//! `slowstart`, Envoy's slow start), so that a cold backend (empty caches,
//! a JIT not warm yet, a pool still opening) is not flooded.
//!
//! The peer remembers when it came back; the window belongs to the
//! upstream's configuration, so each selection asks with its own. At
//! startup no peer ramps: none comes back, they are all new together.

use super::latency::Tick;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The share of its weight a peer gets at the start of its window.
const FIRST_SHARE: f64 = 0.1;

/// When a peer came back into service, while it may still be ramping.
#[derive(Debug, Default)]
pub struct Ramp {
    /// The [`Tick`] it came back at; 0 when it is not ramping.
    since: AtomicU64,
}

impl Ramp {
    /// The peer comes back into service now.
    pub fn start(&self) {
        self.since.store(Tick::now().as_u64(), Ordering::Relaxed);
    }

    /// The share of its weight the peer takes now, in a window of
    /// `window`: from 10 % when it came back, linearly, to 100 % at the end
    /// of the window; `None` when it is not ramping (the end of a window
    /// also ends the ramp, so later calls read one atomic only).
    #[inline]
    pub fn share(&self, window: Duration) -> Option<f64> {
        let since = self.since.load(Ordering::Relaxed);
        let share = share_after(Tick::now().since(Tick::from_u64(since)?), window);
        if share.is_none() {
            // A new start since the load wins over this end.
            let _ = self
                .since
                .compare_exchange(since, 0, Ordering::Relaxed, Ordering::Relaxed);
        }
        share
    }
}

/// The share of its weight a peer takes `elapsed` into a window of
/// `window`; `None` past the window.
fn share_after(elapsed: Duration, window: Duration) -> Option<f64> {
    (elapsed < window).then(|| {
        let progress = elapsed.as_secs_f64() / window.as_secs_f64();
        FIRST_SHARE + (1.0 - FIRST_SHARE) * progress
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_ramps_from_a_tenth_to_all_of_its_weight_and_then_stops() {
        let ramp = Ramp::default();
        assert_eq!(ramp.share(Duration::from_secs(30)), None);
        ramp.start();
        let first = ramp.share(Duration::from_secs(30)).expect("ramping");
        assert!((0.1..0.11).contains(&first), "{first}");
        // 20 ms (or a little more) into a 1 s window: 11.8 % or more.
        std::thread::sleep(Duration::from_millis(20));
        let later = ramp.share(Duration::from_secs(1)).expect("ramping");
        assert!((0.118..1.0).contains(&later), "{later}");
        // Past a 10 ms window: the ramp is over...
        assert_eq!(ramp.share(Duration::from_millis(10)), None);
        // ...and a longer window no longer sees it.
        assert_eq!(ramp.share(Duration::from_secs(30)), None);
    }
}
