"""Long-poll POST /messages/poll: §3 with D5, D6 (one item shape), D9 (stats scoped), D13, D14."""

import json
import socket
import threading
import time

import pytest

from conftest import (ID_RE, MESSAGE_ITEM_KEYS, BgPoll, Tenant, assert_422, assert_compact, assert_detail,
                      assert_increasing, assert_ts, start_admin, unique, wait_until)


def item_ids(resp):
    return [m["message_id"] for m in resp.json()["messages"]]


def check_item(item, topic, pub=None, payload=None, metadata=None):
    assert list(item.keys()) == MESSAGE_ITEM_KEYS, item
    assert item["type"] == "message"
    assert ID_RE.match(item["message_id"])
    assert item["topic"] == topic
    assert_ts(item["timestamp"])
    assert item["metadata"] == ({} if metadata is None else metadata)
    if payload is not None:
        assert item["payload"] == payload
    if pub is not None:
        assert item["message_id"] == pub["message_id"]
        assert item["timestamp"] == pub["timestamp"]


# ------------------------------------------------------------------------------------------------
# Request validation and auth
# ------------------------------------------------------------------------------------------------


def test_poll_timeout_with_nothing(rw, topic):
    t0 = time.monotonic()
    r = rw.api.poll([topic], timeout=1)
    elapsed = time.monotonic() - t0
    assert r.text == '{"messages":[],"has_more":false}'
    assert 0.8 <= elapsed < 5, elapsed


@pytest.mark.parametrize("body,loc", [
    ({"timeout": 1}, "topics"),
    ({"topics": [], "timeout": 1}, "topics"),
    ({"topics": [f"t{i}" for i in range(21)], "timeout": 1}, "topics"),
    ({"topics": "abc", "timeout": 1}, "topics"),
    ({"topics": ["bad name"], "timeout": 1}, "topics"),
    ({"topics": ["café"], "timeout": 1}, "topics"),
    ({"topics": [""], "timeout": 1}, "topics"),
    ({"topics": ["ok"], "timeout": 0}, "timeout"),
    ({"topics": ["ok"], "timeout": 61}, "timeout"),
    ({"topics": ["ok"], "timeout": -5}, "timeout"),
    ({"topics": ["ok"], "timeout": 1.5}, "timeout"),
    ({"topics": ["ok"], "timeout": "soon"}, "timeout"),
    ({"topics": ["ok"], "timeout": 1, "since": ["ok"]}, "since"),
    ({"topics": ["ok"], "timeout": 1, "since": {"ok": 5}}, "since"),
])
def test_poll_validation(rw, body, loc):
    r = rw.api.post("/messages/poll", json=body, timeout=15)
    assert_422(r, loc_contains=loc)


@pytest.mark.parametrize("cursor", ["abc", "msg_0123456789ab", "1-", "1-2-3", "-1"])
def test_poll_malformed_since_value(rw, topic, cursor):
    """D5: a malformed cursor is a 422, not a 500 and not a silent restart."""
    rw.api.publish(topic)
    r = rw.api.post("/messages/poll", json={"topics": [topic], "timeout": 1, "since": {topic: cursor}}, timeout=15)
    assert r.status_code == 422, r.text


def test_poll_twenty_topics_ok(rw):
    r = rw.api.poll([unique() for _ in range(20)], timeout=1)
    assert r.json() == {"messages": [], "has_more": False}


def test_poll_timeout_bounds_and_float(rw, topic):
    """timeout 1-60 inclusive; Galaxy sends 30.0, which is accepted."""
    rw.api.publish(topic)
    for t in (60, 30.0, 1):
        r = rw.api.post("/messages/poll", json={"topics": [topic], "timeout": t, "since": {topic: "0-0"}}, timeout=15)
        assert r.status_code == 200, (t, r.text)
        assert len(r.json()["messages"]) == 1


def test_poll_requires_auth(anon, topic):
    assert_detail(anon.post("/messages/poll", json={"topics": [topic], "timeout": 1}), 401, "Not authenticated")


def test_poll_requires_read(wo, topic):
    assert_detail(wo.api.post("/messages/poll", json={"topics": [topic], "timeout": 1}), 403,
                  "Permission 'read' required")


def test_poll_read_only_user_ok(ro, topic):
    assert ro.api.poll([topic], timeout=1).json() == {"messages": [], "has_more": False}


def test_poll_does_not_create_topics(rw, topic):
    rw.api.poll([topic], timeout=1)
    assert_detail(rw.api.get(f"/api/v1/topics/{topic}"), 404, f"Topic '{topic}' not found")


