"""Topics: §0.4 (+D1), §0.5 namespacing, §1.17-§1.23 (+D5, D8), §6."""

import uuid

import pytest

from conftest import (ID_RE, PAGE_KEYS, STORED_MESSAGE_KEYS, TOPIC_PUBLIC_KEYS, UUID4_RE, Api, assert_422,
                      assert_compact, assert_detail, assert_increasing, assert_ts, start_admin, unique)

CHARSET_MSG = "Topic must contain only alphanumeric characters, hyphens, and underscores"


def create(api: Api, name: str, **extra):
    r = api.post("/api/v1/topics", json={"topic_name": name, **extra})
    assert r.status_code == 201, f"create {name!r} -> {r.status_code}: {r.text}"
    return r.json()


# ------------------------------------------------------------------------------------------------
# Create / read
# ------------------------------------------------------------------------------------------------


def test_create_topic_shape(rw, topic):
    r = rw.api.post("/api/v1/topics", json={"topic_name": topic})
    assert r.status_code == 201, r.text
    assert_compact(r)
    body = r.json()
    assert list(body.keys()) == TOPIC_PUBLIC_KEYS
    assert UUID4_RE.match(body["topic_id"])
    assert body["topic_name"] == topic
    assert body["owner_id"] == rw.user_id
    assert_ts(body["created_at"])
    assert body["description"] is None


def test_create_topic_with_description(rw, topic):
    body = create(rw.api, topic, description="build jobs")
    assert body["description"] == "build jobs"


def test_create_ignores_unknown_fields(rw, topic):
    """§0.1: old clients still send is_public; it is ignored."""
    body = create(rw.api, topic, is_public=True, allowed_user_ids=["x"])
    assert list(body.keys()) == TOPIC_PUBLIC_KEYS


def test_create_duplicate(rw, topic):
    create(rw.api, topic)
    r = rw.api.post("/api/v1/topics", json={"topic_name": topic})
    assert_detail(r, 400, f"Topic '{topic}' already exists for owner {rw.user_id}")


def test_get_topic_matches_create(rw, topic):
    created = create(rw.api, topic, description="d")
    r = rw.api.get(f"/api/v1/topics/{topic}")
    assert r.status_code == 200
    assert_compact(r)
    assert r.json() == created
    assert list(r.json().keys()) == TOPIC_PUBLIC_KEYS


def test_get_missing_topic(rw, topic):
    assert_detail(rw.api.get(f"/api/v1/topics/{topic}"), 404, f"Topic '{topic}' not found")


def test_path_parameter_not_validated(rw):
    """§0.4: the {topic_name} path parameter is any string; lookups simply miss (404, not 422)."""
    r = rw.api.get("/api/v1/topics/caf%C3%A9")
    assert_detail(r, 404, "Topic 'café' not found")
    assert_compact(r)
    assert "café" in r.content.decode("utf-8")  # non-ASCII emitted raw


def test_list_topics(rw, other):
    a, b = unique("la"), unique("lb")
    ca = create(rw.api, a)
    create(rw.api, b)
    theirs = unique("lc")
    create(other.api, theirs)
    r = rw.api.get("/api/v1/topics")
    assert r.status_code == 200
    topics = r.json()
    assert isinstance(topics, list)
    by_name = {t["topic_name"]: t for t in topics}
    assert a in by_name and b in by_name
    assert theirs not in by_name
    assert by_name[a] == ca
    for t in topics:
        assert list(t.keys()) == TOPIC_PUBLIC_KEYS
        assert t["owner_id"] == rw.user_id


def test_owned_topics_in_me(rw, topic):
    create(rw.api, topic)
    assert topic in rw.api.get("/auth/me").json()["owned_topics"]
    assert rw.api.delete(f"/api/v1/topics/{topic}").status_code == 204
    assert topic not in rw.api.get("/auth/me").json()["owned_topics"]


def test_create_requires_auth(anon, topic):
    assert_detail(anon.post("/api/v1/topics", json={"topic_name": topic}), 401, "Not authenticated")


def test_list_requires_auth(anon):
    assert_detail(anon.get("/api/v1/topics"), 401, "Not authenticated")


