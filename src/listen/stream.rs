//! The client connection as switchyard reads it: request by request, with a
//! deadline on every request header, a strict check of chunked bodies, and
//! the request's time budget while it waits for a peer.
//!
//! Pingora reads a client connection through [`ClientStream`], which follows
//! the bytes it hands out: a request header, then its body (framed as the
//! proxy tells it, [`Framing`]), then the next header, or after a `101`
//! everything untouched ([`ClientStream::open_tunnel`]). Knowing where each
//! header starts and ends lets it:
//!
//! - give every request header `limits.header_timeout` in all, from the
//!   connection's start for the first request and from its first byte for
//!   each later one (slowloris on a keep-alive connection); Pingora only
//!   times out single reads;
//! - hold back whatever was read past the end of a header until the proxy
//!   has seen the header and said how its body is framed, so that every body
//!   byte passes here after the proxy knows what it is;
//! - check chunked bodies with [`ChunkedCheck`] before Pingora's decoder sees
//!   them (see its module for the httparse weakness this closes);
//! - enforce the request's time budget (`timeouts.request`,
//!   [`ClientStream::set_budget`]) while the proxy waits for a peer's
//!   response header: Pingora polls the client connection then (to notice a
//!   client that leaves), and an error from here ends the wait. A peer that
//!   trickles its header a byte at a time defeats Pingora's per-read
//!   timeout, not this.
//!
//! The proxy reaches the stream of a request through [`ClientStream::of`];
//! what it sets are atomics that the next read picks up, so nothing locks.

use super::chunked::{ChunkedCheck, Progress};
use super::h2_frames::FrameWatch;
use async_trait::async_trait;
use pingora_core::protocols::raw_connect::ProxyDigest;
use pingora_core::protocols::tls::SslDigest;
use pingora_core::protocols::ALPN;
use pingora_core::protocols::{GetProxyDigest, GetSocketDigest, GetTimingDigest, IO};
use pingora_core::protocols::{Peek, Shutdown, SocketDigest, Ssl, Stream, TimingDigest};
use pingora_core::protocols::{UniqueID, UniqueIDType};
use pingora_core::tls::ssl::SslRef;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// How the body of the request just read is framed, as the proxy (which has
/// parsed its header) tells the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body: the next byte starts the next request.
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// [`Framing`] in an atomic: `NOT_SET`, `CHUNKED`, or a length.
const NOT_SET: u64 = u64::MAX;
const CHUNKED: u64 = u64::MAX - 1;

impl Framing {
    fn encode(self) -> u64 {
        match self {
            Framing::Empty => 0,
            Framing::Length(n) => n.min(CHUNKED - 1),
            Framing::Chunked => CHUNKED,
        }
    }

    fn decode(value: u64) -> Option<Framing> {
        match value {
            NOT_SET => None,
            CHUNKED => Some(Framing::Chunked),
            0 => Some(Framing::Empty),
            n => Some(Framing::Length(n)),
        }
    }
}

/// What the bytes being handed out are.
#[derive(Debug)]
enum Phase {
    /// A request header; `started` once its first byte (other than the
    /// empty lines a client may send between requests) came.
    Header { started: bool, end: HeaderEnd },
    /// The header is complete; its framing is not known yet.
    AwaitingFraming,
    /// This many body bytes are still to come.
    Body(u64),
    /// A chunked body, checked as it passes.
    Chunked(ChunkedCheck),
    /// After a `101 Switching Protocols`: another protocol, untouched.
    Tunnel,
}

impl Phase {
    fn next_header() -> Phase {
        Phase::Header {
            started: false,
            end: HeaderEnd::default(),
        }
    }
}

/// Finds the end of a request header across reads: the first empty line
/// (`\n` or `\r\n`) after a non-empty one, as httparse reads it (bare LF
/// line ends and leading empty lines included).
#[derive(Debug, Default, Clone, Copy)]
struct HeaderEnd {
    /// A non-empty line has been seen.
    content: bool,
    /// Bytes on the current line so far (capped at 2).
    line: u8,
    /// The current line so far is exactly `\r`.
    cr_only: bool,
}

