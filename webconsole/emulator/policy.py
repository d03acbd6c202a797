"""Policy file (§2.4): endpoint id -> method -> allowed roles."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

METHODS = ("GET", "POST", "PUT", "DELETE")
_ENDPOINT_LINE = re.compile(r"^[a-zA-Z][a-zA-Z_/0-9]*$")
_RULE_LINE = re.compile(r"^-(GET|POST|PUT|DELETE):([a-zA-Z_0-9]*(?:,[a-zA-Z_0-9]*)*)$")


class PolicyError(ValueError):
    pass


class Policy:
    def __init__(self, rules: dict[str, dict[str, frozenset[str]]]):
        self.rules = rules

    @classmethod
    def parse(cls, text: str) -> "Policy":
        rules: dict[str, dict[str, frozenset[str]]] = {}
        current: dict[str, frozenset[str]] | None = None
        seen: set[str] = set()
        for number, raw in enumerate(text.split("\n"), start=1):
            line = raw.replace(" ", "").replace("\t", "")
            if not line:
                continue
            rule = _RULE_LINE.match(line)
            if rule:
                if current is None:
                    raise PolicyError(f"policy line {number}: rule without endpoint")
                roles = frozenset(r for r in rule.group(2).split(",") if r)
                current.setdefault(rule.group(1), roles)
                continue
            if _ENDPOINT_LINE.match(line):
                if line in seen:  # a second block for the same endpoint is ignored
                    current = {}
                else:
                    seen.add(line)
                    current = rules.setdefault(line, {})
                continue
            raise PolicyError(f"policy line {number}: syntax error: {raw!r}")
        return cls(rules)

    @classmethod
    def load(cls, path: Path | None) -> "Policy":
        if path is None:
            text = resources.files("webconsole.emulator").joinpath("policies").read_text()
        else:
            text = Path(path).read_text()
        return cls.parse(text)

    def allows(self, endpoint: str, method: str, role: str) -> bool:
        return role in self.rules.get(endpoint, {}).get(method, frozenset())
