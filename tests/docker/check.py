#!/usr/bin/env python3
"""The checks of scripts/docker-test.sh, once `compose up` has run
compose.yaml: what a user of the image and the topology relies on, seen
through the published ports (127.0.0.1 only) and Compose's own commands.

usage: check.py --project NAME --image IMAGE

Every wait polls with a deadline; the first failed check ends the run with
a message saying what was expected and what was seen.
"""

import argparse
import http.client
import json
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

MAX_IMAGE_BYTES = 120_000_000
CLIENTS = 8


class Compose:
    """`docker-compose` (v1; `docker compose` takes the same arguments) on one project."""

    def __init__(self, project):
        self.argv = ["docker-compose", "--project-name", project, "--file", "compose.yaml"]

    def run(self, *args):
        done = subprocess.run(self.argv + list(args), capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            fail(f"docker-compose {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout.strip()

    def port(self, service, port):
        """The host port compose published `service`'s `port` on."""
        return int(self.run("port", service, str(port)).rsplit(":", 1)[1])

    def container(self, service):
        return self.run("ps", "-q", service)


def docker(*args):
    done = subprocess.run(["/usr/bin/docker"] + list(args), capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        fail(f"docker {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


def fail(message):
    print(f"docker-test: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def ok(message):
    print(f"docker-test: ok: {message}", flush=True)


def get(port, path):
    """(status, body) of GET http://127.0.0.1:port/path; (None, why) when it could not be made."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except (OSError, urllib.error.URLError) as e:
        return None, str(e)


def wait_for(what, condition, limit):
    """Poll `condition` (it returns (holds, what it saw)) until it holds, at most `limit` s."""
    deadline = time.monotonic() + limit
    last = None
    while time.monotonic() < deadline:
        result, last = condition()
        if result:
            return result
        time.sleep(0.2)
    fail(f"{what}: not within {limit} s; last seen: {last}")


def peer_states(port):
    """{peer name: state} of the balancer's status page."""
    status, body = get(port, "/check?format=json")
    if status != 200:
        return None, f"/check: {status} {body[:200]}"
    states = {}
    for upstream in json.loads(body)["upstreams"]:
        for peer in upstream["peers"]:
            name = (peer["name"] or peer["address"]).split(":")[0]
            # A name that moved to a new address has its old one listed
            # (draining) until it goes: an UP one stands for the name.
            if states.get(name) != "up":
                states[name] = peer["state"]
    return states, states


def peers_are(port, wanted):
    def condition():
        states, seen = peer_states(port)
        return (states is not None and all(states.get(k) == v for k, v in wanted.items())), seen
    return condition


def reloads(metrics_port):
    status, body = get(metrics_port, "/metrics")
    if status != 200:
        return None
    found = re.search(r'^switchyard_config_reloads_total\{result="success"\} (\S+)$', body, re.M)
    return float(found.group(1)) if found else 0.0


def check_image(image):
    inspect = json.loads(docker("image", "inspect", image))[0]
    size = inspect["Size"]
    if size >= MAX_IMAGE_BYTES:
        fail(f"{image} is {size / 1e6:.1f} MB, over {MAX_IMAGE_BYTES / 1e6:.0f} MB")
    user = inspect["Config"]["User"]
    if user in ("", "root", "0"):
        fail(f"{image} runs as {user or 'root'}")
    health = (inspect["Config"].get("Healthcheck") or {}).get("Test")
    if not health:
        fail(f"{image} has no HEALTHCHECK")
    ok(f"image {image}: {size / 1e6:.1f} MB, user {user}, HEALTHCHECK {' '.join(health)}")


def check_topology(compose, http_port):
    up = {"b1": "up", "b2": "up", "b3": "up"}
    wait_for("/check lists b1, b2 and b3 UP", peers_are(http_port, up), 60)
    ok("/check lists b1, b2 and b3 UP")

    answered = set()

    def all_answer():
        status, body = get(http_port, "/api/data")
        if status == 200:
            answered.add(json.loads(body)["backend"])
        return answered == {"b1", "b2", "b3"}, f"answered by {sorted(answered)}, last {status}"
    wait_for("/api/data answered by all three backends", all_answer, 30)
    ok("/api/data answered by b1, b2 and b3")

    uid = compose.run("exec", "-T", "switchyard", "id", "-u")
    if uid == "0":
        fail("the switchyard container runs as root")
    ok(f"switchyard runs as uid {uid}")

    container = compose.container("switchyard")

    def healthy():
        state = docker("inspect", "--format", "{{.State.Health.Status}}", container)
        return state == "healthy", state
    wait_for("the switchyard container is healthy (HEALTHCHECK)", healthy, 60)
    ok("the switchyard container is healthy")


def check_prometheus(port):
    def targets_up():
        status, body = get(port, "/api/v1/targets")
        if status != 200:
            return False, f"{status} {body[:200]}"
        targets = {t["labels"]["instance"]: t["health"] for t in json.loads(body)["data"]["activeTargets"]}
        return targets == {"switchyard": "up", "b1": "up", "b2": "up", "b3": "up"}, targets
    wait_for("Prometheus scrapes the balancer and the backends", targets_up, 60)
    ok("Prometheus targets switchyard, b1, b2, b3: up")


class Load:
    """Keep-alive clients GETting a path in a loop until stopped; a request
    fails unless it gets a 200."""

    def __init__(self, port, path, clients):
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.requests = self.failed = 0
        self.samples = []
        self.threads = [threading.Thread(target=self.client, args=(port, path)) for _ in range(clients)]
        for thread in self.threads:
            thread.start()

    def client(self, port, path):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while not self.stopping.is_set():
            try:
                connection.request("GET", path)
                response = connection.getresponse()
                response.read()
                error = None if response.status == 200 else f"HTTP {response.status}"
            except (OSError, http.client.HTTPException) as e:
                error = repr(e)
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            with self.lock:
                self.requests += 1
                if error:
                    self.failed += 1
                    self.samples = (self.samples + [error])[:5]
        connection.close()

    def finish(self):
        self.stopping.set()
        for thread in self.threads:
            thread.join()
        return self.requests, self.failed


def check_kill_under_load(compose, http_port):
    """8 keep-alive clients; b1 killed under them; every request must succeed."""
    load = Load(http_port, "/api/data", CLIENTS)
    time.sleep(2)
    killed_at = time.monotonic()
    compose.run("kill", "b1")
    wait_for("b1 DOWN on /check after `kill b1`",
             peers_are(http_port, {"b1": "down", "b2": "up", "b3": "up"}), 20)
    down_after = time.monotonic() - killed_at
    time.sleep(2)
    requests, failed = load.finish()
    if failed or requests == 0:
        fail(f"{failed} of {requests} requests failed while b1 was killed: {load.samples}")
    ok(f"kill b1 under {CLIENTS} keep-alive clients: {requests} requests, {failed} failed; "
       f"b1 DOWN {down_after:.1f} s after the kill")

    started_at = time.monotonic()
    compose.run("start", "b1")
    wait_for("b1 UP again after `start b1`", peers_are(http_port, {"b1": "up", "b2": "up", "b3": "up"}), 40)
    ok(f"start b1: UP again after {time.monotonic() - started_at:.1f} s")


def check_reload(compose, http_port, metrics):
    container = compose.container("switchyard")
    started = docker("inspect", "--format", "{{.State.StartedAt}}", container)
    before = reloads(metrics)
    if before is None:
        fail("no metrics before the reload")
    compose.run("kill", "-s", "SIGHUP", "switchyard")

    def reloaded():
        now = reloads(metrics)
        return now is not None and now > before, now
    wait_for("a reload counted after SIGHUP", reloaded, 20)
    if docker("inspect", "--format", "{{.State.StartedAt}}", container) != started:
        fail("the switchyard container restarted instead of reloading")
    status, _ = get(http_port, "/api/data")
    if status != 200:
        fail(f"/api/data after the reload: {status}")
    ok("kill -s SIGHUP switchyard: reloaded in place (switchyard_config_reloads_total{result=\"success\"} "
       f"{before:.0f} -> {reloads(metrics):.0f}), same container, /api/data 200")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--project", required=True)
    parser.add_argument("--image", required=True)
    args = parser.parse_args()
    compose = Compose(args.project)
    http_port = compose.port("switchyard", 8080)
    metrics = compose.port("switchyard", 6192)
    prometheus = compose.port("prometheus", 9090)

    check_image(args.image)
    check_topology(compose, http_port)
    check_prometheus(prometheus)
    check_kill_under_load(compose, http_port)
    check_reload(compose, http_port, metrics)


if __name__ == "__main__":
    main()
