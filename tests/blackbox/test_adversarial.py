"""Adversarial suite (issue 4): attacks on authentication, namespacing and privilege, on the real wire.

Contract: relay-http.md §0.3 (bearer resolution), §0.5 (namespacing), §4.1 (WebSocket handshake), §5
(users, JWT, deny-list, refresh tokens, rate limits) with corrections D9, D10, D12 and D13. Every test
names, in its docstring, the attack it stops. Tokens are forged with the server's real secret wherever
that isolates one check: a token that is correct except for one thing shows that the one thing is what
the server refuses.

Attacks already pinned elsewhere, and not repeated here:
  test_auth_basics.py
    - signature by another secret: test_me_token_with_wrong_secret; expired: test_me_expired_token
    - deleted user's token: test_deleted_user_token
    - forged `permissions` claim: test_authorization_uses_stored_permissions_not_claims
    - logout on HTTP: test_logout_revokes_only_that_token
    - refresh replay revokes the chain and its new head: test_refresh_rotation_and_replay
    - revoke is no oracle for an unknown jti or a wrong secret: test_revoke
    - another user's session: test_sessions_of_other_user_not_deletable
    - admin-only routes: test_register_requires_admin, test_users_list_requires_admin,
      test_users_stats_requires_admin, test_delete_requires_admin, and test_patch_requires_admin (a user
      PATCHing itself to admin)
    - D12 over HTTP: test_patch_permissions_take_effect_next_request,
      test_patch_deactivate_takes_effect_next_request, test_refresh_for_inactive_user
    - unknown user and wrong password get the same message: test_login_wrong_password,
      test_login_unknown_user
  test_websocket.py
    - revoked token at the handshake: test_handshake_revoked_token (pinned to a 403 before the upgrade by
      test_open_websockets_closed_when_access_ends here)
    - open socket closed with 4001 on logout or expiry: test_logout_closes_open_socket,
      test_expiring_token_closes_socket_fast
    - inactive or deleted user at the handshake: test_handshake_inactive_or_deleted_user
  test_topics.py, test_bulk.py, test_poll.py, test_websocket.py
    - one name, two owners; another user's topic is 404 for GET/PUT/DELETE/messages; admin has no
      cross-namespace power; bulk, poll and WS isolation: test_same_name_two_users,
      test_other_users_topic_invisible, test_update_other_users_topic_is_404,
      test_delete_other_users_topic_is_404, test_admin_has_no_cross_namespace_power, test_bulk_namespaced,
      test_live_only_requested_topics_and_own_namespace, test_namespace_isolation
    - D9 poll stats scoped to the caller: test_poll_stats_scoped_to_caller
  test_limits_and_errors.py
    - one user's password brute-forced from one address: test_login_rate_limit; body caps; untrusted Host
  test_device_flow.py
    - CSRF on device approve/deny, user codes guessed by another user

Constant-time comparison of secrets is pinned by a unit test of the helper (src/common/tests/random_test.cc,
ConstantTimeEquals over OpenSSL CRYPTO_memcmp) plus the source tripwire at the end of this file.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import socket
import threading
import time
import uuid
from urllib.parse import quote

import pytest
import websocket

from conftest import (Api, MagnetarServer, User, WsClosed, assert_422, assert_detail, assert_www_auth, b64url,
                      jwt_parts, login, make_session, next_source_ip, raw_http, register_user, unique, ws_connect,
                      ws_handshake_status, ws_json, ws_ping, ws_recv, ws_send, ws_subscribe)

INVALID = "Invalid or expired token"
SRC_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "src"))


# ------------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------------


def _seg(part) -> str:
    """A JWT segment from a dict (compact JSON), bytes or an already-encoded str."""
    if isinstance(part, str):
        return part
    if isinstance(part, (dict, list)):
        part = json.dumps(part, separators=(",", ":")).encode()
    return b64url(part)


def forge(header, claims, key: bytes | str, digest=hashlib.sha256) -> str:
    """header.claims signed with HMAC(`key`, `digest`): any header, any claims, any key."""
    key = key.encode() if isinstance(key, str) else key
    signing_input = f"{_seg(header)}.{_seg(claims)}"
    sig = b64url(hmac.new(key, signing_input.encode(), digest).digest())
    return f"{signing_input}.{sig}"


HS256 = {"alg": "HS256", "typ": "JWT"}


def claims_for(user, **overrides) -> dict:
    now = int(time.time())
    claims = {"sub": user.user_id, "username": user.username, "permissions": list(user.permissions),
              "exp": now + 300, "iat": now, "jti": uuid.uuid4().hex}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not ...}


def quick_user(tenant, permissions: list, prefix: str) -> User:
    """A registered user with a reference-format access token minted with the server's secret (§5.4; see
    test_reference_format_token_accepted) instead of a password login: one Argon2 hash fewer per user. It
    has no refresh token; tests that need one log in for real."""
    username, password, body = register_user(tenant.admin, permissions, prefix)
    user = User(tenant.server, username, password, body["user_id"], body["permissions"], "", "", None)
    user.token = forge(HS256, claims_for(user), tenant.server.secret)
    user.api = Api(tenant.server, user.token, tenant.source_ip)
    return user


def me_status(server: MagnetarServer, token: str):
    return Api(server, token, None).get("/auth/me")


def assert_token_refused(server: MagnetarServer, token: str, detail: str = INVALID):
    r = me_status(server, token)
    assert_detail(r, 401, detail)
    assert_www_auth(r)


def raw_request(server: MagnetarServer, method: str, path: str, *, token: str | None = None, body: bytes = b"",
                headers: dict | None = None, timeout: float = 10.0, head_only: bool = False):
    """One request with the exact target bytes given (requests/urllib3 would normalise `..` and `%2F`).
    `head_only` sends the head (with the body's Content-Length) but not the body: what a server that
    refuses an oversized body from its Content-Length sees."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{server.port}", "Connection: close"]
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    for k, v in (headers or {}).items():
        lines.append(f"{k}: {v}")
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append("Content-Type: application/json")
        lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
    return raw_http(server, head if head_only else head + body, timeout=timeout)


def refresh(server: MagnetarServer, token, *, source_ip: str | None = "fresh"):
    ip = next_source_ip() if source_ip == "fresh" else source_ip
    return Api(server, None, ip).post("/auth/token/refresh", json={"refresh_token": token})


def revoke(server: MagnetarServer, token, *, chain: bool = False):
    return Api(server, None, next_source_ip()).post("/auth/token/revoke",
                                                    json={"refresh_token": token, "revoke_chain": chain})


def assert_healthy(server: MagnetarServer):
    assert server.alive(), f"server died; log tail:\n{server.read_log()[-4000:]}"
    assert Api(server).get("/health", timeout=5).status_code == 200


@contextlib.contextmanager
def open_ws(server, token):
    ws = ws_connect(server, token)
    try:
        yield ws
    finally:
        with contextlib.suppress(Exception):
            ws.close(timeout=1)


