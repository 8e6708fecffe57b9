//! The PROXY protocol header (v1 text, v2 binary) that an L4 balancer in
//! front of the proxy sends first on every connection, before TLS: the
//! address of the client it took the connection from.
//!
//! The connection guard reads it on listeners with `proxy_protocol: true`,
//! once per connection, and makes the header's source the connection's peer
//! address, which every later use (`X-Forwarded-For`, `deny`, rate limits,
//! the access log) reads through Pingora's socket digest. The bytes are
//! parsed by the `ppp` crate; this module only decides how many to read: no
//! more than the header needs when it can tell (v2 gives its length), and it
//! hands back anything read past the header (v1 ends at its CRLF) to be put
//! back in front of the stream.

use pingora_core::protocols::l4::socket::SocketAddr as DigestAddr;
use pingora_core::protocols::l4::stream::Stream as TcpStream;
use pingora_core::protocols::{GetSocketDigest, SocketDigest};
use ppp::{v1, v2};
use std::fmt;
use std::net::SocketAddr;
use std::os::unix::io::AsRawFd;
use tokio::io::{AsyncRead, AsyncReadExt};

/// A v1 header starts with these bytes.
const V1_PREFIX: &[u8] = b"PROXY ";
/// The longest v1 header, its CRLF included (the specification's bound).
const V1_MAX_LENGTH: usize = 107;
/// A v2 header's fixed part: the signature, version and command, family
/// and protocol, and the length of the rest.
const V2_FIXED_LENGTH: usize = 16;

/// A connection's PROXY header, read.
#[derive(Debug, PartialEq, Eq)]
pub struct ProxyHeader {
    /// The client's address; `None` when the header gives none (`PROXY
    /// UNKNOWN`, a v2 `LOCAL` command such as a balancer's health check, a
    /// non-IP address family): the connection's own address stands.
    pub client: Option<SocketAddr>,
    /// What was read past the header: the start of the client's own bytes,
    /// to be put back.
    pub read_past: Vec<u8>,
}

/// Why a connection's PROXY header was refused.
#[derive(Debug)]
pub enum HeaderError {
    /// The connection does not start with a PROXY header.
    NotProxy,
    /// No CRLF within the 107 bytes a v1 header may take.
    TooLong,
    /// The connection ended (or failed) before the header did.
    Closed,
    /// A v1 header the parser refused.
    V1(v1::BinaryParseError),
    /// A v2 header the parser refused.
    V2(v2::ParseError),
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::NotProxy => f.write_str("the connection does not start with one"),
            HeaderError::TooLong => f.write_str("a v1 header longer than 107 bytes"),
            HeaderError::Closed => f.write_str("the connection ended within it"),
            HeaderError::V1(e) => write!(f, "v1: {e}"),
            HeaderError::V2(e) => write!(f, "v2: {e}"),
        }
    }
}

/// How much of the header the bytes read so far show.
#[derive(Debug, PartialEq, Eq)]
enum Extent {
    /// The header is the first this many bytes.
    Complete(usize),
    /// Read on, up to this many bytes in all.
    ReadUpTo(usize),
}

/// Read the PROXY header at the start of `stream`. The caller bounds the
/// time it may take.
pub async fn read_header<S: AsyncRead + Unpin>(stream: &mut S) -> Result<ProxyHeader, HeaderError> {
    let mut read = vec![0u8; V1_MAX_LENGTH];
    let mut filled = 0;
    loop {
        let upto = match extent(&read[..filled])? {
            Extent::Complete(length) => {
                let client = client_of(&read[..length])?;
                read.truncate(filled);
                let read_past = read.split_off(length);
                return Ok(ProxyHeader { client, read_past });
            }
            Extent::ReadUpTo(upto) => upto,
        };
        if read.len() < upto {
            read.resize(upto, 0);
        }
        match stream.read(&mut read[filled..upto]).await {
            Ok(0) | Err(_) => return Err(HeaderError::Closed),
            Ok(n) => filled += n,
        }
    }
}

