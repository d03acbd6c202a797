"""Where the templates and static files are, installed or in a source checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _find(name: str) -> Path:
    # Installed: webconsole/templates (mapped by pyproject); source tree: ../templates next to the package.
    for candidate in (_PACKAGE / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise RuntimeError(f"cannot find the console's {name}/ folder next to {_PACKAGE}")


def templates_dir() -> Path:
    """The folder holding the Jinja templates."""
    return _find("templates")


def static_dir() -> Path:
    """The folder holding CSS, scripts and vendored libraries."""
    return _find("static")
