"""TLS: `--tls-cert/--tls-key` serve HTTPS and WSS on the same port (issue 4 item 6).

Everything that works over plain HTTP must work over TLS: login, publish, poll (a parked long-poll
woken by a publish, a client that hangs up mid-poll), body limits, the WebSocket upgrade with the
bearer subprotocol and live push, refusals before the upgrade, graceful shutdown. And what only TLS
has: a plain HTTP request on the TLS port gets a clear 400 and the server stays healthy; a client
that connects and never finishes its handshake is dropped after --tls-handshake-timeout without
holding anything up; TLS 1.2+ only, no compression; unreadable or mismatched certificate files
refuse to start with exit code 2 and a message naming the file.

The certificate is self-signed, made at test time with the `openssl` command (CN=localhost, SAN
localhost and 127.0.0.1); clients verify against it (requests through REQUESTS_CA_BUNDLE, set for
this module only; websocket-client through sslopt).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import warnings

import pytest
import requests
import websocket

from conftest import (
    MAGNETAR_BIN,
    BgPoll,
    MagnetarServer,
    ServerStartError,
    Tenant,
    WsClosed,
    assert_detail,
    require_binary,
    start_admin,
    unique,
    wait_until,
    ws_expect_close,
    ws_json,
    ws_messages,
    ws_subscribe,
)

HANDSHAKE_TIMEOUT = 2  # --tls-handshake-timeout of the module's server, seconds


# ------------------------------------------------------------------------------------------------
# Certificates and the TLS server
# ------------------------------------------------------------------------------------------------


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                   timeout=60)


def make_cert(directory: str, name: str = "server") -> tuple[str, str]:
    """A self-signed RSA certificate for localhost/127.0.0.1 and its key; returns (cert, key) paths."""
    cert = os.path.join(directory, f"{name}.crt")
    key = os.path.join(directory, f"{name}.key")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "2",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1")
    return cert, key


@pytest.fixture(scope="module")
def certs():
    if subprocess.run(["which", "openssl"], stdout=subprocess.DEVNULL).returncode != 0:
        pytest.skip("the openssl command is needed to make a test certificate")
    directory = tempfile.mkdtemp(prefix="magnetar-tls-")
    cert, key = make_cert(directory)
    other_cert, other_key = make_cert(directory, "other")
    return {"dir": directory, "cert": cert, "key": key, "other_cert": other_cert, "other_key": other_key}


class TlsServer(MagnetarServer):
    """A MagnetarServer that serves HTTPS/WSS (the harness's readiness probe follows base_url)."""

    def __init__(self, certs: dict, extra_args=(), label: str = "tls"):
        super().__init__(["--tls-cert", certs["cert"], "--tls-key", certs["key"],
                          # logins here all come from 127.0.0.1 (the harness binds source addresses
                          # for http:// only); the login limit has its own tests
                          "--rate-limit-login", "0", *extra_args], label=label)
        self.ca = certs["cert"]

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"wss://127.0.0.1:{self.port}/ws"


@pytest.fixture(scope="module", autouse=True)
def _trust_test_ca(certs):
    """requests (and the harness helpers built on it) verify against the test certificate."""
    old = os.environ.get("REQUESTS_CA_BUNDLE")
    os.environ["REQUESTS_CA_BUNDLE"] = certs["cert"]
    yield
    if old is None:
        os.environ.pop("REQUESTS_CA_BUNDLE", None)
    else:
        os.environ["REQUESTS_CA_BUNDLE"] = old


def start_tls(certs, *extra, label="tls") -> TlsServer:
    require_binary()
    srv = TlsServer(certs, extra, label=label)
    try:
        srv.start()
    except ServerStartError as e:
        pytest.fail(str(e))
    return srv


@pytest.fixture(scope="module")
def tls_server(certs):
    srv = start_tls(certs, "--tls-handshake-timeout", str(HANDSHAKE_TIMEOUT), "--max-body-bytes", "4096")
    yield srv
    code = srv.terminate()
    srv.kill()
    assert code == 0, f"TLS server exit code {code}; log tail:\n{srv.read_log()[-4000:]}"


@pytest.fixture(scope="module")
def tls_tenant(tls_server):
    return Tenant(tls_server, start_admin(tls_server))


@pytest.fixture(scope="module")
def user(tls_tenant):
    return tls_tenant.user("rw")


def wss_connect(srv: TlsServer, token: str | None, *, protocols=None, timeout: float = 5.0):
    if protocols is None:
        protocols = ["bearer", f"bearer.{token}"]
    return websocket.create_connection(srv.ws_url, timeout=timeout, subprotocols=protocols,
                                       suppress_origin=True, sslopt={"ca_certs": srv.ca})


def tls_client_context(srv: TlsServer) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=srv.ca)
    return ctx