# ------------------------------------------------------------------------------------------------
# Topic-name rule (§0.4 with D1)
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [
    "a", "Z", "7", "a.b", "a-b_c", "-a-", "_x_", "v1.2.3", ".hidden", "a..b", "A" * 255,
])
def test_topic_name_accepted(rw, name):
    # names live in the module user's own namespace, so fixed names cannot collide with other tests
    create(rw.api, name)
    r = rw.api.get(f"/api/v1/topics/{name}")
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("name,msg", [
    ("", "Topic name must not be empty"),
    ("a" * 256, "Topic name must be at most 255 characters"),
    ("---", CHARSET_MSG),
    ("_", CHARSET_MSG),
    (".", CHARSET_MSG),
    ("-._", CHARSET_MSG),
    ("a b", CHARSET_MSG),
    ("a/b", CHARSET_MSG),
    ("a:b", CHARSET_MSG),
    ("a@b", CHARSET_MSG),
    ("a*", CHARSET_MSG),
    ("a\tb", CHARSET_MSG),
    ("café", CHARSET_MSG),          # D1: Unicode letters are refused now
    ("日本", CHARSET_MSG),
    ("١٢٣", CHARSET_MSG),
    ("x²", CHARSET_MSG),
])
def test_topic_name_rejected(rw, name, msg):
    r = rw.api.post("/api/v1/topics", json={"topic_name": name})
    assert_422(r, loc_contains="topic_name", msg_contains=msg)


def test_topic_name_byte_limit(rw):
    """D1: 1-255 bytes; 255 ASCII characters are fine, 256 are not."""
    ok = uuid.uuid4().hex + "b" * (255 - 32)
    assert len(ok.encode()) == 255
    create(rw.api, ok)
    assert_422(rw.api.post("/api/v1/topics", json={"topic_name": ok + "c"}), loc_contains="topic_name")


def test_topic_name_wrong_type(rw):
    assert_422(rw.api.post("/api/v1/topics", json={"topic_name": 5}), loc_contains="topic_name")
    assert_422(rw.api.post("/api/v1/topics", json={"topic_name": None}), loc_contains="topic_name")


def test_topic_name_missing(rw):
    assert_422(rw.api.post("/api/v1/topics", json={"description": "x"}), loc_contains="topic_name", type_="missing")


def test_description_length(rw):
    create(rw.api, unique(), description="d" * 500)
    assert_422(rw.api.post("/api/v1/topics", json={"topic_name": unique(), "description": "d" * 501}),
               loc_contains="description")


def test_create_body_not_json(rw):
    r = rw.api.post("/api/v1/topics", data=b"{nope", headers={"Content-Type": "application/json"})
    assert_422(r, type_="json_invalid")


# ------------------------------------------------------------------------------------------------
# Update / delete (§1.22, §1.23, D8)
# ------------------------------------------------------------------------------------------------


