"""Black-box harness for the relay contract (shared/spec/relay-http.md §0-§4, corrections D1-D16).

Starts the real `magnetar` binary on a free loopback port and talks to it over HTTP and WebSocket
with Debian's python3 packages only (pytest, requests, websocket-client 1.2.3).

Rate limits (login 5/min, publish 120/min, bulk 30/min, refresh 10/min) are part of the contract, so
the harness is built to stay under them whatever Magnetar keys them on (D13 leaves the key open):
  * every password login goes out from its own loopback source address (127.0.0.x, the whole
    127/8 block is local on Linux), so login attempts never share a per-IP bucket;
  * every test module gets its own users (created by the bootstrap admin) and its own source address,
    so a per-user or per-IP publish budget is shared by one module at most;
  * tests that exercise a limit on purpose start their own server.

Environment:
  MAGNETAR_BIN          path of the server binary (default /work/main/build/src/server/magnetar)
  MAGNETAR_REQUIRE_BIN  if set to 1, a missing binary is an error instead of a skip
  MAGNETAR_EXTRA_ARGS   extra arguments appended to every `magnetar serve` command (shell words)
  MAGNETAR_BB_STORAGE   storage engine of the servers the suite starts: memory (default, fast) or
                        rocksdb (each server keeps its data in its own temp directory)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterable

import pytest
import requests
import websocket
from requests.adapters import HTTPAdapter

# ------------------------------------------------------------------------------------------------
# Constants and small assertion helpers
# ------------------------------------------------------------------------------------------------

DEFAULT_BIN = "/work/main/build/src/server/magnetar"
MAGNETAR_BIN = os.environ.get("MAGNETAR_BIN", DEFAULT_BIN)
BB_STORAGE = os.environ.get("MAGNETAR_BB_STORAGE", "memory")

ID_RE = re.compile(r"^\d+-\d+$")
TS_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
UUID4_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
SESSION_ID_RE = re.compile(r"^sess_[0-9a-f]{12}$")
REFRESH_TOKEN_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.[A-Za-z0-9_-]{43}$")

HTTP_TIMEOUT = 10.0  # seconds, for every ordinary request
WS_TIMEOUT = 5.0  # seconds, default read timeout on WebSocket sockets

MESSAGE_ITEM_KEYS = ["type", "message_id", "topic", "payload", "timestamp", "metadata"]
STORED_MESSAGE_KEYS = ["message_id", "topic", "payload", "timestamp", "metadata"]
USER_PUBLIC_KEYS = ["user_id", "username", "email", "is_active", "created_at", "permissions", "owned_topics"]
TOPIC_PUBLIC_KEYS = ["topic_id", "topic_name", "owner_id", "created_at", "description"]
TOKEN_RESPONSE_KEYS = ["access_token", "token_type", "expires_in", "refresh_token", "refresh_token_secondary"]
PAGE_KEYS = ["messages", "total", "limit", "order", "cursor", "next_cursor"]


def parse_id(message_id: str) -> tuple[int, int]:
    """`"<hi>-<lo>"` -> (hi, lo) so ids compare in their order."""
    assert isinstance(message_id, str) and ID_RE.match(message_id), f"bad message id {message_id!r}"
    hi, lo = message_id.split("-")
    return int(hi), int(lo)


def assert_increasing(ids: Iterable[str]) -> None:
    ids = list(ids)
    parsed = [parse_id(i) for i in ids]
    for a, b, ia, ib in zip(parsed, parsed[1:], ids, ids[1:]):
        assert a < b, f"message ids not strictly increasing: {ia} then {ib}"


def assert_ts(value: Any) -> None:
    assert isinstance(value, str) and TS_RE.match(value), f"timestamp not RFC 3339 UTC Z with 6 digits: {value!r}"


def assert_compact(resp_or_text) -> None:
    """§0.1: compact separators, non-ASCII emitted raw, key order preserved."""
    text = resp_or_text if isinstance(resp_or_text, str) else resp_or_text.content.decode("utf-8")
    parsed = json.loads(text)
    assert text == json.dumps(parsed, separators=(",", ":"), ensure_ascii=False), f"JSON not compact: {text[:300]}"


def assert_json_ct(resp) -> None:
    ct = resp.headers.get("Content-Type", "")
    assert ct.startswith("application/json"), f"Content-Type {ct!r}"


def assert_detail(resp, status: int, detail: str) -> None:
    assert resp.status_code == status, f"expected {status}, got {resp.status_code}: {resp.text[:500]}"
    assert resp.json() == {"detail": detail}


def assert_www_auth(resp) -> None:
    assert resp.headers.get("WWW-Authenticate", "").lower() == "bearer", dict(resp.headers)


def assert_422(resp, *, loc_contains: str | None = None, msg_contains: str | None = None, type_: str | None = None):
    """FastAPI validation shape: {"detail":[{"type","loc","msg","input",...}]}"""
    assert resp.status_code == 422, f"expected 422, got {resp.status_code}: {resp.text[:500]}"
    body = resp.json()
    assert isinstance(body, dict) and list(body.keys()) == ["detail"], body
    detail = body["detail"]
    assert isinstance(detail, list) and detail, body
    for item in detail:
        assert isinstance(item, dict), body
        for key in ("type", "loc", "msg"):
            assert key in item, f"validation item lacks {key!r}: {item}"
        assert isinstance(item["type"], str) and isinstance(item["msg"], str), item
        assert isinstance(item["loc"], list), item
    if loc_contains is not None:
        assert any(loc_contains in [str(x) for x in item["loc"]] for item in detail), body
    if msg_contains is not None:
        assert any(msg_contains in item["msg"] for item in detail), body
    if type_ is not None:
        assert any(item["type"] == type_ for item in detail), body
    return detail


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def wait_until(predicate, timeout: float, interval: float = 0.05, message: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message} (last={last!r})")


# ------------------------------------------------------------------------------------------------
# JWT helpers (HS256 per §5.4; used to inspect real tokens and to mint tokens with a chosen expiry)
# ------------------------------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def jwt_parts(token: str) -> tuple[dict, dict]:
    head, payload, _sig = token.split(".")
    return json.loads(b64url_decode(head)), json.loads(b64url_decode(payload))


def jwt_signature_ok(token: str, secret: str) -> bool:
    head, payload, sig = token.split(".")
    mac = hmac.new(secret.encode(), f"{head}.{payload}".encode(), hashlib.sha256).digest()
    return hmac.compare_digest(b64url(mac), sig)


def make_jwt(secret: str, claims: dict) -> str:
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
    sig = b64url(hmac.new(secret.encode(), f"{head}.{payload}".encode(), hashlib.sha256).digest())
    return f"{head}.{payload}.{sig}"


def mint_token(server: "MagnetarServer", user: "User", *, exp_in: float, iat_offset: float = 0.0) -> str:
    """A reference-format (§5.4) access token for `user`, signed with the server's secret."""
    now = int(time.time())
    claims = {
        "sub": user.user_id,
        "username": user.username,
        "permissions": list(user.permissions),
        "exp": int(now + exp_in),
        "iat": int(now + iat_offset),
        "jti": uuid.uuid4().hex,
    }
    return make_jwt(server.secret, claims)


