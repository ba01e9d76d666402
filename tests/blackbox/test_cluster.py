"""Several nodes on one Redis (issue 8): 3 `magnetar serve --storage redis://...` processes and one
Debian redis-server, all on free loopback ports, behave as one server.

redis-server is required: without it these tests fail (scripts/deps.sh installs it), they do not
skip. Rate limits and per-user caps hold across nodes (D13; `limited_nodes` below checks that);
the `nodes` fixture runs with --rate-limits off to keep the load tests simple.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import uuid

import pytest

from conftest import (Api, BgPoll, MagnetarServer, ServerStartError, Tenant, assert_increasing, free_port, login,
                      make_session, next_source_ip, parse_id, require_binary, start_admin, unique, wait_until,
                      ws_connect, ws_handshake_status, ws_messages, ws_subscribe)


class RedisServer:
    """redis-server on a free loopback port with a temp dir: AOF on, appendfsync always, no RDB."""

    def __init__(self, tls: dict | None = None):
        self.dir = tempfile.mkdtemp(prefix="magnetar-redis-")
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.tls = tls  # {"cert", "key", "ca"}: serve TLS only, on `port`

    @property
    def url(self) -> str:
        return f"{'rediss' if self.tls else 'redis'}://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed (apt-get install redis-server; scripts/deps.sh)")
        ports = ["--port", str(self.port)]
        if self.tls:
            ports = ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", self.tls["cert"],
                     "--tls-key-file", self.tls["key"], "--tls-ca-cert-file", self.tls["ca"],
                     "--tls-auth-clients", "no"]
        self.proc = subprocess.Popen(
            [binary, *ports, "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
             "--appendfsync", "always", "--dir", self.dir, "--daemonize", "no",
             "--logfile", os.path.join(self.dir, "redis.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"redis-server exited with {self.proc.returncode}; see {self.dir}/redis.log")
            if self.ping() == "+PONG":
                return
            time.sleep(0.05)
        pytest.fail("redis-server did not answer PING")

    def ping(self) -> str:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as raw:
                s = raw
                if self.tls:
                    ctx = ssl.create_default_context(cafile=self.tls["ca"])
                    s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
                s.sendall(b"PING\r\n")
                return s.recv(64).decode(errors="replace").strip()
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL: no chance to flush anything it had not already written."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def redis():
    r = RedisServer()
    r.start()
    yield r
    r.cleanup()


@pytest.fixture(scope="module")
def nodes(redis):
    """Three nodes on the one Redis, sharing the JWT secret and the bootstrap admin."""
    yield from run_nodes(redis, ["--rate-limits", "off"], ("a", "b", "c"))


def run_nodes(redis, args: list[str], labels: tuple[str, ...]):
    """Starts one node per label on `redis`, all sharing the first one's JWT secret and bootstrap
    admin; yields them, then stops them (a fixture's body: `yield from run_nodes(...)`)."""
    require_binary()
    started: list[MagnetarServer] = []
    try:
        for label in labels:
            srv = MagnetarServer(args, label=f"node-{label}", storage=redis.url)
            if started:
                srv.secret = started[0].secret
                srv.admin_password = started[0].admin_password
            started.append(srv)
            srv.start()
    except ServerStartError as e:
        pytest.fail(str(e))
    yield started
    for srv in started:
        srv.terminate(timeout=10)
        srv.kill()


@pytest.fixture(scope="module")
def users(nodes):
    """A read+write user of this module, logged in on node A."""
    admin = start_admin(nodes[0])
    return Tenant(nodes[0], admin)


def on_node(user, node):
    """The same user, logged in on another node (the user store is shared)."""
    r = login(node, user.username, user.password)
    assert r.status_code == 200, r.text
    return Api(node, r.json()["access_token"])


# D13 across nodes: small limits, and a short slot lease so that a killed node's slots come free
# quickly.
PUBLISH_LIMIT = 6
WS_CAP = 2
LEASE_SECONDS = 5


@pytest.fixture(scope="module")
def limited_nodes(redis):
    """Three more nodes on the same Redis, with their rate limits and caps on and small."""
    args = ["--rate-limit-publish", str(PUBLISH_LIMIT), "--ws-max-per-user", str(WS_CAP),
            "--poll-max-per-user", "2", "--slot-lease-seconds", str(LEASE_SECONDS)]
    yield from run_nodes(redis, args, ("d", "e", "f"))


def test_the_publish_rate_limit_holds_across_nodes(limited_nodes):
    admin = start_admin(limited_nodes[0])
    user = Tenant(limited_nodes[0], admin).user("rw")
    ip = next_source_ip()  # one client address, whichever node it reaches
    apis = [Api(n, user.token, ip) for n in limited_nodes]
    topic = unique("rl")
    statuses = []
    for i in range(PUBLISH_LIMIT + 3):
        r = apis[i % 3].post("/api/v1/messages", json={"topic": topic, "payload": {"n": i}})
        statuses.append(r.status_code)
        if r.status_code == 429:
            assert r.json() == {"error": f"Rate limit exceeded: {PUBLISH_LIMIT} per 1 minute"}
            assert 1 <= int(r.headers["Retry-After"]) <= 60
    # The cluster-wide budget, then 429 on every node (per node it would have been 3 x the budget).
    assert statuses == [201] * PUBLISH_LIMIT + [429] * 3, statuses


def test_the_long_poll_cap_holds_across_nodes(limited_nodes):
    d, e, f = limited_nodes
    admin = start_admin(d)
    user = Tenant(d, admin).user("rw")
    topic = unique("lp")
    user.api.publish(topic)
    api_d, api_f = Api(d, user.token), Api(f, user.token)
    polls = [BgPoll(api_d, [topic], timeout=15), BgPoll(api_f, [topic], timeout=15)]
    api_d.wait_for_waiter(topic)
    api_f.wait_for_waiter(topic)
    r = Api(e, user.token).post("/messages/poll", json={"topics": [topic], "timeout": 1})
    assert r.status_code == 429, r.text
    assert r.headers.get("Retry-After") == "1"
    user.api.publish(topic, {"wake": True})  # both polls answer; their slots come back
    for p in polls:
        assert p.result().status_code == 200
    wait_until(lambda: Api(e, user.token).post("/messages/poll", json={"topics": [topic], "timeout": 1})
               .status_code == 200, 5, 0.1, "poll slots back")


def test_the_websocket_cap_holds_across_nodes_and_a_dead_nodes_slots_come_free(limited_nodes, redis):
    d, e, f = limited_nodes
    admin = start_admin(d)
    user = Tenant(d, admin).user("rw")
    ws_d = ws_connect(d, user.token)
    ws_e = ws_connect(e, user.token)
    try:
        # Two open (on d and e): a third is refused on f, and on d.
        assert ws_handshake_status(f, user.token) == 403
        assert ws_handshake_status(d, user.token) == 403
        # A socket closed on d gives its slot back: f may open one now.
        ws_d.close()
        wait_until(lambda: ws_handshake_status(f, user.token) == 101, 5, 0.1, "a slot back after a close")
        ws_f = ws_connect(f, user.token)  # e and f hold the two slots
        assert ws_handshake_status(d, user.token) == 403
        # e dies without closing anything: its slot stays held until its lease ends, then frees.
        e.kill()
        killed_at = time.monotonic()
        assert ws_handshake_status(d, user.token) == 403
        wait_until(lambda: ws_handshake_status(d, user.token) == 101, LEASE_SECONDS + 10, 0.2,
                   "the dead node's slot freed by its lease")
        assert time.monotonic() - killed_at >= LEASE_SECONDS / 2  # not before the lease could end
        ws_f.close()
    finally:
        for ws in (ws_d, ws_e):
            try:
                ws.close(timeout=1)
            except Exception:  # noqa: BLE001 - the node may be gone
                pass


def test_limits_answer_503_while_redis_is_down(limited_nodes, redis):
    d = limited_nodes[0]
    admin = start_admin(d)
    user = Tenant(d, admin).user("rw")
    api = Api(d, user.token, next_source_ip())
    redis.stop()
    try:
        r = api.post("/api/v1/messages", json={"topic": unique("down"), "payload": 1})
        assert r.status_code == 503, r.text
        assert r.headers.get("Content-Type", "").startswith("application/json")
        # The token check meets the outage first (its own 503); the limits' 503 (a JSON
        # {"detail": ...} too) is covered by the contract suite's RedisDownIsUnavailableNotAllowed.
        assert "detail" in r.json()
    finally:
        redis.start()
    wait_until(lambda: Api(d).get("/ready").status_code == 200, 20, 0.1, "ready again")


def test_redis_down_at_start_is_a_clear_error():
    require_binary()
    port = free_port()  # nothing listens there
    srv = MagnetarServer(label="no-redis", storage=f"redis://user:hunter2secret@127.0.0.1:{port}")
    srv.port, srv.pulsar_port = free_port(), free_port()
    r = subprocess.run(srv.command(), env=srv.env(), cwd=srv.workdir, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=30)
    out = (r.stdout + r.stderr).decode(errors="replace")
    assert r.returncode == 1, out[-2000:]
    assert "cannot start" in out and f"127.0.0.1:{port}" in out, out[-2000:]
    assert "hunter2secret" not in out


def test_three_nodes_start_and_are_ready(nodes):
    for node in nodes:
        r = Api(node).get("/ready")
        assert r.status_code == 200, r.text
        assert r.json() == {"ready": True, "checks": {"storage": "ok"}}


def test_a_publish_on_a_reaches_websocket_and_long_poll_on_b_and_c(nodes, users):
    a, b, c = nodes
    user = users.user("rw")
    topic = unique("x")
    first = user.api.publish(topic, {"n": -1})  # creates the topic
    api_b, api_c = on_node(user, b), on_node(user, c)

    ws_b = ws_connect(b, api_b.token)
    ws_c = ws_connect(c, api_c.token)
    try:
        ws_subscribe(ws_b, [topic])
        ws_subscribe(ws_c, [topic])
        poll_b = BgPoll(api_b, [topic], since={topic: first["message_id"]}, timeout=20)
        poll_c = BgPoll(api_c, [topic], since={topic: first["message_id"]}, timeout=20)
        api_b.wait_for_waiter(topic)
        api_c.wait_for_waiter(topic)

        published = [user.api.publish(topic, {"n": i})["message_id"] for i in range(20)]
        for ws in (ws_b, ws_c):
            got = [f["message_id"] for f in ws_messages(ws, len(published), timeout=10)]
            assert got == published
        for poll in (poll_b, poll_c):
            r = poll.result()
            assert r.status_code == 200, r.text
            ids = [m["message_id"] for m in r.json()["messages"]]
            assert ids and ids == published[:len(ids)], (ids, published)
    finally:
        ws_b.close()
        ws_c.close()


def test_publishes_from_every_node_reach_every_subscriber_in_one_order(nodes, users):
    user = users.user("rw")
    topic = unique("x")
    user.api.publish(topic)
    apis = [user.api] + [on_node(user, n) for n in nodes[1:]]
    sockets = [ws_connect(n, api.token) for n, api in zip(nodes, apis)]
    try:
        for ws in sockets:
            ws_subscribe(ws, [topic])
        errors: list[str] = []
        published: list[str] = []

        def publisher(api, base):
            try:
                for i in range(15):
                    published.append(api.publish(topic, {"n": base + i})["message_id"])
            except AssertionError as e:  # noqa: PERF203
                errors.append(str(e))

        threads = [threading.Thread(target=publisher, args=(api, 100 * k)) for k, api in enumerate(apis)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        expected = sorted(published, key=parse_id)
        for ws in sockets:
            got = [f["message_id"] for f in ws_messages(ws, len(expected), timeout=10)]
            assert got == expected  # every node: all of them, once, in id order
    finally:
        for ws in sockets:
            ws.close()


def test_idempotency_holds_across_nodes(nodes, users):
    user = users.user("rw")
    topic = unique("x")
    key = uuid.uuid4().hex
    body = {"topic": topic, "payload": {"once": True}}
    r1 = user.api.post("/api/v1/messages", json=body, headers={"Idempotency-Key": key})
    assert r1.status_code == 201, r1.text
    for node in nodes[1:]:
        r = on_node(user, node).post("/api/v1/messages", json=body, headers={"Idempotency-Key": key})
        assert r.status_code == 201, r.text
        assert r.content == r1.content
    assert len(user.api.all_message_ids(topic)) == 1


def test_logout_on_one_node_revokes_the_token_on_every_node(nodes, users):
    user = users.user("rw")
    token = user.fresh_token()
    apis = [Api(n, token) for n in nodes]
    for api in apis:
        assert api.get("/auth/me").status_code == 200
    assert apis[0].post("/auth/logout").status_code == 204
    for api in apis[1:]:
        r = api.get("/auth/me")
        assert r.status_code == 401, r.text
        assert r.json() == {"detail": "Token has been revoked"}


def test_a_rotated_refresh_token_is_refused_on_another_node(nodes, users):
    user = users.user("rw")
    r = login(nodes[0], user.username, user.password)
    refresh = r.json()["refresh_token"]
    with make_session(None) as s:
        rotated = s.post(nodes[1].url("/auth/token/refresh"), json={"refresh_token": refresh}, timeout=10)
        assert rotated.status_code == 200, rotated.text
        again = s.post(nodes[2].url("/auth/token/refresh"), json={"refresh_token": refresh}, timeout=10)
        assert again.status_code == 401, again.text


def redis_command(redis, *words: str) -> str:
    """One inline command to `redis` (plain TCP), its first reply line."""
    with socket.create_connection(("127.0.0.1", redis.port), timeout=5) as s:
        s.sendall((" ".join(words) + "\r\n").encode())
        return s.recv(256).decode(errors="replace").strip()


def test_a_stalled_redis_never_holds_up_an_io_thread(redis, users):
    """Record reads (here the token check: deny-list and user) are Redis round trips; they wait on
    the blocking pool, never on an I/O thread. A node with a single I/O thread, Redis paused: an
    authenticated request waits for Redis, and a request that needs no record is answered first."""
    gen = run_nodes(redis, ["--rate-limits", "off", "--threads", "1"], ("g",))
    node = next(gen)[0]
    try:
        api = on_node(users.user("rw"), node)
        assert api.get("/auth/me").status_code == 200
        finished: list[str] = []
        answers: dict = {}

        def authenticated():
            answers["me"] = api.get("/auth/me", timeout=30)
            finished.append("me")

        assert redis_command(redis, "CLIENT", "PAUSE", "4000", "ALL") == "+OK"
        waiter = threading.Thread(target=authenticated)
        waiter.start()
        time.sleep(0.3)  # its token check is now waiting for the paused Redis
        health = Api(node).get("/health", timeout=30)
        finished.append("health")
        waiter.join(30)
        assert health.status_code == 200
        assert answers["me"].status_code == 200, answers["me"].text
        # With the check on the I/O thread, /health would queue behind it and finish last.
        assert finished == ["health", "me"]
    finally:
        redis_command(redis, "CLIENT", "UNPAUSE")
        gen.close()


def test_redis_lost_gives_503_and_ready_says_why_then_everything_recovers(nodes, users, redis):
    user = users.user("rw")
    topic = unique("x")
    user.api.publish(topic)
    redis.stop()
    try:
        r = user.api.post("/api/v1/messages", json={"topic": topic, "payload": {"down": True}})
        assert r.status_code == 503, r.text
        assert r.headers.get("Content-Type", "").startswith("application/json")
        assert "detail" in r.json()
        for node in nodes:
            ready = Api(node).get("/ready")
            assert ready.status_code == 503, ready.text
            assert ready.json()["ready"] is False
            assert ready.json()["checks"]["storage"] != "ok"
    finally:
        redis.start()
    for node in nodes:
        wait_until(lambda node=node: Api(node).get("/ready").status_code == 200, 20, 0.1,
                   f"{node.label} ready again")
    user.api.publish(topic, {"back": True})
    assert len(user.api.all_message_ids(topic)) == 2


def test_redis_killed_mid_load_loses_nothing_acknowledged(nodes, users, redis):
    """Publishers on every node while Redis is SIGKILLed and restarted (AOF, appendfsync always):
    every publish answered 201 is in the log afterwards, in order; the others answered 503."""
    user = users.user("rw")
    topic = unique("x")
    user.api.publish(topic)
    apis = [user.api] + [on_node(user, n) for n in nodes[1:]]
    acknowledged: list[str] = []
    refused: list[int] = []
    stop = threading.Event()
    lock = threading.Lock()

    def publisher(api):
        i = 0
        while not stop.is_set():
            i += 1
            try:
                r = api.post("/api/v1/messages", json={"topic": topic, "payload": {"i": i}}, timeout=15)
            except Exception:  # noqa: BLE001 - a timeout is neither an ack nor a refusal
                continue
            with lock:
                if r.status_code == 201:
                    acknowledged.append(r.json()["message_id"])
                else:
                    assert r.status_code == 503, r.text
                    refused.append(r.status_code)
                    time.sleep(0.05)

    threads = [threading.Thread(target=publisher, args=(api,), daemon=True) for api in apis]
    for t in threads:
        t.start()
    wait_until(lambda: len(acknowledged) >= 30, 20, message="publishes before the kill")
    redis.kill()
    time.sleep(0.5)
    redis.start()
    for node in nodes:
        wait_until(lambda node=node: Api(node).get("/ready").status_code == 200, 20, 0.1,
                   f"{node.label} ready again")
    count_after = len(acknowledged)
    wait_until(lambda: len(acknowledged) >= count_after + 30, 20, message="publishes after the restart")
    stop.set()
    for t in threads:
        t.join(20)
    stored = set(user.api.all_message_ids(topic))
    lost = [m for m in acknowledged if m not in stored]
    assert not lost, f"{len(lost)} acknowledged messages lost: {lost[:10]}"
    assert_increasing(sorted(stored, key=parse_id))


def make_certificates(directory: str) -> dict:
    """A throw-away CA and a server certificate for 127.0.0.1 / localhost, signed by it."""
    def run(*args):
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=magnetar-test-ca")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=localhost")
    with open(os.path.join(directory, "san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.pem", "-days", "2", "-extfile", "san.ext")
    return {name: os.path.join(directory, f"{name}.pem" if name != "key" else "server.key")
            for name in ("ca", "key")} | {"cert": os.path.join(directory, "server.pem")}


def test_rediss_verifies_the_certificate_and_works():
    """rediss://: TLS with the certificate checked against --redis-tls-ca and the host name."""
    require_binary()
    certs_dir = tempfile.mkdtemp(prefix="magnetar-redis-tls-")
    tls_redis = RedisServer(tls=make_certificates(certs_dir))
    tls_redis.start()
    try:
        # Without our CA the certificate is not trusted: a clear refusal at start.
        srv = MagnetarServer(label="rediss-untrusted", storage=tls_redis.url)
        srv.port, srv.pulsar_port = free_port(), free_port()
        r = subprocess.run(srv.command(), env=srv.env(), cwd=srv.workdir, stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=30)
        out = (r.stdout + r.stderr).decode(errors="replace")
        assert r.returncode == 1, out[-2000:]
        assert "TLS handshake" in out, out[-2000:]

        node = MagnetarServer(["--redis-tls-ca", tls_redis.tls["ca"]], label="rediss", storage=tls_redis.url)
        try:
            node.start()
        except ServerStartError as e:
            pytest.fail(str(e))
        try:
            admin = start_admin(node)
            topic = unique("tls")
            sent = admin.api.publish(topic, {"over": "tls"})
            assert admin.api.all_message_ids(topic) == [sent["message_id"]]
            assert Api(node).get("/ready").status_code == 200
        finally:
            node.terminate()
            node.kill()
    finally:
        tls_redis.cleanup()
        shutil.rmtree(certs_dir, ignore_errors=True)
