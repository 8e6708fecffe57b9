//! Shared helpers of the end-to-end tests: real `switchyard` and demo
//! backend processes on 127.0.0.1 ephemeral ports, a small HTTP client, and
//! metric scraping, and a DNS server. Every process is killed when its handle drops. One
//! module per job; everything is re-exported here.

#![allow(dead_code, unused_imports)] // each test binary uses a different part of this module

pub mod backend;
pub mod balancer;
pub mod certs;
pub mod client;
pub mod config;
pub mod dns;
pub mod load;
pub mod ports;
pub mod process;
pub mod python_peer;
pub mod raw_backend;
pub mod scrape;

pub use backend::Backend;
pub use balancer::{Balancer, Daemon, Site};
pub use certs::{CertFiles, TestCa};
pub use client::{count, cut_off_after, exchange, get, status_line, try_get, Client};
pub use config::{server_section, single_peer, upstream_section};
pub use dns::DnsServer;
pub use load::{Load, LoadReport};
pub use ports::free_port;
pub use process::{
    alive, backend_bin, example_bin, output_text, run_switchyard, switchyard_bin, wait_until,
    Process,
};
pub use python_peer::{run_script, PythonPeer};
pub use scrape::Scrape;
