"""Crash safety on RocksDB (issue 5): SIGKILL at random moments loses no acknowledged message.

The real binary runs with `--storage rocksdb --durability fsync` on one data directory. Each round:
concurrent publishers (single and bulk, several threads) and a WebSocket subscriber run until the
server is killed with SIGKILL at a random moment; the server is restarted on the same directory and
the test checks that
  * every message whose 201 (single) or 207 "accepted" (bulk) reached a client is stored exactly
    once, with the same id and payload, and each publisher's messages are in the order it sent them;
  * every message the subscriber received is stored too (fan-out happens only after the sync);
  * no id is ever reused for another payload, across all rounds;
  * the user (same password) and the topics survive.

Repeatable: the kill moments come from MAGNETAR_CRASH_SEED (printed; random when unset);
MAGNETAR_CRASH_ROUNDS sets the number of rounds (default 4).
"""

from __future__ import annotations

import json
import os
import random
import threading
import time

import pytest
import requests

from conftest import (Api, MagnetarServer, ServerStartError, WsClosed, assert_increasing, login, parse_id,
                      register_user, require_binary, start_admin, unique, ws_connect, ws_recv,
                      ws_subscribe)

ROUNDS = int(os.environ.get("MAGNETAR_CRASH_ROUNDS", "4"))
SINGLE_PUBLISHERS = 4
BULK_PUBLISHERS = 2