def wait_for_close(ws, timeout: float) -> WsClosed:
    """Ping once a second (so idle timers never fire) until the server closes the socket."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        with contextlib.suppress(websocket.WebSocketConnectionClosedException, OSError):
            ws_send(ws, {"type": "ping"})
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            try:
                ws_recv(ws, max(0.01, end - time.monotonic()))
            except WsClosed as c:
                return c
            except websocket.WebSocketTimeoutException:
                break
            except OSError:
                return WsClosed(None, "socket error")
    raise AssertionError(f"socket still open after {timeout}s")


# ------------------------------------------------------------------------------------------------
# Forged and malformed access tokens (§0.3 step 2, §5.4)
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_is_refused(server, rw, alg):
    """`alg: none` with an empty signature (and with a real HMAC) must not pass as a token anyone can mint."""
    claims = claims_for(rw)
    header = {"alg": alg, "typ": "JWT"}
    unsigned = f"{_seg(header)}.{_seg(claims)}"
    for token in (unsigned + ".", unsigned, forge(header, claims, server.secret)):
        assert_token_refused(server, token)


@pytest.mark.parametrize("header", [
    {"alg": "RS256", "typ": "JWT"},
    {"alg": "ES256", "typ": "JWT"},
    {"alg": "PS256", "typ": "JWT"},
    {"alg": "EdDSA", "typ": "JWT"},
    {"alg": "HS384", "typ": "JWT"},
    {"alg": "HS512", "typ": "JWT"},
    {"alg": "HS256 ", "typ": "JWT"},
    {"alg": " HS256", "typ": "JWT"},
    {"alg": "hs256", "typ": "JWT"},
    {"alg": "HS256\u0000", "typ": "JWT"},
    {"alg": ["HS256"], "typ": "JWT"},
    {"alg": None, "typ": "JWT"},
    {"typ": "JWT"},
    ["HS256"],
], ids=lambda h: json.dumps(h))
def test_algorithm_confusion_is_refused(server, rw, header):
    """Algorithm confusion: any header other than exactly HS256 is refused, even with a valid HMAC-SHA256
    under the real secret, so the header can never pick a weaker or different verification."""
    assert_token_refused(server, forge(header, claims_for(rw), server.secret))


@pytest.mark.parametrize("alg,digest", [("HS384", hashlib.sha384), ("HS512", hashlib.sha512)])
def test_other_hmac_algorithms_with_the_real_secret_are_refused(server, rw, alg, digest):
    """Algorithm confusion: an HS384/HS512 token signed with the server's own secret is still not accepted."""
    assert_token_refused(server, forge({"alg": alg, "typ": "JWT"}, claims_for(rw), server.secret, digest))


@pytest.mark.parametrize("key", [b"", b"\x00", b"secret", b"null", b"undefined", b"HS256"],
                         ids=["empty", "nul", "secret", "null", "undefined", "HS256"])
def test_tokens_signed_with_guessable_keys_are_refused(server, rw, key):
    """A token signed with an empty or well-known key (the classic misconfiguration probes) is refused."""
    assert_token_refused(server, forge(HS256, claims_for(rw), key))


def test_kid_jku_x5u_header_injection_is_ignored(server, rw):
    """Header injection: `kid` path traversal / SQL, `jku`/`x5u` URLs and an embedded `jwk` cannot choose the
    verification key, and the server never fetches a key from a URL the attacker names."""
    fetched = []
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    stop = threading.Event()

    def accept_loop():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            fetched.append(conn.recv(1024))
            conn.close()

    t = threading.Thread(target=accept_loop, daemon=True)
    t.start()
    try:
        attacker_key = b"attacker-controlled-key"
        headers = [
            dict(HS256, kid="../../../../../../dev/null"),
            dict(HS256, kid="' UNION SELECT 'attacker-controlled-key' --"),
            dict(HS256, jku=f"http://127.0.0.1:{port}/jwks.json"),
            dict(HS256, x5u=f"http://127.0.0.1:{port}/cert.pem"),
            dict(HS256, jwk={"kty": "oct", "k": b64url(attacker_key)}),
        ]
        for header in headers:
            for key in (b"", attacker_key):
                assert_token_refused(server, forge(header, claims_for(rw), key))
        time.sleep(0.3)
        assert fetched == [], f"the server fetched a key from the attacker's URL: {fetched!r}"
    finally:
        stop.set()
        t.join(2)
        listener.close()


def test_tampered_payload_with_original_signature_is_refused(server, rw, other):
    """Payload tampering: swapping in another user's `sub`, admin permissions or a later `exp` while keeping
    the original signature is refused."""
    head, payload, sig = rw.token.split(".")
    claims = jwt_parts(rw.token)[1]
    for change in ({"sub": other.user_id}, {"permissions": ["admin", "read", "write"]},
                   {"exp": claims["exp"] + 86400}, {"username": other.username}):
        tampered = dict(claims, **change)
        assert_token_refused(server, f"{head}.{_seg(tampered)}.{sig}")
    # the same claims re-encoded with padding, or one byte changed, do not match either
    assert_token_refused(server, f"{head}.{payload}==.{sig}")
    flipped = payload[:-1] + ("A" if payload[-1] != "A" else "B")
    assert_token_refused(server, f"{head}.{flipped}.{sig}")
    assert me_status(server, rw.token).status_code == 200  # the original still works


def test_tampered_signature_is_refused(server, rw):
    """Signature tampering: every lax spelling of the right MAC (padding, standard base64 alphabet) and every
    small change to it is refused; only the exact canonical signature passes."""
    token = forge(HS256, claims_for(rw), server.secret)
    assert me_status(server, token).status_code == 200
    head, payload, sig = token.split(".")
    raw = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
    variants = {
        "padded": sig + "=",
        "standard-alphabet": base64.b64encode(raw).decode().rstrip("="),
        "standard-padded": base64.b64encode(raw).decode(),
        "truncated": sig[:-1],
        "extended": sig + "A",
        "first-flipped": ("B" if sig[0] == "A" else "A") + sig[1:],
        "last-flipped": sig[:-1] + ("B" if sig[-1] == "A" else "A"),
        "upper": sig.upper(),
        "empty": "",
        "zeros": b64url(b"\x00" * 32),
    }
    for name, bad in variants.items():
        if bad == sig:
            continue
        r = me_status(server, f"{head}.{payload}.{bad}")
        assert r.status_code == 401, f"{name}: {r.status_code} {r.text}"


def test_truncated_and_extra_segments_are_refused(server, rw):
    """Structural tricks: two, four or five segments (JWE-like), empty segments and stray dots are refused."""
    head, payload, sig = rw.token.split(".")
    for bad in (f"{head}.{payload}", f"{head}.{payload}.{sig}.", f"{head}.{payload}.{sig}.{sig}",
                f"{head}.{payload}.{sig}.{head}.{payload}", f".{payload}.{sig}", f"{head}..{sig}",
                f"{head}.{payload}..{sig}", f"..{sig}", "..", ".", head, f"{head}.{payload}.{sig[:10]}"):
        assert_token_refused(server, bad)


def test_non_base64url_tokens_are_refused(server, rw):
    """Encoding tricks: characters outside base64url (`+ / = % ~ !`, non-ASCII) anywhere are refused."""
    head, payload, sig = rw.token.split(".")
    for bad in (f"{head}+.{payload}.{sig}", f"{head}.{payload}/.{sig}", f"{head}.{payload}.{sig}%3D",
                f"{head}.{payload}~.{sig}", f"{head}!.{payload}.{sig}", f"{head}.{payload}.{sig}é"):
        r = Api(server).get("/auth/me", headers={"Authorization": f"Bearer {bad}".encode("utf-8")})
        assert r.status_code == 401, (bad, r.status_code, r.text)


def test_oversized_tokens_are_bounded(server, rw):
    """Resource abuse: a 12 KB token is refused with 401 without work, and a 1 MB Authorization header (also
    on the WebSocket handshake) is answered 431/400/401 or dropped within seconds; the server stays up."""
    head, payload, sig = rw.token.split(".")
    big = f"{head}.{'A' * 12000}.{sig}"
    t0 = time.monotonic()
    assert_token_refused(server, big)
    assert time.monotonic() - t0 < 2

    for header_name, path in (("Authorization", "/auth/me"), ("Sec-WebSocket-Protocol", "/ws")):
        value = "Bearer " + "A" * (1 << 20) if header_name == "Authorization" else "bearer, bearer." + "A" * (1 << 20)
        extra = ""
        if path == "/ws":
            extra = ("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")
        request = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n{extra}"
                   f"{header_name}: {value}\r\n\r\n").encode()
        t0 = time.monotonic()
        status = None
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            with contextlib.suppress(OSError):
                sock.sendall(request)
            with contextlib.suppress(OSError):
                data = b""
                while b"\r\n" not in data:
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                if data.startswith(b"HTTP/1.1 "):
                    status = int(data[9:12])
        assert time.monotonic() - t0 < 5
        assert status in (None, 400, 401, 403, 431), (header_name, status)
    assert_healthy(server)


