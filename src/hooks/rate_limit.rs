//! `rate_limit`: a token bucket per client (or per value of a header);
//! over it, 429 with `Retry-After`.
//!
//! ```yaml
//! hooks:
//!   per_ip: { type: rate_limit, rate: 100/s, burst: 200, key: client_ip }
//!   per_user: { type: rate_limit, rate: 600/m, key: "header:x-user" }
//! ```
//! `rate` is `N/s` or `N/m`; `burst` (default N) is how many requests a
//! key may send at once after being idle. The buckets live in this
//! process (GCRA, the `governor` crate): a balancer of several machines
//! allows each key the rate on each of them. A request without the key
//! (no such header) is not limited, as in nginx's `limit_req`. A header's
//! value is kept as a 64-bit hash, an address as itself (so an IPv6 client
//! with many addresses has a bucket per address). Buckets of keys that have
//! been idle long enough to be full again are dropped every 10 s, off the
//! request path, so memory follows the keys that are active now (those
//! seen within `burst / rate`): about 100 bytes each.

use super::{async_trait, Answer, Hook, Request, Verdict};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use http::{HeaderName, HeaderValue, StatusCode};
use serde::{de, Deserialize, Deserializer};
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often idle buckets are dropped.
const EVICT_EVERY: Duration = Duration::from_secs(10);

/// The settings of a `rate_limit` instance.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    /// `N/s` or `N/m`.
    pub rate: Rate,
    /// Requests a key may send at once; default N.
    #[serde(default)]
    pub burst: Option<NonZeroU32>,
    /// `client_ip` (default) or `header:NAME`.
    #[serde(default)]
    pub key: KeySource,
}

/// A rate: N requests per second or per minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// N.
    pub count: NonZeroU32,
    /// Per minute (else per second).
    pub per_minute: bool,
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let bad = || de::Error::custom(format!("`{text}` is not a rate (`100/s`, `600/m`)"));
        let (count, unit) = text.trim().split_once('/').ok_or_else(bad)?;
        let count = count.trim().parse::<NonZeroU32>().map_err(|_| bad())?;
        let per_minute = match unit.trim() {
            "s" => false,
            "m" => true,
            _ => return Err(bad()),
        };
        Ok(Rate { count, per_minute })
    }
}

/// What a bucket belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum KeySource {
    /// The client's address (behind `trusted_proxies`, the one they
    /// forwarded).
    #[default]
    ClientIp,
    /// The value of this request header.
    Header(HeaderName),
}

impl<'de> Deserialize<'de> for KeySource {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if text == "client_ip" {
            return Ok(KeySource::ClientIp);
        }
        text.strip_prefix("header:")
            .and_then(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
            .map(KeySource::Header)
            .ok_or_else(|| {
                de::Error::custom(format!("`{text}` is not `client_ip` or `header:NAME`"))
            })
    }
}

/// The key of one bucket: an address, or a header value's 64-bit hash (a
/// fixed size whatever the client sends, and no secret kept; the hash is
/// keyed per instance, so clients cannot aim at a collision).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum BucketKey {
    Ip(IpAddr),
    Value(u64),
}

/// A `rate_limit` instance: its buckets.
pub struct RateLimit {
    key: KeySource,
    buckets: Arc<DefaultKeyedRateLimiter<BucketKey>>,
    hasher: RandomState,
    clock: DefaultClock,
    /// When the instance was made, and (in ms since then) when idle buckets
    /// were last dropped.
    born: Instant,
    evicted_at_ms: AtomicU64,
}

impl RateLimit {
    /// An instance with empty buckets.
    pub fn from_config(settings: RateLimitSettings) -> Result<RateLimit, String> {
        let Rate { count, per_minute } = settings.rate;
        let quota = if per_minute {
            Quota::per_minute(count)
        } else {
            Quota::per_second(count)
        };
        let quota = quota.allow_burst(settings.burst.unwrap_or(count));
        Ok(RateLimit {
            key: settings.key,
            buckets: Arc::new(governor::RateLimiter::keyed(quota)),
            hasher: RandomState::new(),
            clock: DefaultClock::default(),
            born: Instant::now(),
            evicted_at_ms: AtomicU64::new(0),
        })
    }

