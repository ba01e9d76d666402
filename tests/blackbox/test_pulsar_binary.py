"""Apache Pulsar binary protocol (spec/pulsar-binary.md) at the byte level: handshake and auth,
keep-alive, discovery, producers and receipts, checksums, subscriptions, acks, redelivery, seek,
last message id, errors; and the same topics over the Pulsar WebSocket API and the relay API with
message ids that agree. A real client library (pulsar-flex) is exercised in tests/pulsar_flex/."""

import base64
import contextlib
import json
import socket
import struct
import time
import urllib.parse
import uuid
import zlib

import pytest
import websocket

import pulsar_wire as pw
from conftest import MagnetarServer, mint_token


def name(prefix="pb"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def alice(tenant):
    return tenant.user("rw")


@pytest.fixture(scope="module")
def bob(tenant):
    return tenant.user("other")


@contextlib.contextmanager
def connected(server, user):
    c = pw.Conn(server.pulsar_port)
    try:
        f = c.connect(user.token)
        assert f.type == pw.CONNECTED, f.body.fields
        yield c
    finally:
        c.close()


def topic_of(user, t):
    return f"persistent://{user.username}/default/{t}"


def receipt_id(f):
    mid = f.body.sub(3)
    return f"{mid[1]}-{mid[2]}"


def ws_b64_id(ledger, entry):
    return base64.b64encode(pw.pb((1, ledger), (2, entry))).decode()


# ---- handshake, auth, keep-alive -------------------------------------------------------------

def test_connect_answers_connected_with_version_and_limit(server, alice):
    c = pw.Conn(server.pulsar_port)
    try:
        f = c.connect(alice.token, protocol_version=17)
        assert f.type == pw.CONNECTED
        assert f.body[1].decode().startswith("Magnetar")  # server_version is required
        assert f.body[2] == 17                             # min(client's, ours)
        assert f.body[3] == 5 * 1024 * 1024                # max_message_size
    finally:
        c.close()


@pytest.mark.parametrize("token", [None, "garbage", ""])
def test_bad_or_missing_token_is_authentication_error_then_close(server, token):
    c = pw.Conn(server.pulsar_port)
    try:
        f = c.connect(token)
        assert f.type == pw.ERROR
        assert f.body[2] == pw.AUTHENTICATION_ERROR
        assert b"uthenticat" in f.body[3]
        with pytest.raises((ConnectionError, OSError)):
            c.recv(timeout=2)
    finally:
        c.close()


def test_command_before_connect_is_refused(server):
    c = pw.Conn(server.pulsar_port)
    try:
        c.send(pw.PING)
        f = c.recv()
        assert f.type == pw.ERROR and f.body[2] == pw.NOT_ALLOWED
        with pytest.raises((ConnectionError, OSError)):
            c.recv(timeout=2)
    finally:
        c.close()


def test_commands_pipelined_after_connect_are_answered_in_order(server, alice):
    # The Elixir client sends lookups and subscribes before CONNECTED arrives (spec §9).
    t = topic_of(alice, name())
    c = pw.Conn(server.pulsar_port)
    try:
        data = pw.frame(pw.command(pw.CONNECT, pw.pb((1, "pipelined"), (4, 21), (5, "token"), (3, alice.token))))
        data += pw.frame(pw.command(pw.PARTITIONED_METADATA, pw.pb((1, t), (2, 0))))
        data += pw.frame(pw.command(pw.LOOKUP, pw.pb((1, t), (2, 1))))
        data += pw.frame(pw.command(pw.PRODUCER, pw.pb((1, t), (2, 0), (3, 2))))
        data += pw.frame(pw.command(pw.PING))
        c.send_raw(data)
        assert c.recv().type == pw.CONNECTED
        f = c.recv()
        assert f.type == pw.PARTITIONED_METADATA_RESPONSE and f.body[2] == 0 and f.body.get(1) == 0
        f = c.recv()
        assert f.type == pw.LOOKUP_RESPONSE and f.body[4] == 1
        assert f.body[3] == 1  # Connect
        assert f.body[1].decode() == f"pulsar://127.0.0.1:{server.pulsar_port}"
        f = c.recv()
        assert f.type == pw.PRODUCER_SUCCESS and f.body[1] == 2
        assert c.recv().type == pw.PONG
    finally:
        c.close()


def test_expiring_token_is_refreshed_through_auth_challenge(server, alice, bob):
    c = pw.Conn(server.pulsar_port)
    try:
        f = c.connect(mint_token(server, alice, exp_in=2), auth_refresh=True)
        assert f.type == pw.CONNECTED and f.body.sub(4)[1] == 1  # supports_auth_refresh
        f = c.recv_type(pw.AUTH_CHALLENGE, timeout=6)
        assert f.body.sub(2)[1] == b"token"
        c.send(pw.AUTH_RESPONSE, pw.pb((1, "pytest"), (2, pw.pb((1, "token"), (2, mint_token(server, alice, exp_in=2))))))
        c.send(pw.PING)
        assert c.recv_type(pw.PONG).type == pw.PONG
        # The next expiry asks again; a token of another user is refused and the connection ends.
        c.recv_type(pw.AUTH_CHALLENGE, timeout=6)
        c.send(pw.AUTH_RESPONSE, pw.pb((2, pw.pb((1, "token"), (2, bob.token)))))
        f = c.recv_type(pw.ERROR)
        assert f.body[2] == pw.AUTHENTICATION_ERROR and b"another user" in f.body[3]
        with pytest.raises((ConnectionError, OSError)):
            c.recv(timeout=2)
    finally:
        c.close()


def test_expired_token_without_refresh_support_closes(server, alice):
    c = pw.Conn(server.pulsar_port)
    try:
        assert c.connect(mint_token(server, alice, exp_in=1)).type == pw.CONNECTED
        f = c.recv_type(pw.ERROR, timeout=5)
        assert f.body[2] == pw.AUTHENTICATION_ERROR and b"expired" in f.body[3]
        with pytest.raises((ConnectionError, OSError)):
            c.recv(timeout=2)
    finally:
        c.close()


def test_frames_split_byte_by_byte_and_coalesced(server, alice):
    c = pw.Conn(server.pulsar_port)
    try:
        data = pw.frame(pw.command(pw.CONNECT, pw.pb((1, "slow"), (4, 21), (5, "token"), (3, alice.token))))
        for i in range(len(data)):
            c.send_raw(data[i:i + 1])
            time.sleep(0.001 if i % 50 else 0.02)
        assert c.recv().type == pw.CONNECTED
        c.send_raw(pw.frame(pw.command(pw.PING)) * 3)
        assert [c.recv().type for _ in range(3)] == [pw.PONG] * 3
    finally:
        c.close()


def test_ping_pong(server, alice):
    with connected(server, alice) as c:
        c.send(pw.PING)
        assert c.recv().type == pw.PONG


def test_oversized_frame_closes_the_connection(server, alice):
    with connected(server, alice) as c:
        c.send_raw(struct.pack(">II", 64 * 1024 * 1024, 4))
        with pytest.raises((ConnectionError, OSError)):
            c.recv(timeout=3)


def test_unsupported_command_gets_error_with_its_request_id(server, alice):
    with connected(server, alice) as c:
        c.send(50, pw.pb((1, 77), (2, 0)))  # NEW_TXN{request_id 77}
        f = c.recv()
        assert f.type == pw.ERROR and f.body[1] == 77 and f.body[2] == pw.NOT_ALLOWED


# ---- producers ---------------------------------------------------------------------------------

def test_producer_receipts_in_order_with_ids(server, alice, tenant):
    t = name()
    with connected(server, alice) as c:
        f = c.producer(topic_of(alice, t), name="prod-a")
        assert f.type == pw.PRODUCER_SUCCESS
        assert f.body[2] == b"prod-a" and f.body.get(3) == (1 << 64) - 1  # last_sequence_id -1
        for seq in range(5):
            c.send_raw(pw.payload_frame(pw.command(pw.SEND, pw.pb((1, 0), (2, seq))), pw.metadata(seq=seq), f"m{seq}".encode()))
        receipts = [c.recv_type(pw.SEND_RECEIPT) for _ in range(5)]
        assert [r.body[2] for r in receipts] == list(range(5))
        ids = [receipt_id(r) for r in receipts]
    r = alice.api.get(f"/api/v1/topics/{t}/messages?order=asc")
    assert r.status_code == 200
    assert [m["message_id"] for m in r.json()["messages"]] == ids


def test_producer_name_taken_and_bad_topic(server, alice, bob):
    t = topic_of(alice, name())
    with connected(server, alice) as c1, connected(server, alice) as c2:
        assert c1.producer(t, name="same").type == pw.PRODUCER_SUCCESS
        f = c2.producer(t, name="same")
        assert f.type == pw.ERROR and f.body[2] == pw.PRODUCER_BUSY
        f = c2.producer("persistent://x/y", producer_id=1)
        assert f.type == pw.ERROR and f.body[2] == pw.INVALID_TOPIC_NAME
    with connected(server, bob) as c:
        f = c.producer(t)  # alice's tenant
        assert f.type == pw.ERROR and f.body[2] == 4  # AuthorizationError


def test_checksum_mismatch_is_send_error(server, alice):
    with connected(server, alice) as c:
        assert c.producer(topic_of(alice, name())).type == pw.PRODUCER_SUCCESS
        c.send_raw(pw.payload_frame(pw.command(pw.SEND, pw.pb((1, 0), (2, 9))), pw.metadata(seq=9), b"x", corrupt=True))
        f = c.recv()
        assert f.type == pw.SEND_ERROR and f.body[2] == 9 and f.body[3] == pw.CHECKSUM_ERROR


def test_zlib_compressed_payload_is_stored_plain(server, alice):
    t = name()
    plain = b"compressible " * 200
    with connected(server, alice) as c:
        assert c.producer(topic_of(alice, t)).type == pw.PRODUCER_SUCCESS
        c.send_raw(pw.payload_frame(pw.command(pw.SEND, pw.pb((1, 0), (2, 1))),
                                    pw.metadata(seq=1, compression=2, uncompressed_size=len(plain)),
                                    zlib.compress(plain)))
        assert c.recv_type(pw.SEND_RECEIPT).body[2] == 1
        # A size that does not match is refused, not stored.
        c.send_raw(pw.payload_frame(pw.command(pw.SEND, pw.pb((1, 0), (2, 2))),
                                    pw.metadata(seq=2, compression=2, uncompressed_size=len(plain) + 1),
                                    zlib.compress(plain)))
        f = c.recv_type(pw.SEND_ERROR)
        assert f.body[2] == 2 and b"decompress" in f.body[4]
        assert c.subscribe(topic_of(alice, t), "z").type == pw.SUCCESS
        c.flow(0, 10)
        m = c.recv_type(pw.MESSAGE)
        assert m.payload == plain and 8 not in m.metadata  # delivered uncompressed
    msgs = alice.api.get(f"/api/v1/topics/{t}/messages").json()["messages"]
    assert len(msgs) == 1 and base64.b64decode(msgs[0]["payload"]["data"]) == plain


def test_send_on_unknown_producer_is_send_error(server, alice):
    with connected(server, alice) as c:
        c.send_raw(pw.payload_frame(pw.command(pw.SEND, pw.pb((1, 5), (2, 1))), pw.metadata(), b"x"))
        f = c.recv()
        assert f.type == pw.SEND_ERROR and f.body[1] == 5


# ---- consumers ---------------------------------------------------------------------------------

def test_subscribe_flow_message_ack_response(server, alice):
    t = topic_of(alice, name())
    with connected(server, alice) as c:
        assert c.producer(t).type == pw.PRODUCER_SUCCESS
        for seq in range(3):
            c.publish(0, seq, f"v{seq}".encode(), properties={"k": str(seq)}, key=f"key{seq}")
        assert c.subscribe(t, "s", consumer_id=4).type == pw.SUCCESS
        c.flow(4, 2)  # permits bound the deliveries
        msgs = [c.recv_type(pw.MESSAGE) for _ in range(2)]
        with pytest.raises(socket.timeout):
            c.recv(timeout=0.5)
        c.flow(4, 10)
        msgs.append(c.recv_type(pw.MESSAGE))
        assert [m.payload for m in msgs] == [b"v0", b"v1", b"v2"]
        assert all(m.checksum_ok for m in msgs)
        assert msgs[1].metadata.sub(4)[2] == b"1"          # properties
        assert msgs[2].metadata[6] == b"key2"              # partition_key
        assert 11 not in msgs[0].metadata                  # never looks like a batch
        c.ack(4, msgs[0].body.sub(2)[1], msgs[0].body.sub(2)[2], request_id=99)
        f = c.recv_type(pw.ACK_RESPONSE)
        assert f.body[1] == 4 and f.body[6] == 99 and 4 not in f.body


def test_exclusive_busy_and_shared_round_robin(server, alice):
    t = topic_of(alice, name())
    with connected(server, alice) as c1, connected(server, alice) as c2:
        assert c1.subscribe(t, "ex").type == pw.SUCCESS
        f = c2.subscribe(t, "ex")
        assert f.type == pw.ERROR and f.body[2] == pw.CONSUMER_BUSY
        assert c1.subscribe(t, "sh", consumer_id=1, sub_type=1).type == pw.SUCCESS
        assert c2.subscribe(t, "sh", consumer_id=1, sub_type=1).type == pw.SUCCESS
        c1.flow(1, 100)
        c2.flow(1, 100)
        with connected(server, alice) as p:
            assert p.producer(t, producer_id=3).type == pw.PRODUCER_SUCCESS
            for seq in range(6):
                p.publish(3, seq, f"j{seq}".encode())
        got1, got2 = [], []
        deadline = time.monotonic() + 5
        while len(got1) + len(got2) < 6 and time.monotonic() < deadline:
            for conn, got in ((c1, got1), (c2, got2)):
                with contextlib.suppress(socket.timeout):
                    f = conn.recv(timeout=0.2)
                    if f.type == pw.MESSAGE and f.body[1] == 1:
                        got.append(f.payload)
        assert sorted(got1 + got2) == sorted(f"j{i}".encode() for i in range(6))
        assert got1 and got2


def test_failover_active_consumer_change(server, alice):
    t = topic_of(alice, name())
    with connected(server, alice) as c1, connected(server, alice) as c2:
        c1.send(pw.SUBSCRIBE, pw.pb((1, t), (2, "fo"), (3, 2), (4, 0), (5, 1), (6, "a")))
        assert c1.recv_type(pw.SUCCESS).body[1] == 1
        f = c1.recv_type(pw.ACTIVE_CONSUMER_CHANGE)
        assert f.body[1] == 0 and f.body[2] == 1
        c2.send(pw.SUBSCRIBE, pw.pb((1, t), (2, "fo"), (3, 2), (4, 0), (5, 1), (6, "b")))
        assert c2.recv_type(pw.SUCCESS).body[1] == 1
        f = c2.recv_type(pw.ACTIVE_CONSUMER_CHANGE)
        assert f.body.get(2, 0) == 0  # "b" waits behind "a"
        c1.send(pw.CLOSE_CONSUMER, pw.pb((1, 0), (2, 2)))
        assert c1.recv_type(pw.SUCCESS).body[1] == 2
        f = c2.recv_type(pw.ACTIVE_CONSUMER_CHANGE)
        assert f.body[2] == 1


def test_key_shared_keeps_each_key_on_one_consumer_in_order(server, alice):
    t = topic_of(alice, name())
    with connected(server, alice) as c1, connected(server, alice) as c2:
        for c in (c1, c2):
            assert c.subscribe(t, "ks", consumer_id=0, sub_type=3).type == pw.SUCCESS
            c.flow(0, 100)
        with connected(server, alice) as p:
            assert p.producer(t).type == pw.PRODUCER_SUCCESS
            for seq in range(24):
                p.publish(0, seq, f"{seq}".encode(), key=f"key-{seq % 6}")
        got = {}
        deadline = time.monotonic() + 5
        while sum(len(v) for v in got.values()) < 24 and time.monotonic() < deadline:
            for idx, conn in enumerate((c1, c2)):
                with contextlib.suppress(socket.timeout):
                    f = conn.recv(timeout=0.2)
                    if f.type == pw.MESSAGE:
                        got.setdefault(f.metadata[6].decode(), []).append((idx, int(f.payload)))
        assert sum(len(v) for v in got.values()) == 24
        for key, deliveries in got.items():
            assert len({idx for idx, _ in deliveries}) == 1, f"{key} went to both consumers"
            seqs = [s for _, s in deliveries]
            assert seqs == sorted(seqs), f"{key} out of order: {seqs}"


def test_nack_redelivers_with_count_and_redeliver_all(server, alice):
    t = topic_of(alice, name())
    with connected(server, alice) as c:
        assert c.producer(t).type == pw.PRODUCER_SUCCESS
        c.publish(0, 0, b"again")
        assert c.subscribe(t, "n", sub_type=1).type == pw.SUCCESS
        c.flow(0, 10)
        first = c.recv_type(pw.MESSAGE)
        assert first.body.get(3, 0) == 0
        c.send(pw.REDELIVER, pw.pb((1, 0), (2, pw.pb((1, first.body.sub(2)[1]), (2, first.body.sub(2)[2])))))
        second = c.recv_type(pw.MESSAGE)
        assert second.payload == b"again" and second.body[3] == 1
        c.send(pw.REDELIVER, pw.pb((1, 0)))  # no ids: everything unacked comes back
        third = c.recv_type(pw.MESSAGE)
        assert third.payload == b"again" and third.body[3] == 2


def test_cumulative_ack_and_resume(server, alice):
    t = topic_of(alice, name())
    with connected(server, alice) as c:
        assert c.producer(t).type == pw.PRODUCER_SUCCESS
        for seq in range(4):
            c.publish(0, seq, f"c{seq}".encode())
        assert c.subscribe(t, "cum", consumer_id=2).type == pw.SUCCESS
        c.flow(2, 10)
        msgs = [c.recv_type(pw.MESSAGE) for _ in range(4)]
        third = msgs[2].body.sub(2)
        c.ack(2, third[1], third[2], cumulative=True, request_id=5)
        assert c.recv_type(pw.ACK_RESPONSE).body[6] == 5
        c.send(pw.CLOSE_CONSUMER, pw.pb((1, 2), (2, 6)))
        f = c.recv_type(pw.SUCCESS)
        assert f.body[1] == 6
        assert c.subscribe(t, "cum", consumer_id=3).type == pw.SUCCESS
        c.flow(3, 10)
        again = c.recv_type(pw.MESSAGE)
        assert again.payload == b"c3"


def test_seek_get_last_message_id_and_unsubscribe(server, alice):
    t = topic_of(alice, name())
    with connected(server, alice) as c:
        assert c.subscribe(t, "seek").type == pw.SUCCESS
        c.send(pw.GET_LAST_MESSAGE_ID, pw.pb((1, 0), (2, 40)))
        f = c.recv_type(pw.GET_LAST_MESSAGE_ID_RESPONSE)
        assert f.body[2] == 40 and f.body.sub(1)[1] == 0  # empty topic: below every id
        assert c.producer(t).type == pw.PRODUCER_SUCCESS
        ids = [receipt_id(c.publish(0, s, f"s{s}".encode())) for s in range(3)]
        c.send(pw.GET_LAST_MESSAGE_ID, pw.pb((1, 0), (2, 41)))
        last = c.recv_type(pw.GET_LAST_MESSAGE_ID_RESPONSE).body.sub(1)
        assert f"{last[1]}-{last[2]}" == ids[-1]
        c.flow(0, 10)
        got = [c.recv_type(pw.MESSAGE).payload for _ in range(3)]
        assert got == [b"s0", b"s1", b"s2"]
        hi, lo = map(int, ids[1].split("-"))
        c.send(pw.SEEK, pw.pb((1, 0), (2, 42), (3, pw.pb((1, hi), (2, lo)))))
        assert c.recv_type(pw.SUCCESS).body[1] == 42
        again = [c.recv_type(pw.MESSAGE).payload for _ in range(2)]
        assert again == [b"s1", b"s2"]  # seek is inclusive
        c.send(pw.UNSUBSCRIBE, pw.pb((1, 0), (2, 43)))
        assert c.recv_type(pw.SUCCESS).body[1] == 43


def test_reader_style_non_durable_subscription_from_a_message_id(server, alice):
    t = topic_of(alice, name())
    with connected(server, alice) as c:
        assert c.producer(t).type == pw.PRODUCER_SUCCESS
        ids = [receipt_id(c.publish(0, s, f"r{s}".encode())) for s in range(3)]
        hi, lo = map(int, ids[0].split("-"))
        f = c.subscribe(t, "reader-" + name(), consumer_id=7, durable=False, start_id=pw.pb((1, hi), (2, lo)),
                        initial_earliest=False)
        assert f.type == pw.SUCCESS
        c.flow(7, 10)
        assert [c.recv_type(pw.MESSAGE).payload for _ in range(2)] == [b"r1", b"r2"]  # exclusive start


def test_topics_of_namespace_and_schema(server, alice):
    t = name()
    with connected(server, alice) as c:
        assert c.producer(topic_of(alice, t)).type == pw.PRODUCER_SUCCESS
        c.send(pw.GET_TOPICS_OF_NAMESPACE, pw.pb((1, 50), (2, f"{alice.username}/default")))
        f = c.recv_type(pw.GET_TOPICS_OF_NAMESPACE_RESPONSE)
        assert f.body[1] == 50
        assert topic_of(alice, t).encode() in f.body.all(2)
        c.send(pw.GET_SCHEMA, pw.pb((1, 51), (2, topic_of(alice, t))))
        f = c.recv_type(pw.GET_SCHEMA_RESPONSE)
        assert f.body[1] == 51 and f.body[2] == pw.TOPIC_NOT_FOUND
        schema = pw.pb((1, "s"), (3, b'{"type":"record"}'), (4, 2))
        c.send(pw.GET_OR_CREATE_SCHEMA, pw.pb((1, 52), (2, topic_of(alice, t)), (3, schema)))
        f = c.recv_type(pw.GET_OR_CREATE_SCHEMA_RESPONSE)
        assert f.body[1] == 52 and len(f.body[4]) == 8
        c.send(pw.GET_SCHEMA, pw.pb((1, 53), (2, topic_of(alice, t))))
        f = c.recv_type(pw.GET_SCHEMA_RESPONSE)
        assert 2 not in f.body and f.body.sub(4)[4] == 2


# ---- cross-protocol --------------------------------------------------------------------------

def ws_connect(server, path, token, params=None):
    q = urllib.parse.urlencode({"token": token, **(params or {})})
    return websocket.create_connection(f"ws://127.0.0.1:{server.port}{path}?{q}", timeout=5, suppress_origin=True)


def test_binary_to_websocket_and_relay_ids_agree(server, alice, tenant):
    t = name()
    ws = ws_connect(server, f"/ws/v2/consumer/persistent/{alice.username}/default/{t}/x", alice.token)
    try:
        with connected(server, alice) as c:
            assert c.producer(topic_of(alice, t)).type == pw.PRODUCER_SUCCESS
            rid = receipt_id(c.publish(0, 0, b'{"from":"binary"}', properties={"p": "1"}, key="k1"))
        frame = json.loads(ws.recv())
        hi, lo = map(int, rid.split("-"))
        assert frame["messageId"] == ws_b64_id(hi, lo)
        assert base64.b64decode(frame["payload"]) == b'{"from":"binary"}'
        assert frame["properties"] == {"p": "1"} and frame["key"] == "k1"
    finally:
        ws.close()
    msgs = alice.api.get(f"/api/v1/topics/{t}/messages?order=asc").json()["messages"]
    assert msgs[0]["message_id"] == rid and msgs[0]["payload"] == {"from": "binary"}
    assert msgs[0]["metadata"] == {"p": "1"}


def test_websocket_to_binary_with_key(server, alice):
    t = name()
    with connected(server, alice) as c:
        assert c.subscribe(topic_of(alice, t), "from-ws").type == pw.SUCCESS
        c.flow(0, 10)
        ws = ws_connect(server, f"/ws/v2/producer/persistent/{alice.username}/default/{t}", alice.token)
        try:
            ws.send(json.dumps({"payload": base64.b64encode(b"hi").decode(), "key": "user-9",
                                "properties": {"a": "b"}}))
            receipt = json.loads(ws.recv())
            assert receipt["result"] == "ok"
        finally:
            ws.close()
        m = c.recv_type(pw.MESSAGE)
        assert m.payload == b"hi" and m.metadata[6] == b"user-9"
        assert ws_b64_id(m.body.sub(2)[1], m.body.sub(2)[2]) == receipt["messageId"]


def test_subscription_is_shared_between_binary_and_websocket(server, alice):
    # One Exclusive subscription: a WebSocket consumer holds it, so a binary one is refused.
    t = name()
    ws = ws_connect(server, f"/ws/v2/consumer/persistent/{alice.username}/default/{t}/one", alice.token)
    try:
        with connected(server, alice) as c:
            f = c.subscribe(topic_of(alice, t), "one")
            assert f.type == pw.ERROR and f.body[2] == pw.CONSUMER_BUSY
    finally:
        ws.close()


def test_pulsar_port_off():
    srv = MagnetarServer(["--pulsar-port", "-1"], label="pulsar-off")
    srv.start()
    try:
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", srv.pulsar_port), timeout=2).close()
    finally:
        srv.terminate()
        srv.kill()


@pytest.mark.parametrize("bad", ["host:99999", "host:", ":7000", "host:70x"])
def test_bad_advertised_address_refuses_to_start(bad):
    import os
    import subprocess
    import tempfile
    from conftest import MAGNETAR_BIN, require_binary
    require_binary()
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("PULSAR_", "MAGNETAR_"))}
    r = subprocess.run([MAGNETAR_BIN, "serve", "--storage", "memory", "--port", "0", "--pulsar-port", "0",
                        "--advertised-address", bad], env=env, cwd=tempfile.mkdtemp(prefix="magnetar-adv-"),
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    assert "--advertised-address" in r.stderr


def test_advertised_address():
    srv = MagnetarServer(["--advertised-address", "broker.example:7000"], label="pulsar-advertised")
    srv.start()
    try:
        from conftest import start_admin
        admin = start_admin(srv)
        c = pw.Conn(srv.pulsar_port)
        try:
            assert c.connect(admin.token).type == pw.CONNECTED
            c.send(pw.LOOKUP, pw.pb((1, "t"), (2, 0)))
            assert c.recv().body[1] == b"pulsar://broker.example:7000"
        finally:
            c.close()
    finally:
        srv.terminate()
        srv.kill()
