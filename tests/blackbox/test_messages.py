"""Single publish: §2.1-§2.3 with D2 (ttl honoured), D4 (timestamps), D5 (ordered ids)."""

import time
from datetime import datetime, timezone

import pytest

from conftest import (ID_RE, assert_422, assert_compact, assert_detail, assert_increasing, assert_json_ct,
                      assert_ts, parse_id, unique)


def test_publish_shape(rw, topic):
    r = rw.api.post("/api/v1/messages", json={"topic": topic, "payload": {"hello": "world"}})
    assert r.status_code == 201, r.text
    assert_json_ct(r)
    assert_compact(r)
    body = r.json()
    assert list(body.keys()) == ["message_id", "topic", "timestamp"]
    assert ID_RE.match(body["message_id"])
    assert body["topic"] == topic
    assert_ts(body["timestamp"])
    ts = datetime.strptime(body["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    assert abs((datetime.now(timezone.utc) - ts).total_seconds()) < 60


def test_ids_strictly_increasing_per_topic(rw, topic):
    ids = [rw.api.publish(topic, {"i": i})["message_id"] for i in range(8)]
    assert_increasing(ids)
    assert len(set(ids)) == len(ids)
    # storage order is publish order
    page = rw.api.messages(topic, order="asc", limit=100)
    assert [m["message_id"] for m in page["messages"]] == ids
    assert [m["payload"]["i"] for m in page["messages"]] == list(range(8))


def test_ids_increase_across_interleaved_topics(rw):
    a, b = unique(), unique()
    ida, idb = [], []
    for i in range(4):
        ida.append(rw.api.publish(a, {"i": i})["message_id"])
        idb.append(rw.api.publish(b, {"i": i})["message_id"])
    assert_increasing(ida)
    assert_increasing(idb)


def test_timestamps_non_decreasing(rw, topic):
    stamps = [rw.api.publish(topic)["timestamp"] for _ in range(3)]
    assert stamps == sorted(stamps)


@pytest.mark.parametrize("payload", [{}, {"a": 1}, {"deep": {"x": [1, "two", None, True, 3.5]}}, {"u": "日本語 ✓"}])
def test_payload_objects_round_trip(rw, topic, payload):
    pub = rw.api.publish(topic, payload)
    m = rw.api.messages(topic, limit=1)["messages"][0]
    assert m["message_id"] == pub["message_id"]
    assert m["payload"] == payload


@pytest.mark.parametrize("payload", [[1, 2], "text", 42, 1.5, True, None])
def test_payload_must_be_object(rw, topic, payload):
    r = rw.api.post("/api/v1/messages", json={"topic": topic, "payload": payload})
    assert_422(r, loc_contains="payload")


def test_payload_missing(rw, topic):
    assert_422(rw.api.post("/api/v1/messages", json={"topic": topic}), loc_contains="payload", type_="missing")


def test_topic_missing(rw):
    assert_422(rw.api.post("/api/v1/messages", json={"payload": {}}), loc_contains="topic", type_="missing")


@pytest.mark.parametrize("name", ["", "a b", "café", "a/b", "---", "a" * 256])
def test_topic_invalid(rw, name):
    r = rw.api.post("/api/v1/messages", json={"topic": name, "payload": {}})
    assert_422(r, loc_contains="topic")


def test_rejected_publish_creates_nothing(rw, topic):
    assert rw.api.post("/api/v1/messages", json={"topic": topic, "payload": [1]}).status_code == 422
    assert_detail(rw.api.get(f"/api/v1/topics/{topic}"), 404, f"Topic '{topic}' not found")


def test_body_not_object(rw):
    assert_422(rw.api.post("/api/v1/messages", json=[{"topic": "x", "payload": {}}]))


def test_body_not_json(rw):
    r = rw.api.post("/api/v1/messages", data=b"topic=x", headers={"Content-Type": "application/json"})
    assert_422(r, type_="json_invalid")


def test_metadata_round_trip(rw, topic):
    pub = rw.api.publish(topic, {"x": 1}, metadata={"a": "b", "empty": ""})
    m = rw.api.messages(topic, limit=1)["messages"][0]
    assert m["message_id"] == pub["message_id"]
    assert m["metadata"] == {"a": "b", "empty": ""}


def test_metadata_null_is_empty_object(rw, topic):
    rw.api.publish(topic, {"x": 1}, metadata=None)
    assert rw.api.messages(topic, limit=1)["messages"][0]["metadata"] == {}


@pytest.mark.parametrize("metadata", [{"a": 1}, {"a": None}, {"a": ["b"]}, {"a": {"b": "c"}}, ["a"], "a=b", {"a": True}])
def test_metadata_must_be_string_map(rw, topic, metadata):
    r = rw.api.post("/api/v1/messages", json={"topic": topic, "payload": {}, "metadata": metadata})
    assert_422(r, loc_contains="metadata")


@pytest.mark.parametrize("ttl", [0, -1, "soon", 1.5, [1]])
def test_ttl_invalid(rw, topic, ttl):
    r = rw.api.post("/api/v1/messages", json={"topic": topic, "payload": {}, "ttl": ttl})
    assert_422(r, loc_contains="ttl")


@pytest.mark.parametrize("ttl", [None, 1, 3600, 86400 * 30])
def test_ttl_valid(rw, topic, ttl):
    r = rw.api.post("/api/v1/messages", json={"topic": topic, "payload": {}, "ttl": ttl})
    assert r.status_code == 201, r.text
    assert list(r.json().keys()) == ["message_id", "topic", "timestamp"]  # ttl is not echoed


def test_ttl_honoured(rw, topic):
    """D2: a message expires `ttl` seconds after publish: no longer listed, nor returned by poll catch-up."""
    keep_before = rw.api.publish(topic, {"keep": "before"})["message_id"]
    short = rw.api.publish(topic, {"short": True}, ttl=1)["message_id"]
    keep_after = rw.api.publish(topic, {"keep": "after"}, ttl=3600)["message_id"]
    listed = [m["message_id"] for m in rw.api.messages(topic, order="asc", limit=100)["messages"]]
    assert listed == [keep_before, short, keep_after]
    time.sleep(2.5)
    listed = [m["message_id"] for m in rw.api.messages(topic, order="asc", limit=100)["messages"]]
    assert listed == [keep_before, keep_after]
    polled = rw.api.poll([topic], since={topic: "0-0"}, timeout=1).json()["messages"]
    assert [m["message_id"] for m in polled] == [keep_before, keep_after]
    polled = rw.api.poll([topic], since={topic: keep_before}, timeout=1).json()["messages"]
    assert [m["message_id"] for m in polled] == [keep_after]


def test_unknown_fields_ignored(rw, topic):
    r = rw.api.post("/api/v1/messages", json={"topic": topic, "payload": {}, "priority": 5, "is_public": True})
    assert r.status_code == 201, r.text


def test_publish_requires_auth(anon, topic):
    r = anon.post("/api/v1/messages", json={"topic": topic, "payload": {}})
    assert_detail(r, 401, "Not authenticated")


def test_publish_requires_write(ro, topic):
    assert_detail(ro.api.post("/api/v1/messages", json={"topic": topic, "payload": {}}), 403,
                  "Permission 'write' required")


def test_large_payload_under_cap(rw, topic):
    blob = "x" * (512 * 1024)
    pub = rw.api.publish(topic, {"blob": blob})
    m = rw.api.messages(topic, limit=1)["messages"][0]
    assert m["message_id"] == pub["message_id"]
    assert m["payload"]["blob"] == blob


def test_unicode_payload_raw_on_the_wire(rw, topic):
    rw.api.publish(topic, {"text": "naïve café — 日本 🚀"})
    r = rw.api.get(f"/api/v1/topics/{topic}/messages")
    assert "naïve café — 日本 🚀" in r.content.decode("utf-8")
    assert r.json()["messages"][0]["payload"] == {"text": "naïve café — 日本 🚀"}


def test_message_id_parse_order_not_lexicographic(rw, topic):
    """Ids compare as (hi, lo) integers; make sure the server's own order agrees with that."""
    ids = [rw.api.publish(topic)["message_id"] for _ in range(12)]
    assert sorted(ids, key=parse_id) == ids