    fn key_of(&self, request: &Request<'_>) -> Option<BucketKey> {
        match &self.key {
            KeySource::ClientIp => request.client().map(BucketKey::Ip),
            KeySource::Header(name) => request
                .headers()
                .get(name)
                .map(|v| BucketKey::Value(self.hasher.hash_one(v.as_bytes()))),
        }
    }

    /// Take a token from `key`'s bucket: `Err(wait)` when it is empty.
    fn take(&self, key: &BucketKey) -> Result<(), Duration> {
        self.evict_idle();
        self.buckets
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Drop the buckets that are full again, at most once per
    /// [`EVICT_EVERY`], off the request path (a walk over every bucket).
    fn evict_idle(&self) {
        let now = self.born.elapsed().as_millis() as u64;
        let last = self.evicted_at_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) < EVICT_EVERY.as_millis() as u64 {
            return;
        }
        let claimed = self
            .evicted_at_ms
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok();
        if !claimed {
            return;
        }
        let buckets = Arc::clone(&self.buckets);
        let evict = move || {
            buckets.retain_recent();
            buckets.shrink_to_fit();
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(evict)),
            Err(_) => evict(),
        }
    }

    /// Buckets held now.
    pub fn buckets(&self) -> usize {
        self.buckets.len()
    }
}

#[async_trait]
impl Hook for RateLimit {
    async fn on_request(&self, request: &mut Request<'_>) -> Verdict {
        let Some(key) = self.key_of(request) else {
            return Verdict::Continue;
        };
        match self.take(&key) {
            Ok(()) => Verdict::Continue,
            Err(wait) => {
                let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                Verdict::Answer(
                    Answer::new(StatusCode::TOO_MANY_REQUESTS)
                        .header(http::header::RETRY_AFTER, HeaderValue::from(seconds.max(1)))
                        .body("429 Too Many Requests: rate limit exceeded\n"),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(yaml: &str) -> Result<RateLimitSettings, String> {
        serde_yaml::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn rates_keys_and_bursts_read_as_written() {
        let s = settings("{ rate: 100/s, burst: 200, key: client_ip }").unwrap();
        assert_eq!(s.rate.count.get(), 100);
        assert!(!s.rate.per_minute);
        assert_eq!(s.burst.map(NonZeroU32::get), Some(200));
        let s = settings("{ rate: 600/m, key: \"header:X-User\" }").unwrap();
        assert!(s.rate.per_minute);
        assert_eq!(s.key, KeySource::Header(HeaderName::from_static("x-user")));
        for bad in ["{ rate: 0/s }", "{ rate: 10/h }", "{ rate: fast }"] {
            assert!(
                settings(bad).unwrap_err().contains("is not a rate"),
                "{bad}"
            );
        }
        assert!(settings("{ rate: 1/s, key: cookie }")
            .unwrap_err()
            .contains("is not `client_ip` or `header:NAME`"));
    }

    #[test]
    fn a_bucket_allows_its_burst_then_says_how_long_to_wait() {
        let limit = RateLimit::from_config(settings("{ rate: 10/s, burst: 3 }").unwrap()).unwrap();
        let key = BucketKey::Ip(IpAddr::from([127, 0, 0, 1]));
        for _ in 0..3 {
            assert!(limit.take(&key).is_ok());
        }
        let wait = limit.take(&key).unwrap_err();
        assert!(wait <= Duration::from_millis(100), "{wait:?}");
        let other = BucketKey::Value(limit.hasher.hash_one(b"x".as_slice()));
        assert!(limit.take(&other).is_ok());
        assert_eq!(limit.buckets(), 2);
    }
}