class Ledger:
    """What clients were told, shared by the publisher threads of every round."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acked: dict[tuple[str, str], dict] = {}  # (topic, id) -> payload
        # writer -> [(topic, id, (round, n))]: each writer sends one message after the other
        self.by_writer: dict[str, list[tuple[str, str, tuple[int, int]]]] = {}

    def ack(self, writer: str, topic: str, message_id: str, payload: dict) -> None:
        with self.lock:
            assert (topic, message_id) not in self.acked, f"id {message_id} acknowledged twice on {topic}"
            self.acked[(topic, message_id)] = payload
            self.by_writer.setdefault(writer, []).append((topic, message_id, (payload["r"], payload["n"])))


def single_publisher(api: Api, writer: str, topics: list[str], rnd: int, ledger: Ledger, stop: threading.Event):
    n = 0
    while not stop.is_set():
        topic = topics[n % len(topics)]
        payload = {"w": writer, "r": rnd, "n": n}
        try:
            r = api.post("/api/v1/messages", json={"topic": topic, "payload": payload}, timeout=5)
        except requests.RequestException:
            return  # the server is gone: this one is unknown, and so is everything after it
        if r.status_code != 201:
            return
        ledger.ack(writer, topic, r.json()["message_id"], payload)
        n += 1


def bulk_publisher(api: Api, writer: str, topics: list[str], rnd: int, ledger: Ledger, stop: threading.Event,
                   rng: random.Random):
    n = 0
    while not stop.is_set():
        items = []
        for _ in range(rng.randint(1, 25)):
            items.append({"topic": topics[rng.randrange(len(topics))], "payload": {"w": writer, "r": rnd, "n": n}})
            n += 1
        try:
            r = api.post("/api/v1/messages/bulk", json={"messages": items}, timeout=5)
        except requests.RequestException:
            return
        if r.status_code != 207:
            return
        results = r.json()["results"]
        assert len(results) == len(items)
        for item, result in zip(items, results):
            assert result["status"] == "accepted", result
            ledger.ack(writer, item["topic"], result["message_id"], item["payload"])


class Subscriber(threading.Thread):
    """A WebSocket subscriber that keeps every message it receives until its connection dies."""

    def __init__(self, srv: MagnetarServer, token: str, topics: list[str]):
        super().__init__(daemon=True)
        self.received: list[tuple[str, str, dict]] = []
        self.ws = ws_connect(srv, token, timeout=10)
        ws_subscribe(self.ws, topics)

    def run(self):
        while True:
            try:
                kind, data = ws_recv(self.ws, timeout=30)
            except (WsClosed, OSError, Exception):  # noqa: BLE001 - the server was killed
                return
            if kind != "text":
                continue
            frame = json.loads(data)
            if frame.get("type") == "message":
                self.received.append((frame["topic"], frame["message_id"], frame["payload"]))


def read_topic(api: Api, topic: str) -> list[tuple[str, dict]]:
    """Every stored message of `topic` as (id, payload), oldest first."""
    out: list[tuple[str, dict]] = []
    cursor = None
    for _ in range(10_000):
        params = {"limit": 100, "order": "asc"}
        if cursor:
            params["cursor"] = cursor
        r = api.get(f"/api/v1/topics/{topic}/messages", params=params, timeout=10)
        assert r.status_code == 200, f"GET messages -> {r.status_code}: {r.text[:300]}"
        page = r.json()
        if not page["messages"]:
            return out
        out += [(m["message_id"], m["payload"]) for m in page["messages"]]
        cursor = page["next_cursor"]
    raise AssertionError("too many pages")


def test_sigkill_loses_no_acknowledged_message():
    require_binary()
    seed = os.environ.get("MAGNETAR_CRASH_SEED") or str(random.randrange(1 << 30))
    print(f"\ncrash test seed {seed} (MAGNETAR_CRASH_SEED={seed} repeats the kill moments)")
    rng = random.Random(int(seed))

    srv = MagnetarServer(["--durability", "fsync", "--rate-limit-publish", "0", "--rate-limit-bulk", "0",
                          "--rate-limit-login", "0"], label="crash", storage="rocksdb")
    srv.extra_args += ["--data-dir", os.path.join(srv.workdir, "data")]
    try:
        srv.start()
    except ServerStartError as e:
        pytest.fail(str(e))
    try:
        admin = start_admin(srv)
        username, password, body = register_user(admin, ["read", "write"], prefix="crash")
        r = login(srv, username, password)
        assert r.status_code == 200, r.text
        token = r.json()["access_token"]
        api = Api(srv, token)
        single_topics = [unique("single"), unique("single")]
        bulk_topics = [unique("bulk"), unique("bulk")]
        all_topics = single_topics + bulk_topics

        ledger = Ledger()
        stored_ids: dict[tuple[str, str], dict] = {}  # every id ever seen stored -> its payload
        for rnd in range(ROUNDS):
            stop = threading.Event()
            subscriber = Subscriber(srv, token, all_topics)
            subscriber.start()
            threads = [threading.Thread(target=single_publisher,
                                        args=(api, f"s{i}", single_topics, rnd, ledger, stop), daemon=True)
                       for i in range(SINGLE_PUBLISHERS)]
            threads += [threading.Thread(target=bulk_publisher,
                                         args=(api, f"b{i}", bulk_topics, rnd, ledger, stop,
                                               random.Random(rng.random())), daemon=True)
                        for i in range(BULK_PUBLISHERS)]
            acked_before = len(ledger.acked)
            for t in threads:
                t.start()
            time.sleep(rng.uniform(0.3, 1.5))
            srv.proc.kill()  # SIGKILL, mid-publish
            srv.proc.wait(timeout=10)
            stop.set()
            for t in threads:
                t.join(15)
                assert not t.is_alive(), "a publisher hung after the kill"
            subscriber.join(15)

            try:
                srv.start()
            except ServerStartError as e:
                pytest.fail(f"restart after round {rnd}: {e}")

            # The user survives (same password) and the topics too.
            r = login(srv, username, password)
            assert r.status_code == 200, f"login after restart -> {r.status_code}: {r.text}"
            listed = api.get("/api/v1/topics", timeout=10)
            assert listed.status_code == 200, listed.text
            names = {t["topic_name"] for t in listed.json()}
            assert set(all_topics) <= names, f"topics lost: {set(all_topics) - names}"

            stored: dict[tuple[str, str], dict] = {}
            for topic in all_topics:
                messages = read_topic(api, topic)
                assert_increasing([m for m, _ in messages])
                for message_id, payload in messages:
                    stored[(topic, message_id)] = payload
                    previous = stored_ids.setdefault((topic, message_id), payload)
                    assert previous == payload, f"id {message_id} on {topic} reused: {previous} then {payload}"
                payloads = [(p["w"], p["r"], p["n"]) for _, p in messages]
                assert len(payloads) == len(set(payloads)), f"a message is stored twice on {topic}"

            with ledger.lock:
                acked = dict(ledger.acked)
                by_writer = {w: list(v) for w, v in ledger.by_writer.items()}
            for key, payload in acked.items():
                assert key in stored, f"acknowledged message {key} {payload} lost"
                assert stored[key] == payload, f"{key}: stored {stored[key]}, acknowledged {payload}"
            for writer, sent in by_writer.items():
                per_topic: dict[str, list[tuple[tuple[int, int], str]]] = {}
                for topic, message_id, n in sent:
                    per_topic.setdefault(topic, []).append((n, message_id))
                for topic, items in per_topic.items():
                    items.sort()
                    ids = [parse_id(m) for _, m in items]
                    assert ids == sorted(ids), f"{writer}'s messages on {topic} are out of order"
            for topic, message_id, payload in subscriber.received:
                assert stored.get((topic, message_id)) == payload, \
                    f"message {message_id} delivered to a subscriber but not stored"

            print(f"round {rnd + 1}/{ROUNDS}: {len(acked) - acked_before} acknowledged this round, "
                  f"{len(acked)} acknowledged messages checked, {len(stored)} stored, "
                  f"{len(subscriber.received)} delivered to the subscriber")
            assert len(acked) > acked_before, "no publish was acknowledged this round"

        code = srv.terminate()
        assert code == 0, f"exit code {code}"
    finally:
        srv.kill()


def test_second_server_on_a_locked_data_dir_exits_with_a_clear_error():
    require_binary()
    first = MagnetarServer(label="lock-owner", storage="rocksdb")
    data_dir = os.path.join(first.workdir, "data")
    first.extra_args += ["--data-dir", data_dir]
    second = MagnetarServer(["--data-dir", data_dir], label="lock-intruder", storage="rocksdb")
    try:
        first.start()
        with pytest.raises(ServerStartError):
            second.start(ready_timeout=10)
        assert second.proc.returncode == 1, second.proc.returncode
        assert "is locked by another process" in second.read_log(), second.read_log()[-2000:]
        assert requests.get(first.url("/ready"), timeout=5).status_code == 200
        assert first.terminate() == 0
    finally:
        first.kill()
        second.kill()