# ------------------------------------------------------------------------------------------------
# Loopback source addresses (see the module docstring)
# ------------------------------------------------------------------------------------------------


def _source_ips_usable() -> bool:
    try:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        client = socket.socket()
        client.settimeout(2)
        client.bind(("127.0.0.2", 0))
        client.connect(listener.getsockname())
        client.close()
        listener.close()
        return True
    except OSError:
        return False


_SOURCE_IPS_OK = _source_ips_usable()
_source_counter = itertools.count(2)
_source_lock = threading.Lock()


def next_source_ip() -> str | None:
    """A loopback address not used before in this session (None when the sandbox lacks 127/8)."""
    if not _SOURCE_IPS_OK:
        return None
    with _source_lock:
        n = next(_source_counter)
    # 127.0.0.2 .. 127.0.0.254, then 127.0.1.1 ... (never .0 or .255 in the last octet)
    third, last = divmod(n - 2, 253)
    return f"127.{(third // 256) % 256}.{third % 256}.{last + 2}"


class _SourceAddressAdapter(HTTPAdapter):
    def __init__(self, source_ip: str, **kwargs):
        self._source_ip = source_ip
        super().__init__(**kwargs)

    def init_poolmanager(self, connections, maxsize, block=False, **pool_kwargs):
        pool_kwargs["source_address"] = (self._source_ip, 0)
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)


