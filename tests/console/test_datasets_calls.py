"""The dataset list asks Hanami for the list once per view, however many rows it shows."""

from __future__ import annotations

import re

import httpx

from tests.conftest import ADMIN_ID, ADMIN_PASSWORD, login


def _calls(metrics: str, endpoint: str) -> float:
    total = 0.0
    for match in re.finditer(
        r'^hanami_console_backend_calls_total\{endpoint="' + re.escape(endpoint) + r'",status="\d+"\} (\S+)$',
        metrics, re.M,
    ):
        total += float(match.group(1))
    return total


async def test_one_list_call_per_view(app_client: httpx.AsyncClient, emulator, demo_files) -> None:
    from webconsole.hanami.client import HanamiClient

    async with HanamiClient(emulator.url) as hanami:
        api = hanami.api((await hanami.login(ADMIN_ID, ADMIN_PASSWORD)).token)
        created = [await api.upload_csv(f"calls {index} {id(app_client)}", demo_files.csv) for index in range(3)]
        try:
            await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
            before = (await app_client.get("/metrics")).text
            page = await app_client.get("/datasets")
            assert page.status_code == 200
            after = (await app_client.get("/metrics")).text
            assert _calls(after, "GET v1/dataset/all") - _calls(before, "GET v1/dataset/all") == 1
            shown = _calls(after, "GET v1/dataset") - _calls(before, "GET v1/dataset")
            assert 3 <= shown <= 25  # one detail call per row on the page
        finally:
            for uuid in created:
                await api.delete_dataset(uuid)
