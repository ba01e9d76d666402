"""A minimal Pulsar binary protocol client for black-box tests (spec/pulsar-binary.md), written
with the standard library only: protobuf encoded and decoded by field number, frames with
CRC-32C. It sends exactly the bytes a test asks for (including wrong ones), which a real client
library cannot; the well-behaved client tests use pulsar-flex (tests/pulsar_flex/)."""

from __future__ import annotations

import socket
import struct
import time

# BaseCommand types (field number of the sub-message = type).
CONNECT, CONNECTED, SUBSCRIBE, PRODUCER, SEND, SEND_RECEIPT, SEND_ERROR, MESSAGE, ACK, FLOW = range(2, 12)
UNSUBSCRIBE, SUCCESS, ERROR, CLOSE_PRODUCER, CLOSE_CONSUMER, PRODUCER_SUCCESS, PING, PONG = range(12, 20)
REDELIVER, PARTITIONED_METADATA, PARTITIONED_METADATA_RESPONSE, LOOKUP, LOOKUP_RESPONSE = range(20, 25)
SEEK, GET_LAST_MESSAGE_ID, GET_LAST_MESSAGE_ID_RESPONSE, ACTIVE_CONSUMER_CHANGE = 28, 29, 30, 31
GET_TOPICS_OF_NAMESPACE, GET_TOPICS_OF_NAMESPACE_RESPONSE = 32, 33
AUTH_CHALLENGE, AUTH_RESPONSE = 36, 37
GET_SCHEMA, GET_SCHEMA_RESPONSE, ACK_RESPONSE, GET_OR_CREATE_SCHEMA, GET_OR_CREATE_SCHEMA_RESPONSE = 34, 35, 38, 39, 40

# ServerError values used by the tests.
AUTHENTICATION_ERROR, CONSUMER_BUSY, CHECKSUM_ERROR, TOPIC_NOT_FOUND = 3, 5, 9, 11
PRODUCER_BUSY, INVALID_TOPIC_NAME, NOT_ALLOWED = 16, 17, 22


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def varint(v: int) -> bytes:
    v &= (1 << 64) - 1  # negative numbers are 10-byte varints, as protobuf writes them
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pb(*fields) -> bytes:
    """pb((1, 'hello'), (2, 7), (3, b'raw'), (4, pb(...)))`: ints are varints, str/bytes length-delimited."""
    out = bytearray()
    for num, value in fields:
        if value is None:
            continue
        if isinstance(value, bool):
            value = int(value)
        if isinstance(value, int):
            out += varint(num << 3) + varint(value)
        else:
            data = value.encode() if isinstance(value, str) else bytes(value)
            out += varint(num << 3 | 2) + varint(len(data)) + data
    return bytes(out)


def parse(data: bytes) -> dict[int, list]:
    """Field number -> values (ints for varints, bytes for length-delimited)."""
    out: dict[int, list] = {}
    i = 0

    def rd():
        nonlocal i
        v = shift = 0
        while True:
            b = data[i]
            i += 1
            v |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return v

    while i < len(data):
        key = rd()
        num, wt = key >> 3, key & 7
        if wt == 0:
            val = rd()
        elif wt == 2:
            n = rd()
            val = data[i:i + n]
            i += n
        elif wt == 1:
            val = data[i:i + 8]
            i += 8
        elif wt == 5:
            val = data[i:i + 4]
            i += 4
        else:
            raise ValueError(f"wire type {wt}")
        out.setdefault(num, []).append(val)
    return out


class Msg:
    """A parsed protobuf message: m[1] is the first value of field 1, m.all(4) every value."""

    def __init__(self, data: bytes):
        self.raw = data
        self.fields = parse(data)

    def __getitem__(self, num):
        return self.fields[num][0]

    def get(self, num, default=None):
        return self.fields.get(num, [default])[0]

    def all(self, num):
        return self.fields.get(num, [])

    def sub(self, num) -> "Msg":
        return Msg(self[num])

    def __contains__(self, num):
        return num in self.fields


def command(type_: int, body: bytes | None = None) -> bytes:
    return pb((1, type_), (type_, body if body is not None else b""))


def frame(cmd: bytes) -> bytes:
    return struct.pack(">II", 4 + len(cmd), len(cmd)) + cmd


def payload_frame(cmd: bytes, metadata: bytes, payload: bytes, *, checksum: bool = True, corrupt: bool = False) -> bytes:
    entry = struct.pack(">I", len(metadata)) + metadata + payload
    crc = crc32c(entry) ^ (1 if corrupt else 0)
    block = (struct.pack(">HI", 0x0E01, crc) if checksum else b"") + entry
    return struct.pack(">II", 4 + len(cmd) + len(block), len(cmd)) + cmd + block


