"""Global conventions: §0.2 error shapes, §8.4 middleware (trusted host, CORS, body cap), §5.9 rate limits
with D13, WebSocket frame cap."""

import json
import math
import time

import pytest
import websocket

from conftest import (Api, assert_compact, login, make_session, next_source_ip, raw_http, start_admin, unique,
                      ws_connect, ws_expect_close, ws_json, ws_send, ws_subscribe)

PAYLOAD_TOO_LARGE = {"error": "PAYLOAD_TOO_LARGE", "message": "request body exceeds configured limit"}


def head_only(server, path, content_length, token=None, method="POST"):
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n{auth}"
            f"Content-Type: application/json\r\nContent-Length: {content_length}\r\n\r\n").encode()


# ------------------------------------------------------------------------------------------------
# 404 / 405 / 307
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/nope", "/api/v1/nope", "/api/v2/topics", "/auth/nope", "/messages"])
def test_unknown_path_404(anon, rw, path):
    for api in (anon, rw.api):
        r = api.get(path)
        assert r.status_code == 404, (path, r.status_code, r.text)
        assert r.json() == {"detail": "Not Found"}
        assert_compact(r)


@pytest.mark.parametrize("method,path", [
    ("GET", "/api/v1/messages"), ("DELETE", "/api/v1/messages"), ("GET", "/api/v1/messages/bulk"),
    ("GET", "/messages/poll"), ("PUT", "/messages/poll"), ("POST", "/messages/poll/stats"),
    ("PATCH", "/api/v1/topics"), ("POST", "/health"), ("DELETE", "/ready"), ("GET", "/auth/login"),
    ("GET", "/auth/register"),
])
def test_wrong_method_405(rw, method, path):
    r = rw.api.request(method, path, json={} if method in ("POST", "PUT", "PATCH") else None)
    assert r.status_code == 405, (method, path, r.status_code, r.text)
    assert r.json() == {"detail": "Method Not Allowed"}


def test_trailing_slash_redirect_307(anon):
    r = anon.get("/api/v1/topics/")
    assert r.status_code == 307
    assert r.headers["Location"].endswith("/api/v1/topics")


# ------------------------------------------------------------------------------------------------
# Body cap (413 without reading the body)
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/messages", "/api/v1/messages/bulk", "/messages/poll", "/auth/login",
                                  "/api/v1/topics"])
def test_huge_content_length_rejected_without_body(server, path):
    r = raw_http(server, head_only(server, path, 50_000_000), timeout=5)
    assert r.status == 413, (r.status, r.body)
    assert r.json() == PAYLOAD_TOO_LARGE
    assert r.headers.get("content-type", "").startswith("application/json")


def test_body_cap_applies_before_auth(server, rw):
    r = raw_http(server, head_only(server, "/api/v1/messages", 1024 * 1024 + 1, rw.token), timeout=5)
    assert r.status == 413
    assert r.json() == PAYLOAD_TOO_LARGE


def test_body_cap_boundary_default(rw, topic):
    """Exactly max_body_bytes (1 MiB default) is accepted."""
    base = json.dumps({"topic": topic, "payload": {"p": ""}}, separators=(",", ":"))
    body = json.dumps({"topic": topic, "payload": {"p": "x" * (1024 * 1024 - len(base))}}, separators=(",", ":"))
    assert len(body.encode()) == 1024 * 1024
    r = rw.api.post("/api/v1/messages", data=body.encode(), headers={"Content-Type": "application/json"})
    assert r.status_code == 201, r.text


