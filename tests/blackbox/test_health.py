"""§1.1 /health, §1.2 /ready with D3 and D16."""

import subprocess
from datetime import datetime, timezone

from conftest import MAGNETAR_BIN, assert_compact, assert_json_ct, assert_ts


def test_health_shape(anon):
    r = anon.get("/health")
    assert r.status_code == 200
    assert_json_ct(r)
    assert_compact(r)
    body = r.json()
    assert list(body.keys()) == ["status", "timestamp", "version"]
    assert body["status"] == "healthy"
    assert_ts(body["timestamp"])
    assert isinstance(body["version"], str) and body["version"]


def test_health_timestamp_is_now(anon):
    body = anon.get("/health").json()
    ts = datetime.strptime(body["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    assert abs((datetime.now(timezone.utc) - ts).total_seconds()) < 60


def test_health_needs_no_auth_and_ignores_bad_token(anon):
    r = anon.get("/health", headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 200


def test_health_version_matches_binary(anon):
    """D16: one version, from the build; `magnetar --version` prints the same one."""
    version = anon.get("/health").json()["version"]
    out = subprocess.run([MAGNETAR_BIN, "--version"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    assert version in (out.stdout + out.stderr), (version, out.stdout, out.stderr)


def test_ready_when_healthy(anon):
    """D3: 200 {"ready":true,"checks":{"storage":"ok"}} while storage is healthy."""
    r = anon.get("/ready")
    assert r.status_code == 200
    assert_json_ct(r)
    assert r.text == '{"ready":true,"checks":{"storage":"ok"}}'


def test_health_wrong_method(anon):
    r = anon.post("/health", json={})
    assert r.status_code == 405
    assert r.json() == {"detail": "Method Not Allowed"}
