"""Startup guards (spec §8.3 adapted, issue 4 item 5), the rate-limit switch and per-user quotas.

Guards: each unsafe setting makes `magnetar serve` refuse to start with exit code 2 and a message on
stderr that names the guard and the fix, and never prints the secret it judged;
`--allow-insecure-defaults` (or PULSAR_ALLOW_INSECURE_DEFAULTS) starts anyway and logs a WARNING
naming every guard it bypassed. Magnetar's own defaults (no secret: random per start; no bootstrap
admin: `admin` with a random password in a 0600 file) stay allowed.

`--rate-limits off` (and the reference's RATELIMIT_ENABLED=false): no request is refused for its
rate; warned about at start. `--quota-publish-per-minute` / `--quota-poll-per-minute`: per user, not
per address; 429 with Retry-After.
"""

from __future__ import annotations

import os
import subprocess
import tempfile

import pytest
import requests

from conftest import (
    MAGNETAR_BIN,
    MagnetarServer,
    ServerStartError,
    Tenant,
    make_session,
    next_source_ip,
    require_binary,
    start_admin,
    unique,
    ws_handshake_status,
)

REFERENCE_DEFAULT_SECRET = "your-secret-key-here-change-in-production"
GOOD_SECRET = "0123456789abcdef0123456789abcdef-good"


def clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("PULSAR_", "MAGNETAR_"))}
    env.pop("RATELIMIT_ENABLED", None)
    env.update(extra)
    return env


def run_serve(args=(), env=None, timeout=20) -> subprocess.CompletedProcess:
    """`magnetar serve` that is expected to refuse (it would otherwise keep running: timeout)."""
    require_binary()
    workdir = tempfile.mkdtemp(prefix="magnetar-guard-")
    return subprocess.run([MAGNETAR_BIN, "serve", "--storage", "memory", "--port", "0",
                           "--data-dir", os.path.join(workdir, "data"), *args],
                          env=env if env is not None else clean_env(), cwd=workdir, capture_output=True,
                          text=True, timeout=timeout)


def assert_refused(out: subprocess.CompletedProcess, guard: str, *, secrets: tuple = ()) -> None:
    assert out.returncode == 2, f"exit {out.returncode}; stderr:\n{out.stderr[-3000:]}"
    assert f"[{guard}]" in out.stderr, out.stderr[-3000:]
    assert "Fix:" in out.stderr and "--allow-insecure-defaults" in out.stderr, out.stderr[-3000:]
    assert "listening" not in out.stdout
    for secret in secrets:
        assert secret not in out.stderr and secret not in out.stdout, "a secret reached the output"


# ------------------------------------------------------------------------------------------------
# Each guard refuses
# ------------------------------------------------------------------------------------------------


def test_reference_default_jwt_secret_refused():
    out = run_serve(env=clean_env(PULSAR_JWT_SECRET_KEY=REFERENCE_DEFAULT_SECRET))
    assert_refused(out, "jwt-secret-default", secrets=(REFERENCE_DEFAULT_SECRET,))


def test_short_jwt_secret_refused():
    secret = "s3cr3t-too-short"
    out = run_serve(["--jwt-secret-key", secret])
    assert_refused(out, "jwt-secret-short", secrets=(secret,))
    out = run_serve(env=clean_env(MAGNETAR_JWT_SECRET_KEY=secret))
    assert_refused(out, "jwt-secret-short", secrets=(secret,))


def test_bootstrap_admin_without_password_refused():
    out = run_serve(env=clean_env(PULSAR_BOOTSTRAP_ADMIN_USERNAME="root"))
    assert_refused(out, "bootstrap-admin-password")
    password = "pw-only-half-given"
    out = run_serve(env=clean_env(PULSAR_BOOTSTRAP_ADMIN_PASSWORD=password))
    assert_refused(out, "bootstrap-admin-username", secrets=(password,))