def make_session(source_ip: str | None) -> requests.Session:
    s = requests.Session()
    if source_ip:
        s.mount("http://", _SourceAddressAdapter(source_ip))
    return s


# ------------------------------------------------------------------------------------------------
# Server process
# ------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_SERVERS: list["MagnetarServer"] = []


class ServerStartError(RuntimeError):
    pass


class MagnetarServer:
    """One `magnetar serve` process on a free loopback port, with stdout+stderr in a temp file.

    `storage` is the engine (default: MAGNETAR_BB_STORAGE, else memory); a durable engine keeps its
    data in `workdir` (the process's working directory), so start() after kill() finds it again."""

    def __init__(self, extra_args: Iterable[str] = (), label: str = "server", storage: str | None = None):
        self.storage = storage or BB_STORAGE
        self.extra_args = [str(a) for a in extra_args]
        extra_env = os.environ.get("MAGNETAR_EXTRA_ARGS", "").strip()
        if extra_env:
            self.extra_args += shlex.split(extra_env)
        self.label = label
        self.secret = secrets.token_hex(24)  # 48 characters
        self.admin_username = "admin"
        self.admin_password = "pw-" + secrets.token_hex(12)
        self.port: int | None = None
        self.pulsar_port: int | None = None  # Pulsar binary protocol, a free port of its own
        self.proc: subprocess.Popen | None = None
        self.workdir = tempfile.mkdtemp(prefix="magnetar-bb-")
        self.log_path = os.path.join(self.workdir, "server.log")
        self._log = open(self.log_path, "ab")
        self.exit_code: int | None = None
        _SERVERS.append(self)

    # -- addresses
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def url(self, path: str) -> str:
        return self.base_url + path

    # -- logs
    def log_size(self) -> int:
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def read_log(self, offset: int = 0) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    # -- lifecycle
    def command(self) -> list[str]:
        # --eftl-port 0, --pulsar-ws-port 0, --pulsar-tls-port 0: those listeners on free ports (their
        # defaults, 9191, 8080 and 6651 with TLS, would collide between servers).
        return [MAGNETAR_BIN, "serve", "--host", "127.0.0.1", "--port", str(self.port), "--storage", self.storage,
                "--pulsar-port", str(self.pulsar_port), "--eftl-port", "0", "--pulsar-ws-port", "0",
                "--pulsar-tls-port", "0", *self.extra_args]

    def env(self) -> dict:
        # Only the settings below reach the server: inherited PULSAR_* / MAGNETAR_* variables (the server
        # reads both) would make runs depend on the caller's shell. Use MAGNETAR_EXTRA_ARGS instead.
        env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("PULSAR_", "MAGNETAR_"))}
        env.update({
            "PULSAR_JWT_SECRET_KEY": self.secret,
            "PULSAR_BOOTSTRAP_ADMIN_USERNAME": self.admin_username,
            "PULSAR_BOOTSTRAP_ADMIN_PASSWORD": self.admin_password,
            "PULSAR_ALLOWED_ORIGINS": '["http://testserver"]',
            "PULSAR_TRUSTED_HOSTS": '["127.0.0.1","localhost","testserver"]',
        })
        return env

    def start(self, ready_timeout: float = 15.0) -> "MagnetarServer":
        last_error = ""
        for _attempt in range(3):  # the free port can be taken between probe and bind: retry
            self.port = free_port()
            self.pulsar_port = free_port()
            self._log.write(f"\n=== harness: starting {' '.join(self.command())}\n".encode())
            self._log.flush()
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=self._log,
                                         stderr=subprocess.STDOUT, env=self.env(), cwd=self.workdir,
                                         start_new_session=True)
            deadline = time.monotonic() + ready_timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    last_error = f"exited with {self.proc.returncode} before becoming ready"
                    break
                try:
                    r = requests.get(self.url("/health"), timeout=1)
                    if r.status_code == 200:
                        return self
                except requests.RequestException:
                    pass
                time.sleep(0.05)
            else:
                last_error = f"not ready after {ready_timeout}s"
                self.kill()
                break
        raise ServerStartError(f"magnetar {last_error}; log:\n{self.read_log()[-8000:]}")

    def terminate(self, timeout: float = 10.0) -> int | None:
        """SIGTERM and wait; returns the exit code, or None (after SIGKILL) when it did not exit in time."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                self.exit_code = None
                return None
        self.exit_code = self.proc.returncode
        return self.exit_code

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def require_binary() -> None:
    if not (os.path.isfile(MAGNETAR_BIN) and os.access(MAGNETAR_BIN, os.X_OK)):
        msg = f"magnetar binary not found at {MAGNETAR_BIN} (set MAGNETAR_BIN)"
        if os.environ.get("MAGNETAR_REQUIRE_BIN") == "1":
            pytest.fail(msg)
        pytest.skip(msg)


# ------------------------------------------------------------------------------------------------
# HTTP client helpers
# ------------------------------------------------------------------------------------------------


class Api:
    """Thin requests wrapper: base URL, bearer token, default timeout, fixed loopback source address.

    One requests.Session per thread (sessions are not thread-safe), all bound to the same source address.
    """

    def __init__(self, server: MagnetarServer, token: str | None = None, source_ip: str | None = None):
        self.server = server
        self.token = token
        self.source_ip = source_ip
        self._local = threading.local()

    def with_token(self, token: str | None) -> "Api":
        return Api(self.server, token, self.source_ip)

    @property
    def session(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = make_session(self.source_ip)
            self._local.session = s
        return s

    def request(self, method: str, path: str, *, auth: bool = True, headers: dict | None = None, **kw):
        hdrs = {}
        if auth and self.token is not None:
            hdrs["Authorization"] = f"Bearer {self.token}"
        if headers:
            hdrs.update(headers)
        kw.setdefault("timeout", HTTP_TIMEOUT)
        kw.setdefault("allow_redirects", False)
        return self.session.request(method, self.server.url(path), headers=hdrs, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def put(self, path, **kw):
        return self.request("PUT", path, **kw)

    def patch(self, path, **kw):
        return self.request("PATCH", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    # -- relay conveniences
    def publish(self, topic: str, payload: Any = None, *, expect: int = 201, headers: dict | None = None, **fields):
        body = {"topic": topic, "payload": {"n": 0} if payload is None else payload}
        body.update(fields)
        r = self.post("/api/v1/messages", json=body, headers=headers)
        assert r.status_code == expect, f"publish -> {r.status_code}: {r.text[:500]}"
        return r.json()

    def publish_many(self, topic: str, count: int, start: int = 0) -> list[str]:
        """Publish `count` messages ({"n": i}) through bulk requests of at most 100; returns ids in order."""
        ids: list[str] = []
        i = start
        while i < start + count:
            chunk = range(i, min(i + 100, start + count))
            r = self.post("/api/v1/messages/bulk",
                          json={"messages": [{"topic": topic, "payload": {"n": n}} for n in chunk]})
            assert r.status_code == 207, f"bulk -> {r.status_code}: {r.text[:500]}"
            results = r.json()["results"]
            assert all(x["status"] == "accepted" for x in results), results
            ids += [x["message_id"] for x in results]
            i = chunk.stop
        return ids

    def messages(self, topic: str, **params):
        r = self.get(f"/api/v1/topics/{topic}/messages", params=params)
        assert r.status_code == 200, f"GET messages -> {r.status_code}: {r.text[:500]}"
        return r.json()

    def all_message_ids(self, topic: str) -> list[str]:
        """Every retained message id, oldest first, by paging asc."""
        ids: list[str] = []
        cursor = None
        for _ in range(1000):
            params = {"limit": 100, "order": "asc"}
            if cursor:
                params["cursor"] = cursor
            page = self.messages(topic, **params)
            if not page["messages"]:
                return ids
            ids += [m["message_id"] for m in page["messages"]]
            cursor = page["next_cursor"]
        raise AssertionError("too many pages")

    def poll(self, topics: list[str], *, since: dict | None = None, timeout: int = 1, expect: int | None = 200,
             extra: dict | None = None):
        body: dict[str, Any] = {"topics": topics, "timeout": timeout}
        if since is not None:
            body["since"] = since
        if extra:
            body.update(extra)
        http_timeout = (timeout if isinstance(timeout, (int, float)) else 1) + 10
        r = self.post("/messages/poll", json=body, timeout=http_timeout)
        if expect is not None:
            assert r.status_code == expect, f"poll -> {r.status_code}: {r.text[:500]}"
        return r

    def poll_stats(self) -> dict:
        r = self.get("/messages/poll/stats")
        assert r.status_code == 200, r.text
        return r.json()

    def wait_for_waiter(self, topic: str, count: int = 1, timeout: float = 5.0) -> None:
        """Block until the caller's poll stats show `count` waiters on `topic` (so a publish cannot race it)."""
        def ok():
            counts = self.poll_stats().get("topic_subscriber_counts", {})
            return counts.get(topic, 0) >= count
        wait_until(ok, timeout, message=f"{count} poll waiter(s) on {topic}")


