//! The writer thread: takes entries off the queue, formats them and writes
//! them through a buffer, flushed whenever the queue is empty (so a line
//! shows up at once when traffic is light, and lines go out in large
//! writes when it is heavy).
//!
//! The file is opened on the first line (after a daemon's fork and
//! privilege drop, by the user that runs), again when a line names
//! another path (a reload changed it), and on SIGUSR1 (logrotate moved the
//! old one away: new lines go to a new file at the path). It is a thread,
//! not a task: a write that blocks (a slow disk, a full pipe) blocks no
//! runtime, and the process still exits (the thread is never joined).

use super::{line, Entry, Message};
use crate::config::{AccessLogConfig, AccessLogFormat};
use crate::metrics::access_log::AccessLogMetrics;
use std::fs::OpenOptions;
use std::io::{self, BufWriter, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

/// Bytes gathered before a write while lines keep coming.
const BUFFER_BYTES: usize = 64 * 1024;

/// How long a path that could not be opened is left alone (its lines are
/// dropped) before it is tried again.
const RETRY_OPEN_AFTER: Duration = Duration::from_secs(1);

/// The file (or stderr) lines go to now.
struct Output {
    path: String,
    out: BufWriter<Box<dyn Write + Send>>,
    /// The last write failed: say so once, until one succeeds.
    failing: bool,
}

impl Output {
    /// A write failed: said once, until one succeeds.
    fn write_failed(&mut self, error: &io::Error) {
        if !self.failing {
            log::error!(
                "access log {}: cannot write: {error}; lines are dropped",
                self.path
            );
            self.failing = true;
        }
    }
}

/// What the writer keeps between lines.
struct Writer<'a> {
    output: Option<Output>,
    /// A path that could not be opened, and when.
    failed_open: Option<(String, Instant)>,
    reopen: &'a AtomicBool,
    metrics: &'a AccessLogMetrics,
    /// Lines written into the buffer, counted at the next flush.
    pending: u64,
    line: Vec<u8>,
}

/// Serve `queue` until every sender is gone (never, in a running process).
pub(super) fn run(queue: &Receiver<Message>, reopen: &AtomicBool, metrics: &AccessLogMetrics) {
    let mut writer = Writer {
        output: None,
        failed_open: None,
        reopen,
        metrics,
        pending: 0,
        line: Vec::with_capacity(1024),
    };
    while let Ok(message) = queue.recv() {
        writer.take(message);
        loop {
            match queue.try_recv() {
                Ok(message) => writer.take(message),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    writer.flush();
                    return;
                }
            }
        }
        writer.flush();
    }
}

impl Writer<'_> {
    fn take(&mut self, message: Message) {
        if self.reopen.swap(false, Ordering::AcqRel) {
            self.reopen_now();
        }
        if let Message::Line(entry) = message {
            self.write(&entry);
        }
    }

    /// SIGUSR1: close the file and open the path anew.
    fn reopen_now(&mut self) {
        self.flush();
        self.failed_open = None;
        let Some(output) = self.output.take() else {
            return;
        };
        if output.path == crate::config::STDERR_PATH {
            self.output = Some(output);
            return;
        }
        let path = output.path;
        drop(output.out);
        match open(&path) {
            Ok(out) => {
                log::info!("SIGUSR1: reopened the access log {path}");
                self.output = Some(Output {
                    path,
                    out,
                    failing: false,
                });
            }
            Err(e) => self.open_failed(&path, &e),
        }
    }

    fn write(&mut self, entry: &Entry) {
        let settings = &entry.settings;
        let mut text = std::mem::take(&mut self.line);
        text.clear();
        let formatted = match settings.format {
            AccessLogFormat::Json => line::json(entry, &mut text).map_err(io::Error::from),
            AccessLogFormat::Combined => line::combined(entry, &mut text),
        };
        match self.output_for(settings) {
            None => self.metrics.dropped(),
            Some(output) => match formatted.and_then(|()| output.out.write_all(&text)) {
                Ok(()) => self.pending += 1,
                Err(e) => {
                    output.write_failed(&e);
                    self.metrics.dropped();
                }
            },
        }
        self.line = text;
    }

    /// The output for `settings`' path, opened if need be; `None` while
    /// the path cannot be opened.
    fn output_for(&mut self, settings: &AccessLogConfig) -> Option<&mut Output> {
        let current = self
            .output
            .as_ref()
            .is_some_and(|o| o.path == settings.path);
        if !current {
            if let Some((path, when)) = &self.failed_open {
                if *path == settings.path && when.elapsed() < RETRY_OPEN_AFTER {
                    return None;
                }
            }
            self.flush();
            self.output = None;
            match open(&settings.path) {
                Ok(out) => {
                    self.failed_open = None;
                    self.output = Some(Output {
                        path: settings.path.clone(),
                        out,
                        failing: false,
                    });
                }
                Err(e) => {
                    self.open_failed(&settings.path, &e);
                    return None;
                }
            }
        }
        self.output.as_mut()
    }

    fn open_failed(&mut self, path: &str, e: &io::Error) {
        let again = self.failed_open.as_ref().is_some_and(|(p, _)| p == path);
        if !again {
            log::error!("access log {path}: cannot open it: {e}; lines are dropped until it opens");
        }
        self.failed_open = Some((path.to_string(), Instant::now()));
    }

    /// Write out what the buffer holds, and count it.
    fn flush(&mut self) {
        let Some(output) = self.output.as_mut() else {
            return;
        };
        match output.out.flush() {
            Ok(()) => {
                self.metrics.written(self.pending);
                output.failing = false;
            }
            Err(e) => {
                output.write_failed(&e);
                self.metrics.dropped_lines(self.pending);
            }
        }
        self.pending = 0;
    }
}

/// The writer of `path` (appending, created if need be), or of stderr for
/// `-`.
fn open(path: &str) -> io::Result<BufWriter<Box<dyn Write + Send>>> {
    let sink: Box<dyn Write + Send> = if path == crate::config::STDERR_PATH {
        Box::new(io::stderr())
    } else {
        Box::new(OpenOptions::new().append(true).create(true).open(path)?)
    };
    Ok(BufWriter::with_capacity(BUFFER_BYTES, sink))
}
