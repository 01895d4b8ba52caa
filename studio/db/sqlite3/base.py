"""Django's SQLite backend, with its file's folder made on connect and writers taking turns.

SQLite answers "unable to open database file" when the folder of the file is missing, so a
fresh clone (no ``var/``) or a new ``STUDIO_VAR_DIR`` failed at the first command that
touched the database (``migrate``). Making the folder here, where the connection is opened,
covers every entry point at once — management commands, the server, the worker, tests —
without settings touching the filesystem at import.

SQLite lets one writer in at a time. A transaction that writes begins ``IMMEDIATE`` and
SQLite's busy handler makes the others wait by polling: each sleeps, tries again, sleeps
longer (up to 100 ms a try), so the lock is often free while every waiter sleeps, and an
unlucky one can lose every try until its timeout. With 50 annotators on runserver's
threads that was a p95 of 7 s and requests failing after 30 s. Here the threads of one
process queue for their turn in order (``WriteTurns``) and each is handed the lock the
moment the previous one commits; SQLite's own wait remains between processes (the Celery
worker, several gunicorn workers).
"""

from __future__ import annotations

import threading
from collections import deque
from pathlib import Path

from django.db import OperationalError
from django.db.backends.sqlite3 import base


class WriteTurns:
    """A lock handed to its waiters in the order they asked (first come, first served)."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held = False
        self._waiters: deque[threading.Event] = deque()

    def acquire(self, timeout: float) -> bool:
        with self._mutex:
            if not self._held:
                self._held = True
                return True
            turn = threading.Event()
            self._waiters.append(turn)
        if turn.wait(timeout):
            return True
        with self._mutex:
            if turn.is_set():  # handed over just as the wait ran out
                return True
            self._waiters.remove(turn)
            return False

    def release(self) -> None:
        with self._mutex:
            if self._waiters:
                self._waiters.popleft().set()  # straight to the next: it stays held
            else:
                self._held = False


# One per database file and process: every connection to the file queues here.
_TURNS: dict[str, WriteTurns] = {}
_TURNS_MUTEX = threading.Lock()


def _turns(name: str) -> WriteTurns:
    with _TURNS_MUTEX:
        return _TURNS.setdefault(name, WriteTurns())


class DatabaseWrapper(base.DatabaseWrapper):
    _holds_turn = False

    def get_new_connection(self, conn_params):
        name = str(conn_params.get("database", ""))
        # In-memory databases (":memory:" or a "file:...mode=memory" URI) have no folder.
        if name and name != ":memory:" and not name.startswith("file:"):
            Path(name).parent.mkdir(parents=True, exist_ok=True)
        return super().get_new_connection(conn_params)

    def _start_transaction_under_autocommit(self):
        """Wait for this process's turn to write before ``BEGIN IMMEDIATE`` (see above)."""
        if self.transaction_mode not in ("IMMEDIATE", "EXCLUSIVE") or self.is_in_memory_db():
            return super()._start_transaction_under_autocommit()
        timeout = float(self.settings_dict.get("OPTIONS", {}).get("timeout", 5))
        if not _turns(str(self.settings_dict["NAME"])).acquire(timeout):
            raise OperationalError("database is locked (no turn to write within the timeout)")
        self._holds_turn = True
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._pass_turn()
            raise

    def _pass_turn(self) -> None:
        if self._holds_turn:
            self._holds_turn = False
            _turns(str(self.settings_dict["NAME"])).release()

    def _commit(self):
        try:
            return super()._commit()
        finally:
            self._pass_turn()

    def _rollback(self):
        try:
            return super()._rollback()
        finally:
            self._pass_turn()

    def _close(self):
        try:
            return super()._close()
        finally:
            self._pass_turn()