def test_body_cap_option(server_factory):
    srv = server_factory("--max-body-bytes", "2048")
    admin = start_admin(srv)
    topic = unique()
    base = json.dumps({"topic": topic, "payload": {"p": ""}}, separators=(",", ":"))
    exact = json.dumps({"topic": topic, "payload": {"p": "x" * (2048 - len(base))}}, separators=(",", ":")).encode()
    assert len(exact) == 2048
    r = admin.api.post("/api/v1/messages", data=exact, headers={"Content-Type": "application/json"})
    assert r.status_code == 201, r.text
    r = raw_http(srv, head_only(srv, "/api/v1/messages", 2049, admin.token), timeout=5)
    assert r.status == 413
    assert r.json() == PAYLOAD_TOO_LARGE
    # with the body actually sent, too
    over = exact[:-1] + b' }'
    assert len(over) == 2049
    r = raw_http(srv, head_only(srv, "/api/v1/messages", 2049, admin.token) + over, timeout=5)
    assert r.status == 413
    # the WebSocket frame cap follows the same option
    ws = ws_connect(srv, admin.token)
    try:
        ws_subscribe(ws, [unique()])
        ws_send(ws, {"type": "ping", "pad": "x" * 1500})
        assert ws_json(ws)["type"] == "pong"
        try:
            ws_send(ws, {"type": "ping", "pad": "x" * 3000})
        except (websocket.WebSocketConnectionClosedException, OSError):
            pass
        closed = ws_expect_close(ws, 10)
        assert closed.code == 1009, closed
    finally:
        ws.close(timeout=1)


# ------------------------------------------------------------------------------------------------
# Trusted hosts
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["evil.example", "127.0.0.2", "testserver.evil.example", "example.com:80"])
def test_untrusted_host(anon, host):
    r = anon.get("/health", headers={"Host": host})
    assert r.status_code == 400
    assert r.text == "Invalid host header"


@pytest.mark.parametrize("host", ["localhost", "localhost:1234", "testserver", "127.0.0.1:9"])
def test_trusted_host_port_ignored(anon, host):
    r = anon.get("/health", headers={"Host": host})
    assert r.status_code == 200


def test_untrusted_host_on_api_and_ws(server, rw):
    r = rw.api.get("/api/v1/topics", headers={"Host": "evil.example"})
    assert r.status_code == 400 and r.text == "Invalid host header"
    req = ("GET /ws HTTP/1.1\r\nHost: evil.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
           f"Sec-WebSocket-Protocol: bearer, bearer.{rw.token}\r\n\r\n").encode()
    resp = raw_http(server, req, timeout=5)
    assert resp.status == 400
    assert resp.body == b"Invalid host header"


def test_ws_refusal_is_http_403(server, rw):
    """Pre-accept refusals are plain HTTP 403 answers to the upgrade request."""
    req = (f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
           "Sec-WebSocket-Protocol: bearer, bearer.invalid\r\n\r\n").encode()
    resp = raw_http(server, req, timeout=5)
    assert resp.status == 403


# ------------------------------------------------------------------------------------------------
# CORS
# ------------------------------------------------------------------------------------------------


