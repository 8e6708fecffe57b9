//! The `resolver:` section: how peer names (`host:port`, `srv:`) are
//! resolved while switchyard runs.

use super::scalar::{Addr, Interval};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// `resolver:`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResolverConfig {
    /// Name servers (`ip:port`) to ask; empty: those of `/etc/resolv.conf`.
    /// `/etc/hosts` is read first either way (so `localhost` resolves).
    pub nameservers: Vec<Addr>,
    /// Each name is resolved again at least this often; sooner when its
    /// records' TTL ends sooner, but never more than once a second.
    pub refresh: Interval,
    /// How long one resolution of a name may take in all (its queries,
    /// their retry, an SRV record's targets); at most 30s.
    pub timeout: Interval,
    /// Which addresses a `host:port` name gives.
    pub family: Family,
    /// How long a name must keep answering "no such name" (or no records)
    /// before its addresses are removed: one bad answer must not empty an
    /// upstream.
    pub hold_removed: Interval,
}

/// The shortest `refresh`: TTLs below it are not followed either.
pub const MIN_REFRESH: Duration = Duration::from_secs(1);

/// The longest `refresh` and `hold_removed`.
const MAX_PERIOD: Duration = Duration::from_secs(24 * 3600);

/// The longest `timeout` (a start waits for it).
const MAX_TIMEOUT: Duration = Duration::from_secs(30);

impl Default for ResolverConfig {
    fn default() -> Self {
        ResolverConfig {
            nameservers: Vec::new(),
            refresh: Interval(Duration::from_secs(5)),
            timeout: Interval(Duration::from_secs(2)),
            family: Family::default(),
            hold_removed: Interval(Duration::from_secs(30)),
        }
    }
}

impl ResolverConfig {
    /// What serde cannot check alone; the error starts with the key.
    pub fn check(&self) -> Result<(), String> {
        let bounds = [
            ("refresh", self.refresh.0, MIN_REFRESH, MAX_PERIOD),
            ("timeout", self.timeout.0, Duration::ZERO, MAX_TIMEOUT),
            (
                "hold_removed",
                self.hold_removed.0,
                Duration::ZERO,
                MAX_PERIOD,
            ),
        ];
        for (key, value, min, max) in bounds {
            if value < min || value > max {
                return Err(format!(
                    "{key}: {} is out of range: {} to {}",
                    humantime::format_duration(value),
                    humantime::format_duration(min.max(Duration::from_millis(1))),
                    humantime::format_duration(max)
                ));
            }
        }
        Ok(())
    }
}

/// The address families a `host:port` name gives peers of.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// A records only.
    Ipv4,
    /// AAAA records only.
    Ipv6,
    /// Both (a name with both gives a peer per address of each family).
    Both,
    /// The A records, or the AAAA records when there are none: `localhost`
    /// stays one peer, 127.0.0.1.
    #[default]
    PreferIpv4,
}
