"""What an action did, observed from outside the page: the backend calls made, the audit rows written,
the log lines.

A test of an action asserts one of these (or the backend's own state), never only the redirect.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Any, Iterator

from webconsole.audit import AuditEntry


class BackendCalls:
    """Every REST call the console makes to Hanami (the client's own on_call observer)."""

    def __init__(self, app: Any) -> None:
        self.calls: list[str] = []
        self._client = app.state.hanami
        self._previous = self._client.on_call
        self._client.on_call = self._observe

    def stop(self) -> None:
        """Stop observing (for an app that outlives the test)."""
        self._client.on_call = self._previous

    def _observe(self, endpoint: str, status: int | None, seconds: float, error: str | None) -> None:
        self.calls.append(endpoint)
        if self._previous is not None:
            self._previous(endpoint, status, seconds, error)

    def writes(self) -> list[str]:
        return [call for call in self.calls if not call.startswith("GET ")]

    def count(self, endpoint: str) -> int:
        """How often ``endpoint`` (e.g. ``"POST v1/cluster/load"``) was called."""
        return self.calls.count(endpoint)


async def audit_rows(app: Any, user_id: str, action: str, since: float | None = None) -> list[AuditEntry]:
    """The console's audit entries of ``user_id`` for ``action``, newest first."""
    entries = await app.state.audit.entries(user_id=user_id, since=since)
    return [entry for entry in entries if entry.action == action]


@contextmanager
def logged(name: str) -> Iterator[list[logging.LogRecord]]:
    """The records of logger ``name`` while the block runs (the console installs its own root handler
    when its app is made, so pytest's capture does not see an app made inside the test)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