def test_explicitly_empty_trusted_hosts_refused():
    out = run_serve(env=clean_env(PULSAR_TRUSTED_HOSTS="[]"))
    assert_refused(out, "trusted-hosts-empty")
    out = run_serve(["--trusted-hosts", ""])
    assert_refused(out, "trusted-hosts-empty")


def test_wildcard_trusted_hosts_off_loopback_refused():
    # Refused before anything is bound, so nothing listens on 0.0.0.0 even for a moment.
    out = run_serve(["--host", "0.0.0.0", "--trusted-hosts", "*"])
    assert_refused(out, "trusted-hosts-any")
    assert "0.0.0.0" in out.stderr


def test_wildcard_origin_off_loopback_refused():
    out = run_serve(["--host", "0.0.0.0", "--trusted-hosts", "relay.example.org", "--allowed-origins", "*"])
    assert_refused(out, "allowed-origins-any")


def test_every_tripped_guard_is_listed():
    secret = "tiny"
    out = run_serve(["--host", "0.0.0.0", "--trusted-hosts", "*", "--jwt-secret-key", secret],
                    env=clean_env(PULSAR_BOOTSTRAP_ADMIN_USERNAME="root"))
    for guard in ("jwt-secret-short", "bootstrap-admin-password", "trusted-hosts-any"):
        assert f"[{guard}]" in out.stderr, out.stderr
    assert out.returncode == 2
    assert "tiny" not in out.stderr.replace("--jwt-secret-key", "")


# ------------------------------------------------------------------------------------------------
# What stays allowed, and the insecure flag
# ------------------------------------------------------------------------------------------------


def start(extra_args=(), env_overrides=None, label="guards") -> MagnetarServer:
    require_binary()
    srv = MagnetarServer(extra_args, label=label)
    if env_overrides is not None:
        base = srv.env

        def env():
            e = base()
            for k, v in env_overrides.items():
                if v is None:
                    e.pop(k, None)
                else:
                    e[k] = v
            return e

        srv.env = env  # type: ignore[method-assign]
    try:
        srv.start()
    except ServerStartError as e:
        pytest.fail(str(e))
    return srv


def stop(srv: MagnetarServer) -> None:
    code = srv.terminate()
    srv.kill()
    assert code == 0, f"exit code {code}"


def test_safe_defaults_start_without_the_flag():
    """No JWT secret, no bootstrap admin, no lists: Magnetar's defaults are safe and start."""
    srv = start(env_overrides={"PULSAR_JWT_SECRET_KEY": None, "PULSAR_BOOTSTRAP_ADMIN_USERNAME": None,
                               "PULSAR_BOOTSTRAP_ADMIN_PASSWORD": None, "PULSAR_TRUSTED_HOSTS": None,
                               "PULSAR_ALLOWED_ORIGINS": None}, label="guards-defaults")
    try:
        log = srv.read_log()
        assert "INSECURE" not in log, log
        password_file = os.path.join(srv.workdir, "magnetar-data", "initial-admin-password")
        assert os.path.exists(password_file), log
        assert oct(os.stat(password_file).st_mode & 0o777) == "0o600"
    finally:
        stop(srv)


@pytest.mark.parametrize("how", ["flag", "reference-env"])
def test_insecure_flag_starts_and_warns_about_each_bypassed_guard(how):
    secret = "short-but-allowed"
    args = ["--trusted-hosts", "*"]
    env = {"PULSAR_TRUSTED_HOSTS": None, "PULSAR_JWT_SECRET_KEY": secret}
    if how == "flag":
        args.append("--allow-insecure-defaults")
    else:
        env["PULSAR_ALLOW_INSECURE_DEFAULTS"] = "true"
    srv = start(args, env, label=f"guards-insecure-{how}")
    try:
        admin = start_admin(srv)  # it serves (the login uses the harness's bootstrap admin)
        assert admin.api.get("/auth/me").status_code == 200
        log = srv.read_log()
        warnings = [line for line in log.splitlines() if "INSECURE" in line and "bypassed" in line]
        assert any("jwt-secret-short" in line for line in warnings), log
        assert all("warning" in line.lower() for line in warnings), warnings
        assert secret not in log
        # on loopback, '*' trusted hosts is allowed but still called out
        assert "trusted hosts" in log and "INSECURE" in log
    finally:
        stop(srv)


