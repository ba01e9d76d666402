"""Pulsar partitioned topics: the admin REST API that creates and grows them
(PUT/POST/GET /admin/v2/persistent/{tenant}/{namespace}/{topic}/partitions), what the binary
protocol answers for them (PARTITIONED_METADATA, GET_TOPICS_OF_NAMESPACE), auto-creation with
--pulsar-default-partitions, and the count surviving a restart on a durable engine."""

import uuid

import pytest
import requests

import pulsar_wire as pw
from conftest import MagnetarServer, ServerStartError, require_binary, start_admin


def name(prefix="pt"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def admin_url(server, tenant, topic):
    return f"{server.base_url}/admin/v2/persistent/{tenant}/default/{topic}/partitions"


def auth(user):
    return {"Authorization": f"Bearer {user.token}", "Content-Type": "application/json"}


def partitions_of(server, user, topic):
    c = pw.Conn(server.pulsar_port)
    try:
        assert c.connect(user.token).type == pw.CONNECTED
        c.send(pw.PARTITIONED_METADATA, pw.pb((1, topic), (2, 7)))
        f = c.recv_type(pw.PARTITIONED_METADATA_RESPONSE)
        assert f.body[2] == 7
        assert f.body.get(3, 0) == 0, f.body.fields  # Success
        return f.body.get(1, 0)
    finally:
        c.close()


def namespace_topics(server, user, ns):
    c = pw.Conn(server.pulsar_port)
    try:
        assert c.connect(user.token).type == pw.CONNECTED
        c.send(pw.GET_TOPICS_OF_NAMESPACE, pw.pb((1, 9), (2, ns)))
        f = c.recv_type(pw.GET_TOPICS_OF_NAMESPACE_RESPONSE)
        return [t.decode() for t in f.body.all(2)]
    finally:
        c.close()


@pytest.fixture(scope="module")
def alice(tenant):
    return tenant.user("rw")


def test_create_grow_and_read_a_partitioned_topic(server, alice):
    t = name()
    url = admin_url(server, alice.username, t)
    assert requests.get(url, headers=auth(alice), timeout=5).json() == {"partitions": 0}
    r = requests.put(url, data="3", headers=auth(alice), timeout=5)
    assert r.status_code == 204, r.text
    assert requests.get(url, headers=auth(alice), timeout=5).json() == {"partitions": 3}
    # The short form's tenant `public` is the caller's own.
    assert requests.get(admin_url(server, "public", t), headers=auth(alice), timeout=5).json() == {"partitions": 3}
    r = requests.put(url, data="3", headers=auth(alice), timeout=5)
    assert r.status_code == 409 and "reason" in r.json()
    # Grow only.
    assert requests.post(url, data="2", headers=auth(alice), timeout=5).status_code == 409
    assert requests.post(url, data="5", headers=auth(alice), timeout=5).status_code == 204
    assert partitions_of(server, alice, f"persistent://{alice.username}/default/{t}") == 5
    assert partitions_of(server, alice, t) == 5  # short name
    # A partition itself, and a plain topic, are not partitioned.
    assert partitions_of(server, alice, f"{t}-partition-2") == 0
    assert partitions_of(server, alice, name()) == 0
    listed = namespace_topics(server, alice, f"{alice.username}/default")
    for i in range(5):
        assert f"persistent://{alice.username}/default/{t}-partition-{i}" in listed
    assert f"persistent://{alice.username}/default/{t}" not in listed


def test_admin_refusals(server, alice, tenant):
    t = name()
    url = admin_url(server, alice.username, t)
    assert requests.put(url, data="3", timeout=5).status_code == 401
    assert requests.put(url, data="3", headers={"Authorization": "Bearer nope"}, timeout=5).status_code == 401
    for bad in ("0", "-1", "5000"):
        r = requests.put(url, data=bad, headers=auth(alice), timeout=5)
        assert r.status_code == 412, (bad, r.status_code, r.text)
    assert requests.put(url, data='"x"', headers=auth(alice), timeout=5).status_code == 400
    assert requests.put(admin_url(server, alice.username, f"{t}-partition-1"), data="2", headers=auth(alice),
                        timeout=5).status_code == 412
    assert requests.post(url, data="4", headers=auth(alice), timeout=5).status_code == 404  # not partitioned
    # Another user's tenant, and a read-only user writing.
    bob = tenant.user("other")
    assert requests.put(admin_url(server, bob.username, t), data="2", headers=auth(alice),
                        timeout=5).status_code == 403
    ro = tenant.user("ro")
    assert requests.put(admin_url(server, ro.username, t), data="2", headers=auth(ro),
                        timeout=5).status_code == 403
    assert requests.get(admin_url(server, ro.username, t), headers=auth(ro), timeout=5).status_code == 200
    # An existing (plain) topic cannot become partitioned.
    c = pw.Conn(server.pulsar_port)
    try:
        assert c.connect(alice.token).type == pw.CONNECTED
        assert c.producer(f"persistent://{alice.username}/default/{t}").type == pw.PRODUCER_SUCCESS
    finally:
        c.close()
    assert requests.put(url, data="2", headers=auth(alice), timeout=5).status_code == 409


def test_default_partitions_and_restart_keep_the_count():
    require_binary()
    srv = MagnetarServer(["--pulsar-default-partitions", "4"], label="pulsar-partitions", storage="rocksdb")
    try:
        srv.start()
    except ServerStartError as e:
        pytest.fail(str(e))
    try:
        admin = start_admin(srv)
        auto = name("auto")
        assert partitions_of(srv, admin, auto) == 4  # created partitioned on first sight
        made = name("made")
        assert requests.put(admin_url(srv, "public", made), data="2", headers=auth(admin),
                            timeout=5).status_code == 204
        srv.kill()
        srv.start()
        admin = start_admin(srv)
        assert partitions_of(srv, admin, auto) == 4
        assert partitions_of(srv, admin, made) == 2
        assert requests.get(admin_url(srv, "public", made), headers=auth(admin),
                            timeout=5).json() == {"partitions": 2}
    finally:
        srv.terminate()
        srv.kill()
