"""The bulk writer of an import: annotation rows straight into the table, off the thread
that reads and validates the file.

PostgreSQL gets each batch through ``COPY``; SQLite through one ``INSERT ... SELECT``
over a JSON array. Both run on the import's own connection inside its transaction, so a
failed import rolls them back with everything else (``imports.py``).
"""

from __future__ import annotations

import queue
import threading
from contextlib import closing

import msgspec
from django.db import connection
from django.utils import timezone

from annotation import geometry as geo
from annotation.models import Annotation
from studio.models import Job

# Validated geometry holds finite numbers only; msgspec writes the JSON in C.
_json = msgspec.json.Encoder().encode


ANN_COLUMNS = (
    "image_id, label_class_id, kind, geometry, area, bbox, attributes, is_crowd, source, "
    "source_detail, confidence, status, author_id, version, deleted, created_at, updated_at"
)


SQLITE_ANN_INSERT = (  # names are constants; values go as parameters
    "INSERT INTO {table} (id, " + ANN_COLUMNS + ") SELECT ? + key, "  # noqa: S608
    "json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2][0]'), "
    "json_extract(value, '$[2][1]'), json_extract(value, '$[2][2]'), "
    "json_extract(value, '$[2][3]'), json_extract(value, '$[3]'), json_extract(value, '$[4]'), "
    "'import', ?, NULL, ?, ?, 1, 0, "
    "?, ? FROM json_each(?)"
)


PG_ANN_COPY = "COPY {table} (" + ANN_COLUMNS + ") FROM STDIN"


def _sql(template: str, model) -> str:
    """Fill in the table name (never user input); values always go as parameters."""
    return template.replace("{table}", connection.ops.quote_name(model._meta.db_table))


def _copy_text(value: str) -> str:
    """Escape JSON text for COPY's text format (JSON holds no raw tab or newline)."""
    return value.replace("\\", "\\\\") if "\\" in value else value


def _foreign_keys_immediate(cur):
    """Check the annotation table's deferred foreign keys as each row arrives; return the
    statement that defers them again.

    Django declares foreign keys ``DEFERRABLE INITIALLY DEFERRED``: checked at commit,
    one lookup per row and key, after the last batch, while nothing else runs. Checked
    immediately, the same lookups happen inside each ``COPY``, in the database's own
    process, while the importer's thread reads the next batch. Same checks, same
    transaction: a broken reference still fails the import and nothing is written.
    """
    from psycopg import sql

    cur.execute(
        "SELECT conname FROM pg_constraint WHERE contype = 'f' AND condeferred "
        "AND conrelid = %s::regclass ORDER BY conname",
        [Annotation._meta.db_table],
    )
    found = [sql.Identifier(name) for (name,) in cur.fetchall()]
    if not found:
        return ""
    names = sql.SQL(", ").join(found)
    cur.execute(sql.SQL("SET CONSTRAINTS {} IMMEDIATE").format(names))
    return sql.SQL("SET CONSTRAINTS {} DEFERRED").format(names)


