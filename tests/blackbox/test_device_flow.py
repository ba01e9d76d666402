"""The device authorization grant (RFC 8628 + the relay's pair=true extension) over HTTP.

Contract: shared/spec/relay-http.md §5.7 (routes, error bodies, evaluation order), §5.9 (rate
limits), correction D9 (deny needs the same signed-in user as approve), and Magnetar's
differences (src/relay/README.md): the flow works without OIDC, a person signs in on the
verification page itself, slow_down really raises the interval, approve/deny are CSRF-protected.

The module runs its own server with a 1 s poll interval and a 60 s code lifetime (the smallest
the contract allows), so the whole RFC sequence takes seconds. Two codes are made when the module
starts and checked by the last test, once they have expired: the minute of waiting overlaps the
other tests instead of adding to them.

Every device and every browser uses its own loopback source address, so the per-address limits
(code 10/min, token 30/min, page 20/min, login 5/min) never trip by accident.
"""

from __future__ import annotations

import re
import secrets
import threading
import time

import pytest

from conftest import (
    HTTP_TIMEOUT,
    Api,
    MagnetarServer,
    ServerStartError,
    Tenant,
    assert_422,
    assert_compact,
    login,
    make_session,
    next_source_ip,
    require_binary,
    start_admin,
)

INTERVAL = 1  # --device-code-poll-interval
TTL = 60  # --device-code-ttl-seconds
GRANT = "urn:ietf:params:oauth:grant-type:device_code"
USER_CODE_RE = re.compile(r"^[BCDFGHJKLMNPQRSTVWXZ2-9]{4}-[BCDFGHJKLMNPQRSTVWXZ2-9]{4}$")
DEVICE_CODE_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
CODE_RESPONSE_KEYS = ["device_code", "user_code", "verification_uri", "verification_uri_complete",
                      "expires_in", "interval"]
APPROVED_TEXT = "Approved — you can return to your device"


# ------------------------------------------------------------------------------------------------
# Clients: a device (code + token polls) and a browser (cookies, forms)
# ------------------------------------------------------------------------------------------------


class Device:
    """A headless client doing RFC 8628 from its own source address."""

    def __init__(self, server: MagnetarServer):
        self.server = server
        self.session = make_session(next_source_ip())
        self.device_code: str | None = None
        self.user_code: str | None = None
        self.body: dict = {}

    def request_code(self, data: dict | None = None, headers: dict | None = None):
        return self.session.post(self.server.url("/auth/device/code"), data=data or {}, headers=headers,
                                 timeout=HTTP_TIMEOUT)

    def start(self, hint: str | None = "bb-device", pair: bool = False, headers: dict | None = None) -> dict:
        data = {}
        if hint is not None:
            data["client_hint"] = hint
        if pair:
            data["pair"] = "true"
        r = self.request_code(data, headers)
        assert r.status_code == 200, r.text
        self.body = r.json()
        self.device_code, self.user_code = self.body["device_code"], self.body["user_code"]
        return self.body

    def poll(self, device_code: str | None = None, grant_type: str = GRANT):
        data = {"grant_type": grant_type, "device_code": device_code or self.device_code}
        return self.session.post(self.server.url("/auth/device/token"), data=data, timeout=HTTP_TIMEOUT)

    def poll_error(self) -> dict:
        r = self.poll()
        assert r.status_code == 400, f"{r.status_code}: {r.text}"
        return r.json()


