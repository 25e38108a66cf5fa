"""Writing files so that a crash or a kill never leaves a half-written one."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(target: Path, writer) -> Path:
    """Run ``writer(tmp_path)`` then rename onto ``target``; no partial file survives a crash."""
    target = Path(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent)
    os.close(fd)
    try:
        writer(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes it private; give it the usual permissions
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target



def json_default(x):
    """``json.dumps``'s fallback for the numbers numpy and pandas hand out (and anything else: its text)."""
    import numpy as np

    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    return str(x)


class RowStore:
    """Finished pieces of a long run in SQLite, one committed row each: a kill or an interrupt loses none.

    ``path`` is a ``.sqlite`` file or a directory (the file ``name`` inside it, made as needed).  A ``meta``
    table holds what the run was (its instance, options) so that a resumed run can check it is the same run;
    ``table`` is the DDL of the rows' table.  A file that is not SQLite raises ``error(message)``.
    """

    def __init__(self, path: str | os.PathLike, *, name: str, table: str, error):
        import sqlite3

        path = Path(path)
        if path.suffix != ".sqlite":
            path.mkdir(parents=True, exist_ok=True)
            path = path / name
        self.path = path
        try:
            self.db = sqlite3.connect(path, timeout=30)
            self.db.execute("PRAGMA journal_mode=WAL")  # readers (a progress view) never block the writer
            self.db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
            self.db.execute(f"CREATE TABLE IF NOT EXISTS {table}")
            self.db.commit()
        except sqlite3.DatabaseError as exc:
            raise error(f"{path} is not a {name.split('.')[0]} store ({exc})") from None

    def meta(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT key, value FROM meta"))

    def set_meta(self, values) -> None:
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", list(values.items()))

    def rows(self, key: str, table: str) -> dict[str, dict]:
        """Every finished row of ``table`` by its ``key`` column."""
        return {k: json.loads(r) for k, r in self.db.execute(f"SELECT {key}, row FROM {table}")}

    def put(self, table: str, *values) -> None:
        """One finished row, committed on its own (``values`` in the table's column order; dicts as JSON)."""
        values = [json.dumps(v, default=json_default) if isinstance(v, dict) else v for v in values]
        with self.db:
            self.db.execute(f"INSERT OR REPLACE INTO {table} VALUES ({', '.join('?' * len(values))})", values)

    def close(self) -> None:
        self.db.close()