class ImportWriter:
    """Write the annotations on a second thread, batch by batch.

    The importer's thread goes on reading and validating the next batch while this one's
    rows are written: PostgreSQL receives them with ``COPY`` and does the inserting in its
    own process; SQLite's module releases the GIL while SQLite inserts. Both threads use
    the one connection, inside the import's one transaction (psycopg serialises its use
    with a lock; SQLite's library with its own mutex). Each batch is serialised by msgspec,
    in C: one JSON array for SQLite, ``COPY`` text lines for PostgreSQL.

    Precondition: inside the import's ``transaction.atomic()`` block; ``close()`` must be
    called before that block ends, whatever happened, so that no write outlives it.
    """

    QUEUED = 2  # batches waiting: bounds memory while the database catches up

    def __init__(self, job: Job, status: str, detail: str) -> None:
        self.status, self.detail = status, detail[:200]
        self.actor_id = job.created_by_id
        now = timezone.now()
        self.postgres = connection.vendor == "postgresql"
        self.error: BaseException | None = None
        self.queue: queue.Queue = queue.Queue(self.QUEUED)
        self.thread: threading.Thread | None = None
        if self.postgres:
            actor = "\\N" if self.actor_id is None else str(self.actor_id)
            stamp = now.isoformat()
            self.tail = f"\timport\t{_copy_text(self.detail)}\t\\N\t{status}\t{actor}\t1\tf\t{stamp}\t{stamp}\n"
        else:
            self.now = connection.ops.adapt_datetimefield_value(now)
            self.next_id: int | None = None

    def insert(self, rows: list[tuple[int, int, geo.Geometry, dict, bool]]) -> None:
        """Queue a batch of validated rows (image id, class id, geometry, attributes, crowd)."""
        self._check()
        if self.thread is None:
            connection.ensure_connection()
            self.thread = threading.Thread(
                target=self._work, args=(connection.connection,), name="import-writer", daemon=True
            )
            self.thread.start()
        batch = self._copy_batch(rows) if self.postgres else self._sqlite_batch(rows)
        while True:  # never block for good on a writer that has died
            try:
                self.queue.put(batch, timeout=0.5)
                break
            except queue.Full:
                self._check()

    def close(self) -> None:
        """Wait until every queued batch is written; raise the writer's error, if any."""
        if self.thread is not None:
            self.queue.put(None)
            self.thread.join()
            self.thread = None
        self._check()

    def abandon(self) -> None:
        """Stop without writing what is still queued (the transaction is rolled back)."""
        if self.thread is not None:
            self.error = self.error or _Abandoned()
            while True:
                try:
                    self.queue.get_nowait()
                except queue.Empty:
                    break
            self.queue.put(None)
            self.thread.join()
            self.thread = None

    def _check(self) -> None:
        if self.error is not None and not isinstance(self.error, _Abandoned):
            raise self.error

    def _work(self, raw) -> None:
        try:
            with closing(raw.cursor()) as cur:
                deferred = _foreign_keys_immediate(cur) if self.postgres else None
                done = False
                while not done:
                    batches = [self.queue.get()]
                    while batches[-1] is not None and not self.queue.empty():
                        batches.append(self.queue.get())  # the database fell behind: merge
                    if batches[-1] is None:
                        done = True
                        batches.pop()
                    if batches and self.error is None:
                        if self.postgres:
                            self._copy(cur, "".join(batches))
                        else:
                            self._insert_json(cur, batches)
                if deferred:
                    cur.execute(deferred)
        except BaseException as exc:  # noqa: BLE001 - raised again in the importer's thread
            self.error = exc
            while self.queue.get() is not None:  # let the importer's puts through
                pass

    # PostgreSQL: one COPY per batch; the ids come from the table's sequence.

    def _copy_batch(self, rows) -> str:
        tail, dumps = self.tail, _json
        lines = []
        for image_id, class_id, shape, attributes, crowd in rows:
            geometry = _copy_text(dumps(shape.data).decode())
            attrs = _copy_text(dumps(attributes).decode()) if attributes else "{}"
            lines.append(f"{image_id}\t{class_id}\t{shape.kind}\t{geometry}\t{shape.area!r}\t"
                         f"{dumps(shape.bbox).decode()}\t{attrs}\t{'t' if crowd else 'f'}{tail}")  # fmt: skip
        return "".join(lines)

    def _copy(self, cur, text: str) -> None:
        with cur.copy(_sql(PG_ANN_COPY, Annotation)) as copy:
            copy.write(text)

    # SQLite: ids follow the table's maximum (the transaction holds the only write lock).

    def _sqlite_batch(self, rows) -> tuple[int, int, str]:
        if self.next_id is None:
            with connection.cursor() as cur:
                table = Annotation._meta.db_table
                cur.execute(_sql("SELECT COALESCE(MAX(id), 0) FROM {table}", Annotation))
                top = cur.fetchone()[0]
                cur.execute(
                    "SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence WHERE name = %s", [table]
                )
                self.next_id = max(top, cur.fetchone()[0]) + 1
        first = self.next_id
        self.next_id += len(rows)
        # Each row as [image id, class id, [kind, data, area, bbox], attributes, crowd]: the rows
        # and their Geometry named tuples as they are, serialised in one call.
        return first, len(rows), _json(rows).decode()[1:-1]

    def _insert_json(self, cur, batches: list[tuple[int, int, str]]) -> None:
        first = batches[0][0]  # ids are contiguous across batches
        text = "[" + ", ".join(body for _, _, body in batches) + "]"
        cur.execute(_sql(SQLITE_ANN_INSERT, Annotation),
                    (first, self.detail, self.status, self.actor_id, self.now, self.now, text))  # fmt: skip


class _Abandoned(Exception):
    """The import stopped (it failed or was cancelled): nothing more is written."""