# Session-long users log in again after this long: well inside the default 10-minute token lifetime.
TOKEN_RENEW_SECONDS = 240


def login(server: MagnetarServer, username: str, password: str, *, source_ip: str | None = "fresh",
          extra: dict | None = None):
    """POST /auth/login form as the clients send it (§A.6.8); each call from a fresh source address."""
    ip = next_source_ip() if source_ip == "fresh" else source_ip
    data = {"username": username, "password": password, "grant_type": "password"}
    if extra:
        data.update(extra)
    with make_session(ip) as s:
        return s.post(server.url("/auth/login"), data=data, timeout=HTTP_TIMEOUT)


@dataclass
class User:
    server: MagnetarServer
    username: str
    password: str
    user_id: str
    permissions: list
    token: str
    refresh_token: str
    api: Api
    login_body: dict = field(default_factory=dict)
    logged_in_at: float = field(default_factory=time.monotonic)

    def renew_if_older_than(self, seconds: float) -> None:
        """Logs in again when the token is older than `seconds`: users that live for the whole session
        (the admin) would otherwise outlive the default 10-minute access token on a slow machine."""
        if time.monotonic() - self.logged_in_at < seconds:
            return
        r = login(self.server, self.username, self.password, source_ip=self.api.source_ip)
        assert r.status_code == 200, f"re-login {self.username} -> {r.status_code}: {r.text}"
        body = r.json()
        self.token, self.refresh_token, self.login_body = body["access_token"], body["refresh_token"], body
        self.api.token = self.token
        self.logged_in_at = time.monotonic()

    def fresh_token(self) -> str:
        """A second, independent access token for this user (a new login)."""
        r = login(self.server, self.username, self.password)
        assert r.status_code == 200, r.text
        return r.json()["access_token"]