class Browser:
    """A person's browser: a cookie jar, its own source address, same-origin form posts."""

    def __init__(self, server: MagnetarServer):
        self.server = server
        self.ip = next_source_ip()
        self.session = make_session(self.ip)
        self.origin = server.base_url

    def page(self, code: str | None = None, path: str = "/auth/device", headers: dict | None = None):
        params = {"user_code": code} if code is not None else None
        return self.session.get(self.server.url(path), params=params, headers=headers, timeout=HTTP_TIMEOUT,
                                allow_redirects=False)

    def post(self, path: str, data: dict, *, origin: str | None = "same", headers: dict | None = None):
        hdrs = dict(headers or {})
        if origin == "same":
            hdrs["Origin"] = self.origin
        elif origin is not None:
            hdrs["Origin"] = origin
        return self.session.post(self.server.url(path), data=data, headers=hdrs, timeout=HTTP_TIMEOUT,
                                 allow_redirects=False)

    def sign_in(self, username: str, password: str, code: str | None = None):
        data = {"username": username, "password": password}
        if code:
            data["user_code"] = code
        return self.post("/auth/device/login", data)

    def signed_in(self, user, code: str) -> str:
        """Sign in and return the anti-CSRF token of the approval page of `code`."""
        r = self.sign_in(user.username, user.password, code)
        assert r.status_code == 303, f"{r.status_code}: {r.text[:300]}"
        assert r.headers["Location"] == f"/auth/device?user_code={code}"
        return self.csrf(code)

    def csrf(self, code: str) -> str:
        r = self.page(code)
        assert r.status_code == 200, r.text[:300]
        m = CSRF_RE.search(r.text)
        assert m, f"no anti-CSRF token on the page: {r.text[:500]}"
        return m.group(1)

    def decide(self, action: str, code: str, csrf: str | None, **kw):
        data = {"user_code": code}
        if csrf is not None:
            data["csrf_token"] = csrf
        return self.post(f"/auth/device/{action}", data, **kw)


def bearer_decide(api: Api, action: str, code: str, *, json_body: bool = False):
    if json_body:
        return api.post(f"/auth/device/{action}", json={"user_code": code})
    return api.post(f"/auth/device/{action}", data={"user_code": code})


def random_user_code() -> str:
    alphabet = "BCDFGHJKLMNPQRSTVWXZ23456789"
    raw = "".join(secrets.choice(alphabet) for _ in range(8))
    return f"{raw[:4]}-{raw[4:]}"


def assert_page_headers(r) -> None:
    assert r.headers["Content-Type"] == "text/html; charset=utf-8", r.headers
    csp = r.headers["Content-Security-Policy"]
    for directive in ("default-src 'none'", "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'"):
        assert directive in csp, csp
    assert re.search(r"style-src 'sha256-[A-Za-z0-9+/]{43}='", csp), csp
    assert "unsafe" not in csp, csp
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["Cache-Control"] == "no-store"
    assert r.headers["Referrer-Policy"] in ("same-origin", "no-referrer")
    assert r.headers["X-Content-Type-Options"] == "nosniff"


def wait_interval(seconds: float = INTERVAL) -> None:
    time.sleep(seconds + 0.2)


# ------------------------------------------------------------------------------------------------
# Fixtures
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dev_server():
    require_binary()
    srv = MagnetarServer(["--device-code-poll-interval", str(INTERVAL), "--device-code-ttl-seconds", str(TTL)],
                         label="device")
    try:
        srv.start()
    except ServerStartError as e:
        pytest.fail(str(e))
    yield srv
    code = srv.terminate()
    srv.kill()
    assert code == 0, f"device-flow server exited with {code}"


@pytest.fixture(scope="module")
def tenant(dev_server) -> Tenant:
    return Tenant(dev_server, start_admin(dev_server))


@pytest.fixture(scope="module")
def alice(tenant):
    return tenant.new_user(["read", "write"], prefix="alice")


@pytest.fixture(scope="module")
def bob(tenant):
    return tenant.new_user(["read", "write"], prefix="bob")


EARLY: dict = {}


@pytest.fixture(scope="module", autouse=True)
def early_codes(dev_server, alice):
    """Two codes made when the module starts: one left pending, one approved and never picked up.
    test_zz_codes_expire checks them after TTL, at the end of the module."""
    pending, approved = Device(dev_server), Device(dev_server)
    pending.start("early-pending")
    approved.start("early-approved")
    assert bearer_decide(alice.api, "approve", approved.user_code).status_code == 200
    EARLY.update(pending=pending, approved=approved, created=time.monotonic())
    yield


# ------------------------------------------------------------------------------------------------
# POST /auth/device/code
# ------------------------------------------------------------------------------------------------


def test_code_response_has_exactly_the_spec_fields(dev_server):
    d = Device(dev_server)
    r = d.request_code({"client_hint": "pulsar-config on host1"})
    assert r.status_code == 200, r.text
    assert_compact(r)
    body = r.json()
    assert list(body.keys()) == CODE_RESPONSE_KEYS
    assert DEVICE_CODE_RE.match(body["device_code"]), body
    assert USER_CODE_RE.match(body["user_code"]), body
    assert body["verification_uri"] == f"{dev_server.base_url}/auth/device"
    assert body["verification_uri_complete"] == f"{dev_server.base_url}/auth/device?user_code={body['user_code']}"
    assert body["expires_in"] in (TTL - 1, TTL)
    assert body["interval"] == INTERVAL
    other = Device(dev_server).start()
    assert other["device_code"] != body["device_code"] and other["user_code"] != body["user_code"]


