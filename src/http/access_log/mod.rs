//! The access log: one line per request (`access_log:`), proxied or
//! answered by switchyard itself, as nginx logs them.
//!
//! Writing a file must never slow a request down, nor make one wait for
//! a disk or a full pipe. So the request path only fills an [`Entry`]
//! (copies and reference counts, no formatting) and hands it to a bounded
//! queue without waiting; a writer thread of its own formats the lines
//! ([`line`](mod@line)) and writes them through a buffer ([`writer`]). When the
//! queue is full, the entry is dropped and counted
//! (`switchyard_access_log_dropped_total`): losing log lines under an
//! overload beats losing requests.
//!
//! The writer starts with the first line, so a process that daemonizes
//! starts it after the fork, and one without an access log has no thread.
//! Each entry carries the settings of the configuration its request was
//! served with, so a reload that changes the path or the format applies to
//! the requests that arrive after it.

pub mod line;
pub mod writer;

use crate::config::AccessLogConfig;
use crate::metrics::access_log::AccessLogMetrics;
use crate::peer::Peer;
use crate::upstream::Upstream;
use http::{HeaderValue, Method, Version};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

/// The longest part of a request target that a line shows.
pub const MAX_LOGGED_TARGET: usize = 2048;

/// What one line says about one request.
pub struct Entry {
    /// Where and how to write it: the settings of the request's snapshot.
    pub settings: Arc<AccessLogConfig>,
    /// When the request ended.
    pub time: SystemTime,
    /// The client as switchyard determined it (trusted proxies
    /// considered); `None` for a connection without an IP address.
    pub client: Option<IpAddr>,
    pub method: Method,
    /// The request target as received, at most [`MAX_LOGGED_TARGET`]
    /// bytes of it.
    pub target: Box<[u8]>,
    /// Whether `target` was cut.
    pub target_cut: bool,
    pub version: Version,
    /// The status sent, 0 for none.
    pub status: u16,
    /// Request body bytes read.
    pub bytes_in: u64,
    /// Response body bytes sent.
    pub bytes_out: u64,
    /// The name of the route that took the request.
    pub route: Option<Arc<str>>,
    /// The upstream it went to.
    pub upstream: Option<Arc<Upstream>>,
    /// The peer of the last attempt.
    pub peer: Option<Arc<Peer>>,
    /// Peers tried.
    pub attempts: u32,
    /// From the request's arrival to its end.
    pub duration: Duration,
    /// From choosing the peer that answered to its response header.
    pub upstream_header: Option<Duration>,
    pub request_id: Option<HeaderValue>,
    /// `Referer` and `User-Agent`, for the combined format only.
    pub referer: Option<HeaderValue>,
    pub user_agent: Option<HeaderValue>,
}

impl Entry {
    /// The request target, cut to [`MAX_LOGGED_TARGET`] bytes.
    pub fn bounded_target(target: &[u8]) -> (Box<[u8]>, bool) {
        let shown = &target[..target.len().min(MAX_LOGGED_TARGET)];
        (shown.into(), shown.len() < target.len())
    }
}

/// What the writer thread is told. The queue's slots are allocated once,
/// when it is made; boxing the entry would cost an allocation per request.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Message {
    Line(Entry),
    /// Wake up: SIGUSR1 asked for the file to be reopened.
    Reopen,
}

/// The process's access log: the queue to its writer thread, started with
/// the first line.
pub struct AccessLog {
    /// Lines that may wait (`access_log.buffer` at the start).
    capacity: usize,
    queue: OnceLock<SyncSender<Message>>,
    /// Set by SIGUSR1; the writer reopens its file before the next line.
    reopen: Arc<AtomicBool>,
    metrics: AccessLogMetrics,
}

impl AccessLog {
    /// An access log whose queue holds `capacity` lines.
    pub fn new(capacity: usize) -> Self {
        AccessLog {
            capacity: capacity.max(1),
            queue: OnceLock::new(),
            reopen: Arc::new(AtomicBool::new(false)),
            metrics: AccessLogMetrics::new(),
        }
    }

    /// Queue `entry` for the writer, or drop it (counted) when the queue is
    /// full: never waits.
    pub fn log(&self, entry: Entry) {
        let queue = self.queue.get_or_init(|| self.start());
        match queue.try_send(Message::Line(entry)) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => self.metrics.dropped(),
        }
    }

    /// Have the writer reopen its file (logrotate moved it away). Nothing
    /// to do before the first line: the file is opened then.
    pub fn reopen(&self) {
        let Some(queue) = self.queue.get() else {
            log::debug!("SIGUSR1: no access log is open");
            return;
        };
        self.reopen.store(true, Ordering::Release);
        // A full queue wakes the writer anyway; it reopens before its next
        // line.
        let _ = queue.try_send(Message::Reopen);
    }

    /// The queue and its writer thread. A thread that cannot start leaves
    /// a queue without a reader: every line is dropped and counted.
    fn start(&self) -> SyncSender<Message> {
        let (sender, receiver) = mpsc::sync_channel(self.capacity);
        let reopen = Arc::clone(&self.reopen);
        let metrics = self.metrics.clone();
        let started = std::thread::Builder::new()
            .name("access-log".to_string())
            .spawn(move || writer::run(&receiver, &reopen, &metrics));
        if let Err(e) = started {
            log::error!("cannot start the access log writer: {e}; lines are dropped");
        }
        sender
    }
}