def tls_socket(srv: TlsServer, timeout: float = 5.0) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", srv.port), timeout=timeout)
    return tls_client_context(srv).wrap_socket(raw, server_hostname="localhost")


def recv_until_closed(sock: socket.socket, timeout: float) -> tuple[bytes, float]:
    """Read until EOF/reset; returns (bytes read, seconds waited). Fails after `timeout`."""
    t0 = time.monotonic()
    sock.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, ssl.SSLError, OSError) as e:
        if isinstance(e, socket.timeout):
            raise AssertionError(f"connection still open after {timeout}s") from e
    return data, time.monotonic() - t0


def health_ok(srv: TlsServer) -> bool:
    r = requests.get(srv.url("/health"), timeout=5)
    return r.status_code == 200 and r.json()["status"] == "healthy"


# ------------------------------------------------------------------------------------------------
# HTTPS: the relay API works as over HTTP
# ------------------------------------------------------------------------------------------------


def test_https_login_publish_poll(tls_server, user):
    assert tls_server.base_url.startswith("https://")
    me = user.api.get("/auth/me")
    assert me.status_code == 200 and me.json()["username"] == user.username
    topic = unique("tls")
    first = user.api.publish(topic, {"n": 1})
    second = user.api.publish(topic, {"n": 2})
    r = user.api.poll([topic], since={topic: "0-0"}, timeout=5)
    ids = [m["message_id"] for m in r.json()["messages"]]
    assert ids == [first["message_id"], second["message_id"]]
    page = user.api.messages(topic, order="asc")
    assert [m["payload"] for m in page["messages"]] == [{"n": 1}, {"n": 2}]


def test_https_parked_poll_woken_by_publish(tls_server, user):
    topic = unique("tls-park")
    bg = BgPoll(user.api, [topic], timeout=20)
    user.api.wait_for_waiter(topic)
    time.sleep(0.2)
    pub = user.api.publish(topic, {"wake": True})
    r = bg.result(15)
    assert r.status_code == 200, r.text
    assert [m["message_id"] for m in r.json()["messages"]] == [pub["message_id"]]
    assert bg.elapsed < 10, f"the publish did not wake the parked poll ({bg.elapsed:.1f}s)"


def test_https_client_hanging_up_mid_poll_is_noticed(tls_server, user):
    """D14 over TLS: bytes on a TLS socket cannot be told from a close by counting them; the waiter
    of a client that closes its TLS connection must still go away."""
    topic = unique("tls-gone")
    body = json.dumps({"topics": [topic], "timeout": 30}).encode()
    sock = tls_socket(tls_server)
    sock.sendall(b"POST /messages/poll HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"Authorization: Bearer " + user.token.encode() + b"\r\nContent-Length: "
                 + str(len(body)).encode() + b"\r\n\r\n" + body)
    user.api.wait_for_waiter(topic)
    with contextlib.suppress(Exception):
        sock.unwrap()  # sends close_notify (TLS bytes the server sees before the FIN)
    sock.close()
    wait_until(lambda: user.api.poll_stats()["topic_subscriber_counts"].get(topic, 0) == 0, 5,
               message="the waiter of a client that closed its TLS connection removed")


def test_https_body_limit(tls_server, user):
    r = user.api.post("/api/v1/messages", json={"topic": "big", "payload": "x" * 8000})
    assert r.status_code == 413, r.text
    assert r.json()["error"] == "PAYLOAD_TOO_LARGE"
    assert health_ok(tls_server)