def test_code_uses_the_host_the_client_used(dev_server):
    r = Device(dev_server).request_code(headers={"Host": f"localhost:{dev_server.port}"})
    assert r.status_code == 200, r.text
    assert r.json()["verification_uri"] == f"http://localhost:{dev_server.port}/auth/device"


def test_public_base_url_option_sets_the_verification_uri(server_factory):
    srv = server_factory("--public-base-url", "https://relay.example.org/", label="public-base")
    body = Device(srv).start()
    assert body["verification_uri"] == "https://relay.example.org/auth/device"
    assert body["verification_uri_complete"] == f"https://relay.example.org/auth/device?user_code={body['user_code']}"
    assert body["interval"] == 5 and body["expires_in"] in (599, 600)  # the defaults


def test_reference_environment_names_set_ttl_and_interval():
    """PULSAR_DEVICE_CODE_TTL_SECONDS / _POLL_INTERVAL (spec §8.2) work as the reference's did."""
    require_binary()

    class EnvServer(MagnetarServer):
        def env(self):
            env = super().env()
            env.update({"PULSAR_DEVICE_CODE_TTL_SECONDS": "120", "PULSAR_DEVICE_CODE_POLL_INTERVAL": "7"})
            return env

    srv = EnvServer(label="device-env")
    try:
        srv.start()
        body = Device(srv).start()
        assert body["interval"] == 7 and body["expires_in"] in (119, 120)
    finally:
        srv.terminate()
        srv.kill()


def test_client_hint_defaults_to_the_user_agent(dev_server):
    d = Device(dev_server)
    d.start(hint=None, headers={"User-Agent": "galaxy-byoc/1.2 (linux)"})
    r = Browser(dev_server).page(d.user_code)
    assert r.status_code == 200
    assert "galaxy-byoc/1.2 (linux)" in r.text


