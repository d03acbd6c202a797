"""One HTTP answer of the emulated backend, as the pipeline and the static files build it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "text/plain"
    close_without_reply: bool = False  # faithful crash: drop the TCP connection

    @classmethod
    def json(cls, obj: dict[str, Any]) -> "Response":
        text = json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)
        return cls(200, text.encode(), "text/json")

    @classmethod
    def text(cls, status: int, text: str = "") -> "Response":
        return cls(status, text.encode(), "text/plain")