/// How far the header goes, from its first bytes. The first read takes at
/// most 16 bytes: all of a v2 header's fixed part, at most one byte past
/// the shortest v1 header (`PROXY UNKNOWN\r\n`).
fn extent(read: &[u8]) -> Result<Extent, HeaderError> {
    if read.is_empty() {
        Ok(Extent::ReadUpTo(V2_FIXED_LENGTH))
    } else if starts_as(read, v2::PROTOCOL_PREFIX) {
        let Some(length) = read.get(14..16) else {
            return Ok(Extent::ReadUpTo(V2_FIXED_LENGTH));
        };
        let full = V2_FIXED_LENGTH + usize::from(u16::from_be_bytes([length[0], length[1]]));
        Ok(if read.len() >= full {
            Extent::Complete(full)
        } else {
            Extent::ReadUpTo(full)
        })
    } else if starts_as(read, V1_PREFIX) {
        match memchr::memmem::find(read, b"\r\n") {
            Some(cr) if cr + 2 <= V1_MAX_LENGTH => Ok(Extent::Complete(cr + 2)),
            Some(_) => Err(HeaderError::TooLong),
            None if read.len() >= V1_MAX_LENGTH => Err(HeaderError::TooLong),
            None => Ok(Extent::ReadUpTo(V1_MAX_LENGTH)),
        }
    } else {
        Err(HeaderError::NotProxy)
    }
}

/// Whether `read` is the start of `prefix`, or starts with it.
fn starts_as(read: &[u8], prefix: &[u8]) -> bool {
    read.starts_with(prefix) || prefix.starts_with(read)
}

/// The client address of a complete header.
fn client_of(header: &[u8]) -> Result<Option<SocketAddr>, HeaderError> {
    if header.starts_with(v2::PROTOCOL_PREFIX) {
        let header = v2::Header::try_from(header).map_err(HeaderError::V2)?;
        if header.command == v2::Command::Local {
            return Ok(None);
        }
        Ok(match header.addresses {
            v2::Addresses::IPv4(ip) => Some(SocketAddr::from((ip.source_address, ip.source_port))),
            v2::Addresses::IPv6(ip) => Some(SocketAddr::from((ip.source_address, ip.source_port))),
            v2::Addresses::Unspecified | v2::Addresses::Unix(_) => None,
        })
    } else {
        let header = v1::Header::try_from(header).map_err(HeaderError::V1)?;
        Ok(match header.addresses {
            v1::Addresses::Tcp4(ip) => Some(SocketAddr::from((ip.source_address, ip.source_port))),
            v1::Addresses::Tcp6(ip) => Some(SocketAddr::from((ip.source_address, ip.source_port))),
            v1::Addresses::Unknown => None,
        })
    }
}