def test_client_hint_that_is_not_utf8_is_stored_readably(dev_server):
    """A hint of raw bytes (percent-encoded form, Latin-1 User-Agent) must not break the record."""
    d = Device(dev_server)
    r = d.session.post(dev_server.url("/auth/device/code"), data=b"client_hint=caf%E9+%FF%FE",
                       headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text
    d.device_code, d.user_code = r.json()["device_code"], r.json()["user_code"]
    assert d.poll_error() == {"error": "authorization_pending"}
    page = Browser(dev_server).page(d.user_code)
    assert page.status_code == 200 and "caf\ufffd \ufffd\ufffd" in page.text
    ua = Device(dev_server)
    ua.start(hint=None, headers={"User-Agent": "agent-\xe9".encode("latin-1")})
    assert ua.poll_error() == {"error": "authorization_pending"}


@pytest.mark.parametrize("data,loc", [
    ({"pair": "maybe"}, "pair"),
    ({"client_hint": "x" * 257}, "client_hint"),
])
def test_code_validation_errors(dev_server, data, loc):
    r = Device(dev_server).request_code(data)
    assert_422(r, loc_contains=loc)


def test_pair_accepts_lax_booleans(dev_server):
    for value in ("1", "yes", "on", "TRUE", "false", "0"):
        r = Device(dev_server).request_code({"pair": value, "client_hint": "lax"})
        assert r.status_code == 200, (value, r.text)


# ------------------------------------------------------------------------------------------------
# POST /auth/device/token: validation and the simple errors
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("data,loc", [
    ({"device_code": "x"}, "grant_type"),
    ({"grant_type": GRANT}, "device_code"),
    ({}, "grant_type"),
])
def test_token_missing_fields_422(dev_server, data, loc):
    r = Device(dev_server).session.post(dev_server.url("/auth/device/token"), data=data, timeout=HTTP_TIMEOUT)
    assert_422(r, loc_contains=loc)


def test_token_unsupported_grant_type_comes_first(dev_server):
    d = Device(dev_server)
    d.start()
    for grant in ("password", "refresh_token", ""):
        r = d.poll(grant_type=grant)
        assert r.status_code == 400
        assert r.json() == {"error": "unsupported_grant_type", "error_description": "Use device_code grant."}
    # Not counted as a poll of the code: the next real poll is no slow_down.
    assert d.poll_error() == {"error": "authorization_pending"}


def test_token_unknown_device_code(dev_server):
    d = Device(dev_server)
    for code in ("nope", "x" * 43, "y" * 5000):
        r = d.poll(device_code=code)
        assert r.status_code == 400
        assert r.json() == {"error": "expired_token", "error_description": "Unknown device_code"}


# ------------------------------------------------------------------------------------------------
# The whole RFC 8628 sequence
# ------------------------------------------------------------------------------------------------


def test_full_flow_with_bearer_approval(dev_server, alice):
    """code -> authorization_pending -> slow_down -> approve (bearer) -> wait the raised interval
    -> tokens -> single use -> expired_token."""
    d = Device(dev_server)
    d.start("pulsar-config on build-host")
    assert d.poll_error() == {"error": "authorization_pending"}
    assert d.poll_error() == {"error": "slow_down"}  # too fast: the interval is now INTERVAL + 5

    r = bearer_decide(alice.api, "approve", d.user_code)
    assert r.status_code == 200 and r.json() == {"status": "approved"}, r.text
    assert_compact(r)

    wait_interval(INTERVAL + 5)
    r = d.poll()
    assert r.status_code == 200, r.text
    assert_compact(r)
    tokens = r.json()
    assert list(tokens.keys()) == ["access_token", "token_type", "expires_in", "refresh_token"]
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] == 600
    assert "refresh_token_secondary" not in tokens

    # Ordinary tokens of alice: the access token works, the refresh token is a listed session.
    device_api = Api(dev_server, tokens["access_token"], next_source_ip())
    me = device_api.get("/auth/me")
    assert me.status_code == 200 and me.json()["username"] == alice.username
    sessions = device_api.get("/auth/sessions").json()
    jti = tokens["refresh_token"].split(".", 1)[0]
    assert [s["client_hint"] for s in sessions if s["jti"] == jti] == ["pulsar-config on build-host"]

    # Single use: the code is gone.
    assert d.poll_error() == {"error": "expired_token", "error_description": "Unknown device_code"}


def test_slow_down_really_raises_the_interval(dev_server):
    """RFC 8628 §3.5 (the reference does not do this): after slow_down a poll that respects the
    old interval but not the raised one is still too fast; one that waits the raised interval is
    on time."""
    early, patient = Device(dev_server), Device(dev_server)
    early.start("early-poller")
    patient.start("patient-poller")
    for d in (early, patient):
        assert d.poll_error() == {"error": "authorization_pending"}
        assert d.poll_error() == {"error": "slow_down"}
    wait_interval(INTERVAL + 1)  # past the old interval, well inside the raised one
    assert early.poll_error() == {"error": "slow_down"}
    time.sleep(INTERVAL + 5 - (INTERVAL + 1.2) + 0.3)  # the patient one waited the raised interval
    assert patient.poll_error() == {"error": "authorization_pending"}


def test_approval_with_browser_cookie_and_csrf_form(dev_server, alice):
    d = Device(dev_server)
    d.start("laptop cli")
    b = Browser(dev_server)

    # Not signed in: the page shows the request and a sign-in form, no decision buttons.
    r = b.page(d.user_code)
    assert r.status_code == 200
    assert_page_headers(r)
    assert "laptop cli" in r.text and d.user_code in r.text
    assert 'action="/auth/device/login"' in r.text
    assert "/auth/device/approve" not in r.text

    r = b.sign_in(alice.username, alice.password, d.user_code)
    assert r.status_code == 303, r.text[:300]
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith("magnetar_device_session=v1.")
    attrs = [a.strip().lower() for a in cookie.split(";")[1:]]
    assert "httponly" in attrs and "samesite=strict" in attrs and "path=/auth/device" in attrs
    assert "secure" not in attrs  # plain http here; set under https (TLS or an https base URL)
    assert alice.password not in cookie

    r = b.page(d.user_code)
    assert r.status_code == 200
    assert alice.username in r.text and "Approve" in r.text and "Deny" in r.text
    csrf = CSRF_RE.search(r.text).group(1)

    r = b.decide("approve", d.user_code, csrf)
    assert r.status_code == 200, r.text[:300]
    assert_page_headers(r)
    assert APPROVED_TEXT in r.text

    r = d.poll()  # never polled before: no slow_down
    assert r.status_code == 200, r.text
    assert Api(dev_server, r.json()["access_token"]).get("/auth/me").json()["username"] == alice.username
    # The page no longer knows the code.
    r = b.page(d.user_code)
    assert r.status_code == 404 and "Code not recognised" in r.text


