"""The benchmark section "tls" (issue #15): what terminating HTTPS costs.
nginx, HAProxy and switchyard, one worker each, over the throughput
section's three fixed-response backends (plain HTTP, keep-alive), each with
the same ECDSA P-256 certificate, made by the openssl command for the run
(its key lives in the run's temporary directory only). Three measures, the
balancers in alternating rounds:

- keep-alive: h2load (HTTP/1.1, one thread) with 64 keep-alive connections;
  it offers only `http/1.1` by ALPN, so switchyard, which also offers h2,
  speaks HTTP/1.1 like nginx and HAProxy. requests/s, p50 and p99 (from
  h2load's log of each request).
- the same over plain HTTP, through a second set of the three balancers
  configured alike without TLS: what TLS adds per keep-alive request.
- handshakes: 8 parallel `openssl s_time -new -tls1_3`, each making one
  connection after the other: a full TLS 1.3 handshake (a new session every
  time: none is resumed), one HTTP/1.0 GET, the close. Not wrk with
  `Connection: close`: wrk resumes the session on reconnecting (nginx's
  `$ssl_session_reused` said "r" for all but its first connections).
  Checked by hand with nginx's `$ssl_protocol`, `$ssl_curve` and
  `$ssl_session_reused` in an access log: s_time's connections are all
  TLSv1.3, X25519 and not reused.

Per run also the balancer's CPU time per request (or handshake) and its CPU
share of the run (from /proc; one worker can use at most 100 %), and the
client's CPU time as a share of one core: a balancer near 100 % is the
bottleneck; when it is well below, the client (or the shared machine) is,
and the balancers' CPU per handshake is the figure that compares them."""

import socket
import ssl
import subprocess
import time

from balancers import (SWITCHYARD, Certificate, haproxy_command, home_of, nginx_command, start_balancers,
                       switchyard_command)
from launch import free_port
from load import h2load, tls13_handshakes
from processes import TICK_US, cpu_ticks, pids_of
from report import ROOT, markdown_table, summarize

KEEPALIVE_CONNECTIONS = 64
HANDSHAKE_CLIENTS = 8
# The system's OpenSSL, nginx's and HAProxy's ("OpenSSL 3.0.19").
OPENSSL_VERSION = " ".join(subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout.split()[:2])
# The measures, each against the balancers with TLS or those without.
MEASURES = {"keep-alive": "tls", "http keep-alive": "http", "handshakes": "tls"}


def make_certificate(home):
    """A self-signed ECDSA P-256 certificate for localhost and 127.0.0.1,
    valid 30 days (no expiry warning), its files in `home`."""
    home.mkdir(parents=True, exist_ok=True)
    cert = Certificate(home / "cert.pem", home / "key.pem", home / "cert-and-key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", str(cert.key), "-out", str(cert.cert), "-days", "30", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        capture_output=True, text=True, check=True)
    cert.pem.write_text(cert.cert.read_text() + cert.key.read_text())
    return cert


def balancer_commands(workdir, tag, backends, workers, cert):
    """name -> (port, argv) of nginx, HAProxy and switchyard over `backends`,
    each with an HTTPS listener of `cert` (None: a plain HTTP one)."""
    commands = {}
    for name, command in (("nginx", nginx_command), ("haproxy", haproxy_command)):
        port = free_port()
        commands[name] = (port, command(home_of(workdir, tag, name), port, backends, workers, tls=cert))
    port = free_port()
    commands["switchyard"] = (port, switchyard_command(home_of(workdir, tag, "switchyard"), port, backends,
                                                      workers, "/", tls=cert))
    return commands


