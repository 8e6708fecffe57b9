//! The log: one timestamped line per event on stderr (`RUST_LOG` sets the
//! level, `info` by default), with Pingora's lines about clients that went
//! away moved down to debug.
//!
//! Pingora logs a client that resets its connection in the middle of a
//! request header as an ERROR (`Fail to proxy: Downstream ReadError ...
//! Connection reset by peer`), from a place no hook reaches: 400 clients
//! that give up made 400 ERROR lines, which drown the ones that matter. A
//! client leaving is its own business; switchyard logs its own refusals at
//! info.

use log::{Level, Log, Metadata, Record};

/// Install the logger. Call once, first thing.
pub fn init() {
    let inner = env_logger::Builder::from_env(
        // switchyard logs every peer state change itself, with the reason;
        // Pingora's load-balancing module would log each one a second time.
        env_logger::Env::default().default_filter_or("info,pingora_load_balancing=error"),
    )
    .build();
    let filter = inner.filter();
    // Only fails when a logger is already installed (a program built on
    // the library chose its own): keep that one, and its level.
    if log::set_boxed_logger(Box::new(Logger { inner })).is_ok() {
        log::set_max_level(filter);
    }
}

struct Logger {
    inner: env_logger::Logger,
}

/// Whether `record` is Pingora's ERROR line about a client that went away
/// (a read or write on the client connection failed).
fn is_client_gone(record: &Record<'_>) -> bool {
    if record.level() != Level::Error || !record.target().starts_with("pingora_proxy") {
        return false;
    }
    let message = record.args().to_string();
    message.starts_with("Fail to proxy: Downstream")
        && ["ReadError", "WriteError", "ConnectionClosed"]
            .iter()
            .any(|kind| message.contains(kind))
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.inner.enabled(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        if !is_client_gone(record) {
            self.inner.log(record);
            return;
        }
        let demoted = Record::builder()
            .args(*record.args())
            .level(Level::Debug)
            .target(record.target())
            .module_path(record.module_path())
            .file(record.file())
            .line(record.line())
            .build();
        if self.inner.enabled(demoted.metadata()) {
            self.inner.log(&demoted);
        }
    }

    fn flush(&self) {
        self.inner.flush();
    }
}