def test_code_entry_is_case_insensitive_and_dash_optional(dev_server, alice):
    d = Device(dev_server)
    d.start("typed-by-hand")
    b = Browser(dev_server)
    r = b.page()
    assert r.status_code == 200 and 'name="user_code"' in r.text
    assert_page_headers(r)
    for typed in (d.user_code.lower(), d.user_code.replace("-", ""), " " + d.user_code.lower().replace("-", " ")):
        r = b.page(typed)
        assert r.status_code == 200, typed
        assert d.user_code in r.text
    r = b.page(d.user_code, path="/auth/device/")
    assert r.status_code == 200 and d.user_code in r.text


def test_deny_in_browser_then_access_denied_then_expired(dev_server, alice):
    d = Device(dev_server)
    d.start("unwanted")
    assert d.poll_error() == {"error": "authorization_pending"}
    b = Browser(dev_server)
    csrf = b.signed_in(alice, d.user_code)
    r = b.decide("deny", d.user_code, csrf)
    assert r.status_code == 200 and ">Denied<" in r.text, r.text[:300]
    assert_page_headers(r)
    # Too late to approve now.
    assert b.decide("approve", d.user_code, csrf).status_code == 404
    # Denied is reported before the interval is checked (spec §5.7 order), then the code is gone.
    assert d.poll_error() == {"error": "access_denied"}
    assert d.poll_error() == {"error": "expired_token", "error_description": "Unknown device_code"}


def test_deny_with_bearer(dev_server, bob):
    d = Device(dev_server)
    d.start("bearer-deny")
    r = bearer_decide(bob.api, "deny", d.user_code, json_body=True)
    assert r.status_code == 200 and r.json() == {"status": "denied"}
    assert bearer_decide(bob.api, "deny", d.user_code).json() == {"detail": "Unknown user_code"}
    assert d.poll_error() == {"error": "access_denied"}


def test_bearer_decisions_on_unknown_or_decided_codes(dev_server, alice):
    d = Device(dev_server)
    d.start()
    assert bearer_decide(alice.api, "approve", d.user_code.lower()).status_code == 200  # normalised
    for action in ("approve", "deny"):
        r = bearer_decide(alice.api, action, d.user_code)
        assert r.status_code == 404 and r.json() == {"detail": "Unknown user_code"}
    r = bearer_decide(alice.api, "approve", "not a code")
    assert r.status_code == 404 and r.json() == {"detail": "Unknown user_code"}
    assert_422(alice.api.post("/auth/device/approve", data={}), loc_contains="user_code")
    assert_422(alice.api.post("/auth/device/deny", json={}), loc_contains="user_code")


def test_pair_gives_two_independent_refresh_tokens_that_both_rotate(dev_server, alice):
    d = Device(dev_server)
    d.start("pulsar-config-byoc on node7", pair=True)
    r = Browser(dev_server).page(d.user_code)
    assert "second, independent" in r.text  # the person approving is told
    assert bearer_decide(alice.api, "approve", d.user_code).status_code == 200
    r = d.poll()
    assert r.status_code == 200, r.text
    tokens = r.json()
    assert list(tokens.keys()) == ["access_token", "token_type", "expires_in", "refresh_token",
                                   "refresh_token_secondary"]
    primary, secondary = tokens["refresh_token"], tokens["refresh_token_secondary"]
    assert primary != secondary and primary.split(".")[0] != secondary.split(".")[0]

    api = Api(dev_server, tokens["access_token"], next_source_ip())
    hints = {s["jti"]: s["client_hint"] for s in api.get("/auth/sessions").json()}
    assert hints[primary.split(".")[0]] == "pulsar-config-byoc on node7"
    assert hints[secondary.split(".")[0]] == "pulsar-config-byoc on node7-secondary"

    # Both rotate; revoking one chain leaves the other alive (no parent link between them).
    refresher = Api(dev_server, None, next_source_ip())
    r1 = refresher.post("/auth/token/refresh", json={"refresh_token": primary})
    r2 = refresher.post("/auth/token/refresh", json={"refresh_token": secondary})
    assert r1.status_code == 200 and r2.status_code == 200, (r1.text, r2.text)
    new_primary, new_secondary = r1.json()["refresh_token"], r2.json()["refresh_token"]
    assert refresher.post("/auth/token/revoke", json={"refresh_token": new_primary,
                                                      "revoke_chain": True}).status_code == 204
    r = refresher.post("/auth/token/refresh", json={"refresh_token": new_secondary})
    assert r.status_code == 200, r.text