/// Make `client` the peer address of `tcp` for everything that reads it
/// from the socket digest; the local address stays the socket's own (the
/// guard found the listener by it).
pub fn set_client_addr(tcp: &mut TcpStream, client: SocketAddr) {
    let digest = SocketDigest::from_raw_fd(tcp.as_raw_fd());
    if let Some(local) = tcp
        .get_socket_digest()
        .and_then(|d| d.local_addr.get().cloned())
    {
        let _ = digest.local_addr.set(local);
    }
    let _ = digest.peer_addr.set(Some(DigestAddr::Inet(client)));
    tcp.set_socket_digest(digest);
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_test::io::Builder;

    const REQUEST: &[u8] = b"GET / HTTP/1.1\r\n\r\n";

    fn v2_header(command: v2::Command, source: &str, destination: &str) -> Vec<u8> {
        let addresses = (
            source.parse::<SocketAddr>().unwrap(),
            destination.parse().unwrap(),
        );
        v2::Builder::with_addresses(v2::Version::Two | command, v2::Protocol::Stream, addresses)
            .build()
            .unwrap()
    }

    async fn read_all_at_once(bytes: &[u8]) -> Result<ProxyHeader, HeaderError> {
        read_header(&mut &bytes[..]).await
    }

    #[tokio::test]
    async fn v1_gives_the_source_and_hands_back_the_rest() {
        let mut sent = b"PROXY TCP4 203.0.113.7 192.0.2.1 51000 443\r\n".to_vec();
        sent.extend_from_slice(REQUEST);
        let header = read_all_at_once(&sent).await.unwrap();
        assert_eq!(header.client, Some("203.0.113.7:51000".parse().unwrap()));
        // At most 107 bytes are read, so the rest is the start of the request.
        assert!(
            REQUEST.starts_with(&header.read_past),
            "{:?}",
            header.read_past
        );
    }

    #[tokio::test]
    async fn v1_ipv6_and_unknown() {
        let header = read_all_at_once(b"PROXY TCP6 2001:db8::7 2001:db8::1 51000 443\r\n")
            .await
            .unwrap();
        assert_eq!(header.client, Some("[2001:db8::7]:51000".parse().unwrap()));
        let header = read_all_at_once(b"PROXY UNKNOWN\r\n").await.unwrap();
        assert_eq!(header.client, None);
        assert!(header.read_past.is_empty());
    }

    #[tokio::test]
    async fn v2_reads_exactly_its_length() {
        let header = v2_header(
            v2::Command::Proxy,
            "[2001:db8::7]:51000",
            "[2001:db8::1]:443",
        );
        let mut sent = header.clone();
        sent.extend_from_slice(REQUEST);
        // The mock fails if more is read than the reads it expects.
        let mut stream = Builder::new()
            .read(&header[..16])
            .read(&header[16..])
            .build();
        let got = read_header(&mut stream).await.unwrap();
        assert_eq!(got.client, Some("[2001:db8::7]:51000".parse().unwrap()));
        assert!(got.read_past.is_empty());
        let got = read_all_at_once(&sent).await.unwrap();
        assert_eq!(got.client, Some("[2001:db8::7]:51000".parse().unwrap()));
        assert!(got.read_past.is_empty(), "nothing past a v2 header is read");
    }

    #[tokio::test]
    async fn v2_local_keeps_the_connections_address() {
        let header = v2_header(v2::Command::Local, "10.0.0.1:1", "10.0.0.2:2");
        assert_eq!(read_all_at_once(&header).await.unwrap().client, None);
        let ipv4 = v2_header(v2::Command::Proxy, "203.0.113.7:51000", "192.0.2.1:443");
        assert_eq!(
            read_all_at_once(&ipv4).await.unwrap().client,
            Some("203.0.113.7:51000".parse().unwrap())
        );
    }

    #[tokio::test]
    async fn a_header_in_small_pieces_is_read_whole() {
        let sent = b"PROXY TCP4 203.0.113.7 192.0.2.1 51000 443\r\n";
        let mut stream = Builder::new()
            .read(&sent[..3])
            .read(&sent[3..20])
            .read(&sent[20..])
            .build();
        let header = read_header(&mut stream).await.unwrap();
        assert_eq!(header.client, Some("203.0.113.7:51000".parse().unwrap()));
    }

    #[tokio::test]
    async fn no_header_or_a_bad_one_is_refused() {
        let too_long = [b"PROXY TCP4 ".as_slice(), &[b'1'; 120]].concat();
        for (sent, error) in [
            (REQUEST, "does not start"),
            (b"\x16\x03\x01\x02\x00".as_slice(), "does not start"),
            (b"PROXY TCP4 203.0.113.7\r\n", "v1:"),
            (b"PROXY TCP4 999.0.113.7 192.0.2.1 1 2\r\n", "v1:"),
            (too_long.as_slice(), "longer than 107"),
            (b"PROXY TCP4 203.0", "ended"),
            (&v2::PROTOCOL_PREFIX[..8], "ended"),
            (b"", "ended"),
        ] {
            let got = read_all_at_once(sent).await.unwrap_err().to_string();
            assert!(got.contains(error), "{sent:?}: {got}");
        }
        let mut bad_version = v2_header(v2::Command::Proxy, "10.0.0.1:1", "10.0.0.2:2");
        bad_version[12] = 0x31;
        let got = read_all_at_once(&bad_version)
            .await
            .unwrap_err()
            .to_string();
        assert!(got.starts_with("v2:"), "{got}");
    }

    #[tokio::test]
    async fn garbage_is_refused_at_its_first_byte() {
        // One byte tells: no wait for more.
        let mut stream = Builder::new().read(b"G").build();
        assert!(matches!(
            read_header(&mut stream).await,
            Err(HeaderError::NotProxy)
        ));
    }
}