impl HeaderEnd {
    /// The index just past the header's end in `bytes`, if it ends there.
    fn find(&mut self, bytes: &[u8]) -> Option<usize> {
        let mut from = 0;
        while from < bytes.len() {
            let Some(offset) = memchr::memchr(b'\n', &bytes[from..]) else {
                self.extend_line(&bytes[from..]);
                return None;
            };
            let newline = from + offset;
            self.extend_line(&bytes[from..newline]);
            let empty = self.line == 0 || (self.line == 1 && self.cr_only);
            if empty && self.content {
                *self = HeaderEnd::default();
                return Some(newline + 1);
            }
            self.content |= !empty;
            self.line = 0;
            self.cr_only = false;
            from = newline + 1;
        }
        None
    }

    fn extend_line(&mut self, part: &[u8]) {
        match part {
            [] => {}
            [b'\r'] if self.line == 0 => {
                self.line = 1;
                self.cr_only = true;
            }
            _ => {
                self.line = 2;
                self.cr_only = false;
            }
        }
    }
}

/// The epoch of [`ClientStream::set_budget`]'s atomic deadlines.
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// What the proxy tells a stream, from another borrow of it.
#[derive(Debug)]
struct Control {
    framing: AtomicU64,
    /// Nanoseconds after [`EPOCH`]; 0 for none.
    budget: AtomicU64,
    tunnel: AtomicBool,
    /// A request ended: re-arm a header deadline that is running.
    restart_header: AtomicBool,
}

/// A client connection, read request by request (see the module docs).
#[derive(Debug)]
pub struct ClientStream {
    inner: Stream,
    phase: Phase,
    /// Bytes read past the end of a header, handed out by later reads.
    held: Vec<u8>,
    held_from: usize,
    header_timeout: Duration,
    /// Armed while a request header is incomplete.
    header_deadline: Option<Pin<Box<Sleep>>>,
    header_armed: bool,
    /// The request budget's timer, and the deadline it is set for.
    budget_timer: Option<(Pin<Box<Sleep>>, Instant)>,
    control: Control,
    /// An HTTP/2 connection: its frames are watched instead of HTTP/1
    /// requests (see `h2_frames`).
    http2: Option<Box<FrameWatch>>,
    /// HTTP/2 by prior knowledge (h2c), which Pingora takes for ALPN `h2`.
    prior_knowledge: bool,
    /// The listener it arrived on (its `listen` index).
    listener: usize,
}

impl ClientStream {
    /// A new HTTP/1 client connection whose first request header must be
    /// complete by `deadline` (a TLS handshake may have used some of its
    /// `header_timeout`).
    pub fn until(inner: Stream, header_timeout: Duration, deadline: Instant) -> Self {
        ClientStream {
            inner,
            phase: Phase::next_header(),
            held: Vec::new(),
            held_from: 0,
            header_timeout,
            header_deadline: Some(Box::pin(tokio::time::sleep_until(deadline))),
            header_armed: true,
            budget_timer: None,
            control: Control {
                framing: AtomicU64::new(NOT_SET),
                budget: AtomicU64::new(0),
                tunnel: AtomicBool::new(false),
                restart_header: AtomicBool::new(false),
            },
            http2: None,
            prior_knowledge: false,
            listener: 0,
        }
    }

    /// It arrived on listener `index` (of `listen`).
    pub fn on_listener(mut self, index: usize) -> Self {
        self.listener = index;
        self
    }

    /// The listener it arrived on (its `listen` index).
    pub fn listener(&self) -> usize {
        self.listener
    }

    /// A new HTTP/2 client connection (by ALPN, or by `prior_knowledge`),
    /// watched by `watch`; its first header block must be complete by
    /// `deadline`.
    pub fn http2(
        inner: Stream,
        header_timeout: Duration,
        deadline: Instant,
        watch: FrameWatch,
        prior_knowledge: bool,
    ) -> Self {
        let mut stream = Self::until(inner, header_timeout, deadline);
        stream.phase = Phase::Tunnel;
        stream.http2 = Some(Box::new(watch));
        stream.prior_knowledge = prior_knowledge;
        stream
    }

