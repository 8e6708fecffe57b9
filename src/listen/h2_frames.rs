//! An HTTP/2 client connection as the connection guard watches it: frame
//! boundaries only (the 9-byte frame headers), to bound what HTTP/2 lets a
//! client do to a server cheaply. The `h2` crate under Pingora parses the
//! frames themselves; this reads the same bytes on their way to it.
//!
//! - A header block (a HEADERS frame and its CONTINUATION frames) must
//!   arrive within `limits.header_timeout` from its first frame, like an
//!   HTTP/1 request header; the connection's first block counts from the
//!   connection's start. So a client trickling a header block, or opening
//!   a connection and sending nothing, is cut off.
//! - A header block may take at most [`MAX_BLOCK_FRAMES`] frames and twice
//!   `limits.max_header_bytes` of encoded bytes: a CONTINUATION flood
//!   (CVE-2024-27316 and kin) ends the connection rather than filling
//!   memory or CPU.
//! - A client that resets more than [`RESET_WINDOW`]'s worth of streams
//!   (twice `limits.http2_max_streams` per second) is cut off: the rapid
//!   reset attack (CVE-2023-44487) opens and cancels streams faster than
//!   any concurrency limit sees them.

use std::time::Duration;
use tokio::time::Instant;

/// The client connection preface, before the first frame.
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Frames one header block may take.
pub const MAX_BLOCK_FRAMES: u32 = 64;

/// The window over which resets are counted.
pub const RESET_WINDOW: Duration = Duration::from_secs(1);

const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const CONTINUATION: u8 = 0x9;
const END_HEADERS: u8 = 0x4;

/// Why a connection is cut off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abuse {
    /// A header block of too many frames or bytes.
    HeaderBlockTooLarge,
    /// Streams reset faster than the limit.
    RapidReset,
}

impl Abuse {
    pub fn describe(self) -> &'static str {
        match self {
            Abuse::HeaderBlockTooLarge => {
                "an HTTP/2 header block of too many frames or bytes (limits.max_header_bytes)"
            }
            Abuse::RapidReset => "HTTP/2 streams reset faster than limits.http2_max_streams allow",
        }
    }
}

/// The frame boundaries of one HTTP/2 client connection.
#[derive(Debug)]
pub struct FrameWatch {
    /// Preface bytes still to pass.
    preface_left: usize,
    /// The frame header being read.
    header: [u8; 9],
    header_len: usize,
    /// Payload bytes of the current frame still to pass.
    payload_left: u32,
    /// The current frame ends a header block.
    ends_block: bool,
    /// A header block is open: frames so far and their bytes.
    block: Option<(u32, u64)>,
    /// Header blocks completed on this connection.
    pub blocks_done: u64,
    max_block_bytes: u64,
    /// Resets in the current window, and when it started.
    resets: u32,
    window_start: Option<Instant>,
    max_resets: u32,
}

impl FrameWatch {
    /// A new connection's watch: header blocks up to `max_header_bytes`
    /// twice over, `max_streams` concurrent streams.
    pub fn new(max_header_bytes: u64, max_streams: u32) -> Self {
        FrameWatch {
            preface_left: PREFACE.len(),
            header: [0; 9],
            header_len: 0,
            payload_left: 0,
            ends_block: false,
            block: None,
            blocks_done: 0,
            max_block_bytes: max_header_bytes.saturating_mul(2),
            resets: 0,
            window_start: None,
            max_resets: max_streams.saturating_mul(2).max(20),
        }
    }

    /// Whether a header block is open (its deadline runs).
    pub fn in_header_block(&self) -> bool {
        self.block.is_some()
    }