def login_user(server: MagnetarServer, username: str, password: str, user_id: str | None = None,
               permissions: list | None = None, source_ip: str | None = None) -> User:
    r = login(server, username, password)
    assert r.status_code == 200, f"login {username} -> {r.status_code}: {r.text}"
    body = r.json()
    api = Api(server, body["access_token"], source_ip)
    if user_id is None or permissions is None:
        me = api.get("/auth/me")
        assert me.status_code == 200, me.text
        user_id, permissions = me.json()["user_id"], me.json()["permissions"]
    return User(server, username, password, user_id, permissions, body["access_token"], body["refresh_token"],
                api, body)


PERMISSION_SETS = {
    "rw": ["read", "write"],
    "ro": ["read"],
    "wo": ["write"],
    "none": [],
    "other": ["read", "write"],
    "admin2": ["admin", "read", "write"],
}


def register_user(admin: User, permissions: list, prefix: str = "u", expect: int = 201) -> tuple[str, str, dict]:
    username = f"{prefix}-{uuid.uuid4().hex[:10]}"
    password = "pw-" + secrets.token_hex(8)
    r = admin.api.post("/auth/register", json={"username": username, "password": password,
                                               "email": f"{username}@example.org", "permissions": permissions})
    assert r.status_code == expect, f"register -> {r.status_code}: {r.text}"
    return username, password, r.json()


