"""Server-side session storage: one interface, memory / SQLite / Redis backends."""

from webconsole.sessions.base import KeyValueStore, open_store, read_record, read_records
from webconsole.sessions.manager import Session, SessionManager

__all__ = ["KeyValueStore", "Session", "SessionManager", "open_store", "read_record", "read_records"]
