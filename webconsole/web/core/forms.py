"""Hanami's own input rules (contract §1.6) for the team-administration forms.

The same rules are written into the HTML (pattern/minlength/maxlength, checked live by
static/js/forms.js) and checked here again, so malformed input never reaches the backend.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    """One value class: a full-match regex, byte limits, and the message a person reads."""

    pattern: str | None
    min_bytes: int
    max_bytes: int
    message: str

    def check(self, value: str) -> str | None:
        """The message if ``value`` breaks the rule, else None (regex first, like Hanami)."""
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            return self.message
        size = len(value.encode())
        if size < self.min_bytes or size > self.max_bytes:
            return self.message
        return None


ID = Rule(r"[a-zA-Z][a-zA-Z_0-9]*", 4, 256,
          "4 to 256 letters, digits or underscores, starting with a letter.")
ID_EXT = Rule(r"[a-zA-Z][a-zA-Z_0-9@]*", 4, 256,
              "4 to 256 letters, digits, underscores or @, starting with a letter.")
NAME = Rule(r"[a-zA-Z][a-zA-Z_0-9 ]*", 4, 256,
            "4 to 256 letters, digits, underscores or spaces, starting with a letter.")
PASSWORD = Rule(None, 8, 4096, "At least 8 characters (at most 4096 bytes).")

ROLE_SUGGESTIONS = ("admin", "member")


def check_fields(values: dict[str, str], rules: dict[str, Rule]) -> dict[str, str]:
    """Messages per field name for every value that breaks its rule."""
    errors: dict[str, str] = {}
    for name, rule in rules.items():
        message = rule.check(values.get(name, ""))
        if message:
            errors[name] = message
    return errors


def checkbox(value: str | None) -> bool:
    """An HTML checkbox: present (any value) means true. Hanami needs a real boolean (Q-U2)."""
    return value is not None and value != ""