def test_not_yet_valid_tokens_are_refused(server, rw):
    """Pre-dated tokens: `nbf` or `iat` in the future (beyond a small clock skew) is refused, so a token minted
    for later (or by a clock set ahead) does not work before its time."""
    now = int(time.time())
    assert_token_refused(server, forge(HS256, claims_for(rw, iat=now + 3600, exp=now + 7200), server.secret))
    assert_token_refused(server, forge(HS256, claims_for(rw, nbf=now + 3600), server.secret))
    assert_token_refused(server, forge(HS256, claims_for(rw, nbf=str(now - 10)), server.secret))
    # a past nbf and a second of clock skew are fine
    assert me_status(server, forge(HS256, claims_for(rw, nbf=now - 10), server.secret)).status_code == 200
    assert me_status(server, forge(HS256, claims_for(rw, iat=now + 2), server.secret)).status_code == 200


@pytest.mark.parametrize("change", [
    {"sub": ...}, {"sub": ""}, {"sub": 12345}, {"username": ...}, {"exp": ...}, {"iat": ...},
    {"exp": "9999999999"}, {"exp": 1e30}, {"exp": 18446744073709551616}, {"aud": "magnetar"},
    {"aud": ["relay"]}, {"permissions": ["root"]}, {"permissions": "admin"}, {"jti": 7},
], ids=lambda c: json.dumps({k: ("<absent>" if v is ... else v) for k, v in c.items()}))
def test_wrong_or_missing_claims_are_refused(server, rw, change):
    """Claim tampering by someone holding a signing oracle: missing or mistyped sub/username/exp/iat, an
    audience (tokens meant for another service), invalid permission names or a non-string jti are refused."""
    assert_token_refused(server, forge(HS256, claims_for(rw, **change), server.secret))


def test_sub_names_a_user_id_never_a_username(server, admin, rw):
    """Identity confusion: `sub` is resolved as a user id only; a token whose sub is a username (even
    "admin") or an unknown id belongs to nobody."""
    for sub in (admin.username, rw.username, str(uuid.uuid4()), rw.user_id.upper()):
        token = forge(HS256, claims_for(rw, sub=sub), server.secret)
        assert_token_refused(server, token, "User not found")


def test_refresh_token_or_device_code_is_not_a_bearer(server, rw):
    """Token-type confusion: a refresh token (whole, either half) or a device code presented as a bearer
    access token is refused, on HTTP and at the WebSocket handshake."""
    jti, secret = rw.refresh_token.split(".", 1)
    device_code = b64url(secrets.token_bytes(32))
    r = Api(server, None, next_source_ip()).post("/auth/device/code", data={"client_hint": "adversarial"})
    if r.status_code == 200 and "device_code" in r.json():
        device_code = r.json()["device_code"]
    for bad in (rw.refresh_token, jti, secret, device_code, f"{rw.token}.{secret}"):
        assert_token_refused(server, bad)
        assert ws_handshake_status(server, bad) == 403
    # and it is still a live refresh token: refused as a bearer, not consumed
    assert jti in [s["jti"] for s in rw.api.get("/auth/sessions").json()]


def test_tokens_in_query_strings_are_not_accepted(server, rw):
    """Token leakage through URLs: a token in the query string (`?token=`, `?access_token=`, the removed
    `/ws?token=` form) is not a credential, so clients are never led to put tokens where logs keep them."""
    for param in ("token", "access_token", "jwt", "bearer"):
        r = Api(server).get(f"/auth/me?{param}={rw.token}")
        assert_detail(r, 401, "Not authenticated")
        assert ws_handshake_status(server, None, protocols=[], path=f"/ws?{param}={rw.token}") == 403


def test_forged_tokens_are_refused_at_the_websocket_handshake(server, rw):
    """The WebSocket handshake applies the same token checks as HTTP: alg none, confusion, tampered, not yet
    valid and wrong-key tokens never open a socket."""
    now = int(time.time())
    claims = claims_for(rw)
    head, _payload, sig = rw.token.split(".")
    for bad in (f"{_seg({'alg': 'none'})}.{_seg(claims)}.",
                forge({"alg": "HS512"}, claims, server.secret, hashlib.sha512),
                f"{head}.{_seg(dict(claims, permissions=['admin']))}.{sig}",
                forge(HS256, claims_for(rw, nbf=now + 3600), server.secret),
                forge(HS256, claims, b"")):
        assert ws_handshake_status(server, bad) == 403, bad
    assert ws_handshake_status(server, forge(HS256, claims, server.secret)) == 101


def test_deleted_users_token_and_data_not_inherited_by_a_namesake(server, tenant):
    """Identity reuse: after a user is deleted, a new account with the same username does not inherit the
    old tokens, refresh tokens or topics (identity is the user id, never the name)."""
    victim = tenant.new_user(["read", "write"], prefix="reuse")
    topic = unique("private")
    victim.api.publish(topic, {"secret": "data"})
    assert tenant.admin.api.delete(f"/auth/users/{victim.user_id}").status_code == 204
    r = tenant.admin.api.post("/auth/register", json={"username": victim.username, "password": "namesake-pw-123",
                                                      "permissions": ["read", "write"]})
    assert r.status_code == 201, r.text
    namesake_id = r.json()["user_id"]
    assert namesake_id != victim.user_id
    assert_token_refused(server, victim.token, "User not found")
    assert ws_handshake_status(server, victim.token) == 403
    assert_detail(refresh(server, victim.refresh_token), 401, "user not found")
    namesake = User(server, victim.username, "namesake-pw-123", namesake_id, ["read", "write"], "", "", None)
    api = Api(server, forge(HS256, claims_for(namesake), server.secret), next_source_ip())
    assert api.get("/auth/me").json()["user_id"] == namesake_id
    assert api.get("/api/v1/topics").json() == []
    assert_detail(api.get(f"/api/v1/topics/{topic}"), 404, f"Topic '{topic}' not found")
    assert api.post("/messages/poll", json={"topics": [topic], "since": {topic: "0-0"}, "timeout": 1}
                    ).json()["messages"] == []


# ------------------------------------------------------------------------------------------------
# Refresh tokens (§1.11-§1.12, §5.6)
# ------------------------------------------------------------------------------------------------


def test_replay_deep_in_a_chain_revokes_all_of_it_but_not_other_sessions(server, tenant):
    """Stolen refresh token: replaying one rotated three generations ago revokes the whole chain, so the
    thief's and the legitimate holder's current tokens both die; the user's independent sessions survive."""
    user = tenant.new_user(["read"], prefix="chain")
    independent = login(server, user.username, user.password).json()["refresh_token"]
    chain = [user.refresh_token]
    for _ in range(3):
        r = refresh(server, chain[-1])
        assert r.status_code == 200, r.text
        chain.append(r.json()["refresh_token"])
    assert_detail(refresh(server, chain[1]), 401, "invalid refresh token")  # the thief replays
    assert_detail(refresh(server, chain[-1]), 401, "invalid refresh token")  # the holder's next refresh
    live = {s["jti"] for s in user.api.get("/auth/sessions").json()}
    assert not live & {t.split(".", 1)[0] for t in chain}, live
    assert independent.split(".", 1)[0] in live
    assert refresh(server, independent).status_code == 200


