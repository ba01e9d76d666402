"""GET /metrics: the Prometheus text exposition format 0.0.4, parsed strictly, and the counters it
shows moving with the traffic that should move them (docs/operations.md).

The parser below accepts only what the format allows: `# HELP` / `# TYPE` lines (one each per
metric family, before its samples), sample lines `name{label="value",...} value`, nothing else.
Every sample must belong to a declared family; histograms must have cumulative buckets ending in
le="+Inf" equal to _count. Names follow the Prometheus conventions Magnetar promises: magnetar_
prefix, counters end in _total, durations in _seconds.
"""

from __future__ import annotations

import math
import re
import time

import pytest
import websocket

from conftest import (
    HTTP_TIMEOUT,
    Api,
    MagnetarServer,
    Tenant,
    login,
    make_session,
    next_source_ip,
    require_binary,
    start_admin,
    unique,
    wait_until,
    ws_connect,
    ws_json,
)

METRIC_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL_NAME = r"[a-zA-Z_][a-zA-Z0-9_]*"
LABEL_VALUE = r'"(?:[^"\\\n]|\\\\|\\"|\\n)*"'
SAMPLE_RE = re.compile(
    rf"^(?P<name>{METRIC_NAME})"
    rf"(?:\{{(?P<labels>(?:{LABEL_NAME}={LABEL_VALUE})(?:,{LABEL_NAME}={LABEL_VALUE})*)?\}})?"
    r" (?P<value>\S+)$")
LABEL_RE = re.compile(rf"({LABEL_NAME})=({LABEL_VALUE})")
HELP_RE = re.compile(rf"^# HELP ({METRIC_NAME}) (.*)$")
TYPE_RE = re.compile(rf"^# TYPE ({METRIC_NAME}) (counter|gauge|histogram|summary|untyped)$")
TOKEN = "scrape-" + "x" * 24


def parse_value(text: str) -> float:
    if text in ("+Inf", "-Inf", "NaN"):
        return float(text.replace("Inf", "inf").replace("NaN", "nan"))
    assert re.match(r"^-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$", text), f"bad sample value {text!r}"
    return float(text)


def unescape(value: str) -> str:
    return value[1:-1].replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")


def parse_exposition(text: str) -> dict:
    """{family: {"type", "help", "samples": [(name, labels-dict, value)]}}; asserts every rule."""
    assert text.endswith("\n"), "the exposition must end with a line feed"
    families: dict = {}
    current = None
    for n, line in enumerate(text[:-1].split("\n"), 1):
        assert line, f"line {n}: empty line"
        if line.startswith("#"):
            if m := HELP_RE.match(line):
                name = m.group(1)
                assert name not in families, f"line {n}: second HELP for {name}"
                families[name] = {"help": m.group(2), "type": None, "samples": []}
                current = name
                continue
            m = TYPE_RE.match(line)
            assert m, f"line {n}: a comment that is neither HELP nor TYPE: {line!r}"
            assert m.group(1) == current and families[current]["type"] is None, \
                f"line {n}: TYPE must follow its HELP, once: {line!r}"
            assert not families[current]["samples"], f"line {n}: TYPE after samples"
            families[current]["type"] = m.group(2)
            continue
        m = SAMPLE_RE.match(line)
        assert m, f"line {n}: not a valid sample line: {line!r}"
        name = m.group("name")
        labels = {k: unescape(v) for k, v in LABEL_RE.findall(m.group("labels") or "")}
        assert current is not None, f"line {n}: sample before any family"
        fam = families[current]
        suffixes = ("_bucket", "_sum", "_count") if fam["type"] == "histogram" else ("",)
        assert any(name == current + s for s in suffixes), \
            f"line {n}: sample {name} outside its family {current}"
        fam["samples"].append((name, labels, parse_value(m.group("value"))))
    for name, fam in families.items():
        assert fam["type"], f"{name} has no TYPE"
        assert fam["help"].strip(), f"{name} has an empty HELP"
    return families


def check_conventions(families: dict) -> None:
    for name, fam in families.items():
        assert name.startswith("magnetar_"), name
        if fam["type"] == "counter":
            assert name.endswith("_total"), f"counter {name} must end in _total"
            for _, _, v in fam["samples"]:
                assert v >= 0 and v == int(v), f"counter {name} = {v}"
        else:
            assert not name.endswith("_total"), f"{fam['type']} {name} must not end in _total"
        if "latency" in name or "duration" in name:
            assert name.endswith("_seconds"), f"{name}: durations are in seconds"
        if fam["type"] == "histogram":
            check_histogram(name, fam)