class Tenant:
    """Users created on demand for one test module, sharing one loopback source address."""

    def __init__(self, server: MagnetarServer, admin: User):
        self.server = server
        self.admin = admin
        self.source_ip = next_source_ip()
        self._users: dict[str, User] = {}

    def user(self, kind: str) -> User:
        if kind not in self._users:
            self._users[kind] = self.new_user(PERMISSION_SETS[kind], prefix=kind)
        return self._users[kind]

    def new_user(self, permissions: list, prefix: str = "u") -> User:
        self.admin.renew_if_older_than(TOKEN_RENEW_SECONDS)
        username, password, body = register_user(self.admin, permissions, prefix)
        return login_user(self.server, username, password, body["user_id"], body["permissions"], self.source_ip)


def start_admin(server: MagnetarServer) -> User:
    return login_user(server, server.admin_username, server.admin_password, source_ip=next_source_ip())


class BgPoll(threading.Thread):
    """A poll running in the background; `.resp` / `.error` once finished."""

    def __init__(self, api, topics, since=None, timeout=10):
        super().__init__(daemon=True)
        self.api, self.topics, self.since, self.timeout = api, topics, since, timeout
        self.resp = None
        self.error = None
        self.started = time.monotonic()
        self.elapsed = None
        self.start()

    def run(self):
        try:
            self.resp = self.api.poll(self.topics, since=self.since, timeout=self.timeout, expect=None)
        except Exception as e:  # noqa: BLE001 - reported by result()
            self.error = e
        self.elapsed = time.monotonic() - self.started

    def result(self, wait: float = 20.0):
        self.join(wait)
        assert not self.is_alive(), "poll did not finish in time"
        if self.error:
            raise self.error
        return self.resp


# ------------------------------------------------------------------------------------------------
# WebSocket helpers
# ------------------------------------------------------------------------------------------------


def ws_connect(server: MagnetarServer, token: str | None = None, *, protocols: list[str] | None = None,
               origin: str | None = None, timeout: float = WS_TIMEOUT, path: str = "/ws",
               header: list[str] | None = None) -> websocket.WebSocket:
    """Open /ws the way the reference clients do: Sec-WebSocket-Protocol `bearer, bearer.<jwt>`, no Origin."""
    if protocols is None:
        protocols = ["bearer", f"bearer.{token}"]
    kwargs: dict[str, Any] = {"timeout": timeout}
    if protocols:
        kwargs["subprotocols"] = protocols
    if origin is None:
        kwargs["suppress_origin"] = True
    else:
        kwargs["origin"] = origin
    if header:
        kwargs["header"] = header
    return websocket.create_connection(f"ws://127.0.0.1:{server.port}{path}", **kwargs)


def ws_handshake_status(server: MagnetarServer, token: str | None = None, **kw) -> int:
    """101 when the upgrade succeeds (socket closed again), else the HTTP status of the refusal."""
    try:
        ws = ws_connect(server, token, **kw)
    except websocket.WebSocketBadStatusException as e:
        return e.status_code
    ws.close(timeout=1)
    return 101


class WsClosed(Exception):
    def __init__(self, code: int | None, reason: str):
        super().__init__(f"closed code={code} reason={reason!r}")
        self.code = code
        self.reason = reason


