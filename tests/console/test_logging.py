"""Structured logs: JSON lines with request ids, and never a token or a password."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_ID, ADMIN_PASSWORD, console_settings, login, start_emulator
from webconsole.app import create_app
from webconsole.logging_setup import JsonFormatter, redact


async def test_json_logs_carry_request_ids_and_no_secret(
    app_client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    await app_client.get("/")
    session = await app_client.app.state.sessions.load(  # type: ignore[attr-defined]
        app_client.cookies["hanami_console_session"], touch=False)
    lines = [JsonFormatter().format(record) for record in caplog.records]
    assert lines
    access = [json.loads(line) for line in lines if '"message": "request"' in line]
    assert any(entry["path"] == "/login" and entry["request_id"] for entry in access)
    everything = "\n".join(lines)
    assert ADMIN_PASSWORD not in everything
    assert session.token not in everything and session.token.split(".")[2] not in everything


def test_anything_shaped_like_a_token_is_masked() -> None:
    jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOjF9.c2lnbmF0dXJl"
    assert redact(f"token={jwt} end") == "token=[token] end"
    record = logging.makeLogRecord({"msg": "x", "password": "hunter2-secret", "token": jwt})
    line = JsonFormatter().format(record)
    assert "hunter2-secret" not in line and jwt not in line


async def test_backend_down_shows_a_banner_not_a_traceback(tmp_path: Path) -> None:
    backend = start_emulator(tmp_path / "hanami")
    app = create_app(console_settings(backend.url))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as client:
            await login(client, ADMIN_ID, ADMIN_PASSWORD)
            backend.stop()
            page = await client.get("/")
            assert page.status_code == 503
            assert "Hanami cannot be reached" in page.text and 'class="banner banner-error"' in page.text
            assert "Traceback" not in page.text


async def test_backend_calls_are_logged_at_debug_only(emulator, caplog: pytest.LogCaptureFixture) -> None:
    """At INFO a page view writes its access line, not one line per backend call (the client's own
    line is DEBUG; httpx's "HTTP Request" line is kept for debugging)."""
    for level, shown in (("info", False), ("debug", True)):
        app = create_app(console_settings(emulator.url, log_level=level))
        logging.getLogger().addHandler(caplog.handler)  # create_app installed the console's own handler
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as client:
                await login(client, ADMIN_ID, ADMIN_PASSWORD)
                caplog.clear()
                caplog.handler.setLevel(level.upper())
                assert (await client.get("/clusters")).status_code == 200
        messages = [(record.levelno, record.name, record.getMessage()) for record in caplog.records]
        assert (logging.INFO, "webconsole.access", "request") in messages, messages  # the access line
        calls = [entry for entry in messages if entry[1] == "httpx" or entry[2].startswith("hanami GET")]
        assert bool(calls) == shown, messages
        assert all(levelno <= logging.DEBUG for levelno, name, _ in calls if name != "httpx"), calls