def test_right_jti_with_a_wrong_secret_has_no_effect(server, tenant, rw):
    """Refresh-token guessing: a victim's jti (it is not secret: sessions list it) with a made-up secret, or
    with the secret of the attacker's own token, refreshes nothing, revokes nothing and does not trip
    replay detection, so knowing a jti is no denial-of-service lever either."""
    victim = tenant.new_user(["read"], prefix="jtiguess")
    jti = victim.refresh_token.split(".", 1)[0]
    own_secret = rw.refresh_token.split(".", 1)[1]  # a real secret, of the attacker's own token
    for secret in (b64url(secrets.token_bytes(32)), own_secret, "A" * 43, victim.refresh_token.split(".", 1)[1][:-1]):
        assert_detail(refresh(server, f"{jti}.{secret}"), 401, "invalid refresh token")
        assert revoke(server, f"{jti}.{secret}", chain=True).status_code == 204
    r = refresh(server, victim.refresh_token)
    assert r.status_code == 200, r.text


def test_revoke_answers_identically_whatever_the_token(server, tenant):
    """Enumeration oracle: /auth/token/revoke answers byte-for-byte the same for an unknown jti, a right jti
    with a wrong secret, a live token and an already revoked one, with or without revoke_chain."""
    user = tenant.new_user(["read"], prefix="oracle")
    jti = user.refresh_token.split(".", 1)[0]
    seen = set()
    for token in (f"{uuid.uuid4()}.{'B' * 43}", f"{jti}.{'C' * 43}", user.refresh_token, user.refresh_token):
        for chain in (False, True):
            r = revoke(server, token, chain=chain)
            headers = {k.lower(): v for k, v in r.headers.items() if k.lower() not in ("date",)}
            seen.add((r.status_code, r.content, tuple(sorted(headers.items()))))
    assert len(seen) == 1, seen
    assert next(iter(seen))[0] == 204


def test_concurrent_double_refresh_exactly_one_wins(server, tenant):
    """Refresh race: a token presented by several clients at once (a stolen copy used in parallel) is rotated
    exactly once, and because the losers count as a replay, the winner's new token is revoked too."""
    user = tenant.new_user(["read"], prefix="race")
    n = 6
    barrier = threading.Barrier(n)
    apis = [Api(server, None, next_source_ip()) for _ in range(n)]
    results: list = [None] * n

    def run(i):
        session = apis[i].session
        session.get(server.url("/health"), timeout=5)  # connect first: the race is on the request
        barrier.wait(5)
        results[i] = session.post(server.url("/auth/token/refresh"), json={"refresh_token": user.refresh_token},
                                  timeout=10)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    codes = sorted(r.status_code for r in results)
    assert codes == [200] + [401] * (n - 1), [(r.status_code, r.text) for r in results]
    for r in results:
        if r.status_code == 401:
            assert r.json() == {"detail": "invalid refresh token"}
    winner = next(r for r in results if r.status_code == 200).json()
    assert_detail(refresh(server, winner["refresh_token"]), 401, "invalid refresh token")
    assert me_status(server, winner["access_token"]).status_code == 200  # access tokens live out their time


def test_refresh_guessing_is_throttled(server, rw):
    """Online guessing of refresh tokens: one address gets 10 refresh attempts a minute, then 429 with
    Retry-After; a valid token does not get through the throttle either."""
    ip = next_source_ip()
    api = Api(server, None, ip)
    statuses = []
    for _ in range(12):
        r = api.post("/auth/token/refresh", json={"refresh_token": f"{uuid.uuid4()}.{b64url(secrets.token_bytes(32))}"})
        statuses.append(r.status_code)
        if r.status_code == 429:
            break
    assert statuses[:10] == [401] * 10, statuses
    assert statuses[-1] == 429, statuses
    assert r.json() == {"error": "Rate limit exceeded: 10 per 1 minute"}
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert api.post("/auth/token/refresh", json={"refresh_token": rw.refresh_token}).status_code == 429


# ------------------------------------------------------------------------------------------------
# Namespacing (§0.5, D9)
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def victim_topic(other):
    """`other` owns a topic with a description and two messages; `rw` is the attacker."""
    name = unique("victim")
    r = other.api.post("/api/v1/topics", json={"topic_name": name, "description": "victim's private topic"})
    assert r.status_code == 201, r.text
    ids = [other.api.publish(name, {"secret": i})["message_id"] for i in range(2)]
    return {"name": name, "topic_id": r.json()["topic_id"], "ids": ids, "owner": other}


def _assert_victim_intact(victim_topic):
    owner = victim_topic["owner"]
    name = victim_topic["name"]
    r = owner.api.get(f"/api/v1/topics/{name}")
    assert r.status_code == 200, r.text
    assert r.json()["description"] == "victim's private topic"
    assert [m["message_id"] for m in owner.api.messages(name, order="asc")["messages"]] == victim_topic["ids"]


def _path_tricks(victim_topic):
    name, owner_id = victim_topic["name"], victim_topic["owner"].user_id
    lookalike = name.replace("i", "\u0456", 1)  # Cyrillic і
    return [
        f"{owner_id}%2F{name}", f"{owner_id}%2f{name}", f"..%2F{owner_id}%2F{name}", f"%2E%2E%2F{owner_id}%2F{name}",
        f"..%2F..%2F{name}", f"%2e%2e%2f{name}", f"persistent:%2F%2F{owner_id}%2Fdefault%2F{name}",
        victim_topic["topic_id"], owner_id, name.upper(), f"{name}%00", f"{name}%20", f"%20{name}",
        f"{name}%2500", f"{name}%252F", "%2A", "*", "%25", quote(lookalike, safe=""), f"{name};owner={owner_id}",
        "x" * 9000,
    ]


def test_other_users_topic_unreachable_by_path_tricks(server, rw, victim_topic):
    """Cross-namespace access by path: owner-qualified names (`%2F`), `..` traversal (encoded or not),
    double encoding, NUL and whitespace padding, case changes, Unicode look-alikes, the topic id, wildcards
    and overlong names never reach another user's topic for GET, messages, PUT or DELETE."""
    for trick in _path_tricks(victim_topic):
        for method, suffix, body in (("GET", "", b""), ("GET", "/messages?order=asc", b""),
                                     ("PUT", "", b'{"description":"pwned"}'), ("DELETE", "", b"")):
            r = raw_request(server, method, f"/api/v1/topics/{trick}{suffix}", token=rw.token, body=body)
            assert r.status in (404, 400, 431), (method, trick, suffix, r.status, r.body[:300])
            assert b'"secret"' not in r.body and b"pwned" not in r.body, r.body[:300]
    # literal dot segments, which a path normaliser might resolve
    for path in (f"/api/v1/topics/../topics/{victim_topic['owner'].user_id}/{victim_topic['name']}",
                 f"/api/v1/topics/./{victim_topic['owner'].user_id}/../{victim_topic['name']}/messages"):
        r = raw_request(server, "GET", path, token=rw.token)
        assert r.status in (404, 400), (path, r.status, r.body[:300])
        assert b"secret" not in r.body
    _assert_victim_intact(victim_topic)
    assert_healthy(server)


def test_owner_qualified_names_rejected_on_every_write_and_subscribe_path(server, rw, victim_topic):
    """Cross-namespace writes and reads by name: a topic name that spells another owner (`<id>/<name>`,
    `persistent://…`, `../…`) or a look-alike is invalid (422 / subscription error) on publish, bulk,
    topic create, poll and WebSocket subscribe, so it can never address the victim's topic."""
    name, owner_id = victim_topic["name"], victim_topic["owner"].user_id
    bad_names = [f"{owner_id}/{name}", f"persistent://{owner_id}/default/{name}", f"../{name}",
                 f"{owner_id}:{name}", name.replace("i", "\u0456", 1), f"{name}\u0000", "*"]
    for bad in bad_names:
        assert_422(rw.api.post("/api/v1/messages", json={"topic": bad, "payload": {"pwned": True}}))
        assert_422(rw.api.post("/api/v1/messages/bulk", json={"messages": [{"topic": bad, "payload": {}}]}))
        assert_422(rw.api.post("/api/v1/topics", json={"topic_name": bad}))
        assert_422(rw.api.post("/messages/poll", json={"topics": [bad], "since": {bad: "0-0"}, "timeout": 1}))
    with open_ws(server, rw.token) as ws:
        ws_send(ws, {"type": "subscribe", "topics": [bad_names[0]], "client_id": "x", "offset": "first"})
        frame = ws_json(ws)
        assert frame["type"] == "error" and frame["code"] == "SUBSCRIPTION_ERROR", frame
    _assert_victim_intact(victim_topic)


