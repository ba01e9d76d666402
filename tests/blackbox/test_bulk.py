"""Bulk publish: §2.4."""

import pytest

from conftest import ID_RE, assert_422, assert_compact, assert_detail, assert_increasing, assert_ts, unique

RESULT_KEYS = ["message_id", "topic", "status", "error"]


def bulk(api, messages, expect=207):
    r = api.post("/api/v1/messages/bulk", json={"messages": messages})
    assert r.status_code == expect, f"bulk -> {r.status_code}: {r.text[:500]}"
    return r


def test_bulk_shape(rw):
    a, b = unique(), unique()
    r = bulk(rw.api, [{"topic": a, "payload": {"i": 0}},
                      {"topic": b, "payload": {"i": 1}, "metadata": {"k": "v"}},
                      {"topic": a, "payload": {"i": 2}, "ttl": 60}])
    assert_compact(r)
    body = r.json()
    assert list(body.keys()) == ["results", "summary"]
    assert list(body["summary"].keys()) == ["total", "accepted", "rejected"]
    assert body["summary"] == {"total": 3, "accepted": 3, "rejected": 0}
    results = body["results"]
    assert [x["topic"] for x in results] == [a, b, a]
    for x in results:
        assert list(x.keys()) == RESULT_KEYS
        assert x["status"] == "accepted"
        assert x["error"] is None
        assert ID_RE.match(x["message_id"])
    assert_increasing([results[0]["message_id"], results[2]["message_id"]])
    page_a = rw.api.messages(a, order="asc")
    assert [m["message_id"] for m in page_a["messages"]] == [results[0]["message_id"], results[2]["message_id"]]
    assert [m["payload"] for m in page_a["messages"]] == [{"i": 0}, {"i": 2}]
    page_b = rw.api.messages(b)
    assert page_b["messages"][0]["metadata"] == {"k": "v"}
    assert page_b["messages"][0]["message_id"] == results[1]["message_id"]


def test_bulk_items_in_request_order(rw, topic):
    r = bulk(rw.api, [{"topic": topic, "payload": {"i": i}} for i in range(30)])
    ids = [x["message_id"] for x in r.json()["results"]]
    assert_increasing(ids)
    page = rw.api.messages(topic, order="asc", limit=100)
    assert [m["message_id"] for m in page["messages"]] == ids
    assert [m["payload"]["i"] for m in page["messages"]] == list(range(30))
    for m in page["messages"]:
        assert_ts(m["timestamp"])


def test_bulk_single_item(rw, topic):
    r = bulk(rw.api, [{"topic": topic, "payload": {}}])
    assert r.json()["summary"] == {"total": 1, "accepted": 1, "rejected": 0}


def test_bulk_hundred_items(rw, topic):
    r = bulk(rw.api, [{"topic": topic, "payload": {"i": i}} for i in range(100)])
    assert r.json()["summary"] == {"total": 100, "accepted": 100, "rejected": 0}
    assert len(rw.api.messages(topic, limit=100)["messages"]) == 100


@pytest.mark.parametrize("count", [0, 101])
def test_bulk_item_count_bounds(rw, count):
    name = unique()
    r = rw.api.post("/api/v1/messages/bulk", json={"messages": [{"topic": name, "payload": {}}] * count})
    assert_422(r, loc_contains="messages")
    assert_detail(rw.api.get(f"/api/v1/topics/{name}"), 404, f"Topic '{name}' not found")


@pytest.mark.parametrize("bad_item", [
    {"topic": "bad topic", "payload": {}},
    {"topic": "café", "payload": {}},
    {"topic": "ok", "payload": [1]},
    {"topic": "ok", "payload": {}, "metadata": {"a": 1}},
    {"topic": "ok", "payload": {}, "ttl": 0},
    {"payload": {}},
])
def test_bulk_one_invalid_item_rejects_all(rw, bad_item):
    good = unique("good")
    item = dict(bad_item)
    if item.get("topic") == "ok":
        item["topic"] = good
    r = rw.api.post("/api/v1/messages/bulk", json={"messages": [{"topic": good, "payload": {"first": True}}, item]})
    assert_422(r)
    # nothing persisted, no topic auto-created
    assert_detail(rw.api.get(f"/api/v1/topics/{good}"), 404, f"Topic '{good}' not found")


@pytest.mark.parametrize("body", [{}, {"messages": None}, {"messages": {"topic": "x", "payload": {}}}, {"messages": "x"}])
def test_bulk_bad_envelope(rw, body):
    assert_422(rw.api.post("/api/v1/messages/bulk", json=body), loc_contains="messages")


def test_bulk_requires_auth(anon):
    r = anon.post("/api/v1/messages/bulk", json={"messages": [{"topic": unique(), "payload": {}}]})
    assert_detail(r, 401, "Not authenticated")


def test_bulk_requires_write(ro):
    r = ro.api.post("/api/v1/messages/bulk", json={"messages": [{"topic": unique(), "payload": {}}]})
    assert_detail(r, 403, "Permission 'write' required")


def test_bulk_into_existing_and_new_topics(rw):
    existing, new = unique(), unique()
    rw.api.post("/api/v1/topics", json={"topic_name": existing, "description": "kept"})
    bulk(rw.api, [{"topic": existing, "payload": {}}, {"topic": new, "payload": {}}])
    assert rw.api.get(f"/api/v1/topics/{existing}").json()["description"] == "kept"
    assert rw.api.get(f"/api/v1/topics/{new}").status_code == 200


def test_bulk_namespaced(rw, other):
    name = unique("jobs")
    bulk(rw.api, [{"topic": name, "payload": {"who": "rw"}}])
    bulk(other.api, [{"topic": name, "payload": {"who": "other"}}])
    assert [m["payload"] for m in rw.api.messages(name)["messages"]] == [{"who": "rw"}]
    assert [m["payload"] for m in other.api.messages(name)["messages"]] == [{"who": "other"}]