    /// An HTTP/2 read: the bytes pass untouched, their frames watched.
    fn poll_read_http2(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {}
            other => return other,
        }
        let Some(watch) = self.http2.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        if let Err(abuse) = watch.feed(&buf.filled()[before..]) {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                abuse.describe(),
            )));
        }
        if watch.in_header_block() {
            if !self.header_armed {
                self.arm_header_deadline();
            }
        } else if watch.blocks_done > 0 {
            self.header_armed = false;
        }
        Poll::Ready(Ok(()))
    }

    /// The `ClientStream` under a Pingora stream, if it is one.
    pub fn of(stream: &Stream) -> Option<&ClientStream> {
        let io: &dyn IO = &**stream;
        io.as_any().downcast_ref::<ClientStream>()
    }

    /// How the body of the request whose header was just read is framed.
    /// Must be said once per request, before its body is read.
    pub fn set_framing(&self, framing: Framing) {
        self.control
            .framing
            .store(framing.encode(), Ordering::Relaxed);
    }

    /// From the next read on, the connection carries another protocol
    /// (`101 Switching Protocols`): no more headers, bodies or deadlines.
    pub fn open_tunnel(&self) {
        self.control.tunnel.store(true, Ordering::Relaxed);
    }

    /// The request being served is done: its budget no longer applies, and
    /// a next header that started meanwhile (pipelined) gets its
    /// `header_timeout` from now, not from while this one was served.
    pub fn request_finished(&self) {
        self.set_budget(None);
        self.control.restart_header.store(true, Ordering::Relaxed);
    }

    /// Fail reads once `deadline` passes (`None`: no deadline). The proxy
    /// sets it while it waits for a peer, and clears it once the response
    /// header is in.
    pub fn set_budget(&self, deadline: Option<Instant>) {
        let nanos = deadline.map_or(0, |d| {
            let nanos = d.saturating_duration_since(*EPOCH).as_nanos();
            u64::try_from(nanos).unwrap_or(u64::MAX).max(1)
        });
        self.control.budget.store(nanos, Ordering::Relaxed);
    }

    /// Arm the header deadline from now.
    fn arm_header_deadline(&mut self) {
        let deadline = Instant::now() + self.header_timeout;
        match &mut self.header_deadline {
            Some(sleep) => sleep.as_mut().reset(deadline),
            None => self.header_deadline = Some(Box::pin(tokio::time::sleep_until(deadline))),
        }
        self.header_armed = true;
    }

    /// An error once a deadline has passed; registers the wake-ups otherwise.
    fn poll_deadlines(&mut self, cx: &mut Context<'_>) -> Option<io::Error> {
        if *self.control.tunnel.get_mut() {
            self.phase = Phase::Tunnel;
            self.header_armed = false;
        }
        if std::mem::take(self.control.restart_header.get_mut()) && self.header_armed {
            self.arm_header_deadline();
        }
        if self.header_armed {
            if let Some(sleep) = self.header_deadline.as_mut() {
                if sleep.as_mut().poll(cx).is_ready() {
                    return Some(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the request header took longer than limits.header_timeout",
                    ));
                }
            }
        }
        let budget = *self.control.budget.get_mut();
        if budget != 0 {
            let due = *EPOCH + Duration::from_nanos(budget);
            // The timer is moved only when it would fire too late: budgets
            // of later requests on a connection end later, so one timer
            // serves many requests, and a request rarely registers one.
            let (sleep, set_for) = self
                .budget_timer
                .get_or_insert_with(|| (Box::pin(tokio::time::sleep_until(due)), due));
            if *set_for > due {
                sleep.as_mut().reset(due);
                *set_for = due;
            }
            while sleep.as_mut().poll(cx).is_ready() {
                if *set_for >= due {
                    return Some(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the request's time budget (timeouts.request) ran out",
                    ));
                }
                sleep.as_mut().reset(due);
                *set_for = due;
            }
        }
        None
    }

    /// Follow `bytes`, just read, through the phases; how many of them may
    /// be handed out now (the rest is held back for a later read).
    ///
    /// A read ends where a header or a body ends: what follows belongs to
    /// the next request, whose framing the proxy has not seen yet.
    fn observe(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let mut at = 0;
        while at < bytes.len() {
            match &mut self.phase {
                Phase::Header { started, end } => {
                    // Empty lines between requests are not a header yet.
                    let starts_now =
                        !*started && bytes[at..].iter().any(|b| *b != b'\r' && *b != b'\n');
                    *started |= starts_now;
                    if let Some(length) = end.find(&bytes[at..]) {
                        self.header_armed = false;
                        self.phase = Phase::AwaitingFraming;
                        return Ok(at + length);
                    }
                    // The header continues in a later read: from its first
                    // byte it has header_timeout (the first request's
                    // deadline runs from the connection's start).
                    if starts_now && !self.header_armed {
                        self.arm_header_deadline();
                    }
                    return Ok(bytes.len());
                }
                Phase::AwaitingFraming => {
                    let framing = self.control.framing.swap(NOT_SET, Ordering::Relaxed);
                    self.phase = match Framing::decode(framing) {
                        Some(Framing::Empty) => Phase::next_header(),
                        Some(Framing::Length(n)) => Phase::Body(n),
                        Some(Framing::Chunked) => Phase::Chunked(ChunkedCheck::new()),
                        None => {
                            // The proxy frames every request before its
                            // body is read; a read before that would leave
                            // the stream unable to tell requests apart.
                            return Err(io::Error::new(
                                io::ErrorKind::InvalidData,
                                "a read before the request was framed",
                            ));
                        }
                    };
                }
                Phase::Body(remaining) => {
                    let take = (*remaining).min((bytes.len() - at) as u64);
                    at += take as usize;
                    *remaining -= take;
                    if *remaining == 0 {
                        self.phase = Phase::next_header();
                        return Ok(at);
                    }
                }
                Phase::Chunked(check) => match check.feed(&bytes[at..]) {
                    Ok(Progress::NeedMore) => at = bytes.len(),
                    Ok(Progress::Complete(length)) => {
                        self.phase = Phase::next_header();
                        return Ok(at + length);
                    }
                    Err(malformed) => {
                        return Err(io::Error::new(io::ErrorKind::InvalidData, malformed.0));
                    }
                },
                Phase::Tunnel => return Ok(bytes.len()),
            }
        }
        Ok(at)
    }
}