def test_urls_built_from_the_request_say_https(tls_server):
    """The device flow's verification_uri is built from the request (spec §5.7 `<base>`): over TLS it
    must be an https:// URL."""
    r = requests.post(tls_server.url("/auth/device/code"), data={"client_hint": "tls-test"}, timeout=10)
    if r.status_code == 404:
        pytest.skip("no device flow in this build")
    assert r.status_code == 200, r.text
    body = r.json()
    base = f"https://127.0.0.1:{tls_server.port}"
    assert body["verification_uri"] == f"{base}/auth/device", body
    assert body["verification_uri_complete"].startswith(f"{base}/auth/device?user_code="), body


def test_tls_policy_modern_only(tls_server):
    with tls_socket(tls_server) as s:
        assert s.version() in ("TLSv1.2", "TLSv1.3"), s.version()
        assert s.compression() is None
    # A client that speaks at most TLS 1.1 gets no connection.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with contextlib.suppress(ValueError, ssl.SSLError):
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # that is the point
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    except (ValueError, ssl.SSLError):
        pytest.skip("this Python cannot even try TLS 1.1")
    with socket.create_connection(("127.0.0.1", tls_server.port), timeout=5) as raw:
        with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
            ctx.wrap_socket(raw, server_hostname="localhost").close()
    # A TLS 1.2-only client is served.
    ctx12 = tls_client_context(tls_server)
    ctx12.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection(("127.0.0.1", tls_server.port), timeout=5) as raw:
        with ctx12.wrap_socket(raw, server_hostname="localhost") as s:
            assert s.version() == "TLSv1.2"
            assert "GCM" in s.cipher()[0] or "CHACHA20" in s.cipher()[0], s.cipher()
    assert health_ok(tls_server)


# ------------------------------------------------------------------------------------------------
# WSS
# ------------------------------------------------------------------------------------------------


def test_wss_subscribe_and_live_message(tls_server, user):
    topic = unique("tls-ws")
    old = user.api.publish(topic, {"n": "retained"})
    ws = wss_connect(tls_server, user.token)
    try:
        assert ws.getsubprotocol() == "bearer"
        _, replayed = ws_subscribe(ws, [topic], offset="first", expect_messages=1)
        assert replayed[0]["message_id"] == old["message_id"]
        live = user.api.publish(topic, {"n": "live"})
        [msg] = ws_messages(ws, 1)
        assert msg["message_id"] == live["message_id"] and msg["payload"] == {"n": "live"}
        ws.send(json.dumps({"type": "ping"}))
        assert ws_json(ws)["type"] == "pong"
    finally:
        ws.close(timeout=1)


def test_wss_refusals_before_upgrade(tls_server, user):
    """The pre-handshake refusal (a plain HTTP 403) travels over TLS too."""
    for protocols in (["bearer", "bearer.not-a-token"], ["bearer"]):
        with pytest.raises(websocket.WebSocketBadStatusException) as e:
            wss_connect(tls_server, None, protocols=protocols)
        assert e.value.status_code == 403
    assert health_ok(tls_server)


def test_wss_per_user_cap(certs):
    srv = start_tls(certs, "--ws-max-per-user", "2", label="tls-wscap")
    try:
        tenant = Tenant(srv, start_admin(srv))
        u1, u2 = tenant.user("ro"), tenant.user("rw")
        a, b = wss_connect(srv, u1.token), wss_connect(srv, u1.token)
        try:
            with pytest.raises(websocket.WebSocketBadStatusException) as e:
                wss_connect(srv, u1.token)
            assert e.value.status_code == 403
            c = wss_connect(srv, u2.token)  # the cap is per user
            ws_subscribe(c, [unique()])
            c.close(timeout=1)
        finally:
            a.close(timeout=1)
            b.close(timeout=1)
    finally:
        srv.terminate()
        srv.kill()


# ------------------------------------------------------------------------------------------------
# What only TLS has: wrong-protocol clients, silent clients
# ------------------------------------------------------------------------------------------------


def test_plain_http_on_tls_port_fails_cleanly(tls_server):
    with socket.create_connection(("127.0.0.1", tls_server.port), timeout=5) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        data, _ = recv_until_closed(s, 5)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), data[:200]
    assert b"https://" in body
    # requests sees the same 400 (never a TLS-encrypted answer it cannot read)
    r = requests.get(f"http://127.0.0.1:{tls_server.port}/health", timeout=5)
    assert r.status_code == 400
    # and a plain WebSocket client is refused too
    with pytest.raises((websocket.WebSocketBadStatusException, websocket.WebSocketException, OSError)):
        websocket.create_connection(f"ws://127.0.0.1:{tls_server.port}/ws", timeout=5,
                                    subprotocols=["bearer", "bearer.x"], suppress_origin=True)
    assert health_ok(tls_server)
    assert tls_server.alive()