# ------------------------------------------------------------------------------------------------
# Catch-up (since)
# ------------------------------------------------------------------------------------------------


def test_catch_up_after_cursor(rw, topic):
    pubs = [rw.api.publish(topic, {"i": i}, metadata={"k": str(i)} if i == 2 else None) for i in range(3)]
    t0 = time.monotonic()
    r = rw.api.poll([topic], since={topic: pubs[0]["message_id"]}, timeout=30)
    assert time.monotonic() - t0 < 5, "catch-up must answer immediately"
    assert_compact(r)
    body = r.json()
    assert list(body.keys()) == ["messages", "has_more"]
    assert body["has_more"] is False
    items = body["messages"]
    assert len(items) == 2
    check_item(items[0], topic, pubs[1], {"i": 1})
    check_item(items[1], topic, pubs[2], {"i": 2}, {"k": "2"})


def test_catch_up_from_zero(rw, topic):
    ids = [rw.api.publish(topic, {"i": i})["message_id"] for i in range(3)]
    assert item_ids(rw.api.poll([topic], since={topic: "0-0"}, timeout=30)) == ids


def test_catch_up_partial_since_map(rw):
    """A requested topic without an entry in a non-empty since map starts from its oldest message."""
    a, b = unique("a"), unique("b")
    ida = [rw.api.publish(a, {"i": i})["message_id"] for i in range(2)]
    idb = [rw.api.publish(b, {"i": i})["message_id"] for i in range(3)]
    r = rw.api.poll([a, b], since={a: ida[0]}, timeout=30)
    assert item_ids(r) == ida[1:] + idb
    assert [m["topic"] for m in r.json()["messages"]] == [a] + [b] * 3


def test_catch_up_in_request_order(rw):
    a, b = unique("a"), unique("b")
    ida = [rw.api.publish(a)["message_id"] for _ in range(2)]
    idb = [rw.api.publish(b)["message_id"] for _ in range(2)]
    r = rw.api.poll([b, a], since={a: "0-0", b: "0-0"}, timeout=30)
    assert item_ids(r) == idb + ida


def test_catch_up_unrequested_since_keys_ignored(rw, topic):
    ids = [rw.api.publish(topic)["message_id"] for _ in range(2)]
    other_topic = unique()
    rw.api.publish(other_topic)
    r = rw.api.poll([topic], since={topic: ids[0], other_topic: "0-0"}, timeout=30)
    assert item_ids(r) == ids[1:]


def test_has_more_150(rw, topic):
    ids = rw.api.publish_many(topic, 150)
    r = rw.api.poll([topic], since={topic: ids[0]}, timeout=30)
    body = r.json()
    assert [m["message_id"] for m in body["messages"]] == ids[1:101]
    assert body["has_more"] is True
    r = rw.api.poll([topic], since={topic: ids[100]}, timeout=30)
    body = r.json()
    assert [m["message_id"] for m in body["messages"]] == ids[101:]
    assert len(body["messages"]) == 49
    assert body["has_more"] is False


def test_has_more_exact_boundary(rw, topic):
    """has_more is true iff more messages remain: exactly 100 remaining -> false."""
    ids = rw.api.publish_many(topic, 101)
    body = rw.api.poll([topic], since={topic: ids[0]}, timeout=30).json()
    assert [m["message_id"] for m in body["messages"]] == ids[1:]
    assert body["has_more"] is False
    body = rw.api.poll([topic], since={topic: "0-0"}, timeout=30).json()
    assert [m["message_id"] for m in body["messages"]] == ids[:100]
    assert body["has_more"] is True
    body = rw.api.poll([topic], since={topic: ids[99]}, timeout=30).json()
    assert [m["message_id"] for m in body["messages"]] == [ids[100]]
    assert body["has_more"] is False


def test_catch_up_at_most_100_per_topic(rw):
    a, b = unique("a"), unique("b")
    ida = rw.api.publish_many(a, 120)
    idb = rw.api.publish_many(b, 120)
    body = rw.api.poll([a, b], since={a: "0-0", b: "0-0"}, timeout=30).json()
    assert [m["message_id"] for m in body["messages"]] == ida[:100] + idb[:100]
    assert body["has_more"] is True
    body = rw.api.poll([a, b], since={a: ida[99], b: idb[99]}, timeout=30).json()
    assert [m["message_id"] for m in body["messages"]] == ida[100:] + idb[100:]
    assert body["has_more"] is False