def test_other_users_history_unreachable_by_catch_up_or_replay(server, rw, victim_topic):
    """Cross-namespace history reads: a poll catching up from `0-0` or from the victim's own message id, and
    a WebSocket subscribe replaying from `first` or from a victim's message id, read the attacker's own
    (empty) topic of that name, never the victim's messages."""
    name = victim_topic["name"]
    for since in ("0-0", victim_topic["ids"][0]):
        r = rw.api.post("/messages/poll", json={"topics": [name], "since": {name: since}, "timeout": 1})
        assert r.status_code == 200, r.text
        assert r.json()["messages"] == [], r.text
    for offset in ("first", victim_topic["ids"][0]):
        with open_ws(server, rw.token) as ws:
            _sub, early = ws_subscribe(ws, [name], offset=offset)
            assert early == []
            pong = ws_ping(ws)  # anything replayed would arrive before the pong
            assert pong["type"] == "pong"


def test_nothing_about_other_users_leaks_in_listings_or_stats(server, rw, victim_topic):
    """Cross-namespace discovery: the attacker's listings, profile, sessions and poll stats (D9) carry neither
    the victim's user id nor the victim's topic name, while the victim has a poll parked on it."""
    owner, name = victim_topic["owner"], victim_topic["name"]
    body = {"topics": [name], "timeout": 10}
    t = threading.Thread(target=lambda: owner.api.post("/messages/poll", json=body, timeout=20), daemon=True)
    t.start()
    owner.api.wait_for_waiter(name)
    for path in ("/api/v1/topics", "/auth/me", "/auth/sessions", "/messages/poll/stats"):
        r = rw.api.get(path)
        assert r.status_code == 200, (path, r.text)
        assert owner.user_id not in r.text and name not in r.text, (path, r.text)
    for path in ("/api/v1/topics/stats", "/auth/users", "/auth/users/stats"):
        assert_detail(rw.api.get(path), 403, "Permission 'admin' required")
    owner.api.publish(name, {"wake": True})
    t.join(15)
    victim_topic["ids"].append(owner.api.messages(name, order="desc", limit=1)["messages"][0]["message_id"])


# ------------------------------------------------------------------------------------------------
# Privilege (§5.1, D12)
# ------------------------------------------------------------------------------------------------


def test_admin_routes_refuse_forged_admin_claims(server, rw, other):
    """Privilege escalation by token: a token signed with the real secret that claims `admin` does not open
    any admin route (authorization reads the stored user), and the user stays without admin."""
    forged = forge(HS256, claims_for(rw, permissions=["admin", "read", "write"]), server.secret)
    api = Api(server, forged, None)
    calls = [("post", "/auth/register", {"username": unique("x"), "password": "12345678", "permissions": ["admin"]}),
             ("get", "/auth/users", None), ("get", "/auth/users/stats", None), ("get", "/api/v1/topics/stats", None),
             ("patch", f"/auth/users/{rw.user_id}", {"permissions": ["admin", "read", "write"]}),
             ("patch", f"/auth/users/{other.user_id}", {"is_active": False}),
             ("delete", f"/auth/users/{other.user_id}", None)]
    for method, path, body in calls:
        r = getattr(api, method)(path, json=body) if body is not None else getattr(api, method)(path)
        assert_detail(r, 403, "Permission 'admin' required")
    assert rw.api.get("/auth/me").json()["permissions"] == ["read", "write"]
    assert other.api.get("/auth/me").status_code == 200


def test_open_websockets_closed_when_access_ends(server, tenant):
    """Access that outlives its grant (D10, D12): a token logged out, or a user deactivated, stripped of `read`
    or deleted while a WebSocket is open, is disconnected with 4001; the next HTTP request is refused and the
    logged-out token cannot open a new socket (403 before the upgrade). The refresh is refused too
    (test_refresh_for_inactive_user, test_deleted_users_token_and_data_not_inherited_by_a_namesake)."""
    kinds = ("loggedout", "inactive", "noread", "deleted")
    users = {kind: quick_user(tenant, ["read", "write"], f"mid-{kind}") for kind in kinds}
    sockets = {}
    try:
        for kind, user in users.items():
            sockets[kind] = ws_connect(server, user.token)
            ws_subscribe(sockets[kind], [unique()])
        admin = tenant.admin.api
        assert users["loggedout"].api.post("/auth/logout").status_code == 204
        assert admin.patch(f"/auth/users/{users['inactive'].user_id}", json={"is_active": False}).status_code == 200
        assert admin.patch(f"/auth/users/{users['noread'].user_id}", json={"permissions": ["write"]}).status_code == 200
        assert admin.delete(f"/auth/users/{users['deleted'].user_id}").status_code == 204
        # the next HTTP request is refused at once, and so is a new socket for the logged-out token
        assert_detail(users["loggedout"].api.get("/auth/me"), 401, "Token has been revoked")
        assert ws_handshake_status(server, users["loggedout"].token) == 403
        assert_detail(users["inactive"].api.get("/auth/me"), 403, "User is inactive")
        assert_detail(users["noread"].api.post("/messages/poll", json={"topics": [unique()], "timeout": 1}), 403,
                      "Permission 'read' required")
        assert_detail(users["deleted"].api.get("/auth/me"), 401, "User not found")
        # and every open socket is closed, without waiting for its token to expire
        closes = {}
        threads = [threading.Thread(target=lambda k=k: closes.__setitem__(k, wait_for_close(sockets[k], 12)))
                   for k in sockets]
        for t in threads:
            t.start()
        for t in threads:
            t.join(15)
        for kind in sockets:
            assert kind in closes, f"{kind}: socket not closed"
            assert closes[kind].code == 4001, (kind, closes[kind])
    finally:
        for ws in sockets.values():
            with contextlib.suppress(Exception):
                ws.close(timeout=1)


def test_device_page_cookie_is_not_an_api_credential(server, rw):
    """Ambient-credential CSRF: the device verification page's sign-in cookie authenticates nothing on the
    API or the WebSocket, so a foreign page that makes a signed-in browser call the API gets 401/403."""
    with make_session(next_source_ip()) as s:
        r = s.post(server.url("/auth/device/login"), data={"username": rw.username, "password": rw.password},
                   allow_redirects=False, timeout=10)
        if not s.cookies:
            pytest.skip(f"the device page gave no sign-in cookie ({r.status_code})")
        cookie = "; ".join(f"{c.name}={c.value}" for c in s.cookies)
    browser = Api(server, None, None)
    for method, path, body in (("get", "/auth/me", None), ("get", "/api/v1/topics", None),
                               ("post", "/api/v1/messages", {"topic": unique(), "payload": {"csrf": True}}),
                               ("post", "/auth/logout", None), ("get", "/auth/sessions", None)):
        r = getattr(browser, method)(path, json=body, headers={"Cookie": cookie, "Origin": "http://testserver"})
        assert_detail(r, 401, "Not authenticated")
    assert ws_handshake_status(server, None, protocols=[], header=[f"Cookie: {cookie}"]) == 403
    assert ws_handshake_status(server, None, protocols=["bearer"], header=[f"Cookie: {cookie}"]) == 403