def test_garbage_instead_of_handshake(tls_server):
    with socket.create_connection(("127.0.0.1", tls_server.port), timeout=5) as s:
        s.sendall(b"\x16\x03\x01\x00\x05hello-this-is-not-a-client-hello" * 20)
        recv_until_closed(s, 5)
    assert health_ok(tls_server)


def test_silent_clients_are_dropped_and_block_nobody(tls_server, user):
    """Clients that connect and never (or only partly) handshake hold nothing up and are dropped
    after --tls-handshake-timeout."""
    silent = [socket.create_connection(("127.0.0.1", tls_server.port), timeout=10) for _ in range(20)]
    partial = socket.create_connection(("127.0.0.1", tls_server.port), timeout=10)
    partial.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")  # a ClientHello that stops short
    try:
        # Meanwhile everybody else is served at once.
        t0 = time.monotonic()
        for _ in range(5):
            assert health_ok(tls_server)
        user.api.publish(unique("busy"))
        assert time.monotonic() - t0 < 3
        for s in [*silent, partial]:
            _, waited = recv_until_closed(s, HANDSHAKE_TIMEOUT + 5)
            assert waited <= HANDSHAKE_TIMEOUT + 5
    finally:
        for s in [*silent, partial]:
            s.close()
    assert health_ok(tls_server)


def test_idle_tls_keepalive_then_reuse(tls_server, user):
    """One TLS connection carries several requests (keep-alive), and a parked request does not stop
    the connection from being reused afterwards."""
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {user.token}"
    for _ in range(3):
        assert s.get(tls_server.url("/auth/me"), timeout=5).status_code == 200
    topic = unique("tls-ka")
    r = s.post(tls_server.url("/messages/poll"), json={"topics": [topic], "timeout": 1}, timeout=10)
    assert r.status_code == 200 and r.json()["messages"] == []
    assert s.get(tls_server.url("/auth/me"), timeout=5).status_code == 200
    s.close()


# ------------------------------------------------------------------------------------------------
# Shutdown
# ------------------------------------------------------------------------------------------------


def test_graceful_shutdown_with_open_wss_and_parked_https_poll(certs):
    srv = start_tls(certs, label="tls-shutdown")
    admin = start_admin(srv)
    topic = unique("tls-stop")
    sockets = []
    for _ in range(3):
        ws = wss_connect(srv, admin.token, timeout=15)
        ws_subscribe(ws, [topic])
        sockets.append(ws)
    silent = socket.create_connection(("127.0.0.1", srv.port), timeout=15)  # mid-"handshake"
    idle = requests.Session()  # an idle keep-alive TLS connection
    assert idle.get(srv.url("/health"), timeout=5).status_code == 200
    bg = BgPoll(admin.api, [topic], timeout=60)
    admin.api.wait_for_waiter(topic)

    closes: list = [None] * len(sockets)

    def watch(i, ws):
        try:
            closes[i] = ws_expect_close(ws, 15)
        except AssertionError as e:
            closes[i] = e

    watchers = [threading.Thread(target=watch, args=(i, ws), daemon=True) for i, ws in enumerate(sockets)]
    for w in watchers:
        w.start()
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    try:
        code = srv.proc.wait(timeout=12)
    except subprocess.TimeoutExpired:
        srv.kill()
        raise AssertionError(f"no exit within 12 s of SIGTERM; log:\n{srv.read_log()[-4000:]}")
    elapsed = time.monotonic() - t0
    for w in watchers:
        w.join(5)
    bg.join(5)
    silent.close()
    idle.close()
    assert code == 0, f"exit code {code}; log:\n{srv.read_log()[-4000:]}"
    assert elapsed < 10, elapsed
    for c in closes:
        assert isinstance(c, WsClosed) and c.code == 1001, c
    assert bg.resp is not None and bg.resp.status_code == 200, (bg.resp, bg.error)


