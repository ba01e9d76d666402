"""Idempotency-Key: §2.5 with D7 (in-flight dedupe, per-route keys, body fingerprint)."""

import threading
import uuid

from conftest import assert_detail, ws_connect, ws_messages, ws_no_frame, ws_subscribe


def key() -> str:
    return uuid.uuid4().hex  # what the official client sends: 32 lower-case hex characters


def post(api, body, k, route="/api/v1/messages"):
    return api.post(route, json=body, headers={"Idempotency-Key": k} if k is not None else None)


def count(api, topic) -> int:
    return len(api.messages(topic, limit=100)["messages"])


def test_single_replay_identical_body(rw, topic):
    k = key()
    body = {"topic": topic, "payload": {"job": 1}}
    r1 = post(rw.api, body, k)
    assert r1.status_code == 201, r1.text
    r2 = post(rw.api, body, k)
    assert r2.status_code == 201, r2.text
    assert r2.content == r1.content
    assert count(rw.api, topic) == 1


def test_replay_many_times(rw, topic):
    k = key()
    body = {"topic": topic, "payload": {"job": 2}, "metadata": {"a": "b"}}
    first = post(rw.api, body, k)
    assert first.status_code == 201
    for _ in range(4):
        r = post(rw.api, body, k)
        assert r.status_code == 201
        assert r.json() == first.json()
    assert count(rw.api, topic) == 1


def test_different_keys_write_twice(rw, topic):
    body = {"topic": topic, "payload": {"same": True}}
    a = post(rw.api, body, key())
    b = post(rw.api, body, key())
    assert a.status_code == b.status_code == 201
    assert a.json()["message_id"] != b.json()["message_id"]
    assert count(rw.api, topic) == 2


def test_no_key_no_dedupe(rw, topic):
    body = {"topic": topic, "payload": {"same": True}}
    assert post(rw.api, body, None).status_code == 201
    assert post(rw.api, body, None).status_code == 201
    assert count(rw.api, topic) == 2


def test_empty_key_is_absent(rw, topic):
    body = {"topic": topic, "payload": {"same": True}}
    assert post(rw.api, body, "").status_code == 201
    assert post(rw.api, body, "").status_code == 201
    assert count(rw.api, topic) == 2


def test_header_name_case_insensitive(rw, topic):
    k = key()
    body = {"topic": topic, "payload": {}}
    r1 = rw.api.post("/api/v1/messages", json=body, headers={"Idempotency-Key": k})
    r2 = rw.api.post("/api/v1/messages", json=body, headers={"idempotency-key": k})
    assert r1.status_code == r2.status_code == 201
    assert r2.content == r1.content
    assert count(rw.api, topic) == 1


def test_same_key_different_body_is_422(rw, topic):
    k = key()
    assert post(rw.api, {"topic": topic, "payload": {"v": 1}}, k).status_code == 201
    r = post(rw.api, {"topic": topic, "payload": {"v": 2}}, k)
    assert r.status_code == 422, r.text
    other_topic = topic + "-x"
    r = post(rw.api, {"topic": other_topic, "payload": {"v": 1}}, k)
    assert r.status_code == 422, r.text
    assert count(rw.api, topic) == 1


def test_invalid_request_does_not_consume_key(rw, topic):
    k = key()
    assert post(rw.api, {"topic": topic, "payload": ["not", "an", "object"]}, k).status_code == 422
    body = {"topic": topic, "payload": {"ok": True}}
    r1 = post(rw.api, body, k)
    assert r1.status_code == 201, r1.text
    r2 = post(rw.api, body, k)
    assert r2.content == r1.content
    assert count(rw.api, topic) == 1


def test_bulk_replay_identical_body(rw, topic):
    k = key()
    body = {"messages": [{"topic": topic, "payload": {"i": i}} for i in range(3)]}
    r1 = post(rw.api, body, k, "/api/v1/messages/bulk")
    assert r1.status_code == 207, r1.text
    r2 = post(rw.api, body, k, "/api/v1/messages/bulk")
    assert r2.status_code == 207, r2.text
    assert r2.content == r1.content
    assert count(rw.api, topic) == 3