def preflight(api, origin, method="POST", headers="authorization,content-type", path="/api/v1/messages"):
    return api.request("OPTIONS", path, auth=False, headers={
        "Origin": origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": headers})


def test_cors_preflight_allowed_origin(anon):
    r = preflight(anon, "http://testserver")
    assert r.status_code == 200, r.text
    assert r.headers.get("Access-Control-Allow-Origin") == "http://testserver"
    assert r.headers.get("Access-Control-Allow-Credentials", "false").lower() != "true"
    methods = [m.strip().upper() for m in r.headers.get("Access-Control-Allow-Methods", "").split(",")]
    for m in ("GET", "POST", "PUT", "DELETE", "OPTIONS"):
        assert m in methods, methods
    assert "PATCH" not in methods
    allowed = [h.strip().lower() for h in r.headers.get("Access-Control-Allow-Headers", "").split(",")]
    assert "authorization" in allowed and "content-type" in allowed


def test_cors_preflight_disallowed_origin(anon):
    r = preflight(anon, "http://evil.example")
    assert r.status_code == 400
    assert r.text == "Disallowed CORS origin"
    assert "Access-Control-Allow-Origin" not in r.headers


@pytest.mark.parametrize("method,headers", [("PATCH", "content-type"), ("POST", "idempotency-key")])
def test_cors_preflight_disallowed_method_or_header(anon, method, headers):
    r = preflight(anon, "http://testserver", method=method, headers=headers)
    assert r.status_code == 400


def test_cors_simple_request(anon, rw):
    r = anon.get("/health", headers={"Origin": "http://testserver"})
    assert r.status_code == 200
    assert r.headers.get("Access-Control-Allow-Origin") == "http://testserver"
    r = rw.api.get("/api/v1/topics", headers={"Origin": "http://testserver"})
    assert r.status_code == 200
    assert r.headers.get("Access-Control-Allow-Origin") == "http://testserver"


def test_cors_simple_request_disallowed_origin(anon):
    r = anon.get("/health", headers={"Origin": "http://evil.example"})
    assert r.status_code == 200
    assert "Access-Control-Allow-Origin" not in r.headers


# ------------------------------------------------------------------------------------------------
# Rate limits (§5.9 + D13: configurable, Retry-After on 429)
# ------------------------------------------------------------------------------------------------


def assert_429(r, text):
    assert r.status_code == 429, (r.status_code, r.text)
    assert r.json() == {"error": text}
    ra = r.headers.get("Retry-After")
    assert ra is not None and ra.strip() != "", dict(r.headers)
    if ra.strip().isdigit():
        assert 0 <= int(ra) <= 60


def burst_until_429(send, limit: int, per_minute: int, extra: int = 40):
    """Send requests until the first 429. The first `limit` must all pass; the 429 must come right after,
    allowing only for what a sliding window / token bucket refills while the burst runs."""
    t0 = time.monotonic()
    for i in range(limit + extra):
        r = send(i)
        if r.status_code == 429:
            elapsed = time.monotonic() - t0
            assert i >= limit, f"request {i} refused, but the first {limit} must pass: {r.text}"
            assert i <= limit + math.ceil(elapsed * per_minute / 60.0) + 1, (i, elapsed)
            return i, r
        assert i < limit + extra, "never limited"
    raise AssertionError(f"no 429 after {limit + extra} requests")


def test_login_rate_limit(server_factory):
    srv = server_factory(label="ratelimit-login")
    ip = next_source_ip()
    # validation failures (422) do not consume the budget
    with make_session(ip) as s:
        for _ in range(3):
            assert s.post(srv.url("/auth/login"), data={"username": "admin"}, timeout=10).status_code == 422

    def attempt(i):
        r = login(srv, srv.admin_username, "wrong-password", source_ip=ip)
        if r.status_code != 429:
            assert r.status_code == 401, r.text
        return r

    burst_until_429(attempt, 5, 5, extra=3)
    # once limited, even the right password is refused
    r = login(srv, srv.admin_username, srv.admin_password, source_ip=ip)
    assert_429(r, "Rate limit exceeded: 5 per 1 minute")


def test_publish_rate_limit(server_factory):
    srv = server_factory(label="ratelimit-publish")
    admin = start_admin(srv)
    topic = unique()
    anon = Api(srv, None, admin.api.source_ip)
    for _ in range(5):  # 401s do not consume the budget
        assert anon.post("/api/v1/messages", json={"topic": topic, "payload": {}}).status_code == 401
    for _ in range(10):  # neither do 422s
        assert admin.api.post("/api/v1/messages", json={"topic": topic, "payload": []}).status_code == 422

    def publish(i):
        r = admin.api.post("/api/v1/messages", json={"topic": topic, "payload": {"i": i}})
        assert r.status_code in (201, 429), (i, r.status_code, r.text)
        return r

    n, r = burst_until_429(publish, 120, 120)
    assert_429(r, "Rate limit exceeded: 120 per 1 minute")
    # nothing was stored for the refused request
    assert len(admin.api.all_message_ids(topic)) == n


def test_bulk_rate_limit(server_factory):
    srv = server_factory(label="ratelimit-bulk")
    admin = start_admin(srv)
    topic = unique()

    def bulk(i):
        r = admin.api.post("/api/v1/messages/bulk", json={"messages": [{"topic": topic, "payload": {"i": i}}]})
        assert r.status_code in (207, 429), (i, r.status_code, r.text)
        return r

    n, r = burst_until_429(bulk, 30, 30)
    assert_429(r, "Rate limit exceeded: 30 per 1 minute")
    assert len(admin.api.all_message_ids(topic)) == n


def test_unlimited_routes_not_limited(server_factory):
    """Routes without a limit (§5.9 'everything else') take a burst of requests."""
    srv = server_factory(label="ratelimit-none")
    admin = start_admin(srv)
    topic = unique()
    admin.api.publish(topic)
    for _ in range(150):
        assert admin.api.get(f"/api/v1/topics/{topic}/messages").status_code == 200
    for _ in range(50):
        assert admin.api.get("/auth/me").status_code == 200