impl AsyncRead for ClientStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(error) = this.poll_deadlines(cx) {
            return Poll::Ready(Err(error));
        }
        if this.http2.is_some() {
            return this.poll_read_http2(cx, buf);
        }
        let before = buf.filled().len();
        let from_held = this.held_from < this.held.len();
        if from_held {
            let n = buf.remaining().min(this.held.len() - this.held_from);
            buf.put_slice(&this.held[this.held_from..this.held_from + n]);
            this.held_from += n;
        } else {
            match Pin::new(&mut this.inner).poll_read(cx, buf) {
                Poll::Ready(Ok(())) => {}
                other => return other,
            }
        }
        let filled = buf.filled().len();
        if filled == before {
            return Poll::Ready(Ok(())); // end of stream
        }
        let keep = match this.observe(&buf.filled()[before..]) {
            Ok(keep) => keep,
            Err(error) => return Poll::Ready(Err(error)),
        };
        let excess = filled - before - keep;
        if excess > 0 {
            if from_held {
                // They came from `held`: put them back.
                this.held_from -= excess;
            } else {
                this.held.clear();
                this.held.extend_from_slice(&buf.filled()[before + keep..]);
                this.held_from = 0;
            }
            buf.set_filled(before + keep);
        }
        if this.held_from == this.held.len() && !this.held.is_empty() {
            this.held.clear();
            this.held_from = 0;
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[async_trait]
impl Shutdown for ClientStream {
    async fn shutdown(&mut self) {
        self.inner.shutdown().await
    }
}

impl UniqueID for ClientStream {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

/// What Pingora learns of TLS through the stream: the ALPN protocol
/// (HTTP/2 or not) above all.
impl Ssl for ClientStream {
    fn get_ssl(&self) -> Option<&SslRef> {
        self.inner.get_ssl()
    }

    fn get_ssl_digest(&self) -> Option<Arc<SslDigest>> {
        self.inner.get_ssl_digest()
    }

    fn selected_alpn_proto(&self) -> Option<ALPN> {
        if self.prior_knowledge {
            return Some(ALPN::H2);
        }
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for ClientStream {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.inner.get_timing_digest()
    }
    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }
    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for ClientStream {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.inner.get_proxy_digest()
    }
    fn set_proxy_digest(&mut self, digest: ProxyDigest) {
        self.inner.set_proxy_digest(digest)
    }
}

impl GetSocketDigest for ClientStream {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.inner.get_socket_digest()
    }
    fn set_socket_digest(&mut self, digest: SocketDigest) {
        self.inner.set_socket_digest(digest)
    }
}

#[async_trait]
impl Peek for ClientStream {
    /// Peeking sees the socket, so it is only offered while nothing is held
    /// back (Pingora peeks once, at the start of a connection).
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        if self.held_from < self.held.len() {
            return Ok(false);
        }
        self.inner.try_peek(buf).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A new connection whose first header has `header_timeout` from now.
    fn fresh(inner: Stream, header_timeout: Duration) -> ClientStream {
        ClientStream::until(inner, header_timeout, Instant::now() + header_timeout)
    }

    fn ends(parts: &[&[u8]]) -> Vec<Option<usize>> {
        let mut end = HeaderEnd::default();
        parts.iter().map(|part| end.find(part)).collect()
    }

    #[test]
    fn a_header_ends_at_its_first_empty_line() {
        assert_eq!(
            ends(&[b"GET / HTTP/1.1\r\nHost: x\r\n\r\nbody"]),
            [Some(27)]
        );
        assert_eq!(ends(&[b"GET / HTTP/1.1\nHost: x\n\nbody"]), [Some(24)]);
        assert_eq!(ends(&[b"\r\n\r\nGET / HTTP/1.1\r\n\r\n"]), [Some(22)]);
        assert_eq!(
            ends(&[b"GET / HTTP/1.1\r\n", b"\r", b"\n"]),
            [None, None, Some(1)]
        );
        assert_eq!(ends(&[b"GET / HTTP/1.1\r\nX: \r\r\n\r\n"]), [Some(24)]);
    }

    /// A stream whose reads return `parts`, one per read.
    fn client(parts: &[&[u8]]) -> ClientStream {
        let mut mock = tokio_test::io::Builder::new();
        for part in parts {
            mock.read(part);
        }
        fresh(Box::new(mock.build()), Duration::from_secs(10))
    }

    async fn read_once(stream: &mut ClientStream) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; 1024];
        let n = stream.read(&mut buf).await?;
        buf.truncate(n);
        Ok(buf)
    }

    #[tokio::test]
    async fn bytes_after_a_header_wait_for_its_framing() {
        let mut stream =
            client(&[b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\n\r\n"]);
        let header = read_once(&mut stream).await.unwrap();
        assert!(header.ends_with(b"\r\n\r\n"));
        stream.set_framing(Framing::Length(3));
        // The body alone: what follows is the next request's.
        assert_eq!(read_once(&mut stream).await.unwrap(), b"abc");
        assert_eq!(
            read_once(&mut stream).await.unwrap(),
            b"GET / HTTP/1.1\r\n\r\n"
        );
    }

    #[tokio::test]
    async fn an_unframed_read_after_a_header_is_refused() {
        let mut stream = client(&[b"GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n"]);
        read_once(&mut stream).await.unwrap();
        let error = read_once(&mut stream).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }

    #[tokio::test]
    async fn a_malformed_chunk_never_reaches_the_reader() {
        let mut stream = client(&[
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\nhello\r\n0\r\n\r\n",
        ]);
        read_once(&mut stream).await.unwrap();
        stream.set_framing(Framing::Chunked);
        let error = read_once(&mut stream).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }

    #[tokio::test(start_paused = true)]
    async fn every_header_has_its_deadline() {
        let (mut client, server) = tokio::io::duplex(4096);
        let mut stream = fresh(Box::new(server), Duration::from_secs(10));
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        read_once(&mut stream).await.unwrap();
        stream.set_framing(Framing::Empty);
        // Idle between requests is not the header's time, nor are the empty
        // lines some clients send after a body.
        client.write_all(b"\r\n").await.unwrap();
        read_once(&mut stream).await.unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
        client.write_all(b"GET /slow HTTP/1.1\r\n").await.unwrap();
        read_once(&mut stream).await.unwrap();
        let started = Instant::now();
        let error = read_once(&mut stream).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed().as_secs(), 10);
    }

    #[tokio::test(start_paused = true)]
    async fn the_budget_ends_a_wait() {
        let (mut client, server) = tokio::io::duplex(4096);
        let mut stream = fresh(Box::new(server), Duration::from_secs(10));
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        read_once(&mut stream).await.unwrap();
        stream.set_framing(Framing::Empty);
        stream.set_budget(Some(Instant::now() + Duration::from_secs(2)));
        let started = Instant::now();
        let error = read_once(&mut stream).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed().as_secs(), 2);
        // Cleared, a later wait is not cut.
        stream.set_budget(None);
        client
            .write_all(b"GET /next HTTP/1.1\r\n\r\n")
            .await
            .unwrap();
        assert!(read_once(&mut stream).await.is_ok());
    }
}
