"""Django's SQLite backend, creating the database file's folder when it first connects.

SQLite answers "unable to open database file" when the folder of the file is missing, so a
fresh clone (no ``var/``) or a new ``STUDIO_VAR_DIR`` failed at the first command that
touched the database (``migrate``). Making the folder here, where the connection is opened,
covers every entry point at once — management commands, the server, the worker, tests —
without settings touching the filesystem at import.
"""

from __future__ import annotations

from pathlib import Path

from django.db.backends.sqlite3 import base


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params):
        name = str(conn_params.get("database", ""))
        # In-memory databases (":memory:" or a "file:...mode=memory" URI) have no folder.
        if name and name != ":memory:" and not name.startswith("file:"):
            Path(name).parent.mkdir(parents=True, exist_ok=True)
        return super().get_new_connection(conn_params)
