"""Process-wide state under concurrent request threads: the shipped server runs 4 threads per
worker (deploy/serve.py), so requests of one process run at the same time, beside the
revocation listener. Each test starts real threads together (a Barrier) and asserts what
they got; none waits on time."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from idp import clock
from idp.breaker import CircuitBreaker
from idp.context.cache import ContextCache
from idp.keys import KeyStore
from idp.liveness import LivenessService, LivenessSettings
from idp.lms.db import Bulkhead, LMSBreaker, LMSBusy
from idp.people import Person
from tests.helpers import wait_for

THREADS = 8


def together(count: int, work) -> list:
    """Run ``work(index)`` on ``count`` threads released at once; their results in order."""
    barrier = threading.Barrier(count)

    def run(index: int):
        barrier.wait(timeout=30)
        return work(index)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def _person(subject: str) -> Person:
    kind, _, number = subject.partition(":")
    return Person(subject=subject, kind=kind, lms_id=int(number), username=f"{kind}{number}",
                  email=f"{kind}{number}@x.edu", first_name="A", last_name="B",
                  display_name="A B", zulip_role="member", groups=(), active=True)


class SlowDirectory:
    """The LMS directory of a liveness service: ``get`` can be held until the test lets it
    answer, and counts its calls."""

    def __init__(self) -> None:
        self.breaker = LMSBreaker(failures=5, cooldown=30)   # the LMS adapter's own
        self.calls = 0
        self.reading = threading.Event()
        self.answer = threading.Event()
        self.answer.set()
        self._lock = threading.Lock()

    def get(self, subject: str) -> Person:
        with self._lock:
            self.calls += 1
        self.reading.set()
        assert self.answer.wait(30)
        return _person(subject)


def test_an_lms_answer_read_before_a_revocation_is_not_cached_after_it():
    """A request thread reads "active" from the LMS; meanwhile the revocation listener drops
    the person; the answer read before the drop must not fill the cache after it."""
    directory = SlowDirectory()
    service = LivenessService(directory, LivenessSettings(cache_seconds=300))
    directory.answer.clear()
    with ThreadPoolExecutor(1) as pool:
        reader = pool.submit(service.check, "student:1")
        assert directory.reading.wait(30)
        service.forget("student:1")            # the listener, while the LMS read is in flight
        directory.answer.set()
        assert reader.result(30).person is not None   # the request itself gets its answer
    service.check("student:1")
    assert directory.calls == 2                # ... which was not cached: the LMS is asked again
    service.check("student:1")
    assert directory.calls == 2                # an answer read after the drop is cached


def test_liveness_cache_under_concurrent_checks_and_forgets():
    directory = SlowDirectory()
    service = LivenessService(directory, LivenessSettings(cache_seconds=300, cache_size=16))

    def work(index: int) -> list[str | None]:
        seen = []
        for round_ in range(200):
            subject = f"student:{(index * 7 + round_) % 40}"
            if round_ % 5 == 0:
                service.forget(subject)
            seen.append(service.check(subject).person.subject)
        return seen

    results = together(THREADS, work)
    for index, seen in enumerate(results):
        assert seen == [f"student:{(index * 7 + r) % 40}" for r in range(200)]
    assert len(service._cache) <= 16


def test_context_answer_read_before_a_drop_is_not_cached_after_it():
    cache = ContextCache({"profile": 300}, maxsize=100)
    since = cache.generation()                 # a request thread starts its LMS read
    cache.drop_tag("student:1")                # the person is deprovisioned meanwhile
    served = cache.put("profile", 1, {"name": "old"}, ["student:1"], since)
    assert served.value == {"name": "old"}     # the request still answers what it read
    assert cache.fresh("profile", 1) is None   # but nobody else gets it from the cache
    cache.put("profile", 1, {"name": "new"}, ["student:1"], cache.generation())
    assert cache.fresh("profile", 1).value == {"name": "new"}


def test_context_cache_drops_stay_complete_under_concurrent_puts():
    cache = ContextCache({"profile": 300, "metrics": 300}, maxsize=64)

    def work(index: int) -> int:
        for round_ in range(300):
            student = (index + round_) % 20
            cache.put("profile", student, {"id": student}, [f"student:{student}"],
                      cache.generation())
            cache.put("metrics", student, {"id": student}, [f"student:{student}", "batch:1"])
            if round_ % 7 == 0:
                cache.drop_tag(f"student:{student}")
            entry = cache.fresh("profile", student)
            assert entry is None or entry.value == {"id": student}
        return index

    assert together(THREADS, work) == list(range(THREADS))
    cache.drop_tag("batch:1")
    assert all(cache.fresh("metrics", student) is None for student in range(20))
    assert cache.size()["metrics"] == 0


def test_bulkhead_slots_hold_across_threads_and_processes(tmp_path):
    """Two Bulkheads on one directory stand for two workers (separate descriptors, so their
    ``flock``s exclude each other as processes' do), four threads each, 3 slots in all: exactly
    3 of the 8 threads get one, the others a quick LMSBusy."""
    workers = [Bulkhead(3, str(tmp_path)), Bulkhead(3, str(tmp_path))]
    release = threading.Event()
    held: list[int] = []
    busy: list[int] = []
    lock = threading.Lock()

    def work(index: int) -> str:
        bulkhead = workers[index % 2]
        try:
            slot = bulkhead.acquire()
        except LMSBusy:
            with lock:
                busy.append(index)
            return "busy"
        with lock:
            held.append(slot)
        assert release.wait(30)
        bulkhead._release(slot)
        return "slot"

    with ThreadPoolExecutor(1) as pool:
        outcome = pool.submit(together, THREADS, work)
        # the refusals come after SLOT_WAIT (0.1 s) while every slot holder still holds it
        wait_for(lambda: len(held) + len(busy) == THREADS, 30, "every thread's outcome")
        release.set()
        results = outcome.result(60)
    assert sorted(results).count("slot") == 3 and results.count("busy") == THREADS - 3
    assert sorted(held) == [0, 1, 2]           # three different slots, none given twice


def test_a_worker_keeps_a_thread_free_of_the_lms(tmp_path):
    """Per-process cap (LMS_MAX_CONCURRENT_PER_WORKER = threads − 1): with 4 request threads
    and plenty of shared slots, at most 3 wait on the LMS at once, so the fourth serves
    /healthz."""
    bulkhead = Bulkhead(10, str(tmp_path), per_process=3)
    release = threading.Event()
    outcomes: list[str] = []
    lock = threading.Lock()

    def work(_index: int) -> str:
        try:
            slot = bulkhead.acquire()
        except LMSBusy:
            outcome = "busy"
        else:
            outcome = "slot"
        with lock:
            outcomes.append(outcome)
        if outcome == "slot":
            assert release.wait(30)
            bulkhead._release(slot)
        return outcome

    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(together, 4, work)
        wait_for(lambda: len(outcomes) == 4, 30, "every thread's outcome")
        release.set()
        assert sorted(running.result(60)) == ["busy", "slot", "slot", "slot"]


def test_a_half_open_breaker_lets_exactly_one_trial_through():
    breaker = CircuitBreaker(1, 30.0)
    breaker.failed()
    assert breaker.state == "open"
    clock.advance(31)
    try:
        admitted = together(THREADS, lambda _i: breaker.admit())
    finally:
        clock.reset()
    assert admitted.count(True) == 1


def test_session_cookie_signer_is_shared_and_sound_across_threads(app):
    interface = app.session_interface

    def work(index: int):
        serializer = interface.get_signing_serializer(app)
        return serializer, serializer.loads(serializer.dumps({"n": index}))

    results = together(THREADS, work)
    assert len({id(serializer) for serializer, _ in results}) == 1
    assert [loaded for _, loaded in results] == [{"n": i} for i in range(THREADS)]


def test_each_request_thread_has_its_own_database_session_and_g(app):
    """Flask-SQLAlchemy scopes ``db.session`` to the app context: requests running at the same
    time never share a session (or a transaction); ``g`` is per request as well."""
    from flask import g

    from idp.extensions import db

    inside = threading.Barrier(THREADS)

    def work(index: int):
        with app.test_request_context(f"/?n={index}"):
            g.marker = index
            session = db.session()
            value = db.session.execute(db.text("SELECT :n"), {"n": index}).scalar()
            inside.wait(timeout=30)            # all requests are open at this point
            result = (id(session), value, g.marker)
            db.session.rollback()
        return result

    results = together(THREADS, work)
    assert len({session for session, _, _ in results}) == THREADS
    assert [(value, marker) for _, value, marker in results] == [(i, i) for i in range(THREADS)]


def test_signing_keys_stay_consistent_while_another_process_rotates(tmp_path):
    """Request threads read the keys while ``keys rotate`` (another process: a second
    KeyStore on the directory) stages and activates a key: the signing key a thread reads is
    always published (the retired one stays so for its grace period) and signs."""
    readers, rotator = KeyStore(str(tmp_path)), KeyStore(str(tmp_path))
    first = readers.current().kid
    done = threading.Event()

    def read(_index: int) -> set[str]:
        seen = set()
        while not done.is_set() or not seen:
            current = readers.current()
            assert current.kid in {key.kid for key in readers.published()}
            assert current.sign_rs256(b"x")
            seen.add(current.kid)
        return seen

    with ThreadPoolExecutor(1) as pool:
        reading = pool.submit(together, 4, read)
        rotator.rotate()                       # staged
        _action, activated = rotator.rotate()  # activated
        wait_for(lambda: readers.current().kid == activated.kid, 30, "the new key loaded")
        done.set()
        seen = set().union(*reading.result(60))
    assert seen <= {first, activated.kid} and activated.kid in {k.kid for k in readers.published()}


@pytest.fixture(autouse=True)
def _reset_clock():
    yield
    clock.reset()
