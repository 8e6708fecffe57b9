//! A backend for the tests that the demo backend cannot play: it records
//! every request exactly as it arrived (target, headers, decoded body) and
//! behaves like the backends switchyard meets in production: it closes idle
//! keep-alive connections after a timeout (Node's `keepAliveTimeout`),
//! trickles a response header, or switches protocols.
//!
//! Answers by path: `/trickle` sends its response header one byte every
//! 200 ms; `/ws` answers `101 Switching Protocols` and then echoes bytes
//! until the client closes; everything else gets `200 ok`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// One request as the backend received it.
#[derive(Debug, Clone)]
pub struct Received {
    /// The number of the connection it came on, from 0.
    pub connection: usize,
    pub method: String,
    /// The request-target, byte for byte.
    pub target: String,
    /// Header names lowercased, in order.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Received {
    /// The values of header `name`, joined with `, ` (None when absent).
    pub fn header(&self, name: &str) -> Option<String> {
        let values: Vec<&str> = self
            .headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect();
        (!values.is_empty()).then(|| values.join(", "))
    }
}

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<Received>>,
    connections: AtomicUsize,
    stop: AtomicBool,
}

/// A recording backend on a loopback port; stops when dropped.
pub struct RawBackend {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl RawBackend {
    /// Start one that keeps idle connections open for `idle_close` (None:
    /// until the client closes them).
    pub fn start(idle_close: Option<Duration>) -> RawBackend {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a raw backend");
        let addr = listener.local_addr().expect("raw backend address");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let shared = Arc::new(Shared::default());
        let acceptor = {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || {
                while !shared.stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let connection = shared.connections.fetch_add(1, Ordering::Relaxed);
                            let shared = Arc::clone(&shared);
                            std::thread::spawn(move || {
                                serve(stream, connection, &shared, idle_close)
                            });
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        };
        RawBackend {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// Every request received so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared
            .received
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The requests received so far for targets starting with `prefix`.
    pub fn received_under(&self, prefix: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.target.starts_with(prefix))
            .collect()
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::Relaxed)
    }
}

impl Drop for RawBackend {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// Serve one connection until it closes, errs, idles out or the backend stops.
fn serve(stream: TcpStream, connection: usize, shared: &Shared, idle_close: Option<Duration>) {
    let mut writer = match stream.try_clone() {
        Ok(writer) => writer,
        Err(_) => return,
    };
    let mut reader = BufReader::new(stream);
    loop {
        // Waiting for the next request: the idle timeout, or a poll of
        // the stop flag.
        let wait = idle_close.unwrap_or(Duration::from_millis(200));
        let _ = reader.get_ref().set_read_timeout(Some(wait));
        match reader.fill_buf() {
            Ok([]) => return,
            Ok(_) => {}
            Err(_) if idle_close.is_none() && !shared.stop.load(Ordering::Relaxed) => continue,
            Err(_) => return, // idle for idle_close: close, as Node does
        }
        let _ = reader
            .get_ref()
            .set_read_timeout(Some(Duration::from_secs(10)));
        let Some(request) = read_request(&mut reader, connection) else {
            return;
        };
        let target = request.target.clone();
        shared
            .received
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(request);
        let answered = if target.starts_with("/trickle") {
            trickle(&mut writer)
        } else if target.starts_with("/ws") {
            return tunnel(reader, writer);
        } else if target.starts_with("/powered") {
            // What Express adds to every answer.
            writer.write_all(
                b"HTTP/1.1 200 OK\r\nX-Powered-By: Express\r\nContent-Length: 2\r\n\r\nok",
            )
        } else {
            writer.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        };
        if answered.is_err() {
            return;
        }
    }
}

/// Read one request; `None` when the connection ends or the request is
/// unreadable.
fn read_request(reader: &mut BufReader<TcpStream>, connection: usize) -> Option<Received> {
    let mut head = Vec::new();
    loop {
        let mut line = Vec::new();
        if reader.read_until(b'\n', &mut line).ok()? == 0 {
            return None;
        }
        let empty = line == b"\r\n" || line == b"\n";
        head.extend_from_slice(&line);
        if empty {
            break;
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Request::new(&mut headers);
    parsed.parse(&head).ok()?;
    let headers: Vec<(String, String)> = parsed
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let mut request = Received {
        connection,
        method: parsed.method?.to_string(),
        target: parsed.path?.to_string(),
        headers,
        body: Vec::new(),
    };
    if request.header("transfer-encoding").is_some() {
        request.body = read_chunked(reader)?;
    } else if let Some(length) = request.header("content-length") {
        let mut body = vec![0; length.trim().parse().ok()?];
        reader.read_exact(&mut body).ok()?;
        request.body = body;
    }
    Some(request)
}

/// A chunked body, decoded (extensions ignored, trailers skipped).
fn read_chunked(reader: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let size = line.split([';', '\r', '\n']).next()?.trim();
        let size = usize::from_str_radix(size, 16).ok()?;
        if size == 0 {
            loop {
                let mut trailer = String::new();
                if reader.read_line(&mut trailer).ok()? == 0 || trailer.trim().is_empty() {
                    return Some(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..]).ok()?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf).ok()?;
    }
}

fn trickle(writer: &mut TcpStream) -> std::io::Result<()> {
    let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let header_end = answer.len() - 2;
    for byte in &answer[..header_end] {
        writer.write_all(std::slice::from_ref(byte))?;
        std::thread::sleep(Duration::from_millis(200));
    }
    writer.write_all(&answer[header_end..])
}

/// Answer 101 and echo whatever comes until the client closes.
fn tunnel(mut reader: BufReader<TcpStream>, mut writer: TcpStream) {
    let switched =
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
    if writer.write_all(switched).is_err() {
        return;
    }
    let _ = reader.get_ref().set_read_timeout(None);
    let mut buffer = [0u8; 4096];
    loop {
        let pending = reader.buffer().len();
        let n = if pending > 0 {
            let n = pending.min(buffer.len());
            buffer[..n].copy_from_slice(&reader.buffer()[..n]);
            reader.consume(n);
            n
        } else {
            match reader.get_mut().read(&mut buffer) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            }
        };
        if writer.write_all(&buffer[..n]).is_err() {
            return;
        }
    }
}