def test_wildcard_origin_on_loopback_starts_allows_any_origin_and_warns():
    """On loopback `*` origins are allowed (logged as INSECURE) and mean any origin, as Starlette's
    allow_origins=["*"]: CORS preflights and WebSocket handshakes from any page pass."""
    srv = start(["--allowed-origins", "*"], {"PULSAR_ALLOWED_ORIGINS": None}, label="guards-origin-any")
    try:
        assert "allowed origins (any web page) include '*'" in srv.read_log()
        r = requests.options(srv.url("/api/v1/messages"), timeout=10,
                             headers={"Origin": "https://anywhere.example",
                                      "Access-Control-Request-Method": "POST"})
        assert r.status_code == 200, r.text
        admin = start_admin(srv)
        r = admin.api.get("/auth/me", headers={"Origin": "https://anywhere.example"})
        assert r.headers.get("Access-Control-Allow-Origin") == "https://anywhere.example"
        assert ws_handshake_status(srv, admin.token, origin="https://anywhere.example") == 101
    finally:
        stop(srv)


def test_insecure_flag_warns_again_on_every_start():
    secret = "short-again"
    srv = start(["--jwt-secret-key", secret, "--allow-insecure-defaults"], label="guards-restart")
    try:
        stop(srv)
        srv.start()
        assert srv.read_log().count("startup guard 'jwt-secret-short' bypassed") == 2
    finally:
        srv.terminate()
        srv.kill()


# ------------------------------------------------------------------------------------------------
# --rate-limits off
# ------------------------------------------------------------------------------------------------


def test_rate_limits_off_nothing_is_refused_for_its_rate(server_factory):
    srv = server_factory("--rate-limits", "off", label="ratelimits-off")
    assert "rate limits are OFF" in srv.read_log()
    ip = next_source_ip()
    with make_session(ip) as s:
        # login: 5/min per address by default
        tokens = []
        for i in range(6):
            r = s.post(srv.url("/auth/login"), data={"username": srv.admin_username,
                                                     "password": srv.admin_password}, timeout=10)
            assert r.status_code == 200, (i, r.status_code, r.text)
            tokens.append(r.json()["access_token"])
        s.headers["Authorization"] = f"Bearer {tokens[-1]}"
        topic = unique("nolimit")
        # publish: 120/min, bulk: 30/min per address by default
        for i in range(150):
            r = s.post(srv.url("/api/v1/messages"), json={"topic": topic, "payload": {"i": i}}, timeout=10)
            assert r.status_code == 201, (i, r.status_code, r.text)
        for i in range(40):
            r = s.post(srv.url("/api/v1/messages/bulk"),
                       json={"messages": [{"topic": topic, "payload": {"b": i}}]}, timeout=10)
            assert r.status_code == 207, (i, r.status_code, r.text)
        # refresh: 10/min
        r = s.post(srv.url("/auth/login"), data={"username": srv.admin_username,
                                                 "password": srv.admin_password}, timeout=10)
        refresh = r.json()["refresh_token"]
        for i in range(11):
            r = s.post(srv.url("/auth/token/refresh"), json={"refresh_token": refresh}, timeout=10)
            assert r.status_code == 200, (i, r.status_code, r.text)
            refresh = r.json()["refresh_token"]