# ------------------------------------------------------------------------------------------------
# Wait phase (live)
# ------------------------------------------------------------------------------------------------


def test_live_delivery(rw, topic):
    bg = BgPoll(rw.api, [topic], timeout=20)
    rw.api.wait_for_waiter(topic)
    pub = rw.api.publish(topic, {"live": True})
    r = bg.result()
    assert r.status_code == 200, r.text
    assert bg.elapsed < 10, "a waiting poll must return as soon as a message arrives"
    assert_compact(r)
    body = r.json()
    assert body["has_more"] is False
    assert len(body["messages"]) == 1
    live = body["messages"][0]
    check_item(live, topic, pub, {"live": True})
    # D6: catch-up returns the very same item
    again = rw.api.poll([topic], since={topic: "0-0"}, timeout=30).json()["messages"]
    assert again == [live]


def test_live_with_metadata(rw, topic):
    bg = BgPoll(rw.api, [topic], timeout=20)
    rw.api.wait_for_waiter(topic)
    pub = rw.api.publish(topic, {"x": 1}, metadata={"m": "v"})
    items = bg.result().json()["messages"]
    assert len(items) == 1
    check_item(items[0], topic, pub, {"x": 1}, {"m": "v"})


def test_live_after_catch_up_found_nothing(rw, topic):
    first = rw.api.publish(topic)["message_id"]
    bg = BgPoll(rw.api, [topic], since={topic: first}, timeout=20)
    rw.api.wait_for_waiter(topic)
    pub = rw.api.publish(topic, {"n": 2})
    assert item_ids(bg.result()) == [pub["message_id"]]


def test_no_since_does_not_return_history(rw, topic):
    rw.api.publish(topic)
    assert rw.api.poll([topic], timeout=1).json() == {"messages": [], "has_more": False}


@pytest.mark.parametrize("since", [{}, None])
def test_empty_or_null_since_waits(rw, topic, since):
    rw.api.publish(topic)
    t0 = time.monotonic()
    r = rw.api.post("/messages/poll", json={"topics": [topic], "timeout": 1, "since": since}, timeout=15)
    assert r.status_code == 200, r.text
    assert r.json() == {"messages": [], "has_more": False}
    assert time.monotonic() - t0 >= 0.8


def test_live_only_requested_topics_and_own_namespace(rw, other):
    a, b = unique("a"), unique("b")
    bg = BgPoll(rw.api, [a], timeout=20)
    rw.api.wait_for_waiter(a)
    other.api.publish(a, {"from": "other"})   # other user's own "a"
    rw.api.publish(b, {"from": "rw-b"})       # rw's topic that was not requested
    pub = rw.api.publish(a, {"from": "rw-a"})
    items = bg.result().json()["messages"]
    assert [m["message_id"] for m in items] == [pub["message_id"]]
    assert items[0]["payload"] == {"from": "rw-a"}


def test_live_multiple_topics(rw):
    a, b = unique("a"), unique("b")
    bg = BgPoll(rw.api, [a, b], timeout=20)
    rw.api.wait_for_waiter(b)
    pub = rw.api.publish(b, {"b": 1})
    items = bg.result().json()["messages"]
    assert items[0]["message_id"] == pub["message_id"]
    assert items[0]["topic"] == b


def test_nothing_lost_between_polls(rw, topic):
    m1 = rw.api.publish(topic)["message_id"]
    assert item_ids(rw.api.poll([topic], since={topic: "0-0"}, timeout=30)) == [m1]
    m2 = rw.api.publish(topic)["message_id"]
    m3 = rw.api.publish(topic)["message_id"]
    assert item_ids(rw.api.poll([topic], since={topic: m1}, timeout=30)) == [m2, m3]


def test_consumer_loop_sees_every_message(tenant):
    """D14: a client that always sends `since` sees every message once, in order, while a producer runs."""
    user = tenant.new_user(["read", "write"], prefix="loop")
    name = unique("loop")
    total = 40
    published: list[str] = []

    def producer():
        api = user.api.with_token(user.token)
        for i in range(total):
            published.append(api.publish(name, {"i": i})["message_id"])
            time.sleep(0.02)

    prod = threading.Thread(target=producer, daemon=True)
    prod.start()
    received: list[str] = []
    cursor = "0-0"
    deadline = time.monotonic() + 40
    while len(received) < total and time.monotonic() < deadline:
        r = user.api.poll([name], since={name: cursor}, timeout=2)
        items = r.json()["messages"]
        for m in items:
            assert m["topic"] == name
            received.append(m["message_id"])
        if items:
            cursor = items[-1]["message_id"]
    prod.join(10)
    assert received == published
    assert_increasing(received)


