//! A check of chunked request framing on the raw client stream, before
//! Pingora decodes it.
//!
//! Pingora reads chunk-size lines with `httparse::parse_chunk_size`, which
//! takes any byte after a `;` as part of a chunk extension, a bare LF
//! included. So `5;a=b\nhello\r\n0\r\n\r\n` (a 5-byte chunk `hello` to any
//! strict parser) is read as a chunk of size 5 whose extension runs to the
//! first CRLF, followed by the data `0\r\n\r\n`: the peer receives another
//! body than the client sent, and a proxy in front of switchyard that reads
//! the stream strictly disagrees with it about where the request ends
//! (request smuggling). The cause is in httparse (1.10.1, the newest) and
//! cannot be reached from switchyard; [`ChunkedCheck`] follows the chunked
//! framing of RFC 9112 §7.1 over the same bytes and stops the stream at the
//! first line that a strict reader would reject, before Pingora sees it.
//!
//! It checks framing only: sizes, line ends, and which bytes may appear in
//! chunk extensions and trailer lines (HTAB, visible ASCII, obs-text). It
//! decodes nothing; Pingora does.

/// The longest chunk-size line (size and extensions) or trailer line
/// accepted, as Pingora's own limit on chunk heads.
const MAX_LINE: usize = 8 * 1024;

/// How far a chunked body has been checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// All bytes given belong to the body; it continues.
    NeedMore,
    /// The body ends after this many of the bytes given; the rest belongs to
    /// whatever follows it on the connection.
    Complete(usize),
}

/// Why a chunked body is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed(pub &'static str);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The first hex digit of a chunk size.
    SizeStart,
    /// More hex digits.
    Size,
    /// Whitespace after the size, before `;` or CR.
    AfterSize,
    /// A chunk extension, up to CR.
    Extension,
    /// The LF that ends a chunk-size line.
    SizeLf,
    /// Chunk data still to come.
    Data,
    /// The CR and LF after chunk data.
    DataCr,
    DataLf,
    /// The start of a trailer line, or the CR of the final empty line.
    TrailerStart,
    /// Inside a trailer field line.
    Trailer,
    TrailerLf,
    /// The LF of the final empty line.
    FinalLf,
}

/// The state of one chunked body, fed its raw bytes in order.
#[derive(Debug, Clone)]
pub struct ChunkedCheck {
    state: State,
    /// The chunk size being read, then the data bytes still to come.
    size: u64,
    digits: u8,
    line: usize,
}

impl Default for ChunkedCheck {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkedCheck {
    /// The check of a body that has not started yet.
    pub fn new() -> Self {
        ChunkedCheck {
            state: State::SizeStart,
            size: 0,
            digits: 0,
            line: 0,
        }
    }

    /// Check the next `bytes` of the body.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Progress, Malformed> {
        let mut at = 0;
        while at < bytes.len() {
            if self.state == State::Data {
                // Skip chunk data without looking at it.
                let available = (bytes.len() - at) as u64;
                let take = self.size.min(available);
                at += take as usize;
                self.size -= take;
                if self.size == 0 {
                    self.state = State::DataCr;
                }
                continue;
            }
            let byte = bytes[at];
            at += 1;
            self.line += 1;
            if self.line > MAX_LINE {
                return Err(Malformed("chunk-size or trailer line too long"));
            }
            self.state = match (self.state, byte) {
                (State::SizeStart | State::Size, _) if byte.is_ascii_hexdigit() => {
                    if self.digits == 16 {
                        return Err(Malformed("chunk size too large"));
                    }
                    self.digits += 1;
                    // Cannot overflow: at most 16 hex digits.
                    self.size = self.size << 4 | u64::from(hex(byte));
                    State::Size
                }
                (State::SizeStart, _) => return Err(Malformed("chunk size expected")),
                (State::Size | State::AfterSize, b' ' | b'\t') => State::AfterSize,
                (State::Size | State::AfterSize, b';') => State::Extension,
                (State::Size | State::AfterSize | State::Extension, b'\r') => State::SizeLf,
                (State::Extension, _) if is_field_byte(byte) => State::Extension,
                (State::Extension, b'\n') => return Err(Malformed("bare LF in a chunk extension")),
                (State::Extension, _) => {
                    return Err(Malformed("control character in a chunk extension"))
                }
                (State::Size | State::AfterSize, _) => {
                    return Err(Malformed("invalid chunk-size line"))
                }
                (State::SizeLf, b'\n') => {
                    self.line = 0;
                    self.digits = 0;
                    if self.size == 0 {
                        State::TrailerStart
                    } else {
                        State::Data
                    }
                }
                (State::SizeLf, _) => return Err(Malformed("chunk-size line not ended by CRLF")),
                (State::DataCr, b'\r') => State::DataLf,
                (State::DataLf, b'\n') => {
                    self.line = 0;
                    State::SizeStart
                }
                (State::DataCr | State::DataLf, _) => {
                    return Err(Malformed("chunk data not followed by CRLF"))
                }
                (State::TrailerStart, b'\r') => State::FinalLf,
                (State::TrailerStart | State::Trailer, _) if is_field_byte(byte) => State::Trailer,
                (State::Trailer, b'\r') => State::TrailerLf,
                (State::TrailerStart | State::Trailer, _) => {
                    return Err(Malformed("invalid trailer line"))
                }
                (State::TrailerLf, b'\n') => {
                    self.line = 0;
                    State::TrailerStart
                }
                (State::TrailerLf, _) => return Err(Malformed("trailer line not ended by CRLF")),
                (State::FinalLf, b'\n') => {
                    *self = ChunkedCheck::new();
                    return Ok(Progress::Complete(at));
                }
                (State::FinalLf, _) => return Err(Malformed("chunked body not ended by CRLF")),
                (State::Data, _) => unreachable!("chunk data is skipped above"),
            };
        }
        Ok(Progress::NeedMore)
    }
}

