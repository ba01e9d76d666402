"""Apache Pulsar WebSocket API v2 (spec/pulsar-websocket.md): endpoints, parameters, receipts,
subscription types, acks and redelivery, readers, durable resume, cross-protocol with the relay API."""

import base64
import contextlib
import json
import re
import time
import urllib.parse
import uuid

import pytest
import websocket

from conftest import MagnetarServer, ServerStartError, login_user, start_admin, register_user, wait_until

WS_TIMEOUT = 5.0


# ---- helpers --------------------------------------------------------------------------------

def b64(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


def name(prefix="pt"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def ws_path(role, user, topic, sub=None, domain="persistent", tenant=None, ns="default"):
    path = f"/ws/v2/{role}/{domain}/{tenant or user.username}/{ns}/{topic}"
    if sub is not None:
        path += f"/{sub}"
    return path


def pulsar_ws_ports(server) -> list[int]:
    """The ports of the `--pulsar-ws-port` listener this server printed (the last start is last)."""
    return [int(p) for p in re.findall(r"magnetar pulsar-ws listening on ws://[^/]+:(\d+)/ws/v2/",
                                        server.read_log())]


def connect(server, path, token=None, params=None, header=None, port=None):
    query = dict(params or {})
    if token is not None:
        query["token"] = token
    # Percent-encode like a real client: a base64 message id holds '+', '/' and '='.
    qs = urllib.parse.urlencode(query, quote_via=urllib.parse.quote)
    url = f"ws://127.0.0.1:{port or server.port}{path}" + (f"?{qs}" if qs else "")
    return websocket.create_connection(url, timeout=WS_TIMEOUT, header=header or [], suppress_origin=True)


def status_of(server, path, token=None, params=None, header=None) -> int:
    try:
        ws = connect(server, path, token, params, header)
    except websocket.WebSocketBadStatusException as e:
        return e.status_code
    ws.close(timeout=1)
    return 101


@contextlib.contextmanager
def opened(server, path, token=None, params=None, header=None, port=None):
    ws = connect(server, path, token, params, header, port)
    try:
        yield ws
    finally:
        with contextlib.suppress(Exception):
            ws.close(timeout=1)


def recv_json(ws, timeout=WS_TIMEOUT):
    ws.settimeout(timeout)
    return json.loads(ws.recv())


def no_frame(ws, wait=0.4):
    ws.settimeout(wait)
    try:
        frame = ws.recv()
    except websocket.WebSocketTimeoutException:
        return True
    raise AssertionError(f"unexpected frame {frame!r}")


def send(ws, obj):
    ws.send(json.dumps(obj))


def produce(ws, payload, **fields):
    send(ws, {"payload": b64(payload), **fields})
    return recv_json(ws)


def receive(ws, n, timeout=WS_TIMEOUT):
    return [recv_json(ws, timeout) for _ in range(n)]


def ack(ws, msg):
    send(ws, {"messageId": msg["messageId"]})


# ---- fixtures -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def alice(tenant):
    return tenant.user("rw")


@pytest.fixture(scope="module")
def bob(tenant):
    return tenant.user("other")


# ---- endpoints, auth and parameter validation -------------------------------------------------

def test_endpoints_upgrade_for_each_role(server, alice):
    t = name()
    for path in (ws_path("producer", alice, t), ws_path("consumer", alice, t, "s1"),
                 ws_path("reader", alice, t), ws_path("producer", alice, t, domain="non-persistent"),
                 ws_path("consumer", alice, t, "s1", domain="non-persistent"),
                 ws_path("reader", alice, t, domain="non-persistent")):
        assert status_of(server, path, alice.token) == 101, path


def test_authorization_header_and_bearer_token_param(server, alice):
    t = name()
    assert status_of(server, ws_path("producer", alice, t), header=[f"Authorization: Bearer {alice.token}"]) == 101
    assert status_of(server, ws_path("producer", alice, t), f"Bearer {alice.token}") == 101


def test_auth_refusals(server, alice, bob, tenant):
    t = name()
    assert status_of(server, ws_path("producer", alice, t)) == 401
    assert status_of(server, ws_path("producer", alice, t), "garbage") == 401
    # another user's tenant
    assert status_of(server, ws_path("producer", alice, t), bob.token) == 403
    assert status_of(server, ws_path("consumer", alice, t, "s"), bob.token) == 403
    # permissions: write to produce, read to consume/read
    ro, wo = tenant.user("ro"), tenant.user("wo")
    assert status_of(server, ws_path("producer", ro, t), ro.token) == 403
    assert status_of(server, ws_path("consumer", wo, t, "s"), wo.token) == 403
    assert status_of(server, ws_path("reader", wo, t), wo.token) == 403
    assert status_of(server, ws_path("reader", ro, t), ro.token) == 101
    # namespaces other than default do not exist
    assert status_of(server, ws_path("producer", alice, t, ns="other"), alice.token) == 404


def test_revoked_token_refused(server, tenant):
    u = tenant.new_user(["read", "write"], prefix="rev")
    assert u.api.post("/auth/logout").status_code in (200, 204)
    assert status_of(server, ws_path("producer", u, name()), u.token) == 401


def test_admin_may_use_other_tenant(server, admin, alice):
    t = name()
    assert status_of(server, ws_path("producer", alice, t), admin.token) == 101
    assert status_of(server, ws_path("producer", alice, t, tenant="nobody-" + name()), admin.token) == 404


@pytest.mark.parametrize("path", [
    "/ws/v2/producer/persistent/{u}/default",                 # no topic
    "/ws/v2/producer/durable/{u}/default/t",                  # bad domain
    "/ws/v2/consumer/persistent/{u}/default/t",               # no subscription
    "/ws/v2/consumer/persistent/{u}/default/t/",              # empty subscription
    "/ws/v2/producer/persistent/{u}/default/bad%20name",      # topic-name rule
])
def test_bad_paths_are_400(server, alice, path):
    assert status_of(server, path.format(u=alice.username), alice.token) == 400


def test_unknown_role_is_refused(server, alice):
    assert status_of(server, f"/ws/v2/admin/persistent/{alice.username}/default/t", alice.token) in (400, 404)


@pytest.mark.parametrize("params", [
    {"sendTimeoutMillis": "x"}, {"maxPendingMessages": "-1"}, {"batchingMaxMessages": "many"},
    {"batchingMaxPublishDelay": "1.5"}, {"messageRoutingMode": "Random"}, {"hashingScheme": "Md5"},
    {"compressionType": "GZIP"}, {"initialSequenceId": "abc"}, {"encryptionKeys": "k1"},
])
def test_producer_param_validation(server, alice, params):
    assert status_of(server, ws_path("producer", alice, name()), alice.token, params) == 400


def test_producer_params_accepted(server, alice):
    params = {"producerName": name("p"), "initialSequenceId": "5", "sendTimeoutMillis": "1000",
              "batchingEnabled": "true", "batchingMaxMessages": "10", "batchingMaxPublishDelay": "5",
              "maxPendingMessages": "10", "messageRoutingMode": "RoundRobinPartition",
              "hashingScheme": "Murmur3_32Hash", "compressionType": "LZ4"}
    assert status_of(server, ws_path("producer", alice, name()), alice.token, params) == 101


@pytest.mark.parametrize("params", [
    {"subscriptionType": "shared"}, {"subscriptionType": "Sticky"}, {"subscriptionMode": "Forever"},
    {"receiverQueueSize": "ten"}, {"receiverQueueSize": "-1"}, {"ackTimeoutMillis": "500"},
    {"ackTimeoutMillis": "x"}, {"negativeAckRedeliveryDelay": "soon"}, {"priorityLevel": "-1"},
    {"priorityLevel": "high"}, {"maxRedeliverCount": "1.0"},
])
def test_consumer_param_validation(server, alice, params):
    assert status_of(server, ws_path("consumer", alice, name(), "s"), alice.token, params) == 400


def test_consumer_params_accepted(server, alice):
    params = {"subscriptionType": "Shared", "subscriptionMode": "NonDurable", "receiverQueueSize": "5000",
              "ackTimeoutMillis": "1000", "negativeAckRedeliveryDelay": "10", "consumerName": "c1",
              "priorityLevel": "1", "maxRedeliverCount": "3", "deadLetterTopic": "dlq", "pullMode": "false",
              "cryptoFailureAction": "WHATEVER"}
    assert status_of(server, ws_path("consumer", alice, name(), "s"), alice.token, params) == 101


def test_reader_param_validation(server, alice):
    t = name()
    assert status_of(server, ws_path("reader", alice, t), alice.token, {"receiverQueueSize": "x"}) == 400
    assert status_of(server, ws_path("reader", alice, t), alice.token, {"messageId": "garbage"}) == 500
    for mid in ("earliest", "latest", "CAAQAw==", "CAMQADAA"):
        assert status_of(server, ws_path("reader", alice, t), alice.token, {"messageId": mid}) == 101


# ---- the Pulsar-style listener (--pulsar-ws-port) ------------------------------------------------

def test_dedicated_port_serves_producer_and_consumer(server, alice):
    ports = pulsar_ws_ports(server)
    assert ports and ports[-1] not in (server.port, 0), "no pulsar-ws banner"
    port, t = ports[-1], name()
    with opened(server, ws_path("consumer", alice, t, "s"), alice.token, port=port) as c, \
            opened(server, ws_path("producer", alice, t), alice.token, port=port) as p:
        r = produce(p, "via 8080-style port", context="d")
        assert r["result"] == "ok" and r["context"] == "d"
        m = recv_json(c)
        assert m["messageId"] == r["messageId"] and unb64(m["payload"]) == b"via 8080-style port"
        ack(c, m)
    # The same API, not a copy: a consumer on the main port sees the subscription's cursor.
    with opened(server, ws_path("producer", alice, t), alice.token, port=port) as p:
        produce(p, "second")
    with opened(server, ws_path("consumer", alice, t, "s"), alice.token) as c:
        assert unb64(recv_json(c)["payload"]) == b"second"
    # Auth is the same on both ports.
    assert status_of(server, ws_path("producer", alice, t), None) == 401
    with pytest.raises(websocket.WebSocketBadStatusException) as e:
        connect(server, ws_path("producer", alice, t), port=port)
    assert e.value.status_code == 401


def test_dedicated_port_off():
    from conftest import require_binary
    require_binary()
    srv = MagnetarServer(["--pulsar-ws-port", "-1"], label="pulsar-ws-off")
    try:
        srv.start()
        assert pulsar_ws_ports(srv) == []
        assert "pulsar-ws listening" not in srv.read_log()
        # The main port still serves the API.
        adm = start_admin(srv)
        assert status_of(srv, ws_path("producer", adm, name()), adm.token) == 101
    finally:
        srv.terminate()
        srv.kill()


# ---- producer -------------------------------------------------------------------------------

def test_receipts_ok_and_errors(server, alice):
    with opened(server, ws_path("producer", alice, name()), alice.token) as p:
        r = produce(p, "hello", context="c1")
        assert r["result"] == "ok" and r["context"] == "c1"
        assert len(unb64(r["messageId"])) >= 4
        assert set(r) == {"result", "messageId", "context"}
        r = produce(p, "x")
        assert "context" not in r and r["result"] == "ok"
        p.send("not json")
        r = recv_json(p)
        assert r["result"] == "send-error:3" and "context" not in r and r["errorMsg"]
        send(p, {"payload": "%%%", "context": "bad"})
        r = recv_json(p)
        assert r == {"result": "send-error:7", "errorMsg": r["errorMsg"], "context": "bad"}
        assert r["errorMsg"].startswith("Invalid Base64 message-payload")
        send(p, {"context": 42})
        r = recv_json(p)
        assert r["result"] == "send-error:7" and r["context"] == "42"
        send(p, {"payload": b64("e"), "eventTime": "not a time", "context": "et"})
        assert recv_json(p)["result"] == "send-error:7"
        # the session stays usable after errors
        assert produce(p, "after")["result"] == "ok"


def test_receipts_in_publish_order(server, alice):
    with opened(server, ws_path("producer", alice, name()), alice.token) as p:
        for i in range(50):
            send(p, {"payload": b64(f"m{i}"), "context": str(i)})
        receipts = receive(p, 50)
        assert [r["context"] for r in receipts] == [str(i) for i in range(50)]
        ids = [unb64(r["messageId"]) for r in receipts]
        assert len(set(ids)) == 50


def test_producer_name_exclusive(server, alice):
    t, pname = name(), name("prod")
    with opened(server, ws_path("producer", alice, t), alice.token, {"producerName": pname}):
        assert status_of(server, ws_path("producer", alice, t), alice.token, {"producerName": pname}) == 409
        # same name on another topic is fine
        assert status_of(server, ws_path("producer", alice, name()), alice.token, {"producerName": pname}) == 101
    wait_until(lambda: status_of(server, ws_path("producer", alice, t), alice.token,
                                 {"producerName": pname}) == 101, 5, message="name released")


# ---- de-duplication by producer name and sequence id ----------------------------------------------

@contextlib.contextmanager
def named_producer(server, user, topic, params, timeout=5.0):
    """A producer whose name a session that just closed may still hold for a moment (409)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            ws = connect(server, ws_path("producer", user, topic), user.token, params)
            break
        except websocket.WebSocketBadStatusException as e:
            if e.status_code != 409 or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    try:
        yield ws
    finally:
        with contextlib.suppress(Exception):
            ws.close(timeout=1)


def test_resent_sequence_id_is_answered_with_the_original_id_and_stored_once(server, alice):
    t, pname = name(), name("dedupe")
    with opened(server, ws_path("consumer", alice, t, "s"), alice.token) as c, \
            opened(server, ws_path("producer", alice, t), alice.token, {"producerName": pname}) as p:
        r1 = produce(p, "one", sequenceId=1, context="a")
        r2 = produce(p, "two", sequenceId=2, context="b")
        again = produce(p, "two", sequenceId=2, context="b-again")
        assert again == {"result": "ok", "messageId": r2["messageId"], "context": "b-again"}
        older = produce(p, "one", sequenceId=1)
        assert older["result"] == "ok" and older["messageId"] == r1["messageId"]
        r3 = produce(p, "three", sequenceId=3)
        assert r3["messageId"] not in (r1["messageId"], r2["messageId"])
        got = receive(c, 3)
        assert [unb64(m["payload"]) for m in got] == [b"one", b"two", b"three"]
        for m in got:
            ack(c, m)
        no_frame(c)
        bad = produce(p, "x", sequenceId=-1)
        assert bad["result"] == "send-error:3"


def test_reconnecting_named_producer_continues_after_its_last_sequence(server, alice):
    t, pname = name(), name("dedupe")
    with opened(server, ws_path("producer", alice, t), alice.token, {"producerName": pname}) as p:
        first = [produce(p, f"m{i}") for i in range(3)]  # sequence ids 0, 1, 2 (numbered by us)
    assert all(r["result"] == "ok" for r in first)
    with opened(server, ws_path("consumer", alice, t, "s"), alice.token) as c, \
            named_producer(server, alice, t, {"producerName": pname}) as p:
        # Not numbered from 0 again (that would all be duplicates): after the last one, 2.
        r = produce(p, "m3")
        assert r["result"] == "ok" and r["messageId"] not in [f["messageId"] for f in first]
        m3 = recv_json(c)
        assert unb64(m3["payload"]) == b"m3"
        ack(c, m3)
        # A re-send of a message of the first session is still known.
        dup = produce(p, "m1", sequenceId=1)
        assert dup["messageId"] == first[1]["messageId"]
        no_frame(c)
    # initialSequenceId puts the client in charge: numbering restarts after it, so 1 and 2 are
    # duplicates of the first session's messages and 4 is new.
    with opened(server, ws_path("consumer", alice, t, "s"), alice.token) as c, \
            named_producer(server, alice, t, {"producerName": pname, "initialSequenceId": "0"}) as p:
        assert produce(p, "m1")["messageId"] == first[1]["messageId"]
        assert produce(p, "m2")["messageId"] == first[2]["messageId"]
        produce(p, "m3 again")  # 3: the second session's message
        produce(p, "m4")
        assert unb64(recv_json(c)["payload"]) == b"m4"
        no_frame(c)


def test_unnamed_producers_never_collide(server, alice):
    t = name()
    with opened(server, ws_path("consumer", alice, t, "s"), alice.token) as c:
        for i in range(2):
            with opened(server, ws_path("producer", alice, t), alice.token) as p:
                assert produce(p, f"p{i}")["result"] == "ok"  # both sequence id 0, other names
        assert sorted(unb64(m["payload"]) for m in receive(c, 2)) == [b"p0", b"p1"]


# ---- delayed delivery -------------------------------------------------------------------------

def test_deliver_after_ms_holds_the_message_back(server, alice):
    t = name()
    with opened(server, ws_path("consumer", alice, t, "s"), alice.token,
                {"subscriptionType": "Shared"}) as c, \
            opened(server, ws_path("producer", alice, t), alice.token) as p:
        sent = time.monotonic()
        delayed = produce(p, "later", deliverAfterMs=1500)
        assert delayed["result"] == "ok"  # stored at once
        produce(p, "now")
        first = recv_json(c)
        assert unb64(first["payload"]) == b"now"
        ack(c, first)
        later = recv_json(c, 5)
        assert time.monotonic() - sent >= 1.4
        assert unb64(later["payload"]) == b"later" and later["messageId"] == delayed["messageId"]
        assert later["redeliveryCount"] == 0
        ack(c, later)
        no_frame(c)


def test_deliver_at_holds_the_message_back_for_every_subscription_type(server, alice):
    t = name()
    subs = {"Exclusive": "ex", "Failover": "fo", "Key_Shared": "ks"}
    consumers = [connect(server, ws_path("consumer", alice, t, sub), alice.token,
                         {"subscriptionType": kind}) for kind, sub in subs.items()]
    try:
        with opened(server, ws_path("producer", alice, t), alice.token) as p:
            at_ms = int(time.time() * 1000) + 2500
            produce(p, "at", deliverAt=at_ms, key="k")
            for c in consumers:
                assert no_frame(c, 0.4)
            for c in consumers:
                m = recv_json(c, 5)
                assert unb64(m["payload"]) == b"at"
                assert time.time() * 1000 >= at_ms - 50
    finally:
        for c in consumers:
            with contextlib.suppress(Exception):
                c.close(timeout=1)


def test_binary_protocol_shares_delay_and_dedupe(server, alice):
    """Both live in the core: a binary consumer holds a WS producer's delayed message back, and a
    binary producer's re-sent sequence id is answered with the original id and stored once."""
    import pulsar_wire as pw
    t = name()
    topic = f"persistent://{alice.username}/default/{t}"
    c = pw.Conn(server.pulsar_port)
    try:
        assert c.connect(alice.token).type == pw.CONNECTED
        assert c.subscribe(topic, "bin", sub_type=1).type == pw.SUCCESS  # Shared
        c.flow(0, 100)
        with opened(server, ws_path("producer", alice, t), alice.token) as p:
            produce(p, "later", deliverAfterMs=1200)
            sent = time.monotonic()
            produce(p, "now")
        assert c.recv_type(pw.MESSAGE).payload == b"now"
        assert c.recv_type(pw.MESSAGE, timeout=5).payload == b"later"
        assert time.monotonic() - sent >= 1.0

        pname = name("binprod")
        prod = pw.Conn(server.pulsar_port)  # its own connection: receipts and messages apart
        try:
            assert prod.connect(alice.token).type == pw.CONNECTED
            ok = prod.producer(topic, producer_id=7, name=pname)
            assert ok.type == pw.PRODUCER_SUCCESS and ok.body.get(3, -1) in (-1, (1 << 64) - 1)
            first = prod.publish(7, 0, b"d0", producer=pname)
            prod.publish(7, 1, b"d1", producer=pname)
            again = prod.publish(7, 0, b"d0", producer=pname)
            receipt_id = lambda f: (f.body.sub(3)[1], f.body.sub(3)[2])  # noqa: E731
            assert receipt_id(again) == receipt_id(first)
        finally:
            prod.close()
        got = [c.recv_type(pw.MESSAGE).payload for _ in range(2)]
        assert got == [b"d0", b"d1"]
        with pytest.raises(Exception):
            c.recv_type(pw.MESSAGE, timeout=0.5)  # d0 was not stored twice
    finally:
        c.close()
    # A new producer with that name learns where the broker stands (last_sequence_id).
    c = pw.Conn(server.pulsar_port)
    try:
        assert c.connect(alice.token).type == pw.CONNECTED
        ok = c.producer(topic, producer_id=1, name=pname)
        assert ok.type == pw.PRODUCER_SUCCESS and ok.body[3] == 1
    finally:
        c.close()


# ---- /ws/v2/pingpong ------------------------------------------------------------------------------

def test_pingpong_answers_pings_and_ignores_data(server, alice):
    with opened(server, "/ws/v2/pingpong", alice.token) as ws:
        ws.ping("hello")
        opcode, data = ws.recv_data(control_frame=True)
        assert opcode == websocket.ABNF.OPCODE_PONG and data == b"hello"
        ws.send("anything")  # no answer, no close
        ws.ping("again")
        opcode, data = ws.recv_data(control_frame=True)
        assert opcode == websocket.ABNF.OPCODE_PONG and data == b"again"
    assert status_of(server, "/ws/v2/pingpong") == 401
    assert status_of(server, "/ws/v2/pingpong", "garbage") == 401


# ---- consumer -------------------------------------------------------------------------------

def test_consumer_receives_fields(server, alice):
    t = name()
    with opened(server, ws_path("consumer", alice, t, "s"), alice.token) as c, \
            opened(server, ws_path("producer", alice, t), alice.token) as p:
        r = produce(p, b"\x00\x01binary", properties={"a": "1"}, key="k1",
                    eventTime="2021-10-29T16:01:38.967Z", context="x")
        m = recv_json(c)
        assert m["messageId"] == r["messageId"]
        assert unb64(m["payload"]) == b"\x00\x01binary"
        assert m["properties"] == {"a": "1"}
        assert m["key"] == "k1"
        assert m["eventTime"].startswith("2021-10-29T16:01:38.967")
        assert m["redeliveryCount"] == 0
        assert m["publishTime"].endswith("Z") and len(m["publishTime"]) == 24
        produce(p, "plain")
        m2 = recv_json(c)
        assert "key" not in m2 and "eventTime" not in m2 and m2["properties"] == {}


def test_new_subscription_starts_at_latest(server, alice):
    t = name()
    with opened(server, ws_path("producer", alice, t), alice.token) as p:
        produce(p, "before")
        with opened(server, ws_path("consumer", alice, t, "s"), alice.token) as c:
            produce(p, "after")
            assert unb64(recv_json(c)["payload"]) == b"after"
            no_frame(c)


def test_exclusive_second_consumer_409(server, alice):
    t = name()
    with opened(server, ws_path("consumer", alice, t, "ex"), alice.token):
        assert status_of(server, ws_path("consumer", alice, t, "ex"), alice.token) == 409
        assert status_of(server, ws_path("consumer", alice, t, "ex"), alice.token,
                         {"subscriptionType": "Shared"}) == 409
        assert status_of(server, ws_path("consumer", alice, t, "other"), alice.token) == 101


def test_shared_round_robin_and_redelivery_on_close(server, alice):
    t = name()
    params = {"subscriptionType": "Shared"}
    c1 = connect(server, ws_path("consumer", alice, t, "sh"), alice.token, params)
    c2 = connect(server, ws_path("consumer", alice, t, "sh"), alice.token, params)
    try:
        with opened(server, ws_path("producer", alice, t), alice.token) as p:
            for i in range(10):
                produce(p, f"m{i}")
            got1 = receive(c1, 5)
            got2 = receive(c2, 5)
            no_frame(c1, 0.2)
            payloads = sorted(unb64(m["payload"]).decode() for m in got1 + got2)
            assert payloads == sorted(f"m{i}" for i in range(10))
            for m in got1:
                ack(c1, m)
            # c2 leaves without acking: its messages go to c1, redeliveryCount + 1
            c2.close()
            again = receive(c1, 5)
            assert sorted(m["messageId"] for m in again) == sorted(m["messageId"] for m in got2)
            assert all(m["redeliveryCount"] == 1 for m in again)
    finally:
        c1.close()
        with contextlib.suppress(Exception):
            c2.close()


def test_failover_one_active_consumer(server, alice):
    t = name()
    params = {"subscriptionType": "Failover"}
    a = connect(server, ws_path("consumer", alice, t, "fo"), alice.token, {**params, "consumerName": "a"})
    b = connect(server, ws_path("consumer", alice, t, "fo"), alice.token, {**params, "consumerName": "b"})
    try:
        with opened(server, ws_path("producer", alice, t), alice.token) as p:
            for i in range(4):
                produce(p, f"m{i}")
            got = receive(a, 4)
            assert [unb64(m["payload"]) for m in got] == [b"m0", b"m1", b"m2", b"m3"]
            no_frame(b)
            ack(a, got[0])
            ack(a, got[1])
            time.sleep(0.2)
            a.close()
            took = receive(b, 2)
            assert [unb64(m["payload"]) for m in took] == [b"m2", b"m3"]
    finally:
        b.close()


def test_key_shared_keeps_keys_on_one_consumer(server, alice):
    t = name()
    params = {"subscriptionType": "Key_Shared"}
    cs = [connect(server, ws_path("consumer", alice, t, "ks"), alice.token, params) for _ in range(2)]
    try:
        with opened(server, ws_path("producer", alice, t), alice.token) as p:
            keys = [f"key-{i}" for i in range(6)]
            for n in range(5):
                for k in keys:
                    produce(p, f"{k}:{n}", key=k)
        seen = {}
        per_consumer = []
        for idx, c in enumerate(cs):
            msgs = []
            c.settimeout(1.0)
            while True:
                try:
                    msgs.append(json.loads(c.recv()))
                except websocket.WebSocketTimeoutException:
                    break
            per_consumer.append(msgs)
            for m in msgs:
                k, n = unb64(m["payload"]).decode().split(":")
                assert seen.setdefault(k, idx) == idx, f"key {k} on two consumers"
        assert sum(len(m) for m in per_consumer) == 30
        for msgs in per_consumer:  # per-key order
            by_key = {}
            for m in msgs:
                k, n = unb64(m["payload"]).decode().split(":")
                by_key.setdefault(k, []).append(int(n))
            assert all(v == sorted(v) for v in by_key.values())
    finally:
        for c in cs:
            c.close()


def test_push_window_and_ack_frees_slot(server, alice):
    t = name()
    with opened(server, ws_path("consumer", alice, t, "w"), alice.token, {"receiverQueueSize": "3"}) as c, \
            opened(server, ws_path("producer", alice, t), alice.token) as p:
        for i in range(6):
            produce(p, f"m{i}")
        got = receive(c, 3)
        no_frame(c)
        ack(c, got[0])
        assert unb64(recv_json(c)["payload"]) == b"m3"
        no_frame(c)


def test_pull_mode_permits(server, alice):
    t = name()
    with opened(server, ws_path("consumer", alice, t, "pull"), alice.token, {"pullMode": "true"}) as c, \
            opened(server, ws_path("producer", alice, t), alice.token) as p:
        for i in range(5):
            produce(p, f"m{i}")
        no_frame(c)
        send(c, {"type": "permit", "permitMessages": 3})
        got = receive(c, 3)
        assert [unb64(m["payload"]) for m in got] == [b"m0", b"m1", b"m2"]
        for m in got:
            ack(c, m)
        no_frame(c)  # acks add no budget in pull mode
        send(c, {"type": "permit", "permitMessages": 5})
        assert len(receive(c, 2)) == 2


def test_permit_without_count_closes(server, alice):
    with opened(server, ws_path("consumer", alice, name(), "s"), alice.token, {"pullMode": "true"}) as c:
        send(c, {"type": "permit"})
        c.settimeout(WS_TIMEOUT)
        with pytest.raises(websocket.WebSocketConnectionClosedException):
            while True:
                c.recv()


def test_nack_redelivers_with_count(server, alice):
    t = name()
    with opened(server, ws_path("consumer", alice, t, "n"), alice.token,
                {"subscriptionType": "Shared", "negativeAckRedeliveryDelay": "100"}) as c, \
            opened(server, ws_path("producer", alice, t), alice.token) as p:
        produce(p, "x")
        m = recv_json(c)
        send(c, {"type": "negativeAcknowledge", "messageId": m["messageId"]})
        again = recv_json(c)
        assert again["messageId"] == m["messageId"] and again["redeliveryCount"] == 1
        ack(c, again)
        no_frame(c)


def test_ack_timeout_redelivers(server, alice):
    t = name()
    with opened(server, ws_path("consumer", alice, t, "at"), alice.token,
                {"subscriptionType": "Shared", "ackTimeoutMillis": "1000"}) as c, \
            opened(server, ws_path("producer", alice, t), alice.token) as p:
        produce(p, "x")
        m = recv_json(c)
        again = recv_json(c, 4)
        assert again["messageId"] == m["messageId"] and again["redeliveryCount"] == 1
        ack(c, again)
        no_frame(c, 1.5)


def test_dead_letter_after_max_redeliveries(server, alice):
    t = name()
    with opened(server, ws_path("consumer", alice, f"{t}-dl-DLQ", "d"), alice.token) as dlq, \
            opened(server, ws_path("consumer", alice, t, "dl"), alice.token,
                   {"subscriptionType": "Shared", "negativeAckRedeliveryDelay": "50",
                    "maxRedeliverCount": "2"}) as c, \
            opened(server, ws_path("producer", alice, t), alice.token) as p:
        produce(p, "poison", properties={"a": "b"})
        counts = []
        for _ in range(3):
            m = recv_json(c)
            counts.append(m["redeliveryCount"])
            send(c, {"type": "negativeAcknowledge", "messageId": m["messageId"]})
        assert counts == [0, 1, 2]
        dead = recv_json(dlq)
        assert unb64(dead["payload"]) == b"poison"
        assert dead["properties"]["a"] == "b" and "ORIGIN_MESSAGE_ID" in dead["properties"]
        no_frame(c)


def test_durable_resume_after_reconnect(server, alice):
    t = name()
    with opened(server, ws_path("producer", alice, t), alice.token) as p:
        with opened(server, ws_path("consumer", alice, t, "dur"), alice.token) as c:
            for i in range(4):
                produce(p, f"m{i}")
            got = receive(c, 4)
            ack(c, got[0])
            ack(c, got[2])
            time.sleep(0.2)
        produce(p, "m4")  # while disconnected
        with opened(server, ws_path("consumer", alice, t, "dur"), alice.token) as c:
            again = receive(c, 3)
            assert [unb64(m["payload"]) for m in again] == [b"m1", b"m3", b"m4"]
            no_frame(c)


def test_unsubscribe_deletes_subscription(server, alice):
    t = name()
    with opened(server, ws_path("producer", alice, t), alice.token) as p:
        with opened(server, ws_path("consumer", alice, t, "u"), alice.token) as c:
            produce(p, "m0")
            recv_json(c)
            send(c, {"type": "unsubscribe"})
            time.sleep(0.3)
        produce(p, "m1")
        with opened(server, ws_path("consumer", alice, t, "u"), alice.token) as c:
            no_frame(c)  # a new subscription, at latest: neither m0 nor m1


def test_is_end_of_topic(server, alice):
    with opened(server, ws_path("consumer", alice, name(), "e"), alice.token) as c:
        send(c, {"type": "isEndOfTopic"})
        assert recv_json(c) == {"endOfTopic": False}


def test_bad_consumer_frames_close(server, alice):
    for frame in ("not json", json.dumps({"messageId": "%%%"})):
        with opened(server, ws_path("consumer", alice, name(), "b"), alice.token) as c:
            c.send(frame)
            c.settimeout(WS_TIMEOUT)
            with pytest.raises(websocket.WebSocketConnectionClosedException):
                while True:
                    c.recv()


# ---- reader ---------------------------------------------------------------------------------

def test_reader_positions(server, alice):
    t = name()
    with opened(server, ws_path("producer", alice, t), alice.token) as p:
        ids = [produce(p, f"m{i}")["messageId"] for i in range(3)]
        with opened(server, ws_path("reader", alice, t), alice.token, {"messageId": "earliest"}) as r:
            got = receive(r, 3)
            assert [m["messageId"] for m in got] == ids
        with opened(server, ws_path("reader", alice, t), alice.token, {"messageId": ids[0]}) as r:
            got = receive(r, 2)
            assert [m["messageId"] for m in got] == ids[1:]
        with opened(server, ws_path("reader", alice, t), alice.token) as r:  # latest
            no_frame(r)
            new_id = produce(p, "m3")["messageId"]
            assert recv_json(r)["messageId"] == new_id
            send(r, {"type": "isEndOfTopic"})
            assert recv_json(r) == {"endOfTopic": False}


def test_reader_window(server, alice):
    t = name()
    with opened(server, ws_path("producer", alice, t), alice.token) as p:
        for i in range(5):
            produce(p, f"m{i}")
    with opened(server, ws_path("reader", alice, t), alice.token,
                {"messageId": "earliest", "receiverQueueSize": "2"}) as r:
        got = receive(r, 2)
        no_frame(r)
        send(r, {"messageId": got[0]["messageId"]})
        assert unb64(recv_json(r)["payload"]) == b"m2"


# ---- cross-protocol -------------------------------------------------------------------------

def test_relay_publish_reaches_pulsar_consumer(server, alice):
    t = name()
    with opened(server, ws_path("consumer", alice, t, "x"), alice.token) as c:
        pub = alice.api.publish(t, {"hello": "world"}, metadata={"source": "relay"})
        m = recv_json(c)
        assert json.loads(unb64(m["payload"])) == {"hello": "world"}
        assert m["properties"] == {"source": "relay"}
        hi, lo = (int(x) for x in pub["message_id"].split("-"))
        raw = unb64(m["messageId"])
        assert raw[0] == 0x08  # ledgerId = hi
        with opened(server, ws_path("reader", alice, t), alice.token, {"messageId": "earliest"}) as r:
            assert recv_json(r)["messageId"] == m["messageId"]
        assert hi > 0 and lo >= 0


def test_pulsar_json_payload_reaches_relay(server, alice):
    t = name()
    with opened(server, ws_path("producer", alice, t), alice.token) as p:
        produce(p, json.dumps({"n": 1}), properties={"k": "v"})
        produce(p, b"\x00binary")
    msgs = alice.api.messages(t, order="asc")["messages"]
    assert msgs[0]["payload"] == {"n": 1}
    assert msgs[0]["metadata"] == {"k": "v"}
    assert msgs[1]["payload"]["encoding"] == "base64"


def test_relay_ws_replay_gets_a_delayed_message_once(server, alice):
    """History is not held back, so a relay /ws subscriber replaying from an offset before a
    delayed message gets it from the replay; the delayed fan-out when it falls due must not send
    it again. A live-only subscriber gets it then, once."""
    from conftest import ws_connect, ws_messages, ws_no_frame, ws_subscribe
    t = name()
    before = alice.api.publish(t, {"i": 0})["message_id"]
    with opened(server, ws_path("producer", alice, t), alice.token) as p:
        sent = time.monotonic()
        assert produce(p, json.dumps({"i": 1}, separators=(",", ":")), deliverAfterMs=1500)["result"] == "ok"
        produce(p, json.dumps({"i": 2}, separators=(",", ":")))  # the live point moves past the delayed message
    replaying = ws_connect(server, alice.token)
    live = ws_connect(server, alice.token)
    try:
        _, early = ws_subscribe(replaying, [t], offset=before)
        frames = early + ws_messages(replaying, 2 - len(early))
        assert [f["payload"] for f in frames] == [{"i": 1}, {"i": 2}]
        ws_subscribe(live, [t])
        due = ws_messages(live, 1, timeout=5)[0]
        assert due["payload"] == {"i": 1} and time.monotonic() - sent >= 1.4
        ws_no_frame(replaying, 0.5)
        ws_no_frame(live, 0.3)
    finally:
        replaying.close()
        live.close()


def test_relay_ws_offset_past_a_delayed_message_does_not_get_it_again(server, alice):
    """A client that read the delayed message in history (it is the newest message, not fanned out
    yet) and subscribes with its id as the offset already has it: not sent again when due."""
    from conftest import ws_connect, ws_no_frame, ws_subscribe
    t = name()
    alice.api.publish(t, {"i": 0})
    with opened(server, ws_path("producer", alice, t), alice.token) as p:
        assert produce(p, json.dumps({"i": 1}, separators=(",", ":")), deliverAfterMs=1200)["result"] == "ok"
    history = alice.api.messages(t, order="asc")["messages"]
    assert [m["payload"] for m in history] == [{"i": 0}, {"i": 1}]
    ws = ws_connect(server, alice.token)
    try:
        _, early = ws_subscribe(ws, [t], offset=history[-1]["message_id"])
        assert early == []
        ws_no_frame(ws, 2.0)
    finally:
        ws.close()


def test_topics_are_per_tenant(server, alice, bob):
    t = name()
    with opened(server, ws_path("consumer", bob, t, "s"), bob.token) as bc, \
            opened(server, ws_path("consumer", alice, t, "s"), alice.token) as ac, \
            opened(server, ws_path("producer", alice, t), alice.token) as p:
        produce(p, "for alice")
        assert unb64(recv_json(ac)["payload"]) == b"for alice"
        no_frame(bc)


# ---- restart on RocksDB ---------------------------------------------------------------------

def test_restart_resume_on_rocksdb():
    from conftest import require_binary
    require_binary()
    srv = MagnetarServer(label="pulsar-ws-rocksdb", storage="rocksdb")
    try:
        srv.start()
        adm = start_admin(srv)
        username, password, body = register_user(adm, ["read", "write"], prefix="pr")
        u = login_user(srv, username, password, body["user_id"], body["permissions"])
        t = name()
        with opened(srv, ws_path("consumer", u, t, "dur"), u.token) as c, \
                opened(srv, ws_path("producer", u, t), u.token) as p:
            for i in range(3):
                produce(p, f"m{i}")
            got = receive(c, 3)
            ack(c, got[0])
            time.sleep(0.3)
        srv.terminate()
        srv.start()
        u = login_user(srv, username, password, body["user_id"], body["permissions"])
        with opened(srv, ws_path("consumer", u, t, "dur"), u.token) as c:
            again = receive(c, 2)
            assert [unb64(m["payload"]) for m in again] == [b"m1", b"m2"]
            ack(c, again[0])
            ack(c, again[1])
            no_frame(c)
    finally:
        srv.terminate()
        srv.kill()


def test_delay_and_dedupe_survive_a_restart_on_rocksdb():
    from conftest import require_binary
    require_binary()
    srv = MagnetarServer(label="pulsar-ws-delay-rocksdb", storage="rocksdb")
    try:
        srv.start()
        adm = start_admin(srv)
        username, password, body = register_user(adm, ["read", "write"], prefix="dl")
        u = login_user(srv, username, password, body["user_id"], body["permissions"])
        t, pname = name(), name("rp")
        with opened(srv, ws_path("consumer", u, t, "d"), u.token, {"subscriptionType": "Shared"}):
            pass  # the durable subscription exists from here on
        with opened(srv, ws_path("producer", u, t), u.token, {"producerName": pname}) as p:
            original = produce(p, "kept", sequenceId=5)
            at_ms = int(time.time() * 1000) + 6000
            assert produce(p, "delayed", deliverAt=at_ms, sequenceId=6)["result"] == "ok"
        srv.terminate()
        srv.start()
        u = login_user(srv, username, password, body["user_id"], body["permissions"])
        with opened(srv, ws_path("consumer", u, t, "d"), u.token, {"subscriptionType": "Shared"}) as c, \
                named_producer(srv, u, t, {"producerName": pname}) as p:
            # The re-send after the restart is still a duplicate of the stored message.
            assert produce(p, "kept", sequenceId=5)["messageId"] == original["messageId"]
            first = recv_json(c)
            assert unb64(first["payload"]) == b"kept"
            ack(c, first)
            assert time.time() * 1000 < at_ms - 500, "restart took too long to check the delay"
            assert no_frame(c, 0.3)
            later = recv_json(c, 10)
            assert unb64(later["payload"]) == b"delayed" and time.time() * 1000 >= at_ms - 50
            ack(c, later)
    finally:
        srv.terminate()
        srv.kill()