def metadata(producer="p", seq=0, properties=None, key=None, num_in_batch=None, event_time=None,
             compression=None, uncompressed_size=None) -> bytes:
    props = [(4, pb((1, k), (2, v))) for k, v in (properties or {}).items()]
    return pb((1, producer), (2, seq), (3, int(time.time() * 1000)), *props, (6, key), (8, compression),
              (9, uncompressed_size), (11, num_in_batch), (12, event_time))


class Frame:
    def __init__(self, cmd: Msg, metadata: Msg | None = None, payload: bytes | None = None, checksum_ok=True):
        self.cmd = cmd
        self.type = cmd[1]
        self.body = Msg(cmd.get(self.type, b""))
        self.metadata = metadata
        self.payload = payload
        self.checksum_ok = checksum_ok


class Conn:
    def __init__(self, port: int, timeout: float = 5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.request_id = 0

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def next_id(self) -> int:
        rid = self.request_id
        self.request_id += 1
        return rid

    def send_raw(self, data: bytes):
        self.sock.sendall(data)

    def send(self, type_: int, body: bytes = b""):
        self.send_raw(frame(command(type_, body)))

    def _fill(self, n: int):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed by the broker")
            self.buf += chunk

    def recv(self, timeout: float = 5.0) -> Frame:
        self.sock.settimeout(timeout)
        self._fill(4)
        total = struct.unpack(">I", self.buf[:4])[0]
        self._fill(4 + total)
        body, self.buf = self.buf[4:4 + total], self.buf[4 + total:]
        csize = struct.unpack(">I", body[:4])[0]
        cmd = Msg(body[4:4 + csize])
        rest = body[4 + csize:]
        if not rest:
            return Frame(cmd)
        assert rest[:2] == b"\x0e\x01", "MESSAGE without a checksum block"
        crc = struct.unpack(">I", rest[2:6])[0]
        entry = rest[6:]
        msize = struct.unpack(">I", entry[:4])[0]
        return Frame(cmd, Msg(entry[4:4 + msize]), entry[4 + msize:], crc32c(entry) == crc)

    def recv_type(self, type_: int, timeout: float = 5.0, skip=(PING, PONG)) -> Frame:
        deadline = time.monotonic() + timeout
        while True:
            f = self.recv(max(0.05, deadline - time.monotonic()))
            if f.type == type_:
                return f
            if f.type in skip:
                if f.type == PING:
                    self.send(PONG)
                continue
            raise AssertionError(f"expected command {type_}, got {f.type}: {f.body.fields}")

    def connect(self, token: str | None, protocol_version: int = 21, auth_refresh: bool = False) -> Frame:
        auth = pb((5, "token"), (3, token)) if token is not None else b""
        flags = pb((10, pb((1, True)))) if auth_refresh else b""
        self.send(CONNECT, pb((1, "pytest"), (4, protocol_version)) + auth + flags)
        return self.recv()

    # -- producer / consumer shortcuts
    def producer(self, topic: str, producer_id: int = 0, name: str | None = None, access_mode: int | None = None) -> Frame:
        rid = self.next_id()
        self.send(PRODUCER, pb((1, topic), (2, producer_id), (3, rid), (4, name), (10, access_mode)))
        return self.recv()

    def publish(self, producer_id: int, seq: int, payload: bytes, **md) -> Frame:
        self.send_raw(payload_frame(command(SEND, pb((1, producer_id), (2, seq))), metadata(seq=seq, **md), payload))
        return self.recv_type(SEND_RECEIPT)

    def subscribe(self, topic: str, sub: str, consumer_id: int = 0, sub_type: int = 0, initial_earliest=True,
                  durable=None, start_id=None) -> Frame:
        rid = self.next_id()
        self.send(SUBSCRIBE, pb((1, topic), (2, sub), (3, sub_type), (4, consumer_id), (5, rid), (8, durable),
                                (9, start_id), (13, 1 if initial_earliest else 0)))
        return self.recv()

    def flow(self, consumer_id: int, permits: int):
        self.send(FLOW, pb((1, consumer_id), (2, permits)))

    def ack(self, consumer_id: int, ledger: int, entry: int, cumulative=False, request_id: int | None = None):
        self.send(ACK, pb((1, consumer_id), (2, 1 if cumulative else 0), (3, pb((1, ledger), (2, entry))),
                          (8, request_id)))


def message_id(f: Frame) -> str:
    mid = f.body.sub(2)
    return f"{mid[1]}-{mid[2]}"
