"""Logs (docs/operations.md): --log-level debug writes one line per HTTP request (method, path
without its query, status, duration), --log-format json writes one JSON object per line, and no
line ever holds a password, an access token, a refresh token (or its secret half), a device code,
a user code, the JWT secret or the metrics token, whichever flow ran: password login, refresh,
rotation, sessions, logout, revoke, the device flow (bearer and page sign-in), the relay
WebSocket (token in the subprotocol), the Pulsar WebSocket (token in the query string), failed
logins and bad tokens.
"""

from __future__ import annotations

import json
import re
import time

import pytest
import websocket

from conftest import (
    HTTP_TIMEOUT,
    Api,
    MagnetarServer,
    login,
    make_session,
    next_source_ip,
    register_user,
    require_binary,
    start_admin,
    unique,
    ws_connect,
    ws_json,
)

GRANT = "urn:ietf:params:oauth:grant-type:device_code"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
METRICS_TOKEN = "metrics-" + "k" * 30
REQUEST_LINE = re.compile(r"(GET|POST|PUT|PATCH|DELETE|OPTIONS|HEAD) (/\S*) (\d{3}) \d+\.\dms")


def run_every_auth_flow(srv: MagnetarServer) -> list[str]:
    """Runs the flows that carry secrets; returns every secret that went over the wire."""
    secrets_seen = [srv.admin_password, srv.secret, METRICS_TOKEN]
    admin = start_admin(srv)
    secrets_seen += [admin.token, admin.refresh_token]

    # A user created with a password, then a password login, refresh and rotation.
    username, password, body = register_user(admin, ["read", "write"], prefix="logs")
    secrets_seen.append(password)
    r = login(srv, username, password)
    assert r.status_code == 200, r.text
    tokens = r.json()
    secrets_seen += [tokens["access_token"], tokens["refresh_token"]]
    s = make_session(next_source_ip())
    r = s.post(srv.url("/auth/token/refresh"), json={"refresh_token": tokens["refresh_token"]}, timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text
    rotated = r.json()
    secrets_seen += [rotated["access_token"], rotated["refresh_token"]]
    # Replaying the rotated-away token (a refused refresh), a wrong password, a bad bearer.
    r = s.post(srv.url("/auth/token/refresh"), json={"refresh_token": tokens["refresh_token"]}, timeout=HTTP_TIMEOUT)
    assert r.status_code == 401
    assert login(srv, username, password + "-wrong").status_code == 401
    secrets_seen.append(password + "-wrong")
    assert s.get(srv.url("/auth/me"), headers={"Authorization": "Bearer not.a.jwt-secret-ish"},
                 timeout=HTTP_TIMEOUT).status_code == 401
    secrets_seen.append("not.a.jwt-secret-ish")

    # The replay revoked the whole chain (spec §1.11): sign in again for the rest.
    r = login(srv, username, password)
    assert r.status_code == 200, r.text
    rotated = r.json()
    secrets_seen += [rotated["access_token"], rotated["refresh_token"]]
    user_api = Api(srv, rotated["access_token"], next_source_ip())
    assert user_api.get("/auth/me").status_code == 200
    sessions = user_api.get("/auth/sessions").json()
    assert sessions

    # Publish, then the relay WebSocket (token in the subprotocol) and the Pulsar one (in the query).
    topic = unique("logs")
    user_api.publish(topic, {"x": 1})
    ws = ws_connect(srv, rotated["access_token"])
    ws.send(json.dumps({"type": "subscribe", "topics": [topic], "client_id": "logs"}))
    assert ws_json(ws)["type"] == "subscribed"
    ws.close()
    pws = websocket.create_connection(
        f"ws://127.0.0.1:{srv.port}/ws/v2/producer/persistent/{username}/default/{topic}"
        f"?token={rotated['access_token']}", timeout=5, suppress_origin=True)
    pws.close()

    # The device flow: a code, the verification page's password sign-in, approval, the token.
    device = make_session(next_source_ip())
    r = device.post(srv.url("/auth/device/code"), data={"client_hint": "logs-test"}, timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text
    code = r.json()
    secrets_seen += [code["device_code"], code["user_code"], code["user_code"].replace("-", "")]
    browser = make_session(next_source_ip())
    origin = {"Origin": srv.base_url}
    r = browser.post(srv.url("/auth/device/login"), headers=origin, allow_redirects=False, timeout=HTTP_TIMEOUT,
                     data={"username": username, "password": password, "user_code": code["user_code"]})
    assert r.status_code == 303, r.text[:300]
    secrets_seen.append(r.headers["Set-Cookie"].split(";")[0].split("=", 1)[1])
    page = browser.get(srv.url("/auth/device"), params={"user_code": code["user_code"]}, timeout=HTTP_TIMEOUT)
    csrf = CSRF_RE.search(page.text).group(1)
    secrets_seen.append(csrf)
    r = browser.post(srv.url("/auth/device/approve"), headers=origin, timeout=HTTP_TIMEOUT,
                     data={"user_code": code["user_code"], "csrf_token": csrf})
    assert r.status_code == 200, r.text[:300]
    time.sleep(1.1)
    r = device.post(srv.url("/auth/device/token"), data={"grant_type": GRANT, "device_code": code["device_code"]},
                    timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text
    secrets_seen += [r.json()["access_token"], r.json()["refresh_token"]]

    # Revoke a session, revoke a refresh token, log out.
    jti = rotated["refresh_token"].split(".", 1)[0]
    assert user_api.delete(f"/auth/sessions/{jti}").status_code == 204
    r = s.post(srv.url("/auth/token/revoke"), json={"refresh_token": r.json()["refresh_token"]}, timeout=HTTP_TIMEOUT)
    assert r.status_code == 204
    assert user_api.post("/auth/logout").status_code == 204
    assert make_session(None).get(srv.url("/metrics"), headers={"Authorization": "Bearer " + METRICS_TOKEN},
                                  timeout=HTTP_TIMEOUT).status_code == 200
    # Refresh tokens are "<jti>.<secret>": the secret half alone must not appear either.
    secrets_seen += [t.split(".", 1)[1] for t in list(secrets_seen) if isinstance(t, str) and t.count(".") == 1
                     and len(t.split(".", 1)[1]) >= 32]
    return secrets_seen


def start(fmt: str) -> MagnetarServer:
    require_binary()
    srv = MagnetarServer(["--log-level", "debug", "--log-format", fmt, "--metrics-token", METRICS_TOKEN,
                          "--device-code-poll-interval", "1"], label=f"logs-{fmt}")
    srv.start()
    return srv


def server_lines(log: str) -> list[str]:
    # The harness writes "=== harness: ..." lines into the same file; the server prints where it
    # listens on stdout, one banner per listener ("magnetar listening on", "magnetar eftl
    # listening on", "magnetar pulsar-ws listening on"): those are for people, not log lines.
    return [l for l in log.splitlines() if l and not l.startswith("=== harness") and
            not re.match(r"magnetar ([\w-]+ )?listening on ", l)]


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_debug_logs_have_request_lines_and_no_secret(fmt):
    srv = start(fmt)
    try:
        secrets_seen = run_every_auth_flow(srv)
        time.sleep(0.3)  # the last lines reach the file
    finally:
        srv.terminate()
    lines = server_lines(srv.read_log())  # (the harness's own lines hold the command line)
    text = "\n".join(lines)
    assert len(lines) > 20, text
    for secret in secrets_seen:
        assert secret and len(secret) >= 6, secret
        assert secret not in text, f"a secret ({secret[:4]}…) is in the {fmt} log"

    if fmt == "json":
        messages = []
        for line in lines:
            obj = json.loads(line)  # every line one JSON object, whatever the message holds
            assert set(obj) == {"ts", "level", "module", "thread", "msg"}, obj
            messages.append(obj["msg"])
    else:
        messages = lines
    requests = [m.group(1, 2, 3) for line in messages if (m := REQUEST_LINE.search(line))]
    assert ("POST", "/auth/login", "200") in requests
    assert ("POST", "/auth/login", "401") in requests
    assert ("POST", "/auth/token/refresh", "200") in requests
    assert ("POST", "/auth/device/token", "200") in requests
    assert ("GET", "/auth/device", "200") in requests  # logged without its ?user_code=
    assert ("GET", "/metrics", "200") in requests
    assert all("?" not in path for _, path, _ in requests), "a query string was logged"
    assert any("upgrade to WebSocket" in m and "/ws/v2/producer/" in m for m in messages)


def test_info_level_has_no_request_lines(server):
    r = make_session(None).get(server.url("/health"), timeout=HTTP_TIMEOUT)
    assert r.status_code == 200
    assert not REQUEST_LINE.search(server.read_log())