def test_write_revocation_beats_an_idempotent_replay(server, tenant):
    """Replay after losing a permission: a publish repeated with its Idempotency-Key after `write` was removed
    is refused (403), not answered from the stored result."""
    user = quick_user(tenant, ["read", "write"], "idem")
    topic = unique()
    key = uuid.uuid4().hex
    body = {"topic": topic, "payload": {"n": 1}}
    assert user.api.post("/api/v1/messages", json=body, headers={"Idempotency-Key": key}).status_code == 201
    assert tenant.admin.api.patch(f"/auth/users/{user.user_id}", json={"permissions": ["read"]}).status_code == 200
    r = user.api.post("/api/v1/messages", json=body, headers={"Idempotency-Key": key})
    assert_detail(r, 403, "Permission 'write' required")
    r = user.api.post("/api/v1/messages/bulk", json={"messages": [body]})
    assert_detail(r, 403, "Permission 'write' required")


# ------------------------------------------------------------------------------------------------
# Brute force (§5.9, D13)
# ------------------------------------------------------------------------------------------------


def _comparable(r):
    headers = {k.lower(): v for k, v in r.headers.items() if k.lower() not in ("date", "retry-after")}
    return r.status_code, r.content, tuple(sorted(headers.items()))


def test_login_throttled_when_rotating_usernames(server, tenant, rw):
    """Password spraying: one address trying many usernames (existing or not), even while claiming other
    addresses in X-Forwarded-For / X-Real-IP / Forwarded, is throttled after 5 attempts with 429 and
    Retry-After, and the throttled answer is the same whether the user exists or not."""
    ip = next_source_ip()
    names = [rw.username, unique("nobody"), tenant.admin.username, unique("ghost"), rw.username]
    with make_session(ip) as s:
        for i, name in enumerate(names):
            # claimed client addresses are not believed: the throttle keys on the peer address
            spoofed = f"203.0.113.{i + 1}"
            r = s.post(server.url("/auth/login"), timeout=10,
                       data={"username": name, "password": "wrong-" + secrets.token_hex(4)},
                       headers={"X-Forwarded-For": spoofed, "X-Real-IP": spoofed, "Forwarded": f"for={spoofed}"})
            assert_detail(r, 401, "Incorrect username or password")
    existing = login(server, rw.username, rw.password, source_ip=ip)  # the right password, too late
    missing = login(server, unique("nobody"), "whatever-pw", source_ip=ip)
    for r in (existing, missing):
        assert r.status_code == 429, r.text
        assert r.json() == {"error": "Rate limit exceeded: 5 per 1 minute"}
        assert 1 <= int(r.headers["Retry-After"]) <= 60
    assert _comparable(existing) == _comparable(missing)


def test_login_failures_identical_for_unknown_wrong_and_inactive(server, tenant):
    """User enumeration: an unknown username, a wrong password and a wrong password for an inactive account
    produce byte-identical responses (status, body, headers)."""
    inactive_name, _pw, body = register_user(tenant.admin, ["read"], prefix="enum")
    assert tenant.admin.api.patch(f"/auth/users/{body['user_id']}", json={"is_active": False}).status_code == 200
    active = tenant.user("rw")
    responses = [login(server, unique("nobody"), "wrong-password-1"),
                 login(server, active.username, "wrong-password-1"),
                 login(server, inactive_name, "wrong-password-1")]
    assert len({_comparable(r) for r in responses}) == 1, [(r.status_code, r.text, dict(r.headers)) for r in responses]
    assert_detail(responses[0], 401, "Incorrect username or password")


# ------------------------------------------------------------------------------------------------
# Secrets never leak (logs, error bodies, headers)
# ------------------------------------------------------------------------------------------------


def test_secrets_never_in_logs_or_error_bodies(server_factory):
    """Secret leakage: with trace logging on, logins, refreshes, failures and 422s that carry passwords and
    tokens leave no password, JWT secret, refresh token (or its secret half), access token or Authorization
    value in the server log, and none comes back in a response (body or header) other than the one that
    issued it."""
    srv = server_factory("--log-level", "trace", label="secrets")
    admin_pw = srv.admin_password
    user_pw = "user-pw-" + secrets.token_hex(8)
    wrong_pw = "wrong-pw-" + secrets.token_hex(8)
    short_pw = secrets.token_hex(4)[:7]
    basic = base64.b64encode(f"admin:{admin_pw}".encode()).decode()
    seen: list = []  # (response, names of the secrets this response legitimately carries)

    def keep(r, *issued):
        seen.append((r, set(issued)))
        return r

    admin = keep(login(srv, "admin", admin_pw), "access token", "access signature", "refresh token",
                 "refresh secret")
    assert admin.status_code == 200, admin.text
    access, refresh_tok = admin.json()["access_token"], admin.json()["refresh_token"]
    api = Api(srv, access, next_source_ip())
    anon = Api(srv, None, next_source_ip())
    keep(login(srv, "admin", wrong_pw))
    keep(login(srv, unique("nobody"), wrong_pw))
    keep(login(srv, "admin", admin_pw + "x" * 5000))
    name = unique("leak")
    keep(api.post("/auth/register", json={"username": name, "password": user_pw, "permissions": ["read"]}))
    keep(api.post("/auth/register", json={"username": unique("s"), "password": short_pw}))
    keep(api.post("/auth/register", json={"password": user_pw}))  # missing username: echoes the body
    keep(api.post("/auth/register", json={"username": unique("s"), "password": [user_pw]}))
    keep(api.post("/auth/register", json={"username": "x", "password": user_pw, "permissions": ["root"]}))
    user_id = next(u["user_id"] for u in api.get("/auth/users").json() if u["username"] == name)
    keep(api.patch(f"/auth/users/{user_id}", json={"password": short_pw}))
    keep(api.patch(f"/auth/users/{user_id}", json={"password": user_pw, "is_active": "maybe"}))
    user = keep(login(srv, name, user_pw), "user refresh secret")
    user_refresh = user.json()["refresh_token"]
    rotated = keep(anon.post("/auth/token/refresh", json={"refresh_token": refresh_tok}), "new refresh secret")
    assert rotated.status_code == 200, rotated.text
    new_refresh = rotated.json()["refresh_token"]
    keep(anon.post("/auth/token/refresh", json={"refresh_token": refresh_tok}))  # replay
    keep(anon.post("/auth/token/refresh", json={"refresh_token": [user_refresh]}))
    keep(anon.post("/auth/token/refresh", json={"refresh_tokens": user_refresh, "password": admin_pw}))
    keep(anon.post("/auth/token/refresh", json={"refresh_token": user_refresh, "password": 5}))
    keep(anon.post("/auth/token/revoke", json={"refresh_token": user_refresh, "revoke_chain": "perhaps"}))
    keep(anon.post("/auth/token/revoke", json={"refresh_token": new_refresh}))
    keep(anon.post("/messages/poll", data=b'{"topics": ', headers={"Authorization": f"Bearer {access}"}))
    keep(anon.get("/auth/me", headers={"Authorization": f"Bearer {access}x"}))
    keep(anon.get("/auth/me", headers={"Authorization": f"Basic {basic}"}))
    keep(api.post("/api/v1/messages", json={"topic": "", "payload": {"n": 1}, "password": admin_pw}))
    keep(api.post("/api/v1/messages", json={"payload": {"n": 1}, "password": admin_pw}))
    with contextlib.suppress(Exception):
        ws_connect(srv, access).close(timeout=1)
    with contextlib.suppress(Exception):
        ws_connect(srv, access + "x").close(timeout=1)
    keep(api.post("/auth/logout"))
    keep(api.get("/auth/me"))

    hidden = {
        "jwt secret": srv.secret, "admin password": admin_pw, "user password": user_pw, "wrong password": wrong_pw,
        "short password": short_pw, "basic credentials": basic, "access token": access,
        "access signature": access.rsplit(".", 1)[1], "refresh token": refresh_tok,
        "refresh secret": refresh_tok.split(".", 1)[1], "user refresh secret": user_refresh.split(".", 1)[1],
        "new refresh secret": new_refresh.split(".", 1)[1],
    }
    time.sleep(0.2)
    log = srv.read_log()
    for what, value in hidden.items():
        assert value not in log, f"{what} appears in the server log"
    for r, issued in seen:
        text = r.content.decode("utf-8", "replace") + "\n" + "\n".join(f"{k}: {v}" for k, v in r.headers.items())
        for what, value in hidden.items():
            if what not in issued:
                assert value not in text, f"{what} echoed by {r.request.method} {r.request.url} -> " \
                                          f"{r.status_code}: {text[:400]}"