def ws_recv(ws: websocket.WebSocket, timeout: float = WS_TIMEOUT):
    """Next data frame: ("text", str) or ("binary", bytes); raises WsClosed on a close frame/EOF,
    websocket.WebSocketTimeoutException on timeout. Answers pings; never fails on the close reply."""
    ws.settimeout(timeout)
    while True:
        try:
            frame = ws.recv_frame()
        except websocket.WebSocketConnectionClosedException:
            raise WsClosed(None, "connection closed without a close frame")
        except (ConnectionResetError, BrokenPipeError) as e:
            raise WsClosed(None, f"connection reset: {e}")
        if frame is None:
            raise WsClosed(None, "no frame")
        op = frame.opcode
        if op in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY, websocket.ABNF.OPCODE_CONT):
            ws.cont_frame.validate(frame)
            ws.cont_frame.add(frame)
            if ws.cont_frame.is_fire(frame):
                opcode, full = ws.cont_frame.extract(frame)
                data = full.data
                if opcode == websocket.ABNF.OPCODE_TEXT:
                    return "text", data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
                return "binary", data
        elif op == websocket.ABNF.OPCODE_CLOSE:
            data = frame.data or b""
            try:
                ws.send_close()
            except Exception:  # noqa: BLE001 - the server may already be gone
                pass
            code = int.from_bytes(data[:2], "big") if len(data) >= 2 else None
            raise WsClosed(code, bytes(data[2:]).decode("utf-8", "replace"))
        elif op == websocket.ABNF.OPCODE_PING:
            try:
                ws.pong(frame.data)
            except Exception:  # noqa: BLE001
                pass
        # pong: keep reading


def ws_json(ws: websocket.WebSocket, timeout: float = WS_TIMEOUT) -> dict:
    kind, data = ws_recv(ws, timeout)
    assert kind == "text", f"expected a text frame, got {kind}: {data!r}"
    assert_compact(data)
    return json.loads(data)


def ws_send(ws: websocket.WebSocket, obj: Any) -> None:
    ws.send(json.dumps(obj))