/// A byte allowed in a chunk extension or trailer line: HTAB, visible
/// ASCII, space, obs-text.
fn is_field_byte(byte: u8) -> bool {
    byte == b'\t' || (0x20..0x7f).contains(&byte) || byte >= 0x80
}

fn hex(byte: u8) -> u8 {
    match byte {
        b'0'..=b'9' => byte - b'0',
        b'a'..=b'f' => byte - b'a' + 10,
        _ => byte - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_whole(body: &[u8]) -> Result<Progress, Malformed> {
        ChunkedCheck::new().feed(body)
    }

    /// Feed one byte at a time: the result must not depend on the split.
    fn check_bytewise(body: &[u8]) -> Result<Progress, Malformed> {
        let mut check = ChunkedCheck::new();
        for (index, byte) in body.iter().enumerate() {
            if let Progress::Complete(n) = check.feed(std::slice::from_ref(byte))? {
                return Ok(Progress::Complete(index + n));
            }
        }
        Ok(Progress::NeedMore)
    }

    #[test]
    fn well_formed_bodies_end_where_they_end() {
        for body in [
            &b"0\r\n\r\n"[..],
            b"5\r\nhello\r\n0\r\n\r\n",
            b"5;name=value\r\nhello\r\n0\r\n\r\n",
            b"5 ;a=\"b c\"\r\nhello\r\n0\r\n\r\n",
            b"A\r\n0123456789\r\n0\r\nX-Sum: 1\r\n\r\n",
            b"00005\r\nhello\r\n000\r\n\r\n",
        ] {
            let end = Progress::Complete(body.len());
            assert_eq!(
                check_whole(body),
                Ok(end),
                "{:?}",
                body.escape_ascii().to_string()
            );
            assert_eq!(check_bytewise(body), Ok(end));
        }
        let mut pipelined = b"3\r\nabc\r\n0\r\n\r\n".to_vec();
        pipelined.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(check_whole(&pipelined), Ok(Progress::Complete(13)));
        assert_eq!(check_whole(b"5\r\nhel"), Ok(Progress::NeedMore));
    }

    #[test]
    fn what_a_strict_reader_rejects_is_refused() {
        for body in [
            &b"5;a=b\nhello\r\n0\r\n\r\n"[..],
            b"5\nhello\r\n0\r\n\r\n",
            b"5\r\nhello\n0\r\n\r\n",
            b"5\r\nhelloX\r\n0\r\n\r\n",
            b"x\r\n",
            b"\r\n",
            b"5;a\x01\r\n",
            b"0\r\nX: a\nb\r\n\r\n",
            b"0\r\n\r\r",
            b"12345678901234567\r\n",
            b"5 5\r\n",
        ] {
            assert!(
                check_whole(body).is_err(),
                "{:?}",
                body.escape_ascii().to_string()
            );
            assert!(check_bytewise(body).is_err());
        }
        let long_extension = [&b"1;"[..], &[b'a'; MAX_LINE][..]].concat();
        assert!(check_whole(&long_extension).is_err());
    }

    #[test]
    fn a_large_chunk_is_skipped_not_scanned() {
        let mut check = ChunkedCheck::new();
        assert_eq!(check.feed(b"100000\r\n"), Ok(Progress::NeedMore));
        let data = vec![b'\n'; 0x100000];
        assert_eq!(check.feed(&data), Ok(Progress::NeedMore));
        assert_eq!(check.feed(b"\r\n0\r\n\r\n"), Ok(Progress::Complete(7)));
    }
}