def test_websocket_handshake_never_echoes_the_token(server, rw):
    """Token leakage via headers: the handshake answer negotiates the bare `bearer` subprotocol and never
    echoes the `bearer.<jwt>` item, so proxies logging response headers do not record the token."""
    key = base64.b64encode(secrets.token_bytes(16)).decode()
    request = (f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n"
               f"Sec-WebSocket-Protocol: bearer, bearer.{rw.token}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(request)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                break
            head += chunk
    text = head.decode("latin-1")
    assert text.startswith("HTTP/1.1 101"), text
    assert re.search(r"(?im)^sec-websocket-protocol: bearer\r$", text), text
    assert rw.token not in text and rw.token.rsplit(".", 1)[1] not in text


# ------------------------------------------------------------------------------------------------
# Input abuse against the auth routes
# ------------------------------------------------------------------------------------------------


def test_huge_and_deeply_nested_json_on_auth_routes_is_bounded(server, admin, rw):
    """Parser abuse: 100 000-deep nesting, a 50 000-key object and an over-cap body on the JSON auth routes are
    refused (422/413) within a second or two, without a crash."""
    deep = b"[" * 100_000 + b"]" * 100_000
    deep_obj = b'{"a":' * 50_000 + b"1" + b"}" * 50_000
    wide = json.dumps({f"k{i}": i for i in range(50_000)}).encode()
    huge = json.dumps({"refresh_token": "x" * (2 << 20)}).encode()
    routes = [("POST", "/auth/token/refresh", None), ("POST", "/auth/token/revoke", None),
              ("POST", "/auth/register", admin.token), ("PATCH", f"/auth/users/{rw.user_id}", admin.token)]
    for method, path, token in routes:
        # a wide object of unknown keys is a valid no-op PATCH (unknown fields are ignored, §0.1)
        wide_ok = {200, 422} if method == "PATCH" else {422}
        for body, expected in ((deep, {422}), (deep_obj, {422}), (wide, wide_ok), (huge, {413})):
            t0 = time.monotonic()
            r = raw_request(server, method, path, token=token, body=body, timeout=15, head_only=body is huge)
            assert r.status in expected, (path, len(body), r.status, r.body[:200])
            assert time.monotonic() - t0 < 5, (path, len(body))
    assert_healthy(server)


def test_unknown_fields_cannot_mass_assign(server, admin, tenant, rw):
    """Mass assignment: fields the models do not declare (`user_id`, `is_active`, `hashed_password`,
    `owned_topics`, `created_at`, `username` on PATCH, `is_admin`/`role`) are ignored by register and
    PATCH, so they can neither take over another account's id nor skip the permission list."""
    name = unique("mass")
    r = tenant.admin.api.post("/auth/register", json={
        "username": name, "password": "12345678", "permissions": ["read"], "user_id": admin.user_id,
        "is_active": False, "hashed_password": "$argon2id$v=19$m=16,t=1,p=1$c2FsdHNhbHQ$aGFzaA",
        "owned_topics": ["stolen"], "created_at": "2000-01-01T00:00:00Z", "is_admin": True, "role": "admin"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["user_id"] != admin.user_id and body["is_active"] is True and body["permissions"] == ["read"]
    assert body["owned_topics"] == [] and not body["created_at"].startswith("2000")
    assert "hashed_password" not in r.text and "argon2" not in r.text
    me = admin.api.get("/auth/me").json()  # the admin's record was not touched
    assert me["username"] == admin.username and "admin" in me["permissions"]
    r = tenant.admin.api.patch(f"/auth/users/{rw.user_id}", json={
        "username": admin.username, "user_id": admin.user_id, "owned_topics": ["stolen"], "is_admin": True})
    assert r.status_code == 200, r.text
    assert r.json()["username"] == rw.username and r.json()["user_id"] == rw.user_id
    assert r.json()["permissions"] == ["read", "write"] and "stolen" not in r.json()["owned_topics"]


def test_wrong_content_types_on_auth_routes(server, rw):
    """Content-type confusion: JSON, multipart or text bodies where a form is expected (and vice versa) never
    log anyone in with wrong credentials and never cause a 5xx."""
    ip = next_source_ip()
    with make_session(ip) as s:
        url = server.url("/auth/login")
        form = f"username={rw.username}&password=wrong-password&grant_type=password"
        for kwargs in ({"json": {"username": rw.username, "password": "wrong-password"}},
                       {"data": form, "headers": {"Content-Type": "text/plain"}},
                       {"files": {"username": (None, rw.username), "password": (None, "wrong-password")}},
                       {"data": b"\xff\xfe\x00garbage", "headers": {"Content-Type": "application/octet-stream"}}):
            r = s.post(url, timeout=10, **kwargs)
            assert r.status_code in (401, 422, 429), (kwargs, r.status_code, r.text)
            assert "access_token" not in r.text
        r = s.post(server.url("/auth/token/refresh"), data={"refresh_token": rw.refresh_token}, timeout=10)
        assert r.status_code == 422, r.text
        r = s.post(server.url("/auth/token/refresh"), data=b'"' + rw.refresh_token.encode() + b'"',
                   headers={"Content-Type": "application/json"}, timeout=10)
        assert r.status_code == 422, r.text


def test_duplicate_form_fields_try_one_password_only(server, tenant):
    """Brute-force amplification: a login carrying several `password` fields checks only one of them, so one
    request (one rate-limit unit) cannot test many guesses."""
    username, password, _ = register_user(tenant.admin, ["read"], prefix="dup")
    with make_session(next_source_ip()) as s:
        a = s.post(server.url("/auth/login"), timeout=10,
                   data=[("username", username), ("password", "wrong-guess-1"), ("password", password)])
    with make_session(next_source_ip()) as s:
        b = s.post(server.url("/auth/login"), timeout=10,
                   data=[("username", username), ("password", password), ("password", "wrong-guess-1")])
    assert sorted([a.status_code, b.status_code]) == [200, 401], (a.text, b.text)
    with make_session(next_source_ip()) as s:
        many = s.post(server.url("/auth/login"), timeout=10,
                      data=[("username", username)] + [("password", f"guess-{i}") for i in range(50)]
                      + [("password", password)] + [("password", f"guess-b{i}") for i in range(50)])
    assert_detail(many, 401, "Incorrect username or password")


def test_nul_bytes_in_credentials_do_not_truncate(server, admin, tenant):
    """C-string truncation: a NUL byte in a username or password is part of it, so `admin\\0…` is not admin
    and a password's prefix before a NUL does not unlock the account."""
    r = login(server, "admin\x00ignored", admin.password)
    assert_detail(r, 401, "Incorrect username or password")
    name = unique("nul")
    pw = "correct-horse\x00battery-staple"
    r = tenant.admin.api.post("/auth/register", json={"username": name, "password": pw})
    assert r.status_code == 201, r.text
    assert_detail(login(server, name, "correct-horse"), 401, "Incorrect username or password")
    assert login(server, name, pw).status_code == 200


def test_overlong_credentials_are_bounded(server, tenant, rw):
    """Hashing abuse: a megabyte-sized username or password is refused quickly, without running Argon2 on it,
    and no account can be given such a password."""
    r = tenant.admin.api.post("/auth/register", json={"username": unique("long"), "password": "p" * 4097})
    assert_422(r, loc_contains="password", type_="string_too_long")
    assert "pppp" not in r.text
    assert_422(tenant.admin.api.patch(f"/auth/users/{rw.user_id}", json={"password": "p" * 5000}),
               loc_contains="password")

    def timed(username, password, status=401, extra=None):
        t0 = time.monotonic()
        r = login(server, username, password, extra=extra)
        assert r.status_code == status, r.text
        return time.monotonic() - t0

    # one Argon2 run each (the right password also shows the PATCH above changed nothing) ...
    normal = min(timed(rw.username, rw.password, 200), timed(rw.username, "wrong-password"))
    # ... and none for a 900 KB password, which only costs its upload: measured beside the same
    # upload refused by form validation (a bad grant_type, 422, never hashed), so a slow build
    # (ASan) that makes the upload itself cost a good part of one Argon2 run cannot blur the two.
    upload = min(timed(rw.username, "x" * 900_000, 422, extra={"grant_type": "nope"}) for _ in range(2))
    huge = max(timed(rw.username, "x" * 900_000) for _ in range(2))
    assert huge < upload + normal / 2, \
        f"a 900 KB password took {huge:.3f}s, its upload alone {upload:.3f}s, a normal one {normal:.3f}s"
    assert timed("u" * 900_000, "whatever-password") < 5
    assert_healthy(server)


def test_crlf_is_never_reflected_into_response_headers(server, tenant):
    """Header injection / response splitting: CR/LF smuggled through the path, the query (the 307 redirect's
    Location), header values or a username never produces an extra response header."""
    name = unique("crlf")
    responses = [
        raw_request(server, "GET", "/api/v1/topics/?x=%0d%0aSet-Cookie:%20pwned=1"),
        raw_request(server, "GET", "/api/v1/topics/%0d%0aSet-Cookie:%20pwned=1/"),
        raw_request(server, "GET", "/api/v1/topics%0d%0aSet-Cookie:%20pwned=1/"),
        raw_request(server, "GET", "/health", headers={"Origin": "http://testserver%0d%0aSet-Cookie: pwned=1"}),
    ]
    for r in responses:
        assert "set-cookie" not in r.headers, r.headers
        for v in r.headers.values():
            assert "\r" not in v and "\n" not in v, r.headers
    if "location" in responses[0].headers:
        assert "%0d%0a" in responses[0].headers["location"].lower()
    # a bare CR inside a header value is a malformed request, not a new header
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nX-A: a\rSet-Cookie: pwned=1\r\n\r\n"
                     .encode())
        data = sock.recv(65536)
    assert b"pwned" not in data.split(b"\r\n\r\n", 1)[0], data
    # a username full of CR/LF is data: escaped in JSON bodies, never a header
    r = tenant.admin.api.post("/auth/register", json={"username": f"{name}\r\nSet-Cookie: pwned=1",
                                                      "password": "12345678"})
    assert r.status_code in (201, 422), r.text
    assert "Set-Cookie" not in r.headers
    if r.status_code == 201:
        assert "\\r\\n" in r.text  # JSON-escaped in the body
    assert_healthy(server)


def test_trailing_slash_redirect_stays_on_this_host(server):
    """Open redirect: the trailing-slash 307 never answers with a protocol-relative Location (`//api/...`,
    which a browser follows to the host `api`), however many slashes the request path starts with."""
    for path in ("//api/v1/topics/", "///health/", "//auth/users/", "////api//v1/topics/?next=//evil.example"):
        r = raw_request(server, "GET", path)
        if r.status == 307:
            location = r.headers["location"]
            assert location.startswith("/") and not location.startswith("//"), (path, location)
            assert not re.match(r"^[a-z][a-z0-9+.-]*:", location, re.I), (path, location)
        else:
            assert r.status == 404, (path, r.status)


# ------------------------------------------------------------------------------------------------
# Constant-time comparison of secrets (source tripwire)
# ------------------------------------------------------------------------------------------------


SECRET_NAME = r"(?:secret|signature|sig\b|mac\b|hmac|digest|csrf|device_code|user_code|password|passwd|hash)"


# Lines the tripwire flags that are not comparisons of a secret: (file under src/, code fragment, why).
# A line may also carry the comment `// not-a-secret-compare: <why>`.
NOT_SECRET_COMPARES = [
    ("relay/device_codes.cc", "record.user_code != user_code",
     "checks the index against the record after an exact key lookup by that user code: both sides are the "
     "caller's own input once the lookup has hit, so the comparison reveals nothing"),
]


def _code_lines(path):
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if "not-a-secret-compare:" in line:
                continue
            stripped = line.split("//", 1)[0]
            if stripped.strip():
                yield n, stripped


@pytest.mark.skipif(not os.path.isdir(SRC_DIR), reason="source tree not available")
def test_secret_comparisons_use_constant_time_helpers():
    """Timing side channels: every place that compares a secret (JWT signature, refresh-token secret hash,
    password, device and CSRF codes) goes through ConstantTimeEquals (OpenSSL CRYPTO_memcmp) or
    argon2_verify, never `==`, memcmp or strcmp, which stop at the first differing byte.

    This is a tripwire on the source, not a proof: it fails when a comparison of an identifier that names a
    secret is written with a short-circuiting operator in the code that serves requests (src/auth, src/relay,
    src/http, src/ws; start-up checks in src/server have no attacker timing them), and when the known
    comparison sites stop using the helpers. Review new secret comparisons by hand as well."""
    expectations = {
        "auth/jwt.cc": r"ConstantTimeEquals\(expected, *signature_b64\)",
        "relay/refresh_tokens.cc": r"ConstantTimeEquals\(\(\*record\)->secret_hash",
        "auth/password.cc": r"argon2_verify\(",
        "common/random.cc": r"CRYPTO_memcmp\(",
    }
    for rel, pattern in expectations.items():
        with open(os.path.join(SRC_DIR, rel), encoding="utf-8") as f:
            assert re.search(pattern, f.read()), f"{rel}: the secret comparison no longer matches {pattern!r}"

    forbidden = [
        re.compile(r"(?<!CRYPTO_)\b(?:memcmp|bcmp|strcmp|strncmp|strcasecmp)\s*\("),
        re.compile(rf"\w*{SECRET_NAME}\w*(?:\(\))?\s*(?:==|!=)\s*(?!nullptr|0\b|npos|std::string::npos)", re.I),
        re.compile(rf"(?:==|!=)\s*[\w.>*-]*{SECRET_NAME}", re.I),
        re.compile(rf"\w*{SECRET_NAME}\w*\s*\.\s*compare\s*\(", re.I),
    ]
    allowed = re.compile(r"\.size\(\)|\.empty\(\)|\.end\(\)|kind\b|Kind::|code\(\)|StatusCode|_len\b|length", re.I)
    offenders = []
    for module in ("auth", "relay", "http", "ws"):  # the code that runs on requests
        for root, _dirs, files in os.walk(os.path.join(SRC_DIR, module)):
            if os.sep + "tests" in root:
                continue
            for fn in files:
                if not fn.endswith((".cc", ".h")):
                    continue
                path = os.path.join(root, fn)
                rel = os.path.relpath(path, SRC_DIR)
                exempt = [frag for f, frag, _why in NOT_SECRET_COMPARES if f == rel]
                for n, line in _code_lines(path):
                    if any(frag in line for frag in exempt):
                        continue
                    for pat in forbidden:
                        m = pat.search(line)
                        if m and not allowed.search(line[max(0, m.start() - 40):m.end() + 40]):
                            offenders.append(f"{rel}:{n}: {line.strip()}")
                            break
    assert not offenders, "secret compared with a short-circuiting operator:\n" + "\n".join(offenders)
