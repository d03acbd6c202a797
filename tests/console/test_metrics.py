"""/metrics: requests by route template, sessions, backend calls."""

from __future__ import annotations

import httpx

from tests.conftest import ADMIN_ID, ADMIN_PASSWORD, login


async def test_metrics_count_requests_by_route_template_and_sessions(app_client: httpx.AsyncClient) -> None:
    await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    await app_client.get("/")
    text = (await app_client.get("/metrics")).text
    assert 'hanami_console_http_requests_total{method="GET",route="/",status="200"}' in text
    assert 'route="/login"' in text
    assert "hanami_console_active_sessions 1.0" in text
    assert 'hanami_console_backend_calls_total{endpoint="POST v1/token",status="200"} 1.0' in text
    assert 'hanami_console_backend_calls_total{endpoint="GET v1/dataset/all",status="200"}' in text
    assert 'hanami_console_open_websockets{kind="backend"} 0.0' in text
    assert "eyJ" not in text