def check_histogram(name: str, fam: dict) -> None:
    series: dict = {}
    for sample, labels, value in fam["samples"]:
        key = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
        s = series.setdefault(key, {"buckets": [], "sum": None, "count": None})
        if sample.endswith("_bucket"):
            assert "le" in labels, f"{sample} without le"
            s["buckets"].append((parse_value(labels["le"]), value))
        elif sample.endswith("_sum"):
            s["sum"] = value
        else:
            s["count"] = value
    assert series, f"histogram {name} has no series"
    for key, s in series.items():
        bounds = [b for b, _ in s["buckets"]]
        assert bounds == sorted(bounds) and len(set(bounds)) == len(bounds), f"{name}{key}: le not ascending"
        assert bounds and math.isinf(bounds[-1]), f"{name}{key}: last bucket must be le=+Inf"
        counts = [c for _, c in s["buckets"]]
        assert all(a <= b for a, b in zip(counts, counts[1:])), f"{name}{key}: buckets not cumulative {counts}"
        assert s["count"] is not None and s["sum"] is not None, f"{name}{key}: _sum and _count required"
        assert counts[-1] == s["count"], f"{name}{key}: +Inf bucket {counts[-1]} != _count {s['count']}"
        assert s["sum"] >= 0


def value(families: dict, name: str, **labels) -> float:
    """The sample `name` with exactly these labels (a histogram's _count when `name` is one)."""
    fam_name = name
    sample = name
    if name not in families and name.endswith("_count"):
        fam_name = name[: -len("_count")]
    fam = families[fam_name]
    if fam["type"] == "histogram" and sample == fam_name:
        sample = fam_name + "_count"
    for s, l, v in fam["samples"]:
        if s == sample and l == labels:
            return v
    raise AssertionError(f"no sample {sample}{labels}; have {[(s, l) for s, l, _ in fam['samples']]}")


@pytest.fixture(scope="module")
def msrv():
    require_binary()
    srv = MagnetarServer(["--metrics-token", TOKEN], label="metrics")
    srv.start()
    yield srv
    srv.terminate()


@pytest.fixture(scope="module")
def admin(msrv):
    return start_admin(msrv)


@pytest.fixture(scope="module")
def tenant(msrv, admin):
    return Tenant(msrv, admin)


def scrape(server: MagnetarServer) -> dict:
    r = make_session(None).get(server.url("/metrics"), headers={"Authorization": "Bearer " + TOKEN},
                               timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    families = parse_exposition(r.text)
    check_conventions(families)
    return families


def test_metrics_token_is_required_when_set(msrv):
    s = make_session(None)
    assert s.get(msrv.url("/metrics"), timeout=HTTP_TIMEOUT).status_code == 401
    r = s.get(msrv.url("/metrics"), headers={"Authorization": "Bearer wrong"}, timeout=HTTP_TIMEOUT)
    assert r.status_code == 401
    assert TOKEN not in r.text
    r = s.get(msrv.url("/metrics"), headers={"Authorization": "Bearer " + TOKEN + "x"}, timeout=HTTP_TIMEOUT)
    assert r.status_code == 401


def test_metrics_are_open_without_a_token(server):
    r = make_session(None).get(server.url("/metrics"), timeout=HTTP_TIMEOUT)
    assert r.status_code == 200
    check_conventions(parse_exposition(r.text))


def test_exposition_is_strictly_valid_and_complete(msrv):
    families = scrape(msrv)
    for name, kind in [
        ("magnetar_messages_published_total", "counter"),
        ("magnetar_messages_delivered_total", "counter"),
        ("magnetar_messages_dropped_total", "counter"),
        ("magnetar_messages_redelivered_total", "counter"),
        ("magnetar_publish_failures_total", "counter"),
        ("magnetar_publish_latency_seconds", "histogram"),
        ("magnetar_delivery_latency_seconds", "histogram"),
        ("magnetar_websockets_open", "gauge"),
        ("magnetar_http_connections_open", "gauge"),
        ("magnetar_connections_open", "gauge"),
        ("magnetar_http_requests_total", "counter"),
        ("magnetar_http_request_duration_seconds", "histogram"),
        ("magnetar_build_info", "gauge"),
        ("magnetar_process_start_time_seconds", "gauge"),
    ]:
        assert name in families, f"{name} missing; have {sorted(families)}"
        assert families[name]["type"] == kind, name
    protocols = {l["protocol"] for _, l, _ in families["magnetar_messages_published_total"]["samples"]}
    assert protocols == {"relay_http", "relay_ws", "pulsar_ws"}
    start = value(families, "magnetar_process_start_time_seconds")
    assert abs(start - time.time()) < 3600


def test_publish_and_deliveries_move_the_counters(msrv, tenant):
    rw = tenant.user("rw")
    topic = unique("m")
    before = scrape(msrv)
    pub0 = value(before, "magnetar_messages_published_total", protocol="relay_http")
    lat0 = value(before, "magnetar_publish_latency_seconds", protocol="relay_http")
    ws_del0 = value(before, "magnetar_messages_delivered_total", protocol="relay_ws")
    poll_del0 = value(before, "magnetar_messages_delivered_total", protocol="relay_http")

    ws = ws_connect(msrv, rw.token)
    try:
        ws.send('{"type":"subscribe","topics":["%s"],"client_id":"metrics"}' % topic)
        assert ws_json(ws)["type"] == "subscribed"
        during = scrape(msrv)
        assert value(during, "magnetar_websockets_open", protocol="relay_ws") >= 1
        for i in range(3):
            rw.api.publish(topic, {"i": i})
        r = rw.api.post("/api/v1/messages/bulk", json={"messages": [
            {"topic": topic, "payload": {"b": 1}}, {"topic": topic, "payload": {"b": 2}}]})
        assert r.status_code == 207, r.text
        got = [ws_json(ws) for _ in range(5)]
        assert [m["type"] for m in got] == ["message"] * 5
    finally:
        ws.close()
    r = rw.api.poll([topic], since={topic: "0-0"}, timeout=1)
    assert len(r.json()["messages"]) == 5

    def moved():
        after = scrape(msrv)
        return after if (value(after, "magnetar_messages_delivered_total", protocol="relay_ws") >= ws_del0 + 5
                         and value(after, "magnetar_websockets_open", protocol="relay_ws") == 0) else None
    after = wait_until(moved, 5, message="relay_ws deliveries counted and the socket closed")
    assert value(after, "magnetar_messages_published_total", protocol="relay_http") == pub0 + 5
    assert value(after, "magnetar_publish_latency_seconds", protocol="relay_http") == lat0 + 4  # 3 + one bulk batch
    assert value(after, "magnetar_messages_delivered_total", protocol="relay_http") == poll_del0 + 5
    assert value(after, "magnetar_delivery_latency_seconds", protocol="relay_ws") >= 5
    ok = value(after, "magnetar_http_requests_total", code="2xx")
    assert ok >= 6


def test_auth_failures_and_rate_limits_are_counted_by_reason(msrv, admin):
    before = scrape(msrv)
    s = make_session(next_source_ip())
    assert s.get(msrv.url("/auth/me"), timeout=HTTP_TIMEOUT).status_code == 401
    assert s.get(msrv.url("/auth/me"), headers={"Authorization": "Bearer nope"}, timeout=HTTP_TIMEOUT).status_code == 401
    ip = next_source_ip()
    statuses = [login(msrv, admin.username, "wrong-password", source_ip=ip).status_code for _ in range(6)]
    assert statuses == [401] * 5 + [429]
    after = scrape(msrv)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels) if name in before and any(
            l == labels for _, l, _ in before[name]["samples"]) else value(after, name, **labels)

    assert delta("magnetar_auth_failures_total", reason="missing_token") == 1
    assert delta("magnetar_auth_failures_total", reason="invalid_token") == 1
    assert delta("magnetar_auth_failures_total", reason="bad_credentials") == 5
    assert delta("magnetar_rate_limited_total", route="login") == 1
    # No user name, password or token in the exposition.
    text = make_session(None).get(msrv.url("/metrics"), headers={"Authorization": "Bearer " + TOKEN},
                                  timeout=HTTP_TIMEOUT).text
    assert admin.username not in text and "wrong-password" not in text and admin.token not in text


