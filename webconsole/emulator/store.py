"""SQLite state (users, projects, resources, logs) with Hanami's text storage (§1.8)."""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from pathlib import Path
from typing import Any

_INT = re.compile(r"^-?[0-9]+$")
_FLOAT = re.compile(r"^-?[0-9]+\.[0-9]+$")

TABLES: dict[str, tuple[str, ...]] = {
    "users": ("id", "name", "creator_id", "projects", "is_admin", "pw_hash", "salt"),
    "projects": ("id", "name", "creator_id"),
    "clusters": ("uuid", "project_id", "owner_id", "visibility", "name"),
    "datasets": ("uuid", "project_id", "owner_id", "visibility", "name", "type", "location"),
    "checkpoints": ("uuid", "project_id", "owner_id", "visibility", "name", "location"),
    "request_results": ("uuid", "project_id", "owner_id", "visibility", "name", "data"),
    "tempfiles": ("uuid", "project_id", "owner_id", "visibility", "name", "dataset_uuid", "size",
                  "location"),
    "audit_log": ("timestamp", "user_id", "endpoint", "request_type"),
    "error_log": ("timestamp", "user_id", "component", "context", "input_values", "message"),
}
KEYS = {"users": "id", "projects": "id"}  # everything else with a uuid is keyed by uuid


def to_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return str(value)


def infer(text: str) -> Any:
    """Hanami's type inference when reading a stored text cell back (§1.8, Q-G4)."""
    if text in ("true", "True", "TRUE"):
        return True
    if text in ("false", "False", "FALSE"):
        return False
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    if text[:1] in ("{", "["):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


class Store:
    def __init__(self, path: Path):
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        for table, columns in TABLES.items():
            cols = ", ".join(f'"{c}" TEXT' for c in columns)
            self._db.execute(f"CREATE TABLE IF NOT EXISTS {table} ({cols})")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- generic row access -------------------------------------------------------------------
    def insert(self, table: str, row: dict[str, Any]) -> None:
        columns = TABLES[table]
        values = [to_text(row.get(c, "")) for c in columns]
        marks = ", ".join("?" for _ in columns)
        with self._lock:
            self._db.execute(f"INSERT INTO {table} VALUES ({marks})", values)

    def rows(self, table: str, where: dict[str, Any] | None = None, raw: bool = False,
             limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
        columns = TABLES[table]
        sql = f"SELECT {', '.join(chr(34) + c + chr(34) for c in columns)} FROM {table}"
        args: list[Any] = []
        if where:
            sql += " WHERE " + " AND ".join(f'"{k}" = ?' for k in where)
            args = [to_text(v) for v in where.values()]
        sql += " ORDER BY rowid"
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            args += [limit, offset]
        with self._lock:
            found = self._db.execute(sql, args).fetchall()
        conv = (lambda t: t) if raw else infer
        return [{c: conv(v) for c, v in zip(columns, r)} for r in found]

    def get(self, table: str, key: str, raw: bool = False) -> dict[str, Any] | None:
        found = self.rows(table, {KEYS.get(table, "uuid"): key}, raw=raw)
        return found[0] if found else None

    def update(self, table: str, key: str, values: dict[str, Any]) -> None:
        sets = ", ".join(f'"{k}" = ?' for k in values)
        args = [to_text(v) for v in values.values()] + [key]
        with self._lock:
            self._db.execute(f"UPDATE {table} SET {sets} WHERE \"{KEYS.get(table, 'uuid')}\" = ?", args)

    def delete(self, table: str, key: str) -> bool:
        with self._lock:
            cur = self._db.execute(f"DELETE FROM {table} WHERE \"{KEYS.get(table, 'uuid')}\" = ?", [key])
        return cur.rowcount > 0

    def clear(self, table: str) -> None:
        with self._lock:
            self._db.execute(f"DELETE FROM {table}")

    def count(self, table: str, where: dict[str, Any] | None = None) -> int:
        sql = f"SELECT COUNT(*) FROM {table}"
        args: list[Any] = []
        if where:
            sql += " WHERE " + " AND ".join(f'"{k}" = ?' for k in where)
            args = [to_text(v) for v in where.values()]
        with self._lock:
            return int(self._db.execute(sql, args).fetchone()[0])

    # -- visibility filter (§2.5) -----------------------------------------------------------
    @staticmethod
    def scope(user: dict[str, Any]) -> dict[str, Any]:
        if user.get("is_admin"):
            return {}
        if user.get("is_project_admin"):
            return {"project_id": user["project_id"]}
        return {"owner_id": user["id"], "project_id": user["project_id"]}

    def visible(self, table: str, user: dict[str, Any]) -> list[dict[str, Any]]:
        return self.rows(table, self.scope(user))

    def get_visible(self, table: str, uuid: str, user: dict[str, Any]) -> dict[str, Any] | None:
        found = self.rows(table, {"uuid": uuid, **self.scope(user)})
        return found[0] if found else None