def test_reference_ratelimit_enabled_false():
    srv = start(env_overrides={"RATELIMIT_ENABLED": "false"}, label="ratelimits-reference")
    try:
        assert "rate limits are OFF" in srv.read_log()
        with make_session(next_source_ip()) as s:
            for i in range(6):
                r = s.post(srv.url("/auth/login"), data={"username": srv.admin_username,
                                                         "password": srv.admin_password}, timeout=10)
                assert r.status_code == 200, (i, r.status_code, r.text)
    finally:
        stop(srv)


def test_rate_limits_on_by_default_still_limit(server_factory):
    srv = server_factory(label="ratelimits-on")
    assert "rate limits are OFF" not in srv.read_log()
    with make_session(next_source_ip()) as s:
        codes = [s.post(srv.url("/auth/login"), data={"username": "nobody", "password": "wrong-password"},
                        timeout=10).status_code for _ in range(6)]
    assert codes[:5] == [401] * 5 and codes[5] == 429, codes


# ------------------------------------------------------------------------------------------------
# Per-user quotas
# ------------------------------------------------------------------------------------------------


def assert_quota_429(r, limit: int) -> None:
    assert r.status_code == 429, (r.status_code, r.text)
    assert r.json() == {"error": f"Quota exceeded: {limit} per 1 minute per user"}
    ra = r.headers.get("Retry-After")
    assert ra is not None and 1 <= int(ra) <= 60, ra


def test_publish_quota_is_per_user(server_factory):
    srv = server_factory("--quota-publish-per-minute", "5", label="quota-publish")
    tenant = Tenant(srv, start_admin(srv))  # one source address for every user of this tenant
    alice, bob = tenant.user("rw"), tenant.user("other")
    topic = unique("quota")
    for i in range(3):
        alice.api.publish(topic, {"i": i})
    r = alice.api.post("/api/v1/messages/bulk",
                       json={"messages": [{"topic": topic, "payload": {"b": i}} for i in range(2)]})
    assert r.status_code == 207, r.text  # 3 + 2 = 5: the quota counts messages
    assert_quota_429(alice.api.post("/api/v1/messages", json={"topic": topic, "payload": {"x": 1}}), 5)
    assert_quota_429(alice.api.post("/api/v1/messages/bulk",
                                    json={"messages": [{"topic": topic, "payload": {"x": 1}}]}), 5)
    # Same address, another user: its own quota. Another address, same user: still over.
    bob.api.publish(topic, {"bob": 1})
    elsewhere = alice.api.__class__(srv, alice.token, next_source_ip())
    assert_quota_429(elsewhere.post("/api/v1/messages", json={"topic": topic, "payload": {"x": 1}}), 5)
    # A bulk larger than the whole quota is never accepted.
    r = bob.api.post("/api/v1/messages/bulk",
                     json={"messages": [{"topic": topic, "payload": {"i": i}} for i in range(6)]})
    assert_quota_429(r, 5)
    # Refused requests stored nothing.
    assert len(alice.api.all_message_ids(topic)) == 5


def test_poll_quota_is_per_user(server_factory):
    srv = server_factory("--quota-poll-per-minute", "3", label="quota-poll")
    tenant = Tenant(srv, start_admin(srv))
    alice, bob = tenant.user("rw"), tenant.user("other")
    topic = unique("quota-poll")
    alice.api.publish(topic)
    for _ in range(3):  # answered at once: `since` finds the message
        alice.api.poll([topic], since={topic: "0-0"}, timeout=5)
    assert_quota_429(alice.api.poll([topic], since={topic: "0-0"}, timeout=5, expect=None), 3)
    bob.api.poll([topic], timeout=1)
    # publishing is not polling
    alice.api.publish(topic)


def test_quotas_off_with_rate_limits_off(server_factory):
    srv = server_factory("--rate-limits", "off", "--quota-publish-per-minute", "2", label="quota-off")
    assert "per-user quotas" in srv.read_log()
    admin = start_admin(srv)
    topic = unique("quota-off")
    for i in range(5):
        admin.api.publish(topic, {"i": i})
