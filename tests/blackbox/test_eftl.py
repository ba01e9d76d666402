"""eFTL channel (spec/eftl.md, issue 12): the wire driven directly with python3-websocket.

Every server here runs with `--eftl-port 0` (conftest); the chosen port is read from the line
"magnetar eftl listening on ws://127.0.0.1:<port>/<channel>" the server prints at start.
Most logins use a relay access token as the password (not rate limited); password logins each
come from their own loopback source address, so the login rate limit never trips by accident.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import time
import urllib.parse

import pytest
import websocket

from conftest import (MagnetarServer, WsClosed, next_source_ip, start_admin, unique, ws_recv)

SUBPROTOCOL = "v1.eftl.tibco.com"
WELCOME_KEYS = {"op", "client_id", "id_token", "timeout", "heartbeat", "max_size", "protocol", "_qos", "_resume",
                "stop_supported"}


def eftl_port(server) -> int:
    ports = re.findall(r"magnetar eftl listening on wss?://[^/]+:(\d+)/", server.read_log())
    assert ports, "the server did not print its eFTL port"
    return int(ports[-1])


def eftl_open(server, channel: str = "chan", *, query: str = "", subprotocols=(SUBPROTOCOL,), header=None,
              source_ip: str | None = None) -> websocket.WebSocket:
    port = eftl_port(server)
    sock = None
    if source_ip:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source_ip, 0))
    kwargs = {"timeout": 5, "suppress_origin": True, "socket": sock}
    if subprotocols:
        kwargs["subprotocols"] = list(subprotocols)
    if header:
        kwargs["header"] = header
    return websocket.create_connection(f"ws://127.0.0.1:{port}/{channel}{query}", **kwargs)


def send(ws, obj) -> None:
    ws.send(json.dumps(obj))


def recv(ws, timeout: float = 5.0, *, skip_heartbeats: bool = True) -> dict:
    while True:
        kind, data = ws_recv(ws, timeout)
        assert kind == "text", f"expected text, got {kind}"
        frame = json.loads(data)
        if skip_heartbeats and isinstance(frame, dict) and frame.get("op") == 0:
            continue
        return frame


def expect_close(ws, timeout: float = 5.0) -> WsClosed:
    """Reads until the server closes; returns the close (frames before it are collected in .frames)."""
    frames = []
    deadline = time.monotonic() + timeout
    while True:
        try:
            kind, data = ws_recv(ws, max(0.1, deadline - time.monotonic()))
            frames.append(json.loads(data) if kind == "text" else data)
        except WsClosed as c:
            c.frames = frames
            return c
        except websocket.WebSocketTimeoutException:
            raise AssertionError(f"not closed within {timeout}s; got {frames}")


def no_frame(ws, wait: float = 0.4) -> None:
    try:
        frame = recv(ws, wait)
    except websocket.WebSocketTimeoutException:
        return
    raise AssertionError(f"unexpected frame {frame}")


def login(ws, user: str | None, password: str | None, **extra) -> dict:
    frame = {"op": 1, "protocol": 1, "client_type": "python", "client_version": "test",
             "login_options": {"_qos": "true", "_resume": "true"}}
    if user is not None:
        frame["user"] = user
    if password is not None:
        frame["password"] = password
    frame.update(extra)
    send(ws, frame)
    return recv(ws)


def connect(server, user, channel: str = "chan", **extra):
    """An open, logged-in connection for a conftest User (its access token as the password)."""
    ws = eftl_open(server, channel)
    welcome = login(ws, user.username, user.token, **extra)
    assert welcome["op"] == 2, welcome
    return ws


def subscribe(ws, sid: str, matcher: str | None = None, **extra) -> dict:
    frame = {"op": 3, "id": sid}
    if matcher is not None:
        frame["matcher"] = matcher
    frame.update(extra)
    send(ws, frame)
    return recv(ws)


def publish(ws, seq: int, body: dict) -> dict:
    send(ws, {"op": 8, "seq": seq, "body": body})
    return recv(ws)


def publish_own(ws, seq: int, body: dict, count: int) -> tuple[dict, list[dict]]:
    """Publish on a connection that also receives `count` events of it: the ack and the events may
    come in either order."""
    send(ws, {"op": 8, "seq": seq, "body": body})
    ack, got = None, []
    while ack is None or len(got) < count:
        f = recv(ws)
        if f["op"] == 9:
            assert ack is None, f
            ack = f
        else:
            assert f["op"] == 7, f
            got.append(f)
    return ack, got


def events(ws, count: int, timeout: float = 5.0) -> list[dict]:
    out = []
    while len(out) < count:
        f = recv(ws, timeout)
        assert f["op"] == 7, f
        out.append(f)
    return out


# ---- handshake and login ------------------------------------------------------------------------


def test_upgrade_needs_the_eftl_subprotocol_and_a_channel_path(server):
    ws = eftl_open(server, "chan")
    assert ws.getsubprotocol() == SUBPROTOCOL
    ws.close()
    with pytest.raises(websocket.WebSocketBadStatusException) as e:
        eftl_open(server, "chan", subprotocols=("chat",))
    assert e.value.status_code == 400
    with pytest.raises(websocket.WebSocketBadStatusException) as e:
        eftl_open(server, "a/b")
    assert e.value.status_code == 404


def test_password_login_and_welcome(server, rw):
    ws = eftl_open(server, source_ip=next_source_ip())
    welcome = login(ws, rw.username, rw.password, client_id="client-1", max_pending_acks=10)
    assert set(welcome) == WELCOME_KEYS, welcome
    assert welcome["op"] == 2
    assert welcome["client_id"] == "client-1"
    assert isinstance(welcome["id_token"], str) and welcome["id_token"]
    assert welcome["protocol"] == 1
    assert welcome["_qos"] == "true"
    assert welcome["_resume"] in ("true", "false")
    assert str(welcome["stop_supported"]).lower() == "true"
    assert welcome["max_size"] == 1048576
    assert welcome["timeout"] == 90 and welcome["heartbeat"] == 30
    ws.close()


def test_client_id_is_assigned_or_taken_from_the_query(server, rw):
    ws = eftl_open(server)
    welcome = login(ws, rw.username, rw.token)
    assert welcome["client_id"]
    ws.close()
    ws = eftl_open(server, query="?client_id=from-query")
    assert login(ws, rw.username, rw.token)["client_id"] == "from-query"
    ws.close()


def test_access_token_as_password_without_a_user_name(server, rw):
    ws = eftl_open(server)
    assert login(ws, None, rw.token)["op"] == 2
    ws.close()


def test_basic_auth_on_the_upgrade(server, rw):
    creds = base64.b64encode(f"{rw.username}:{rw.password}".encode()).decode()
    ws = eftl_open(server, header=[f"Authorization: Basic {creds}"], source_ip=next_source_ip())
    assert login(ws, None, None)["op"] == 2
    ws.close()


def test_bad_credentials_error_then_close_4002(server, rw):
    for user, password in ((rw.username, "wrong-password"), ("nobody-" + unique(), "x" * 12),
                           (None, None), (rw.username, rw.token + "x")):
        ws = eftl_open(server, source_ip=next_source_ip())
        send(ws, {"op": 1, "protocol": 1, **({"user": user} if user else {}),
                  **({"password": password} if password else {})})
        closed = expect_close(ws)
        assert closed.code == 4002, (user, closed)
        assert closed.frames and closed.frames[0]["op"] == 10, closed.frames
        assert "authentication failed" in closed.frames[0]["reason"]
        assert password is None or password not in closed.reason


def test_token_of_another_user_name_is_refused(server, rw, ro):
    ws = eftl_open(server)
    send(ws, {"op": 1, "user": ro.username, "password": rw.token})
    # Not the token's user: falls back to a password check of ro with rw's token, which fails.
    assert expect_close(ws).code == 4002


def test_password_logins_are_rate_limited(server_factory):
    srv = server_factory("--rate-limit-login", "2", label="eftl-ratelimit")
    admin = start_admin(srv)
    ip = next_source_ip()
    reasons = []
    for _ in range(3):
        ws = eftl_open(srv, source_ip=ip)
        send(ws, {"op": 1, "user": admin.username, "password": "wrong-password"})
        closed = expect_close(ws)
        assert closed.code == 4002
        reasons.append(closed.frames[0]["reason"])
    assert "rate limit" not in reasons[0] and "rate limit" in reasons[2], reasons
    # Tokens are not password checks: still fine from the same address.
    ws = eftl_open(srv, source_ip=ip)
    assert login(ws, None, admin.token)["op"] == 2
    ws.close()


def test_ops_before_login_close_1008(server):
    ws = eftl_open(server)
    send(ws, {"op": 8, "seq": 1, "body": {"a": 1}})
    closed = expect_close(ws)
    assert closed.code == 1008
    assert closed.frames[0]["op"] == 12 and "login" in closed.frames[0]["reason"]


@pytest.mark.parametrize("frame, code", [
    ("{not json", 1002),
    ("[1,2]", 1002),
    ('{"op":"one"}', 1002),
    ('{"no_op":1}', 1002),
])
def test_malformed_frames_close_with_a_reason(server, rw, frame, code):
    ws = connect(server, rw)
    ws.send(frame)
    closed = expect_close(ws)
    assert closed.code == code, closed
    assert closed.frames and closed.frames[0]["op"] == 12 and closed.frames[0]["reason"]
    assert closed.reason


def test_binary_frame_closes_1003(server, rw):
    ws = connect(server, rw)
    ws.send_binary(b"\x00\x01")
    assert expect_close(ws).code == 1003


def test_oversize_frame_closes_1009(server_factory):
    srv = server_factory("--eftl-max-size", "2048", label="eftl-small")
    admin = start_admin(srv)
    ws = eftl_open(srv)
    welcome = login(ws, None, admin.token)
    assert welcome["max_size"] == 2048
    send(ws, {"op": 8, "seq": 1, "body": {"big": "x" * 4096}})
    assert expect_close(ws).code == 1009


def test_unknown_op_is_an_error_not_a_close(server, rw):
    ws = connect(server, rw)
    send(ws, {"op": 17})
    f = recv(ws)
    assert f["op"] == 10 and f["err"] == 6 and "17" in f["reason"]
    send(ws, {"op": 1, "user": rw.username, "password": rw.token})
    assert recv(ws)["op"] == 10  # already logged in
    assert publish(ws, 1, {"still": "open"}) == {"op": 9, "seq": 1}
    ws.close()


def test_disconnect_op_closes_1000(server, rw):
    ws = connect(server, rw)
    send(ws, {"op": 11, "reason": "bye"})
    assert expect_close(ws).code == 1000


def test_heartbeats_and_timeout(server_factory):
    srv = server_factory("--eftl-heartbeat", "1", "--eftl-timeout", "3", label="eftl-heartbeat")
    admin = start_admin(srv)
    ws = eftl_open(srv)
    welcome = login(ws, None, admin.token)
    assert welcome["heartbeat"] == 1 and welcome["timeout"] == 3
    hb = recv(ws, 3, skip_heartbeats=False)
    assert hb == {"op": 0}
    # Echoing keeps the connection; silence ends it with 4000.
    for _ in range(4):
        hb = recv(ws, 3, skip_heartbeats=False)
        ws.send(json.dumps(hb))
    started = time.monotonic()
    closed = expect_close(ws, 8)
    assert closed.code == 4000, closed
    assert time.monotonic() - started >= 1.5


def test_login_timeout(server_factory):
    srv = server_factory("--eftl-login-timeout", "1", label="eftl-login-timeout")
    ws = eftl_open(srv)
    started = time.monotonic()
    closed = expect_close(ws, 5)
    assert closed.code == 1008 and "login" in closed.reason
    assert time.monotonic() - started >= 0.5


# ---- publish and subscribe ----------------------------------------------------------------------


def test_publish_is_acked_and_delivered_to_matching_subscriptions(server, rw):
    channel = unique("ch")
    sub = connect(server, rw, channel)
    assert subscribe(sub, "all") == {"op": 4, "id": "all"}
    assert subscribe(sub, "acme", '{"name":"acme"}') == {"op": 4, "id": "acme"}
    assert subscribe(sub, "cost", '{"cost":1000}') == {"op": 4, "id": "cost"}
    assert subscribe(sub, "has", '{"cost":true}') == {"op": 4, "id": "has"}
    assert subscribe(sub, "not", '{"cost":false}') == {"op": 4, "id": "not"}
    assert subscribe(sub, "str", '{"cost":"1000"}') == {"op": 4, "id": "str"}
    pub = connect(server, rw, channel)
    assert publish(pub, 1, {"name": "acme", "cost": 1000}) == {"op": 9, "seq": 1}
    got = events(sub, 4)
    assert sorted(e["to"] for e in got) == ["acme", "all", "cost", "has"]
    assert all(e["body"] == {"name": "acme", "cost": 1000} for e in got)
    seqs = [e["seq"] for e in got]
    assert seqs == sorted(seqs) and len(set(seqs)) == 4
    assert publish(pub, 2, {"name": "cyberdyne"}) == {"op": 9, "seq": 2}
    assert sorted(e["to"] for e in events(sub, 2)) == ["all", "not"]
    assert publish(pub, 3, {"cost": "1000"}) == {"op": 9, "seq": 3}
    assert sorted(e["to"] for e in events(sub, 3)) == ["all", "has", "str"]
    no_frame(sub)


def test_typed_fields_survive_the_server(server, rw):
    channel = unique("ch")
    sub = connect(server, rw, channel)
    subscribe(sub, "1")
    pub = connect(server, rw, channel)
    body = {"s": "h\u00e9llo", "l": -9223372036854775808, "d": {"_d_": 0.1}, "nan": {"_d_": "NaN"},
            "inf": {"_d_": "+Inf"}, "ninf": {"_d_": "-Infinity"}, "t": {"_m_": 1700000000123},
            "o": {"_o_": base64.b64encode(b"\x00\xff").decode()}, "m": {"inner": {"x": 1}},
            "sa": ["a"], "la": [1, 2], "da": [{"_d_": 1.5}], "ta": [{"_m_": 5}], "ma": [{"k": "v"}], "e": [],
            "exact": {"_d_": 1.7000000001e+55}, "tiny": {"_d_": 2.2250738585072014e-308}}
    assert publish(pub, 1, body)["op"] == 9
    got = events(sub, 1)[0]["body"]
    assert got["s"] == "h\u00e9llo" and got["l"] == -9223372036854775808
    assert got["d"] == {"_d_": 0.1}
    assert got["nan"] == {"_d_": "NaN"} and got["inf"] == {"_d_": "Infinity"} and got["ninf"] == {"_d_": "-Infinity"}
    assert got["t"] == {"_m_": 1700000000123} and got["o"] == {"_o_": "AP8="}
    assert got["m"] == {"inner": {"x": 1}}
    assert got["sa"] == ["a"] and got["la"] == [1, 2] and got["da"] == [{"_d_": 1.5}]
    assert got["ta"] == [{"_m_": 5}] and got["ma"] == [{"k": "v"}] and got["e"] == []
    # Doubles keep their exact value (no rounding on the way through the server).
    assert got["exact"]["_d_"] == 1.7000000001e+55 and got["tiny"]["_d_"] == 2.2250738585072014e-308


@pytest.mark.parametrize("body, words", [
    ({"b": True}, "boolean"),
    ({"n": None}, "null"),
    ({"a": [1, "x"]}, "array"),
    ({"d": {"_d_": "lots"}}, "_d_"),
    ({"o": {"_o_": "!!"}}, "base64"),
])
def test_bad_bodies_are_refused_in_the_ack(server, rw, body, words):
    ws = connect(server, rw)
    ack = publish(ws, 7, body)
    assert ack["op"] == 9 and ack["seq"] == 7 and ack["err"] == 11, ack
    assert words in ack["reason"]
    send(ws, {"op": 8, "seq": 8})
    ack = recv(ws)
    assert ack["err"] == 11 and "body" in ack["reason"]


def test_permissions(server, ro, wo):
    ws = connect(server, ro)
    ack = publish(ws, 1, {"a": 1})
    assert ack["err"] == 12, ack
    ws.close()
    ws = connect(server, wo)
    assert subscribe(ws, "s1") == {"op": 6, "id": "s1", "err": 13,
                                   "reason": "subscription not authorized: read permission required"}
    ws.close()


@pytest.mark.parametrize("matcher", ["{bad", "[1]", '{"a":1.5}', '{"a":null}', '{"a":{"b":1}}',
                                     '{"a":"' + "x" * 300 + '"}'])
def test_invalid_matchers_are_unsubscribed_22(server, rw, matcher):
    ws = connect(server, rw)
    f = subscribe(ws, "bad", matcher)
    assert f["op"] == 6 and f["id"] == "bad" and f["err"] == 22 and f["reason"], f


def test_invalid_subscribe_options(server, rw):
    ws = connect(server, rw)
    assert subscribe(ws, "a", ack="sometimes")["err"] == 22
    assert subscribe(ws, "b", key="k")["err"] == 22
    assert subscribe(ws, "c", type="shared")["err"] == 22  # a type needs a durable name
    assert subscribe(ws, "d", type="bogus", durable="x")["err"] == 22
    f = subscribe(ws, "e", type="last-value", durable="lv")
    assert f["err"] == 22 and "key" in f["reason"]
    f = subscribe(ws, "f", '{"k":true}', type="last-value", durable="lv", key="k")
    assert f["err"] == 22 and "pin" in f["reason"]


def test_unsubscribe_stops_deliveries(server, rw):
    channel = unique("ch")
    ws = connect(server, rw, channel)
    subscribe(ws, "1")
    ack, got = publish_own(ws, 1, {"n": 1}, 1)
    assert ack == {"op": 9, "seq": 1} and got[0]["body"] == {"n": 1}
    send(ws, {"op": 5, "id": "1"})
    assert publish(ws, 2, {"n": 2}) == {"op": 9, "seq": 2}
    no_frame(ws)


def test_stop_and_start(server, rw):
    channel = unique("ch")
    ws = connect(server, rw, channel)
    subscribe(ws, "1")
    send(ws, {"op": 28, "id": "1", "seq": 0})
    assert publish(ws, 1, {"n": 1}) == {"op": 9, "seq": 1}
    no_frame(ws)
    send(ws, {"op": 30, "id": "1"})
    assert recv(ws) == {"op": 31, "to": "1"}
    ack, got = publish_own(ws, 2, {"n": 2}, 1)
    assert ack == {"op": 9, "seq": 2} and got[0]["body"] == {"n": 2}
    send(ws, {"op": 30, "id": "nope"})
    assert recv(ws)["err"] == 51


def test_max_pending_acks_flow_control(server, rw):
    channel = unique("ch")
    ws = connect(server, rw, channel, max_pending_acks=2)
    subscribe(ws, "s")
    pub = connect(server, rw, channel)
    for i in range(5):
        assert publish(pub, i + 1, {"n": i})["op"] == 9
    first = events(ws, 2)
    no_frame(ws)
    send(ws, {"op": 9, "seq": first[0]["seq"]})  # single ack frees one slot
    third = events(ws, 1)[0]
    assert third["body"] == {"n": 2}
    no_frame(ws)
    send(ws, {"op": 9, "seq": third["seq"], "id": "s"})  # cumulative frees both
    rest = events(ws, 2)
    assert [e["body"]["n"] for e in rest] == [3, 4]
    # ack mode none: never held back.
    subscribe(ws, "none", ack="none")
    for i in range(4):
        publish(pub, 10 + i, {"m": i})
    got = [e for e in events(ws, 4) if e["to"] == "none"]
    assert len(got) == 4


def test_dest_field_routes_to_a_topic(server, rw):
    topic = unique("dest")
    ws = connect(server, rw)
    assert subscribe(ws, "d", json.dumps({"_dest": topic})) == {"op": 4, "id": "d"}
    subscribe(ws, "chan")  # the channel's default topic does not get it
    ack, got = publish_own(ws, 1, {"_dest": "TOPIC:" + topic, "n": 1}, 1)
    assert ack == {"op": 9, "seq": 1}
    got = got[0]
    assert got["to"] == "d" and got["body"] == {"_dest": "TOPIC:" + topic, "n": 1}
    no_frame(ws)
    ack = publish(ws, 2, {"_dest": "bad/name"})
    assert ack["err"] == 11 and "destination" in ack["reason"]


# ---- cross-protocol ----------------------------------------------------------------------------


def test_relay_publish_reaches_eftl_with_the_documented_mapping(server, rw):
    topic = unique("x")
    ws = connect(server, rw, topic)
    subscribe(ws, "1")
    rw.api.publish(topic, {"i": 5, "f": 2.5, "s": "t", "b": True, "z": None, "o": {"k": [1, 2]}, "mix": [1, 1.5],
                           "arr": [{"a": 1}]})
    body = events(ws, 1)[0]["body"]
    assert body == {"i": 5, "f": {"_d_": 2.5}, "s": "t", "b": "true", "o": {"k": [1, 2]},
                    "mix": [{"_d_": 1}, {"_d_": 1.5}], "arr": [{"a": 1}]}


def test_eftl_publish_is_readable_over_the_relay(server, rw):
    topic = unique("x")
    ws = connect(server, rw, topic)
    assert publish(ws, 1, {"n": 1, "d": {"_d_": 0.5}, "_dest": topic})["op"] == 9
    page = rw.api.messages(topic, order="asc")
    assert len(page["messages"]) == 1
    assert page["messages"][0]["payload"] == {"n": 1, "d": {"_d_": 0.5}, "_dest": topic}
    # And relay readers of other users do not see it (the user's own namespace).


# ---- request / reply ---------------------------------------------------------------------------


def test_request_reply(server, rw):
    channel = unique("ch")
    responder = connect(server, rw, channel)
    subscribe(responder, "svc", '{"op_name":"add"}')
    requester = connect(server, rw, channel)
    send(requester, {"op": 13, "seq": 5, "body": {"op_name": "add", "a": 2, "b": 3}})
    req = events(responder, 1)[0]
    assert req["to"] == "svc" and isinstance(req["reply_to"], str) and isinstance(req["req"], int)
    send(responder, {"op": 15, "seq": 1, "to": req["reply_to"], "req": req["req"], "body": {"sum": 5}})
    assert recv(responder) == {"op": 9, "seq": 1}
    assert recv(requester) == {"op": 14, "seq": 5, "body": {"sum": 5}}
    # Nobody answers "mul": an immediate error, not a silent timeout.
    send(requester, {"op": 13, "seq": 6, "body": {"op_name": "mul"}})
    f = recv(requester)
    assert f["op"] == 14 and f["seq"] == 6 and f["err"] == 41
    # A reply to an unknown address fails in its ack.
    send(responder, {"op": 15, "seq": 2, "to": "nobody", "req": 1, "body": {}})
    f = recv(responder)
    assert f["op"] == 9 and f["seq"] == 2 and f["err"] == 11


# ---- key-value maps ----------------------------------------------------------------------------


def test_kv_map(server, rw, ro):
    ws = connect(server, rw)
    m = unique("map")
    send(ws, {"op": 20, "map": m, "key": "k1", "value": {"v": 1, "d": {"_d_": 2.5}}, "seq": 1})
    assert recv(ws) == {"op": 26, "seq": 1}
    send(ws, {"op": 20, "map": m, "key": "k2", "value": {"v": 2}, "seq": 2})
    assert recv(ws) == {"op": 26, "seq": 2}
    send(ws, {"op": 22, "map": m, "key": "k1", "seq": 3})
    assert recv(ws) == {"op": 26, "seq": 3, "value": {"v": 1, "d": {"_d_": 2.5}}}
    send(ws, {"op": 24, "map": m, "key": "k1", "seq": 4})
    assert recv(ws) == {"op": 26, "seq": 4}
    send(ws, {"op": 22, "map": m, "key": "k1", "seq": 5})
    assert recv(ws) == {"op": 26, "seq": 5}  # unset: no value, no error
    send(ws, {"op": 18, "map": m})
    send(ws, {"op": 22, "map": m, "key": "k2", "seq": 6})
    assert recv(ws) == {"op": 26, "seq": 6}
    send(ws, {"op": 20, "map": m, "key": "k", "value": {"b": True}, "seq": 7})
    f = recv(ws)
    assert f["err"] == 30 and "boolean" in f["reason"]
    send(ws, {"op": 22, "map": "", "key": "k", "seq": 8})
    assert recv(ws)["err"] == 30
    ro_ws = connect(server, ro)
    send(ro_ws, {"op": 20, "map": m, "key": "k", "value": {}, "seq": 1})
    assert recv(ro_ws)["err"] == 14


# ---- durables ----------------------------------------------------------------------------------


def test_durable_keeps_messages_while_closed(server, rw):
    channel, durable = unique("ch"), unique("dur")
    ws = connect(server, rw, channel)
    assert subscribe(ws, "1", durable=durable, ack="client") == {"op": 4, "id": "1"}
    send(ws, {"op": 5, "id": "1", "del": False})  # close: the durable stays
    pub = connect(server, rw, channel)
    for i in range(3):
        assert publish(pub, i + 1, {"n": i}) == {"op": 9, "seq": i + 1}
    assert subscribe(ws, "1", durable=durable, ack="client") == {"op": 4, "id": "1"}
    got = events(ws, 3)
    assert [e["body"]["n"] for e in got] == [0, 1, 2]
    assert all(e["cnt"] == 1 for e in got)
    # Acked ones are gone; the unacked one comes again after a dropped connection, counted.
    send(ws, {"op": 9, "seq": got[1]["seq"], "id": "1"})  # cumulative: 0 and 1
    time.sleep(0.2)
    ws.close()
    ws2 = connect(server, rw, channel)
    assert subscribe(ws2, "9", durable=durable, ack="client") == {"op": 4, "id": "9"}
    again = events(ws2, 1)
    assert again[0]["body"] == {"n": 2} and again[0]["cnt"] == 2 and again[0]["to"] == "9"
    no_frame(ws2)
    # Go sends del as the string "false": also a close.
    send(ws2, {"op": 5, "id": "9", "del": "false"})
    publish(pub, 10, {"n": 10})
    assert subscribe(ws2, "9", durable=durable, ack="client") == {"op": 4, "id": "9"}
    assert [e["body"] for e in events(ws2, 2)] == [{"n": 2}, {"n": 10}]


def test_unsubscribe_deletes_the_durable(server, rw):
    channel, durable = unique("ch"), unique("dur")
    ws = connect(server, rw, channel)
    subscribe(ws, "1", durable=durable)
    send(ws, {"op": 5, "id": "1"})  # no del: delete
    pub = connect(server, rw, channel)
    publish(pub, 1, {"n": 1})
    assert subscribe(ws, "1", durable=durable) == {"op": 4, "id": "1"}  # a new one, from now on
    no_frame(ws)
    publish(pub, 2, {"n": 2})
    assert events(ws, 1)[0]["body"] == {"n": 2}


def test_durable_flow_control_and_matcher(server, rw):
    channel, durable = unique("ch"), unique("dur")
    ws = connect(server, rw, channel, max_pending_acks=2)
    subscribe(ws, "1", '{"k":true}', durable=durable, ack="client")
    pub = connect(server, rw, channel)
    for i in range(5):
        publish(pub, i + 1, {"k": i} if i != 1 else {"other": i})
    got = events(ws, 2)
    assert [e["body"] for e in got] == [{"k": 0}, {"k": 2}]
    no_frame(ws)
    send(ws, {"op": 9, "seq": got[0]["seq"]})
    assert events(ws, 1)[0]["body"] == {"k": 3}


def test_shared_durable_splits_messages(server, rw):
    channel, durable = unique("ch"), unique("dur")
    a = connect(server, rw, channel)
    b = connect(server, rw, channel)
    assert subscribe(a, "s", durable=durable, type="shared") == {"op": 4, "id": "s"}
    assert subscribe(b, "s", durable=durable, type="shared") == {"op": 4, "id": "s"}
    pub = connect(server, rw, channel)
    for i in range(6):
        publish(pub, i + 1, {"n": i})
    got_a, got_b = [], []
    deadline = time.monotonic() + 5
    while len(got_a) + len(got_b) < 6 and time.monotonic() < deadline:
        for ws, got in ((a, got_a), (b, got_b)):
            try:
                f = recv(ws, 0.2)
            except websocket.WebSocketTimeoutException:
                continue
            got.append(f["body"]["n"])
            send(ws, {"op": 9, "seq": f["seq"], "id": "s"})
    assert sorted(got_a + got_b) == list(range(6))
    assert got_a and got_b
    # Another type for the same durable is refused.
    assert subscribe(a, "x", durable=durable)["err"] == 22


def test_durable_survives_a_restart(tmp_path):
    srv = MagnetarServer(label="eftl-restart", storage="rocksdb")
    srv.start()
    try:
        admin = start_admin(srv)
        channel = unique("ch")
        ws = connect(srv, admin, channel)
        subscribe(ws, "1", durable="keep", ack="client")
        pub = connect(srv, admin, channel)
        for i in range(3):
            assert publish(pub, i + 1, {"n": i}) == {"op": 9, "seq": i + 1}
        got = events(ws, 3)
        send(ws, {"op": 9, "seq": got[0]["seq"]})  # only the first is acked
        time.sleep(0.3)
        assert srv.terminate() == 0
        srv.start()
        ws = connect(srv, admin, channel)
        assert subscribe(ws, "1", durable="keep", ack="client") == {"op": 4, "id": "1"}
        again = events(ws, 2)
        assert [e["body"] for e in again] == [{"n": 1}, {"n": 2}]
        no_frame(ws)
    finally:
        srv.terminate()
        srv.kill()


# ---- resume -------------------------------------------------------------------------------------


def test_resume_with_id_token(server, rw):
    channel, client_id = unique("ch"), unique("client")
    ws = eftl_open(server, channel)
    welcome = login(ws, rw.username, rw.token, client_id=client_id)
    assert welcome["_resume"] == "true" and welcome["client_id"] == client_id
    subscribe(ws, "s")
    ack, got = publish_own(ws, 1, {"n": 1}, 1)
    assert ack == {"op": 9, "seq": 1}
    last_seq = got[0]["seq"]
    ws.close()  # dropped: the session is kept for --eftl-session-retention
    time.sleep(0.2)

    ws = eftl_open(server, channel)
    welcome = login(ws, rw.username, rw.token, client_id=client_id, id_token=welcome["id_token"])
    assert welcome["_resume"] == "true", welcome
    # A publish re-sent with its seq (its ack was lost) is acked, not stored twice.
    assert publish(ws, 1, {"n": 1}) == {"op": 9, "seq": 1}
    subscribe(ws, "s")
    ack, got = publish_own(ws, 2, {"n": 2}, 1)
    assert got[0]["seq"] > last_seq  # delivery seqs stay monotonic across the reconnect
    page = rw.api.messages(channel, order="asc")
    assert [m["payload"] for m in page["messages"]] == [{"n": 1}, {"n": 2}]
    token = welcome["id_token"]
    ws.close()
    time.sleep(0.2)

    # A wrong token (or another client id) cannot resume: _resume "false", seqs start again.
    ws = eftl_open(server, channel)
    welcome = login(ws, rw.username, rw.token, client_id=client_id, id_token="not-" + token)
    assert welcome["_resume"] == "false"
    ws.close()
    ws = eftl_open(server, channel)
    welcome = login(ws, rw.username, rw.token, client_id=client_id, id_token=token)
    # Only the state the client's latest connection left can be resumed: that was the refused one.
    assert welcome["_resume"] == "false"
    ws.close()


def test_last_value_durable(server, rw):
    channel = unique("ch")
    pub = connect(server, rw, channel)
    for seq, (flight, gate) in enumerate([("954", "A1"), ("100", "B2"), ("954", "A7"), ("100", "B3")], 1):
        assert publish(pub, seq, {"flight_num": flight, "gate": gate}) == {"op": 9, "seq": seq}
    ws = connect(server, rw, channel)
    f = subscribe(ws, "lv", '{"flight_num":"954"}', durable="flights", type="last-value", key="flight_num")
    assert f == {"op": 4, "id": "lv"}
    first = events(ws, 1)[0]
    assert first["body"] == {"flight_num": "954", "gate": "A7"}  # only the newest for its key
    no_frame(ws)
    publish(pub, 9, {"flight_num": "100", "gate": "B9"})
    publish(pub, 10, {"flight_num": "954", "gate": "A9"})
    assert events(ws, 1)[0]["body"] == {"flight_num": "954", "gate": "A9"}
    no_frame(ws)  # no acks were needed and nothing else comes
    # A key value with nothing stored yet: nothing at once, then live updates.
    ws2 = connect(server, rw, channel)
    subscribe(ws2, "lv2", '{"flight_num":"777"}', durable="flights", type="last-value", key="flight_num")
    no_frame(ws2)


def test_ops_pipelined_behind_the_login_run_after_the_welcome(server, rw):
    channel = unique("ch")
    ws = eftl_open(server, channel)
    send(ws, {"op": 1, "user": rw.username, "password": rw.token})
    send(ws, {"op": 3, "id": "early"})
    send(ws, {"op": 8, "seq": 1, "body": {"n": 1}})
    assert recv(ws)["op"] == 2
    assert recv(ws) == {"op": 4, "id": "early"}
    frames = [recv(ws), recv(ws)]
    assert sorted(f["op"] for f in frames) == [7, 9]


def test_pulsar_websocket_and_eftl_share_topics(server, rw):
    topic = unique("px")
    token = urllib.parse.quote(rw.token)
    base = f"ws://127.0.0.1:{server.port}/ws/v2"
    ws = connect(server, rw, topic)
    subscribe(ws, "1")
    # Pulsar producer -> eFTL subscriber: a JSON-object payload reads as fields.
    producer = websocket.create_connection(f"{base}/producer/persistent/{rw.username}/default/{topic}?token={token}",
                                           timeout=5, suppress_origin=True)
    payload = base64.b64encode(json.dumps({"from": "pulsar", "n": 7}).encode()).decode()
    producer.send(json.dumps({"payload": payload}))
    assert json.loads(producer.recv())["result"] == "ok"
    assert events(ws, 1)[0]["body"] == {"from": "pulsar", "n": 7}
    producer.send(json.dumps({"payload": base64.b64encode(b"\x00\x01raw").decode()}))
    assert json.loads(producer.recv())["result"] == "ok"
    assert events(ws, 1)[0]["body"] == {"_data": {"_o_": base64.b64encode(b"\x00\x01raw").decode()}}
    producer.close()
    # eFTL publish -> Pulsar reader from the earliest message: the stored eFTL JSON as payload.
    ack, _ = publish_own(ws, 1, {"from": "eftl", "d": {"_d_": 0.5}}, 1)
    assert ack == {"op": 9, "seq": 1}
    reader = websocket.create_connection(
        f"{base}/reader/persistent/{rw.username}/default/{topic}?token={token}&messageId=earliest",
        timeout=5, suppress_origin=True)
    payloads = [base64.b64decode(json.loads(reader.recv())["payload"]) for _ in range(3)]
    assert json.loads(payloads[2]) == {"from": "eftl", "d": {"_d_": 0.5}}
    reader.close()
