"""Graceful shutdown: SIGTERM -> exit 0 within 10 s; in-flight long-polls get their 200 first."""

import signal
import socket
import time

import requests

from conftest import BgPoll, WsClosed, start_admin, unique, ws_connect, ws_expect_close, ws_subscribe


def stop_and_time(srv, timeout=10.0):
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    try:
        code = srv.proc.wait(timeout=timeout)
    except Exception:  # noqa: BLE001
        srv.kill()
        raise AssertionError(f"magnetar did not exit within {timeout}s of SIGTERM")
    return code, time.monotonic() - t0


def port_closed(port) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except OSError:
        return True


def test_sigterm_idle_server(server_factory):
    srv = server_factory(label="shutdown-idle")
    code, elapsed = stop_and_time(srv)
    assert code == 0, f"exit code {code}"
    assert elapsed < 10
    assert port_closed(srv.port)


def test_sigterm_after_traffic(server_factory):
    srv = server_factory(label="shutdown-traffic")
    admin = start_admin(srv)
    topic = unique()
    for i in range(20):
        admin.api.publish(topic, {"i": i})
    keepalive = admin.api.with_token(admin.token)
    assert keepalive.get("/auth/me").status_code == 200  # leaves an idle keep-alive connection open
    code, _ = stop_and_time(srv)
    assert code == 0, f"exit code {code}"


def test_sigterm_with_long_poll_in_flight(server_factory):
    srv = server_factory(label="shutdown-poll")
    admin = start_admin(srv)
    topic = unique()
    bg = BgPoll(admin.api, [topic], timeout=60)
    admin.api.wait_for_waiter(topic)
    t_sig = time.monotonic()
    code, elapsed = stop_and_time(srv)
    bg.join(5)
    assert not bg.is_alive(), "the in-flight poll never finished"
    assert bg.error is None, f"the in-flight poll failed instead of answering: {bg.error!r}"
    assert bg.resp.status_code == 200, bg.resp.text
    body = bg.resp.json()
    assert list(body.keys()) == ["messages", "has_more"]
    assert body["has_more"] is False
    assert bg.started + bg.elapsed - t_sig < 10
    assert code == 0, f"exit code {code}"
    assert elapsed < 10


def test_sigterm_with_open_websocket(server_factory):
    srv = server_factory(label="shutdown-ws")
    admin = start_admin(srv)
    ws = ws_connect(srv, admin.token, timeout=10)
    try:
        ws_subscribe(ws, [unique()])
        code, elapsed = stop_and_time(srv)
        assert code == 0, f"exit code {code}"
        assert elapsed < 10
        closed = ws_expect_close(ws, 5)
        assert isinstance(closed, WsClosed)
    finally:
        try:
            ws.close(timeout=1)
        except Exception:  # noqa: BLE001
            pass


def test_no_requests_served_after_exit(server_factory):
    srv = server_factory(label="shutdown-after")
    url = srv.url("/health")
    assert requests.get(url, timeout=5).status_code == 200
    code, _ = stop_and_time(srv)
    assert code == 0
    try:
        requests.get(url, timeout=2)
    except requests.ConnectionError:
        return
    raise AssertionError("server still answering after exit")