def test_pulsar_websocket_traffic_is_counted(msrv, tenant):
    rw = tenant.user("rw")
    topic = unique("p")
    before = scrape(msrv)
    base = f"ws://127.0.0.1:{msrv.port}/ws/v2"
    auth = [f"Authorization: Bearer {rw.token}"]
    consumer = websocket.create_connection(
        f"{base}/consumer/persistent/{rw.username}/default/{topic}/sub1", header=auth, timeout=5,
        suppress_origin=True)
    producer = websocket.create_connection(f"{base}/producer/persistent/{rw.username}/default/{topic}",
                                           header=auth, timeout=5, suppress_origin=True)
    try:
        producer.send('{"payload":"aGVsbG8="}')
        receipt = producer.recv()
        assert '"result":"ok"' in receipt, receipt
        msg = consumer.recv()
        assert "messageId" in msg
    finally:
        producer.close()
        consumer.close()
    after = wait_until(
        lambda: (a := scrape(msrv)) and value(a, "magnetar_websockets_open", protocol="pulsar_ws") == 0 and a,
        5, message="pulsar sockets closed")
    assert value(after, "magnetar_messages_published_total", protocol="pulsar_ws") == \
        value(before, "magnetar_messages_published_total", protocol="pulsar_ws") + 1
    assert value(after, "magnetar_messages_delivered_total", protocol="pulsar_ws") == \
        value(before, "magnetar_messages_delivered_total", protocol="pulsar_ws") + 1


def test_rocksdb_storage_metrics(server_factory):
    srv = server_factory("--storage", "rocksdb", "--durability", "fsync", label="metrics-rocksdb")
    a = start_admin(srv)
    for i in range(3):
        a.api.publish(unique("s"), {"i": i})
    r = make_session(None).get(srv.url("/metrics"), timeout=HTTP_TIMEOUT)
    families = parse_exposition(r.text)
    check_conventions(families)
    assert value(families, "magnetar_storage_batch_messages") >= 3
    assert value(families, "magnetar_storage_sync_duration_seconds") >= 3
    for operation in ("write", "wal_sync", "background_work"):
        assert value(families, "magnetar_storage_errors_total", operation=operation) == 0