def check_answers(name, port):
    """Fail unless the balancer answers s_time's kind of request (HTTP/1.0,
    Host) over TLS 1.3 with a 200: s_time itself does not look."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            context.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        status = tls.recv(64).split(b"\r\n", 1)[0]
    if b" 200 " not in status + b" ":
        raise RuntimeError(f"{name} over TLS answered {status!r}, not 200")


def run_load(measure, port, duration):
    """One run of `measure` against the HTTPS port `port`."""
    if measure == "handshakes":
        return tls13_handshakes(port, HANDSHAKE_CLIENTS, duration)
    return h2load(port, KEEPALIVE_CONNECTIONS, duration, scheme="https" if measure == "keep-alive" else "http")


def measure(procs, workdir, args, backends):
    """The section's figures: measure -> balancer -> medians over the rounds
    of rps, p50, p99, cpu_us (the balancer's, per request), balancer_share
    and client_share (of one core), the errors of all rounds, and `tls`,
    what h2load negotiated. The smoke run leaves plain HTTP out: it is the
    keep-alive run without TLS, and the throughput section's ground."""
    measures = {m: tag for m, tag in MEASURES.items() if not (args.smoke and tag == "http")}
    cert = make_certificate(workdir / "tls-certificate")
    balancers = {tag: start_balancers(procs, balancer_commands(workdir, tag, backends, args.workers, tag_cert), tag)
                 for tag, tag_cert in (("tls", cert), ("http", None)) if tag in measures.values()}
    for name, (port, _) in balancers["tls"].items():
        check_answers(name, port)
    print(f"# HTTPS: {args.rounds} rounds x {args.duration}s, keep-alive {KEEPALIVE_CONNECTIONS} connections, "
          f"handshakes {HANDSHAKE_CLIENTS} s_time clients, {args.workers} worker(s)", flush=True)
    rows = {m: {name: [] for name in balancers[tag]} for m, tag in measures.items()}
    for round_no in range(args.rounds):
        for measure_name, tag in measures.items():
            for name, (port, pid) in balancers[tag].items():
                pids = pids_of(pid)
                before = cpu_ticks(pids)
                result = run_load(measure_name, port, args.duration)
                used_us = (cpu_ticks(pids) - before) * TICK_US
                seconds = result.get("seconds", args.duration)
                result["cpu_us"] = used_us / max(result["requests"], 1)
                result["balancer_share"] = used_us / 1e6 / seconds
                result["client_share"] = result["client_cpu"] / seconds
                rows[measure_name][name].append(result)
                latency = (f"  p50 {result['p50']*1e3:6.2f} ms  p99 {result['p99']*1e3:6.2f} ms" if "p50" in result
                           else f"  {result['bytes_per_response']:.0f} bytes/response")
                print(f"round {round_no + 1} {measure_name:15} {name:10} {result['rps']:8.0f} req/s{latency}"
                      f"  cpu {result['cpu_us']:6.1f} us/req  balancer cpu {result['balancer_share']*100:3.0f} %"
                      f"  client cpu {result['client_share']*100:3.0f} %"
                      f"  errors {result['errors']} {result['socket_errors']}  {result.get('tls', '')}", flush=True)
    summary = {}
    for measure_name, by_name in rows.items():
        summary[measure_name] = {}
        for name, results in by_name.items():
            keys = ["rps", "cpu_us", "balancer_share", "client_share"] + (["p50", "p99"] if "p50" in results[0] else [])
            summary[measure_name][name] = summarize(results, keys)
            summary[measure_name][name]["tls"] = next((r["tls"] for r in results if r.get("tls")), "")
    return summary


def table(figures, unit):
    """A measure's table, ratios to nginx (latency columns where the
    client measured latency)."""
    nginx = figures["nginx"]
    latency = "p50" in nginx

    def row(name, f):
        cells = [name, f"{f['rps']:.0f}", f"{f['rps'] / nginx['rps']:.2f}"]
        if latency:
            cells += [f"{f['p50']*1e3:.2f}", f"{f['p99']*1e3:.2f}", f"{f['p99'] / nginx['p99']:.2f}"]
        return cells + [f"{f['cpu_us']:.1f}", f"{f['cpu_us'] / nginx['cpu_us']:.2f}", f"{f['balancer_share']*100:.0f}",
                        f"{f['client_share']*100:.0f}", f"{f['errors']} {f['socket_errors']}".strip()]

    columns = ["balancer", f"{unit}s/s", "x nginx"] + (["p50 ms", "p99 ms", "x nginx"] if latency else [])
    columns += [f"CPU us/{unit}", "x nginx", "balancer CPU %", "client CPU %", "errors"]
    return markdown_table(columns, [row(name, f) for name, f in figures.items()])


def tls_cost_table(summary):
    """Per balancer: keep-alive over plain HTTP and over TLS, and the CPU
    time TLS adds per request."""
    return markdown_table(
        ["balancer", "HTTP requests/s", "HTTPS requests/s", "HTTP CPU us/request", "HTTPS CPU us/request",
         "TLS adds us/request"],
        [(name, f"{plain['rps']:.0f}", f"{tls['rps']:.0f}", f"{plain['cpu_us']:.1f}", f"{tls['cpu_us']:.1f}",
          f"{tls['cpu_us'] - plain['cpu_us']:.1f}")
         for name, plain, tls in ((n, summary["http keep-alive"][n], f) for n, f in summary["keep-alive"].items())],
    )


def ratios(figures, what):
    """switchyard's requests/s and CPU per request against nginx's and
    HAProxy's, in words."""
    ours, nginx, haproxy = figures["switchyard"], figures["nginx"], figures["haproxy"]
    return (f"{what}: switchyard {ours['rps'] / nginx['rps']:.2f}x nginx's and "
            f"{ours['rps'] / haproxy['rps']:.2f}x HAProxy's rate, at {ours['cpu_us'] / nginx['cpu_us']:.2f}x "
            f"nginx's and {ours['cpu_us'] / haproxy['cpu_us']:.2f}x HAProxy's CPU time per request.")


def binary_note():
    """Which switchyard binary ran, and a word when it is not the shipped
    build."""
    shipped = ROOT / "target/dist/switchyard"
    name = SWITCHYARD.relative_to(ROOT) if SWITCHYARD.is_relative_to(ROOT) else SWITCHYARD
    if SWITCHYARD.resolve() == shipped.resolve():
        return f"switchyard: `{name}`, the shipped build (dist profile, PGO)."
    return (f"switchyard: `{name}` (`SWITCHYARD_BIN`), not the shipped build `target/dist/switchyard`: "
            "a release build has neither profile-guided optimization nor fat LTO (over plain HTTP about -18 % "
            "and -9 % CPU time per request, by the README), so compare its keep-alive figures with care; its "
            "OpenSSL is the same in both builds.")


def report(summary, args):
    """The section of bench/results.md."""
    negotiated = "; ".join(f"{name}: {f['tls']}" for name, f in summary["keep-alive"].items())
    return [
        "## HTTPS: keep-alive requests and new TLS 1.3 handshakes",
        "",
        f"Measured by `./bench/run.sh --section tls` on {time.strftime('%Y-%m-%d')}: nginx, HAProxy and switchyard "
        f"terminate TLS with the same ECDSA P-256 certificate (made by `openssl req` for the run), {args.workers} "
        "worker(s) each, in front of the throughput section's three fixed-response backends (plain HTTP, keep-alive); "
        "TLS 1.2 and 1.3 with Mozilla's intermediate ciphers, session cache and tickets as they come. "
        f"OpenSSL: all three use the system's libssl ({OPENSSL_VERSION}; switchyard through "
        "`OPENSSL_NO_VENDOR`, see .cargo/config.toml). "
        f"{args.rounds} rounds of {args.duration} s per balancer and measure, alternating; medians over rounds; ratios "
        "to nginx (for p99 and CPU, lower is better). CPU: the balancer's user and system time per request "
        "(/proc), and the share of the run it was busy (one worker: at most 100 %); client CPU: the load client's, "
        "as a share of one core (2 cores: at most 200 %). A balancer well below 100 % was held back by the client "
        "or the shared machine, and then CPU per request is the figure to compare. " + binary_note(),
        "",
        f"### Keep-alive: h2load (HTTP/1.1, 1 thread) with {KEEPALIVE_CONNECTIONS} connections",
        "",
        "h2load offers only `http/1.1` by ALPN, so switchyard (which offers h2 too, its default) speaks HTTP/1.1 "
        f"like the others. Negotiated: {negotiated}.",
        "",
        *table(summary["keep-alive"], "request"),
        "",
        "What TLS adds: the same h2load run over plain HTTP against a second set of the three balancers, "
        "configured alike without TLS, in the same rounds.",
        "",
        *tls_cost_table(summary),
        "",
        f"### New TLS 1.3 handshakes: {HANDSHAKE_CLIENTS} parallel `openssl s_time -new -tls1_3`",
        "",
        "Each s_time client makes one connection after another: a full TLS 1.3 handshake (a new session each time, "
        "none resumed; key exchange X25519, the certificate's ECDSA P-256 signature), one HTTP/1.0 GET, the close. "
        "Checked by hand with nginx's `$ssl_protocol`, `$ssl_curve` and `$ssl_session_reused`: all TLSv1.3, X25519, "
        "not reused. Not wrk with `Connection: close`: wrk resumes the TLS session when it reconnects. "
        "Handshakes/s: the connections all clients completed over the run's wall time.",
        "",
        *table(summary["handshakes"], "handshake"),
        "",
        ratios(summary["keep-alive"], "Keep-alive"),
        ratios(summary["handshakes"], "Handshakes"),
    ]