def ws_expect_close(ws: websocket.WebSocket, timeout: float) -> WsClosed:
    """Read (discarding data frames) until the server closes; returns the close info."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"socket not closed within {timeout}s")
        try:
            ws_recv(ws, left)
        except WsClosed as c:
            return c
        except websocket.WebSocketTimeoutException:
            raise AssertionError(f"socket not closed within {timeout}s")


def ws_no_frame(ws: websocket.WebSocket, wait: float) -> None:
    """Assert that nothing arrives within `wait` seconds."""
    try:
        kind, data = ws_recv(ws, wait)
    except websocket.WebSocketTimeoutException:
        return
    raise AssertionError(f"unexpected frame: {kind} {data!r}")


def ws_subscribe(ws: websocket.WebSocket, topics: list[str], *, offset: Any = None, client_id: str = "bb-client",
                 expect_messages: int = 0, timeout: float = WS_TIMEOUT) -> tuple[dict, list[dict]]:
    """Send a subscribe frame; returns (subscribed frame, message frames received before it or—up to
    expect_messages—after it)."""
    frame: dict[str, Any] = {"type": "subscribe", "topics": topics, "client_id": client_id}
    if offset is not None:
        frame["offset"] = offset
    ws_send(ws, frame)
    subscribed = None
    messages: list[dict] = []
    while subscribed is None or len(messages) < expect_messages:
        f = ws_json(ws, timeout)
        if f.get("type") == "subscribed" and subscribed is None:
            subscribed = f
        elif f.get("type") == "message":
            messages.append(f)
        else:
            raise AssertionError(f"unexpected frame while subscribing: {f}")
    return subscribed, messages


def ws_messages(ws: websocket.WebSocket, count: int, timeout: float = WS_TIMEOUT) -> list[dict]:
    out = []
    while len(out) < count:
        f = ws_json(ws, timeout)
        assert f.get("type") == "message", f"expected a message frame, got {f}"
        out.append(f)
    return out


def ws_ping(ws: websocket.WebSocket, timeout: float = WS_TIMEOUT) -> dict:
    ws_send(ws, {"type": "ping"})
    f = ws_json(ws, timeout)
    assert f.get("type") == "pong", f"expected pong, got {f}"
    return f


# ------------------------------------------------------------------------------------------------
# Raw HTTP over a socket (for cases requests cannot express: headers without body, bad Host, ...)
# ------------------------------------------------------------------------------------------------


@dataclass
class RawResponse:
    status: int
    reason: str
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body.decode("utf-8"))


def _read_http_response(sock: socket.socket, deadline: float) -> RawResponse:
    buf = b""
    while b"\r\n\r\n" not in buf:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before a full response head: {buf!r}")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    _version, status, *reason = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    body = rest
    if "content-length" in headers:
        n = int(headers["content-length"])
        while len(body) < n:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
        body = body[:n]
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        decoded = b""
        while True:
            while b"\r\n" not in body:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = sock.recv(65536)
                if not chunk:
                    raise AssertionError("EOF inside chunked body")
                body += chunk
            size_line, body = body.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            while len(body) < size + 2:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = sock.recv(65536)
                if not chunk:
                    raise AssertionError("EOF inside chunk")
                body += chunk
            if size == 0:
                break
            decoded += body[:size]
            body = body[size + 2:]
        body = decoded
    return RawResponse(int(status), reason[0] if reason else "", headers, body)


def raw_http(server: MagnetarServer, request: bytes, timeout: float = 5.0, *,
             source_ip: str | None = None) -> RawResponse:
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        if source_ip:
            sock.bind((source_ip, 0))
        sock.settimeout(timeout)
        sock.connect(("127.0.0.1", server.port))
        sock.sendall(request)
        return _read_http_response(sock, deadline)


# ------------------------------------------------------------------------------------------------
# Fixtures
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def server():
    """The shared server for the whole session (default options)."""
    require_binary()
    srv = MagnetarServer(label="session")
    try:
        srv.start()
    except ServerStartError as e:
        pytest.fail(str(e))
    yield srv
    crashed_before = not srv.alive()
    code = srv.terminate()
    srv.kill()
    if crashed_before or code != 0:
        pytest.fail(f"session server {'had died' if crashed_before else 'stopped'} with exit code {code!r}; "
                    f"log tail:\n{srv.read_log()[-8000:]}")


@pytest.fixture(scope="session")
def session_admin(server) -> User:
    """The bootstrap admin of the session server (logged in once, renewed by `admin`)."""
    return start_admin(server)


@pytest.fixture
def admin(session_admin) -> User:
    """The bootstrap admin, with a token young enough to last the test."""
    session_admin.renew_if_older_than(TOKEN_RENEW_SECONDS)
    return session_admin


@pytest.fixture(scope="module")
def tenant(server, session_admin) -> Tenant:
    return Tenant(server, session_admin)


@pytest.fixture(scope="module")
def rw(tenant) -> User:
    """read+write user of this module."""
    return tenant.user("rw")


@pytest.fixture(scope="module")
def ro(tenant) -> User:
    """read-only user of this module."""
    return tenant.user("ro")


@pytest.fixture(scope="module")
def wo(tenant) -> User:
    """write-only user of this module."""
    return tenant.user("wo")


@pytest.fixture(scope="module")
def other(tenant) -> User:
    """A second read+write user (for namespacing checks)."""
    return tenant.user("other")


@pytest.fixture
def topic() -> str:
    return unique("t")


@pytest.fixture
def anon(server) -> Api:
    """Unauthenticated client."""
    return Api(server, None, next_source_ip())


@pytest.fixture
def server_factory():
    """Start dedicated servers with special options; all are stopped at teardown."""
    require_binary()
    started: list[MagnetarServer] = []

    def start(*args, label: str = "fresh") -> MagnetarServer:
        srv = MagnetarServer(args, label=label)
        started.append(srv)
        try:
            srv.start()
        except ServerStartError as e:
            pytest.fail(str(e))
        return srv

    yield start
    for srv in started:
        srv.terminate(timeout=10)
        srv.kill()


# ------------------------------------------------------------------------------------------------
# Server log on failure
# ------------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _server_log_marker(request):
    request.node._magnetar_log_offsets = {id(s): s.log_size() for s in _SERVERS}
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not rep.failed:
        return
    offsets = getattr(item, "_magnetar_log_offsets", {})
    for srv in list(_SERVERS):
        text = srv.read_log(offsets.get(id(srv), 0))
        if text.strip():
            if len(text) > 20000:
                text = "...(truncated)...\n" + text[-20000:]
            rep.sections.append((f"magnetar log [{srv.label} port {srv.port}] during {rep.when}", text))