# ------------------------------------------------------------------------------------------------
# Refusals at start (exit 2, a message naming the file)
# ------------------------------------------------------------------------------------------------


def run_bin(args, timeout=20):
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("PULSAR_", "MAGNETAR_"))}
    workdir = tempfile.mkdtemp(prefix="magnetar-tls-refuse-")
    return subprocess.run([MAGNETAR_BIN, "serve", "--storage", "memory", "--port", "0", *args],
                          env=env, cwd=workdir, capture_output=True, text=True, timeout=timeout)


def test_bad_tls_files_refuse_to_start(certs):
    require_binary()
    missing = os.path.join(certs["dir"], "does-not-exist.pem")
    garbage = os.path.join(certs["dir"], "garbage.pem")
    with open(garbage, "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    unreadable = os.path.join(certs["dir"], "unreadable.key")
    with open(unreadable, "w") as f:
        f.write("x")
    os.chmod(unreadable, 0)
    cases = [
        (["--tls-cert", missing, "--tls-key", certs["key"]], [missing]),
        (["--tls-cert", certs["cert"], "--tls-key", missing], [missing]),
        (["--tls-cert", garbage, "--tls-key", certs["key"]], [garbage, "PEM"]),
        (["--tls-cert", certs["cert"], "--tls-key", certs["other_key"]], ["does not match", certs["other_key"]]),
        (["--tls-cert", certs["cert"], "--tls-key", certs["cert"]], [certs["cert"]]),  # a cert is no key
        (["--tls-cert", certs["cert"]], ["--tls-key"]),
        (["--tls-key", certs["key"]], ["--tls-cert"]),
    ]
    if os.geteuid() != 0:  # root reads mode-0 files
        cases.append((["--tls-cert", certs["cert"], "--tls-key", unreadable], [unreadable]))
    for args, needles in cases:
        out = run_bin(args)
        assert out.returncode == 2, (args, out.returncode, out.stderr[-2000:])
        for needle in needles:
            assert needle in out.stderr, (args, needle, out.stderr[-2000:])
        assert "listening" not in out.stdout
        # never key material
        assert "PRIVATE KEY" not in out.stderr and "MII" not in out.stderr


# ------------------------------------------------------------------------------------------------
# The Pulsar binary protocol over TLS (pulsar+ssl://, --pulsar-tls-port)
# ------------------------------------------------------------------------------------------------


def pulsar_tls_port(server) -> int:
    import re
    m = re.search(r"Pulsar binary protocol over TLS on pulsar\+ssl://[^:]+:(\d+)", server.read_log())
    assert m, server.read_log()[-3000:]
    return int(m.group(1))


def test_pulsar_binary_over_tls_answers_the_tls_lookup_url(tls_server, user, certs):
    import pulsar_wire as pw
    port = pulsar_tls_port(tls_server)
    ctx = ssl.create_default_context(cafile=certs["cert"])
    c = pw.Conn.__new__(pw.Conn)
    c.sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5), server_hostname="localhost")
    c.buf, c.request_id = b"", 0
    try:
        assert c.connect(user.token).type == pw.CONNECTED
        c.send(pw.LOOKUP, pw.pb((1, "t"), (2, 3)))
        f = c.recv_type(pw.LOOKUP_RESPONSE)
        assert f.body[2] == f"pulsar+ssl://127.0.0.1:{port}".encode()
        assert f.body[1].startswith(b"pulsar://127.0.0.1:")  # the plain port, for pulsar:// clients
        assert c.producer("persistent://public/default/tls-topic").type == pw.PRODUCER_SUCCESS
        assert c.publish(0, 0, b"over tls").type == pw.SEND_RECEIPT
    finally:
        c.close()
    # Plain bytes on the TLS port are not a handshake: the connection is closed, nothing answered.
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(pw.frame(pw.command(pw.CONNECT, pw.pb((1, "x"), (4, 21)))))
        data = s.recv(100)
        assert data == b"" or data[0] == 0x15, data  # a TLS alert at most, never a Pulsar frame
    except (ConnectionResetError, socket.timeout):
        pass
    finally:
        s.close()


def test_no_pulsar_tls_listener_without_a_certificate(server):
    assert "pulsar+ssl://" not in server.read_log()
