//! A DNS server under the test's control, on a loopback UDP port: it
//! answers A and SRV queries from records the test changes while it runs
//! (`NXDOMAIN` for names it has none of, SERVFAIL for names told to fail),
//! and can be stopped. Messages are
//! read and written with `hickory-proto`.

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::rdata::{A, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// The TTL of every answer: short, so a resolver asks again soon.
const TTL: u32 = 1;

/// One SRV record: priority, weight, port, target host.
pub type SrvRecord = (u16, u16, u16, &'static str);

#[derive(Default)]
struct Zone {
    a: HashMap<String, Vec<Ipv4Addr>>,
    srv: HashMap<String, Vec<SrvRecord>>,
    /// Names answered with SERVFAIL, whatever their records.
    failing: HashSet<String>,
}

/// A running DNS server; stopped on drop.
pub struct DnsServer {
    pub addr: SocketAddr,
    zone: Arc<Mutex<Zone>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl DnsServer {
    /// A server with no records on 127.0.0.1.
    pub fn start() -> DnsServer {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind the DNS server");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("read timeout");
        let addr = socket.local_addr().expect("its address");
        let zone = Arc::new(Mutex::new(Zone::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (zone, stop) = (Arc::clone(&zone), Arc::clone(&stop));
            std::thread::spawn(move || serve(&socket, &zone, &stop))
        };
        DnsServer {
            addr,
            zone,
            stop,
            thread: Some(thread),
        }
    }

    /// `name` has exactly the A records `ips` from now on (none: NXDOMAIN).
    pub fn set_a(&self, name: &str, ips: &[&str]) {
        let ips = ips
            .iter()
            .map(|ip| ip.parse().expect("an IPv4 address"))
            .collect();
        let mut zone = self.zone();
        zone.failing.remove(&key(name));
        zone.a.insert(key(name), ips);
    }

    /// Answer A and SRV queries for `name` with SERVFAIL (until `set_a`).
    pub fn fail(&self, name: &str) {
        self.zone().failing.insert(key(name));
    }

    /// `name` has exactly the SRV records `records` from now on.
    pub fn set_srv(&self, name: &str, records: &[SrvRecord]) {
        self.zone().srv.insert(key(name), records.to_vec());
    }

    fn zone(&self) -> std::sync::MutexGuard<'_, Zone> {
        self.zone.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stop answering; the port closes.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn serve(socket: &UdpSocket, zone: &Mutex<Zone>, stop: &AtomicBool) {
    let mut buffer = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        let Ok((len, from)) = socket.recv_from(&mut buffer) else {
            continue;
        };
        let Ok(query) = Message::from_vec(&buffer[..len]) else {
            continue;
        };
        let zone = zone.lock().unwrap_or_else(|p| p.into_inner());
        let answer = respond(&query, &zone);
        drop(zone);
        if let Ok(bytes) = answer.to_vec() {
            let _ = socket.send_to(&bytes, from);
        }
    }
}

/// The answer to `query` from `zone`: its records, an empty answer for a
/// name it has records of another kind for, else NXDOMAIN.
fn respond(query: &Message, zone: &Zone) -> Message {
    let mut answer = Message::new(
        query.metadata.id,
        MessageType::Response,
        query.metadata.op_code,
    );
    answer.metadata.authoritative = true;
    answer.metadata.recursion_desired = query.metadata.recursion_desired;
    answer.metadata.recursion_available = true;
    let mut known = false;
    for question in &query.queries {
        answer.add_query(question.clone());
        let name = key(&question.name().to_ascii());
        // AAAA queries of a failing name still get their (empty) answer,
        // as an IPv4-only name's do when only its A records break.
        if zone.failing.contains(&name) && question.query_type() != RecordType::AAAA {
            answer.metadata.response_code = ResponseCode::ServFail;
            return answer;
        }
        let a = zone.a.get(&name).filter(|ips| !ips.is_empty());
        let srv = zone.srv.get(&name).filter(|records| !records.is_empty());
        known |= a.is_some() || srv.is_some();
        match question.query_type() {
            RecordType::A => {
                for ip in a.into_iter().flatten() {
                    answer.add_answer(Record::from_rdata(
                        question.name().clone(),
                        TTL,
                        RData::A(A(*ip)),
                    ));
                }
            }
            RecordType::SRV => {
                for (priority, weight, port, target) in srv.into_iter().flatten() {
                    let target = Name::from_ascii(format!("{target}.")).expect("a target name");
                    answer.add_answer(Record::from_rdata(
                        question.name().clone(),
                        TTL,
                        RData::SRV(SRV::new(*priority, *weight, *port, target)),
                    ));
                }
            }
            _ => {}
        }
    }
    if !known {
        answer.metadata.response_code = ResponseCode::NXDomain;
    }
    answer
}
