"""The client-side statement watchdog (idp.dbtimeouts): a statement past its deadline has its
socket shut down, and the watchdog's thread is not woken for every statement it watches."""

from __future__ import annotations

import socket
import time

from idp.dbtimeouts import _Watchdog
from tests.helpers import wait_for


def _wakes(watchdog: _Watchdog) -> list[int]:
    count = [0]
    real_set = watchdog._wake.set

    def counting_set() -> None:
        count[0] += 1
        real_set()

    watchdog._wake.set = counting_set
    return count


def test_a_statement_past_its_deadline_has_its_socket_shut_down():
    watchdog = _Watchdog()
    watchdog.start()
    watchdog.watch(socket.socket().fileno(), time.monotonic() + 3600)   # a long one first
    ours, peer = socket.socketpair()
    with ours, peer:
        watchdog.watch(ours.fileno(), time.monotonic() + 0.05)   # earlier than the first
        peer.settimeout(30)
        assert peer.recv(1) == b""        # shut down well before the first deadline


def test_a_released_statement_is_left_alone():
    watchdog = _Watchdog()
    watchdog.start()
    ours, peer = socket.socketpair()
    with ours, peer:
        watchdog.release(watchdog.watch(ours.fileno(), time.monotonic() + 0.05))
        marker = watchdog.watch(socket.socket().fileno(), time.monotonic() + 0.1)
        wait_for(lambda: marker not in watchdog._live, what="the watchdog past both deadlines")
        ours.sendall(b"x")
        assert peer.recv(1) == b"x"       # still connected


def test_statements_with_the_same_deadline_do_not_wake_the_thread():
    watchdog = _Watchdog()
    wakes = _wakes(watchdog)
    watchdog.start()
    wait_for(lambda: watchdog._wakes_at > 0.0, what="the thread's first look at the heap")
    for _ in range(200):
        watchdog.release(watchdog.watch(0, time.monotonic() + 5.0))
    assert wakes[0] == 0