    /// Follow `bytes` from the client.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), Abuse> {
        let skip = self.preface_left.min(bytes.len());
        self.preface_left -= skip;
        bytes = &bytes[skip..];
        while !bytes.is_empty() {
            if self.payload_left > 0 {
                let take = (self.payload_left as usize).min(bytes.len());
                self.payload_left -= take as u32;
                bytes = &bytes[take..];
                if self.payload_left == 0 {
                    self.frame_done();
                }
                continue;
            }
            let take = (9 - self.header_len).min(bytes.len());
            self.header[self.header_len..self.header_len + take].copy_from_slice(&bytes[..take]);
            self.header_len += take;
            bytes = &bytes[take..];
            if self.header_len == 9 {
                self.header_len = 0;
                self.frame_started()?;
            }
        }
        Ok(())
    }

    /// A frame header was read.
    fn frame_started(&mut self) -> Result<(), Abuse> {
        let length = u32::from_be_bytes([0, self.header[0], self.header[1], self.header[2]]);
        let kind = self.header[3];
        let flags = self.header[4];
        match kind {
            HEADERS | CONTINUATION => {
                let (frames, bytes) = self.block.get_or_insert((0, 0));
                *frames += 1;
                *bytes += u64::from(length);
                if *frames > MAX_BLOCK_FRAMES || *bytes > self.max_block_bytes {
                    return Err(Abuse::HeaderBlockTooLarge);
                }
                self.ends_block = flags & END_HEADERS != 0;
            }
            RST_STREAM => self.count_reset()?,
            _ => self.ends_block = false,
        }
        self.payload_left = length;
        if length == 0 {
            self.frame_done();
        }
        Ok(())
    }

    /// The current frame's payload has passed.
    fn frame_done(&mut self) {
        if std::mem::take(&mut self.ends_block) && self.block.take().is_some() {
            self.blocks_done += 1;
        }
    }

    fn count_reset(&mut self) -> Result<(), Abuse> {
        let now = Instant::now();
        match self.window_start {
            Some(start) if now.duration_since(start) < RESET_WINDOW => self.resets += 1,
            _ => {
                self.window_start = Some(now);
                self.resets = 1;
            }
        }
        if self.resets > self.max_resets {
            return Err(Abuse::RapidReset);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len() as u32;
        let mut f = len.to_be_bytes()[1..].to_vec();
        f.push(kind);
        f.push(flags);
        f.extend_from_slice(&stream.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn a_header_block_is_open_until_its_end_headers_frame_passes() {
        let mut watch = FrameWatch::new(1000, 100);
        watch.feed(PREFACE).unwrap();
        watch.feed(&frame(0x4, 0, 0, &[0; 6])).unwrap(); // SETTINGS
        assert!(!watch.in_header_block());
        let headers = frame(HEADERS, 0, 1, &[7; 10]);
        // Byte by byte: open from the first frame header on.
        for b in &headers {
            watch.feed(&[*b]).unwrap();
        }
        assert!(watch.in_header_block());
        let end = frame(CONTINUATION, END_HEADERS, 1, &[7; 10]);
        watch.feed(&end[..end.len() - 1]).unwrap();
        assert!(watch.in_header_block(), "until the last payload byte");
        watch.feed(&end[end.len() - 1..]).unwrap();
        assert!(!watch.in_header_block());
        assert_eq!(watch.blocks_done, 1);
        // One frame with END_HEADERS, and a data frame after it, in one read.
        let mut both = frame(HEADERS, END_HEADERS | 0x1, 3, &[1; 5]);
        both.extend(frame(0x0, 0x1, 3, b"body"));
        watch.feed(&both).unwrap();
        assert_eq!(watch.blocks_done, 2);
    }

    #[test]
    fn a_continuation_flood_ends_the_connection() {
        let mut watch = FrameWatch::new(100_000, 100);
        watch.feed(PREFACE).unwrap();
        watch.feed(&frame(HEADERS, 0, 1, &[0; 1])).unwrap();
        let mut result = Ok(());
        for _ in 0..MAX_BLOCK_FRAMES {
            result = watch.feed(&frame(CONTINUATION, 0, 1, &[0; 1]));
        }
        assert_eq!(result, Err(Abuse::HeaderBlockTooLarge));
        let mut big = FrameWatch::new(100, 100);
        big.feed(PREFACE).unwrap();
        assert_eq!(
            big.feed(&frame(HEADERS, 0, 1, &[0; 201])),
            Err(Abuse::HeaderBlockTooLarge)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn resets_faster_than_the_limit_end_the_connection() {
        let mut watch = FrameWatch::new(1000, 10);
        watch.feed(PREFACE).unwrap();
        let reset = frame(RST_STREAM, 0, 1, &[0, 0, 0, 8]);
        for _ in 0..20 {
            watch.feed(&reset).unwrap();
        }
        tokio::time::advance(RESET_WINDOW).await;
        for _ in 0..20 {
            watch.feed(&reset).unwrap();
        }
        assert_eq!(watch.feed(&reset), Err(Abuse::RapidReset));
    }
}
