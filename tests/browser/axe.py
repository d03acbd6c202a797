"""axe-core in the browser tests: WCAG 2.x A/AA and best-practice rules, run on a loaded page.

axe-core (MPL-2.0) is a test-only npm package: ``cd tests/browser && npm ci`` installs the version
pinned in ``package.json`` (``.ci/run`` does it); ``HANAMI_CONSOLE_AXE_JS`` may point to another
``axe.min.js``. It is evaluated through the DevTools protocol, so the console's CSP (which allows
only its own scripts) stays as it is.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from playwright.sync_api import Page

AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
DEFAULT_AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"


@lru_cache(maxsize=1)
def axe_source() -> str:
    path = Path(os.environ.get("HANAMI_CONSOLE_AXE_JS", DEFAULT_AXE))
    if not path.is_file():
        # Never skip: CI must prove the accessibility check ran.
        raise RuntimeError(f"axe-core not found at {path}: run `npm ci` in tests/browser")
    return path.read_text(encoding="utf-8")


def run_axe(page: Page) -> list[dict[str, Any]]:
    """The violations on the current page: rule id, impact, help and the offending elements."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(axe_source())
    result = page.evaluate(
        """async (tags) => {
            const r = await axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']});
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                          nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}));
        }""",
        AXE_TAGS,
    )
    return result


def sideways_overflow(page: Page) -> int:
    """How many CSS pixels the page is wider than the window (0: nothing scrolls sideways)."""
    return page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