def test_bulk_same_key_different_body_is_422(rw, topic):
    k = key()
    assert post(rw.api, {"messages": [{"topic": topic, "payload": {}}]}, k, "/api/v1/messages/bulk").status_code == 207
    r = post(rw.api, {"messages": [{"topic": topic, "payload": {}}, {"topic": topic, "payload": {}}]}, k,
             "/api/v1/messages/bulk")
    assert r.status_code == 422, r.text
    assert count(rw.api, topic) == 1


def test_keys_scoped_per_route(rw, topic):
    """D7: a single-publish key reused on bulk is independent (not a 500, not a replay)."""
    k = key()
    single = post(rw.api, {"topic": topic, "payload": {"s": 1}}, k)
    assert single.status_code == 201
    r = post(rw.api, {"messages": [{"topic": topic, "payload": {"b": 1}}]}, k, "/api/v1/messages/bulk")
    assert r.status_code == 207, r.text
    assert r.json()["summary"] == {"total": 1, "accepted": 1, "rejected": 0}
    assert count(rw.api, topic) == 2
    # and each route still replays its own record
    again = post(rw.api, {"topic": topic, "payload": {"s": 1}}, k)
    assert again.status_code == 201 and again.content == single.content
    again_bulk = post(rw.api, {"messages": [{"topic": topic, "payload": {"b": 1}}]}, k, "/api/v1/messages/bulk")
    assert again_bulk.status_code == 207 and again_bulk.content == r.content
    assert count(rw.api, topic) == 2


def test_bulk_key_reused_on_single(rw, topic):
    k = key()
    assert post(rw.api, {"messages": [{"topic": topic, "payload": {"b": 1}}]}, k,
                "/api/v1/messages/bulk").status_code == 207
    r = post(rw.api, {"topic": topic, "payload": {"s": 1}}, k)
    assert r.status_code == 201, r.text
    assert list(r.json().keys()) == ["message_id", "topic", "timestamp"]
    assert count(rw.api, topic) == 2


def test_keys_scoped_per_user(rw, other, topic):
    k = key()
    body = {"topic": topic, "payload": {"v": 1}}
    a = post(rw.api, body, k)
    b = post(other.api, body, k)
    assert a.status_code == b.status_code == 201
    assert count(rw.api, topic) == 1
    assert count(other.api, topic) == 1
    # a different user may even use the key with a different body
    c = post(other.api, {"topic": topic + "b", "payload": {"v": 9}}, key())
    assert c.status_code == 201


def test_concurrent_duplicates_single(rw, topic):
    """D7: in-flight duplicates wait for the first and get its response; one message is stored."""
    k = key()
    body = {"topic": topic, "payload": {"concurrent": True}}
    n = 8
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def fire(i):
        api = rw.api.with_token(rw.token)  # own session per thread
        barrier.wait(timeout=10)
        results[i] = post(api, body, k)

    threads = [threading.Thread(target=fire, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert all(r is not None for r in results), "a request did not finish"
    assert [r.status_code for r in results] == [201] * n, [r.text for r in results]
    assert len({r.json()["message_id"] for r in results}) == 1
    assert len({r.content for r in results}) == 1
    assert count(rw.api, topic) == 1


def test_concurrent_duplicates_bulk(rw, topic):
    k = key()
    body = {"messages": [{"topic": topic, "payload": {"i": i}} for i in range(5)]}
    n = 6
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def fire(i):
        api = rw.api.with_token(rw.token)
        barrier.wait(timeout=10)
        results[i] = post(api, body, k, "/api/v1/messages/bulk")

    threads = [threading.Thread(target=fire, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert all(r is not None for r in results), "a request did not finish"
    assert [r.status_code for r in results] == [207] * n, [r.text for r in results]
    assert len({r.content for r in results}) == 1
    assert count(rw.api, topic) == 5


def test_replay_is_not_fanned_out_again(server, rw, topic):
    ws = ws_connect(server, rw.token)
    try:
        ws_subscribe(ws, [topic])
        k = key()
        body = {"topic": topic, "payload": {"once": True}}
        first = post(rw.api, body, k)
        assert first.status_code == 201
        assert post(rw.api, body, k).status_code == 201
        frames = ws_messages(ws, 1)
        assert frames[0]["message_id"] == first.json()["message_id"]
        ws_no_frame(ws, 1.0)
    finally:
        ws.close(timeout=1)


def test_key_needs_auth_first(anon, topic):
    r = post(anon, {"topic": topic, "payload": {}}, key())
    assert_detail(r, 401, "Not authenticated")