def test_concurrent_polls_on_an_approved_code_give_tokens_once(dev_server, alice):
    d = Device(dev_server)
    d.start("racer")
    assert bearer_decide(alice.api, "approve", d.user_code).status_code == 200
    pollers = [Device(dev_server) for _ in range(6)]
    barrier = threading.Barrier(len(pollers))
    results: list = [None] * len(pollers)

    def run(i):
        barrier.wait(timeout=10)
        results[i] = pollers[i].poll(device_code=d.device_code)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(pollers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=20)
    statuses = [r.status_code for r in results]
    assert statuses.count(200) == 1, [(r.status_code, r.text) for r in results]
    for r in results:
        if r.status_code != 200:
            assert r.json()["error"] in ("expired_token", "slow_down"), r.text


# ------------------------------------------------------------------------------------------------
# Attacks
# ------------------------------------------------------------------------------------------------


def test_approve_and_deny_need_a_signed_in_user(dev_server):
    """D9: nobody can decide about a code anonymously (the reference let anyone deny)."""
    d = Device(dev_server)
    d.start("victim-device")
    anon = Browser(dev_server)
    for action in ("approve", "deny"):
        r = anon.decide(action, d.user_code, "made-up-token")
        assert r.status_code == 401, r.text[:300]
        assert_page_headers(r)
        r = anon.session.post(dev_server.url(f"/auth/device/{action}"), data={"user_code": d.user_code},
                              timeout=HTTP_TIMEOUT)
        assert r.status_code == 401
        r = anon.session.post(dev_server.url(f"/auth/device/{action}"), data={"user_code": d.user_code},
                              headers={"Authorization": "Bearer not-a-jwt"}, timeout=HTTP_TIMEOUT)
        assert r.status_code == 401 and r.json() == {"detail": "Invalid or expired token"}
    assert d.poll_error() == {"error": "authorization_pending"}


def test_csrf_token_missing_wrong_or_from_another_session_is_refused(dev_server, alice, bob):
    """A cross-site form can ride the victim's cookie but cannot know the anti-CSRF token."""
    d = Device(dev_server)
    d.start("csrf-target")
    victim = Browser(dev_server)
    csrf = victim.signed_in(alice, d.user_code)
    attacker = Browser(dev_server)
    attacker_csrf = attacker.signed_in(bob, d.user_code)
    alice_again = Browser(dev_server)
    alice_other_csrf = alice_again.signed_in(alice, d.user_code)
    assert len({csrf, attacker_csrf, alice_other_csrf}) == 3

    for action in ("approve", "deny"):
        for token in (None, "", "x" * 43, csrf[:-1], attacker_csrf, alice_other_csrf):
            r = victim.decide(action, d.user_code, token)
            assert r.status_code == 403, (action, token, r.status_code)
            assert_page_headers(r)
    assert d.poll_error() == {"error": "authorization_pending"}
    # The real token still works.
    assert victim.decide("approve", d.user_code, csrf).status_code == 200


@pytest.mark.parametrize("headers", [
    {"Origin": "http://evil.example"},
    {"Origin": "null"},
    {"Origin": "http://127.0.0.1.evil.example"},
    {"Referer": "http://evil.example/auth/device?user_code=x"},
])
def test_foreign_origin_is_refused_even_with_the_right_csrf_token(dev_server, alice, headers):
    d = Device(dev_server)
    d.start("origin-target")
    b = Browser(dev_server)
    csrf = b.signed_in(alice, d.user_code)
    for action in ("approve", "deny"):
        r = b.decide(action, d.user_code, csrf, origin=None, headers=headers)
        assert r.status_code == 403, (headers, r.status_code)
    # Same-origin Referer without Origin (an older browser) is fine.
    r = b.decide("approve", d.user_code, csrf, origin=None,
                 headers={"Referer": f"{dev_server.base_url}/auth/device?user_code={d.user_code}"})
    assert r.status_code == 200, r.text[:300]


