"""Writers take turns (studio/db/sqlite3): in the order they asked, handed over at once.

SQLite's own busy handler makes waiting writers poll and sleep, so the lock sat free while
they slept and an unlucky one lost every try until its timeout (50 annotators on
runserver: p95 7 s, and failures). Within a process Studio queues them instead.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.backends.signals import connection_created

from studio.db.sqlite3.base import WriteTurns


def _wait_until(predicate, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_turns_go_in_the_order_they_were_asked_for():
    turns = WriteTurns()
    assert turns.acquire(timeout=1)
    order: list[int] = []

    def writer(n: int) -> None:
        assert turns.acquire(timeout=10)
        order.append(n)
        turns.release()

    threads = []
    for n in range(6):
        threads.append(threading.Thread(target=writer, args=(n,)))
        threads[-1].start()
        _wait_until(lambda n=n: len(turns._waiters) == n + 1)  # queued before the next asks
    turns.release()
    for t in threads:
        t.join(timeout=10)
    assert order == list(range(6))


def test_a_turn_not_given_in_time_is_refused_and_leaves_the_queue():
    turns = WriteTurns()
    assert turns.acquire(timeout=1)
    assert not turns.acquire(timeout=0.05)
    assert not turns._waiters
    turns.release()
    assert turns.acquire(timeout=0.05)  # free again at once


def _no_busy_wait(sender=None, connection=None, **kwargs) -> None:
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA busy_timeout = 0")  # SQLite alone would fail at once


@pytest.mark.django_db(transaction=True)
def test_many_threads_writing_at_once_all_get_through():
    """With SQLite's own wait switched off, only the turns keep 12 threads from failing."""
    connection_created.connect(_no_busy_wait)
    errors: list[Exception] = []

    def writer(n: int) -> None:
        try:
            for i in range(15):
                with transaction.atomic():
                    get_user_model().objects.create(username=f"writer-{n}-{i}")
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    try:
        threads = [threading.Thread(target=writer, args=(n,)) for n in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    finally:
        connection_created.disconnect(_no_busy_wait)
    assert errors == []
    assert get_user_model().objects.filter(username__startswith="writer-").count() == 12 * 15