# ------------------------------------------------------------------------------------------------
# /messages/poll/stats (D9) and waiter lifecycle (D14)
# ------------------------------------------------------------------------------------------------


def test_poll_stats_shape(rw):
    r = rw.api.get("/messages/poll/stats")
    assert r.status_code == 200
    body = r.json()
    assert list(body.keys()) == ["active_waiters", "subscribed_topics", "topic_subscriber_counts"]
    assert isinstance(body["active_waiters"], int)
    assert isinstance(body["subscribed_topics"], int)
    assert isinstance(body["topic_subscriber_counts"], dict)


def test_poll_stats_requires_auth(anon):
    assert_detail(anon.get("/messages/poll/stats"), 401, "Not authenticated")


def test_poll_stats_scoped_to_caller(rw, other, topic):
    bg = BgPoll(rw.api, [topic], timeout=20)
    rw.api.wait_for_waiter(topic)
    mine = rw.api.poll_stats()
    assert mine["active_waiters"] >= 1
    assert mine["subscribed_topics"] >= 1
    assert mine["topic_subscriber_counts"].get(topic) == 1
    assert all("/" not in k for k in mine["topic_subscriber_counts"]), mine
    theirs = other.api.poll_stats()
    assert topic not in theirs["topic_subscriber_counts"]
    assert not any(topic in k or rw.user_id in k for k in theirs["topic_subscriber_counts"]), theirs
    assert theirs["active_waiters"] == 0
    rw.api.publish(topic)
    assert bg.result().status_code == 200
    wait_until(lambda: rw.api.poll_stats()["topic_subscriber_counts"].get(topic, 0) == 0, 5,
               message="waiter removed after the poll answered")


def test_disconnected_poll_is_forgotten(server, rw, topic):
    """D14: the waiter is removed when the client disconnects mid-poll."""
    body = json.dumps({"topics": [topic], "timeout": 30}).encode()
    req = (f"POST /messages/poll HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
           f"Authorization: Bearer {rw.token}\r\nContent-Type: application/json\r\n"
           f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    try:
        sock.sendall(req)
        rw.api.wait_for_waiter(topic)
    finally:
        sock.close()
    wait_until(lambda: rw.api.poll_stats()["topic_subscriber_counts"].get(topic, 0) == 0, 10,
               message="waiter of a disconnected client removed")
    # and a message published now is still readable by cursor
    pub = rw.api.publish(topic)
    assert item_ids(rw.api.poll([topic], since={topic: "0-0"}, timeout=30)) == [pub["message_id"]]


def test_poll_cap_default_50(tenant):
    """§3.3 / D13: 50 concurrent waiters per user; the 51st gets 429 with Retry-After."""
    user = tenant.new_user(["read", "write"], prefix="cap")
    name = unique("cap")
    polls = [BgPoll(user.api, [name], timeout=20) for _ in range(50)]
    try:
        user.api.wait_for_waiter(name, 50, timeout=15)
        r = user.api.post("/messages/poll", json={"topics": [name], "timeout": 1}, timeout=15)
        assert_detail(r, 429, "Too many concurrent poll connections")
        assert "Retry-After" in r.headers
    finally:
        user.api.publish(name)  # releases every waiter
        for p in polls:
            p.join(25)
    assert all(p.resp is not None and p.resp.status_code == 200 for p in polls)


def test_poll_cap_option_and_per_user(server_factory):
    srv = server_factory("--poll-max-per-user", "2")
    admin = start_admin(srv)
    tenant = Tenant(srv, admin)
    u1, u2 = tenant.user("rw"), tenant.user("other")
    name = unique("cap")
    polls = [BgPoll(u1.api, [name], timeout=20) for _ in range(2)]
    try:
        u1.api.wait_for_waiter(name, 2)
        r = u1.api.post("/messages/poll", json={"topics": [name], "timeout": 1}, timeout=15)
        assert_detail(r, 429, "Too many concurrent poll connections")
        ra = r.headers.get("Retry-After")
        assert ra is not None and ra.strip() != ""
        # the cap is per user
        assert u2.api.poll([name], timeout=1).status_code == 200
    finally:
        u1.api.publish(name)
        for p in polls:
            p.join(25)
    assert [p.resp.status_code for p in polls] == [200, 200]
    wait_until(lambda: u1.api.poll_stats()["active_waiters"] == 0, 5, message="waiters released")
    assert u1.api.poll([name], timeout=1).status_code == 200