def test_sign_in_from_a_foreign_origin_is_refused(dev_server, alice):
    b = Browser(dev_server)
    r = b.post("/auth/device/login", {"username": alice.username, "password": alice.password},
               origin="http://evil.example")
    assert r.status_code == 403 and "Set-Cookie" not in r.headers


def test_sign_out_ends_the_session_even_for_a_copied_cookie(dev_server, alice):
    d = Device(dev_server)
    d.start("signout")
    b = Browser(dev_server)
    csrf = b.signed_in(alice, d.user_code)
    stolen = b.session.cookies.get("magnetar_device_session")
    assert b.post("/auth/device/logout", {"user_code": d.user_code}).status_code == 403  # CSRF too
    r = b.post("/auth/device/logout", {"user_code": d.user_code, "csrf_token": csrf})
    assert r.status_code == 303 and "Max-Age=0" in r.headers["Set-Cookie"]
    thief = Browser(dev_server)
    jar = {"Cookie": f"magnetar_device_session={stolen}"}
    r = thief.decide("approve", d.user_code, csrf, headers=jar)
    assert r.status_code == 401
    assert 'action="/auth/device/login"' in thief.page(d.user_code, headers=jar).text  # signed out
    assert d.poll_error() == {"error": "authorization_pending"}


def test_session_cookie_is_not_a_bearer_token(dev_server, alice):
    b = Browser(dev_server)
    assert b.sign_in(alice.username, alice.password).status_code == 303
    cookie = b.session.cookies.get("magnetar_device_session")
    r = Api(dev_server, cookie, next_source_ip()).get("/auth/me")
    assert r.status_code == 401


def test_deactivated_user_cannot_approve(dev_server, tenant):
    user = tenant.new_user(["read", "write"], prefix="leaver")
    d = Device(dev_server)
    d.start("leaver-device")
    b = Browser(dev_server)
    csrf = b.signed_in(user, d.user_code)
    assert tenant.admin.api.patch(f"/auth/users/{user.user_id}", json={"is_active": False}).status_code == 200
    r = b.decide("approve", d.user_code, csrf)
    assert r.status_code == 403, r.text[:300]
    r = bearer_decide(user.api, "approve", d.user_code)
    assert r.status_code == 403 and r.json() == {"detail": "User is inactive"}
    r = Browser(dev_server).sign_in(user.username, user.password, d.user_code)
    assert r.status_code == 403 and "Set-Cookie" not in r.headers
    assert d.poll_error() == {"error": "authorization_pending"}


def test_approver_deactivated_before_pickup_gets_no_tokens(dev_server, tenant):
    user = tenant.new_user(["read"], prefix="gone")
    d = Device(dev_server)
    d.start()
    assert bearer_decide(user.api, "approve", d.user_code).status_code == 200
    assert tenant.admin.api.patch(f"/auth/users/{user.user_id}", json={"is_active": False}).status_code == 200
    assert d.poll_error() == {"error": "expired_token"}


def test_sign_in_brute_force_is_throttled_and_shares_the_login_budget(dev_server, alice):
    """The page's sign-in counts against the same per-address limit as POST /auth/login (5/min)."""
    b = Browser(dev_server)
    for _ in range(5):
        r = b.sign_in(alice.username, "wrong-password")
        assert r.status_code == 401, r.text[:300]
        assert "Incorrect username or password" in r.text
    r = b.sign_in(alice.username, alice.password)  # even the right password now waits
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert "Set-Cookie" not in r.headers
    if b.ip:  # the sandbox has 127/8: the same address is refused on /auth/login too
        r = login(dev_server, alice.username, alice.password, source_ip=b.ip)
        assert r.status_code == 429


