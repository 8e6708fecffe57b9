//! What an operator has said about a peer, beside what its probes say:
//! active, draining (no new requests, in-flight ones finish), or disabled
//! (out of rotation whatever the probes say, for maintenance). Probes go on
//! in every state, so a peer enabled again is known UP or DOWN at once.

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU8, Ordering};

/// A peer's administrative state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdminState {
    /// In rotation while UP.
    #[default]
    Active,
    /// No new requests; in-flight ones finish.
    Draining,
    /// Out of rotation (maintenance).
    Disabled,
}

impl AdminState {
    /// The name used in JSON, the status page and the `state` label.
    pub fn as_str(self) -> &'static str {
        match self {
            AdminState::Active => "active",
            AdminState::Draining => "draining",
            AdminState::Disabled => "disabled",
        }
    }

    fn from_u8(value: u8) -> AdminState {
        match value {
            1 => AdminState::Draining,
            2 => AdminState::Disabled,
            _ => AdminState::Active,
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            AdminState::Active => 0,
            AdminState::Draining => 1,
            AdminState::Disabled => 2,
        }
    }
}

/// An [`AdminState`] that the request path reads with one atomic load.
#[derive(Debug, Default)]
pub struct AdminCell(AtomicU8);

impl AdminCell {
    pub fn new(state: AdminState) -> Self {
        AdminCell(AtomicU8::new(state.to_u8()))
    }

    #[inline]
    pub fn get(&self) -> AdminState {
        AdminState::from_u8(self.0.load(Ordering::Relaxed))
    }

    /// Whether new requests may go to the peer.
    #[inline]
    pub fn takes_requests(&self) -> bool {
        self.0.load(Ordering::Relaxed) == 0
    }

    pub fn set(&self, state: AdminState) {
        self.0.store(state.to_u8(), Ordering::Relaxed);
    }
}

/// A weight set at runtime, and the configured weight it replaced: when a
/// reload changes the configured weight, the file wins (as with HAProxy's
/// server-state-file, whose saved weight applies only while the configured
/// one is unchanged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightOverride {
    /// The configured weight when the override was set.
    pub configured: u16,
    pub weight: u16,
}

impl WeightOverride {
    /// The weight to use for a peer configured with `configured`.
    pub fn weight_for(override_: Option<WeightOverride>, configured: u16) -> u16 {
        match override_ {
            Some(o) if o.configured == configured => o.weight,
            _ => configured,
        }
    }
}