def test_update_description(rw, topic):
    created = create(rw.api, topic, description="old")
    r = rw.api.put(f"/api/v1/topics/{topic}", json={"description": "new"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert list(body.keys()) == TOPIC_PUBLIC_KEYS
    assert body["description"] == "new"
    for k in ("topic_id", "topic_name", "owner_id", "created_at"):
        assert body[k] == created[k]
    assert rw.api.get(f"/api/v1/topics/{topic}").json()["description"] == "new"


@pytest.mark.parametrize("payload", [{"description": None}, {}])
def test_update_null_or_absent_keeps_description(rw, topic, payload):
    create(rw.api, topic, description="keep me")
    r = rw.api.put(f"/api/v1/topics/{topic}", json=payload)
    assert r.status_code == 200, r.text
    assert r.json()["description"] == "keep me"


def test_update_missing_topic(rw, topic):
    assert_detail(rw.api.put(f"/api/v1/topics/{topic}", json={"description": "x"}), 404, f"Topic '{topic}' not found")


def test_update_description_too_long(rw, topic):
    create(rw.api, topic)
    assert_422(rw.api.put(f"/api/v1/topics/{topic}", json={"description": "d" * 501}), loc_contains="description")


def test_update_other_users_topic_is_404(rw, other, topic):
    create(other.api, topic)
    assert_detail(rw.api.put(f"/api/v1/topics/{topic}", json={"description": "x"}), 404, f"Topic '{topic}' not found")
    assert other.api.get(f"/api/v1/topics/{topic}").json()["description"] is None


def test_delete_topic(rw, topic):
    create(rw.api, topic)
    r = rw.api.delete(f"/api/v1/topics/{topic}")
    assert r.status_code == 204
    assert r.content == b""
    assert_detail(rw.api.get(f"/api/v1/topics/{topic}"), 404, f"Topic '{topic}' not found")
    assert topic not in [t["topic_name"] for t in rw.api.get("/api/v1/topics").json()]
    assert_detail(rw.api.delete(f"/api/v1/topics/{topic}"), 404, f"Topic '{topic}' not found")


def test_delete_other_users_topic_is_404(rw, other, topic):
    create(other.api, topic)
    assert_detail(rw.api.delete(f"/api/v1/topics/{topic}"), 404, f"Topic '{topic}' not found")
    assert other.api.get(f"/api/v1/topics/{topic}").status_code == 200


def test_delete_removes_messages_recreate(rw, topic):
    """D8: re-creating a deleted name shows no old history."""
    rw.api.publish(topic, {"old": 1})
    rw.api.publish(topic, {"old": 2})
    assert rw.api.delete(f"/api/v1/topics/{topic}").status_code == 204
    create(rw.api, topic)
    page = rw.api.messages(topic, order="asc", limit=100)
    assert page["messages"] == []
    assert page["total"] == 0


def test_delete_removes_messages_autocreate(rw, topic):
    """D8: a publish after delete auto-creates an empty topic; only the new message is visible."""
    rw.api.publish(topic, {"old": 1})
    assert rw.api.delete(f"/api/v1/topics/{topic}").status_code == 204
    new = rw.api.publish(topic, {"new": 1})
    page = rw.api.messages(topic, order="asc", limit=100)
    assert [m["message_id"] for m in page["messages"]] == [new["message_id"]]


def test_delete_removes_messages_from_poll(rw, topic):
    """D8: poll catch-up from the start does not return deleted history either."""
    rw.api.publish(topic, {"old": 1})
    assert rw.api.delete(f"/api/v1/topics/{topic}").status_code == 204
    create(rw.api, topic)
    r = rw.api.poll([topic], since={topic: "0-0"}, timeout=1)
    assert r.json() == {"messages": [], "has_more": False}


# ------------------------------------------------------------------------------------------------
# Auto-create and namespacing (§2.2, §0.5)
# ------------------------------------------------------------------------------------------------


def test_publish_autocreates_topic(rw, topic):
    rw.api.publish(topic)
    r = rw.api.get(f"/api/v1/topics/{topic}")
    assert r.status_code == 200
    body = r.json()
    assert body["owner_id"] == rw.user_id
    assert body["description"] == f"Auto-created topic by {rw.username}"
    assert topic in rw.api.get("/auth/me").json()["owned_topics"]


def test_bulk_autocreates_topics(rw):
    a, b = unique(), unique()
    r = rw.api.post("/api/v1/messages/bulk", json={"messages": [{"topic": a, "payload": {}},
                                                                 {"topic": b, "payload": {}}]})
    assert r.status_code == 207
    for name in (a, b):
        t = rw.api.get(f"/api/v1/topics/{name}")
        assert t.status_code == 200
        assert t.json()["description"] == f"Auto-created topic by {rw.username}"


def test_publish_to_existing_topic_keeps_it(rw, topic):
    created = create(rw.api, topic, description="mine")
    rw.api.publish(topic)
    assert rw.api.get(f"/api/v1/topics/{topic}").json() == created


def test_same_name_two_users(rw, other):
    name = unique("jobs")
    a = create(rw.api, name)
    b = create(other.api, name)
    assert a["owner_id"] == rw.user_id and b["owner_id"] == other.user_id
    assert a["topic_id"] != b["topic_id"]
    m = rw.api.publish(name, {"from": "rw"})
    assert other.api.messages(name)["messages"] == []
    assert [x["message_id"] for x in rw.api.messages(name)["messages"]] == [m["message_id"]]
    other.api.publish(name, {"from": "other"})
    assert [x["payload"] for x in rw.api.messages(name)["messages"]] == [{"from": "rw"}]


def test_other_users_topic_invisible(rw, other, topic):
    create(other.api, topic)
    other.api.publish(topic)
    assert_detail(rw.api.get(f"/api/v1/topics/{topic}"), 404, f"Topic '{topic}' not found")
    assert_detail(rw.api.get(f"/api/v1/topics/{topic}/messages"), 404, f"Topic '{topic}' not found")


def test_admin_has_no_cross_namespace_power(admin, rw, topic):
    create(rw.api, topic)
    rw.api.publish(topic)
    assert_detail(admin.api.get(f"/api/v1/topics/{topic}"), 404, f"Topic '{topic}' not found")
    assert_detail(admin.api.delete(f"/api/v1/topics/{topic}"), 404, f"Topic '{topic}' not found")
    assert topic not in [t["topic_name"] for t in admin.api.get("/api/v1/topics").json()]
    # admin publishing to the name creates admin's own topic
    admin.api.publish(topic)
    mine = admin.api.get(f"/api/v1/topics/{topic}").json()
    assert mine["owner_id"] == admin.user_id
    assert len(rw.api.messages(topic)["messages"]) == 1


# ------------------------------------------------------------------------------------------------
# Stats and routing
# ------------------------------------------------------------------------------------------------


def test_topic_stats_admin(admin, rw):
    create(rw.api, unique())
    r = admin.api.get("/api/v1/topics/stats")
    assert r.status_code == 200
    body = r.json()
    assert list(body.keys()) == ["total_topics"]
    assert isinstance(body["total_topics"], int) and body["total_topics"] >= 1


def test_topic_stats_non_admin_is_403_not_404(rw):
    assert_detail(rw.api.get("/api/v1/topics/stats"), 403, "Permission 'admin' required")


def test_topic_stats_requires_auth(anon):
    assert_detail(anon.get("/api/v1/topics/stats"), 401, "Not authenticated")


def test_trailing_slash_redirect(rw):
    r = rw.api.get("/api/v1/topics/")
    assert r.status_code == 307
    assert r.headers["Location"].endswith("/api/v1/topics")
    assert rw.api.get("/api/v1/topics/", allow_redirects=True).status_code == 200


# ------------------------------------------------------------------------------------------------
# GET /api/v1/topics/{t}/messages (§1.21 with D4, D5)
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def paged(tenant):
    """A topic with 25 messages {"n": 0..24} of the module's rw user; returns (api, topic, ids)."""
    user = tenant.user("rw")
    name = unique("paged")
    ids = user.api.publish_many(name, 25)
    assert_increasing(ids)
    return user.api, name, ids


def _ids(page):
    return [m["message_id"] for m in page["messages"]]


def test_messages_default_page(paged):
    api, name, ids = paged
    r = api.get(f"/api/v1/topics/{name}/messages")
    assert r.status_code == 200
    assert_compact(r)
    page = r.json()
    assert list(page.keys()) == PAGE_KEYS
    assert page["limit"] == 10
    assert page["order"] == "desc"
    assert page["cursor"] is None
    assert page["total"] == 10
    assert _ids(page) == list(reversed(ids[15:]))
    assert page["next_cursor"] == ids[15]


def test_messages_item_shape(paged):
    api, name, ids = paged
    page = api.messages(name, limit=1, order="asc")
    m = page["messages"][0]
    assert list(m.keys()) == STORED_MESSAGE_KEYS
    assert m["message_id"] == ids[0]
    assert ID_RE.match(m["message_id"])
    assert m["topic"] == name
    assert m["payload"] == {"n": 0}
    assert_ts(m["timestamp"])
    assert m["metadata"] == {}


def test_messages_desc_paging(paged):
    api, name, ids = paged
    seen = []
    cursor = None
    for expected in (ids[15:], ids[5:15], ids[0:5]):
        params = {"order": "desc"}
        if cursor:
            params["cursor"] = cursor
        page = api.messages(name, **params)
        assert _ids(page) == list(reversed(expected))
        assert page["cursor"] == cursor
        assert page["total"] == len(expected)
        assert page["next_cursor"] == expected[0]
        cursor = page["next_cursor"]
        seen += _ids(page)
    page = api.messages(name, order="desc", cursor=cursor)
    assert page["messages"] == [] and page["total"] == 0 and page["next_cursor"] is None
    assert page["cursor"] == ids[0]
    assert seen == list(reversed(ids))


def test_messages_asc_paging(paged):
    api, name, ids = paged
    cursor = None
    for expected in (ids[0:10], ids[10:20], ids[20:25]):
        params = {"order": "asc"}
        if cursor:
            params["cursor"] = cursor
        page = api.messages(name, **params)
        assert _ids(page) == expected
        assert [m["payload"]["n"] for m in page["messages"]] == [ids.index(i) for i in expected]
        assert page["next_cursor"] == expected[-1]
        cursor = page["next_cursor"]
    page = api.messages(name, order="asc", cursor=cursor)
    assert page == {"messages": [], "total": 0, "limit": 10, "order": "asc", "cursor": ids[24], "next_cursor": None}


def test_messages_latest_one(paged):
    """The Galaxy pattern: limit=1, order=desc gets the latest message."""
    api, name, ids = paged
    page = api.messages(name, limit=1, order="desc")
    assert _ids(page) == [ids[-1]]
    assert page["limit"] == 1 and page["next_cursor"] == ids[-1]


def test_messages_limit_capped(paged):
    api, name, ids = paged
    page = api.messages(name, limit=1000, order="asc")
    assert page["limit"] == 100
    assert page["total"] == 25
    assert _ids(page) == ids


def test_messages_cursor_is_exclusive_bound(paged):
    """D5: ids are ordered positions; a cursor need not be an existing message."""
    api, name, ids = paged
    assert _ids(api.messages(name, order="asc", limit=100, cursor="0-0")) == ids
    hi, lo = (int(x) for x in ids[-1].split("-"))
    beyond = f"{hi + 1000}-0"
    assert api.messages(name, order="asc", cursor=beyond)["messages"] == []
    assert _ids(api.messages(name, order="desc", limit=100, cursor=beyond)) == list(reversed(ids))


@pytest.mark.parametrize("limit", ["0", "-1", "-100"])
def test_messages_limit_below_one(paged, limit):
    api, name, _ = paged
    assert_detail(api.get(f"/api/v1/topics/{name}/messages", params={"limit": limit}), 400,
                  "Limit must be at least 1")


def test_messages_limit_not_int(paged):
    api, name, _ = paged
    assert_422(api.get(f"/api/v1/topics/{name}/messages", params={"limit": "ten"}), loc_contains="limit")


@pytest.mark.parametrize("order", ["sideways", "ASC", ""])
def test_messages_bad_order(paged, order):
    api, name, _ = paged
    assert_detail(api.get(f"/api/v1/topics/{name}/messages", params={"order": order}), 400,
                  "Order must be 'asc' or 'desc'")


def test_messages_check_order(paged):
    """§1.21: topic existence -> order -> limit."""
    api, name, _ = paged
    missing = unique()
    assert_detail(api.get(f"/api/v1/topics/{missing}/messages", params={"order": "x", "limit": 0}), 404,
                  f"Topic '{missing}' not found")
    assert_detail(api.get(f"/api/v1/topics/{name}/messages", params={"order": "x", "limit": 0}), 400,
                  "Order must be 'asc' or 'desc'")


@pytest.mark.parametrize("cursor", ["abc", "msg_0123456789ab", "1-", "-1", "1-2-3", "1.5-0", "x-1"])
def test_messages_malformed_cursor(paged, cursor):
    """D5: malformed cursor -> 422 (not 500)."""
    api, name, _ = paged
    r = api.get(f"/api/v1/topics/{name}/messages", params={"cursor": cursor, "order": "asc"})
    assert r.status_code == 422, r.text


def test_messages_requires_auth(anon, paged):
    _, name, _ = paged
    assert_detail(anon.get(f"/api/v1/topics/{name}/messages"), 401, "Not authenticated")


def test_messages_without_read_permission(wo, topic):
    """§1.21: read permission is not checked on history reads."""
    m = wo.api.publish(topic, {"x": 1})
    page = wo.api.messages(topic)
    assert _ids(page) == [m["message_id"]]


def test_messages_metadata_and_timestamp_round_trip(rw, topic):
    pub = rw.api.publish(topic, {"k": "v", "nested": {"a": [1, 2, {"b": None}]}, "u": "é✓"},
                         metadata={"source": "bb", "trace": "42"})
    r = rw.api.get(f"/api/v1/topics/{topic}/messages")
    assert_compact(r)
    assert "é✓" in r.content.decode("utf-8")
    m = r.json()["messages"][0]
    assert m == {"message_id": pub["message_id"], "topic": topic,
                 "payload": {"k": "v", "nested": {"a": [1, 2, {"b": None}]}, "u": "é✓"},
                 "timestamp": pub["timestamp"], "metadata": {"source": "bb", "trace": "42"}}


def test_messages_empty_topic(rw, topic):
    create(rw.api, topic)
    page = rw.api.messages(topic)
    assert page == {"messages": [], "total": 0, "limit": 10, "order": "desc", "cursor": None, "next_cursor": None}


def test_cursor_after_trimming(server_factory):
    """D5: a cursor resumes strictly after its position even when that message was trimmed."""
    srv = server_factory("--max-messages-per-topic", "5")
    admin = start_admin(srv)
    name = unique()
    ids = [admin.api.publish(name, {"n": i})["message_id"] for i in range(10)]
    assert_increasing(ids)
    assert _ids(admin.api.messages(name, order="asc", limit=100)) == ids[5:]
    assert _ids(admin.api.messages(name, order="asc", limit=100, cursor=ids[2])) == ids[5:]
    assert _ids(admin.api.messages(name, order="asc", limit=100, cursor=ids[6])) == ids[7:]
    # strictly before a trimmed position: nothing is retained there (no restart from the newest)
    assert admin.api.messages(name, order="desc", limit=100, cursor=ids[2])["messages"] == []
    r = admin.api.poll([name], since={name: ids[2]}, timeout=1)
    assert [m["message_id"] for m in r.json()["messages"]] == ids[5:]
    r = admin.api.poll([name], since={name: ids[7]}, timeout=1)
    assert [m["message_id"] for m in r.json()["messages"]] == ids[8:]