def test_guessing_user_codes_from_one_client_is_throttled(dev_server, alice):
    """Failed lookups count per client: after 10 the client gets 429, even for the right code, so
    a correct guess is not revealed; other clients are unaffected."""
    d = Device(dev_server)
    d.start("guess-target")
    guesser = Browser(dev_server)
    for _ in range(10):
        r = guesser.page(random_user_code())
        assert r.status_code == 404 and "Code not recognised" in r.text
        assert_page_headers(r)
    r = guesser.page(d.user_code)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert d.user_code not in r.text
    assert Browser(dev_server).page(d.user_code).status_code == 200

    # The same budget holds for programs guessing through the bearer route.
    api = Api(dev_server, alice.token, next_source_ip())
    for _ in range(10):
        assert bearer_decide(api, "approve", random_user_code()).status_code == 404
    r = bearer_decide(api, "approve", d.user_code)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert d.poll_error() == {"error": "authorization_pending"}


def test_guessing_from_many_clients_is_throttled_over_the_code_space(server_factory):
    """Failed lookups also count over all clients together (100/min), so spreading guesses over
    many addresses does not help."""
    srv = server_factory(label="guess-space")
    d = Device(srv)
    d.start("guess-space-target")
    for _ in range(10):
        b = Browser(srv)
        for _ in range(10):
            assert b.page(random_user_code()).status_code == 404
    r = Browser(srv).page(d.user_code)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1


def test_hostile_client_hint_is_escaped(dev_server, alice):
    """XSS: the client hint is chosen by whoever requests a code and shown to the approver."""
    hint = "<script>alert(document.cookie)</script>\"'><img src=x onerror=alert(1)>&amp;"
    d = Device(dev_server)
    d.start(hint)
    b = Browser(dev_server)
    signed_out = b.page(d.user_code)
    b.signed_in(alice, d.user_code)
    signed_in = b.page(d.user_code)
    assert 'action="/auth/device/login"' in signed_out.text and "/auth/device/approve" in signed_in.text
    for r in (signed_out, signed_in):
        assert r.status_code == 200
        assert "<script>alert" not in r.text and "<img" not in r.text
        assert "&lt;script&gt;alert(document.cookie)&lt;/script&gt;&quot;&#39;&gt;&lt;img src=x " \
               "onerror=alert(1)&gt;&amp;amp;" in r.text
        assert "<script" not in r.text.lower()


def test_page_security_headers_on_every_page(dev_server):
    b = Browser(dev_server)
    for r in (b.page(), b.page(random_user_code()), b.page(path="/auth/device/")):
        assert_page_headers(r)
        assert "<script" not in r.text.lower()


def test_page_rate_limit_is_shared_by_both_paths(server_factory):
    srv = server_factory("--rate-limit-device-page", "3", label="page-limit")
    b = Browser(srv)
    assert b.page().status_code == 200
    assert b.page(path="/auth/device/").status_code == 200
    assert b.page().status_code == 200
    r = b.page(path="/auth/device/")
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert Browser(srv).page().status_code == 200  # per client


def test_device_records_are_durable_on_rocksdb(tmp_path):
    """Device records live in the engine's KvStore: on RocksDB a pending code survives a restart."""
    require_binary()
    srv = MagnetarServer(["--data-dir", str(tmp_path), "--device-code-poll-interval", "1"],
                         label="device-rocksdb", storage="rocksdb")
    try:
        srv.start()
        admin = start_admin(srv)
        d = Device(srv)
        d.start("durable")
        assert srv.terminate() == 0
        srv.start()
        assert bearer_decide(Api(srv, admin.fresh_token(), next_source_ip()), "approve",
                             d.user_code).status_code == 200
        r = d.poll()
        assert r.status_code == 200, r.text
    finally:
        srv.terminate()
        srv.kill()


# ------------------------------------------------------------------------------------------------
# Expiry (last: the codes were made when the module started)
# ------------------------------------------------------------------------------------------------


def test_zz_codes_expire(dev_server, alice):
    pending, approved = EARLY["pending"], EARLY["approved"]
    left = EARLY["created"] + TTL + 0.5 - time.monotonic()
    if left > 0:
        time.sleep(left)
    # The page, the approval and the poll all treat the code as gone.
    assert Browser(dev_server).page(pending.user_code).status_code == 404
    r = bearer_decide(alice.api, "approve", pending.user_code)
    assert r.status_code == 404 and r.json() == {"detail": "Unknown user_code"}
    assert pending.poll_error() == {"error": "expired_token"}
    # Approved but never picked up in time: no tokens either.
    assert approved.poll_error() == {"error": "expired_token"}
