"""Hosts page (on each backend) and moving a cluster to another host (on the emulator: the real
server built without CUDA has a single cpu host, so there is nowhere to move a cluster to)."""

from __future__ import annotations

import re

import httpx

from tests.conftest import ADMIN_ID, ADMIN_PASSWORD, in_process_console, login
from tests.console.test_checkpoints import admin_api
from tests.console.test_clusters import HX, create_cluster, unique
from webconsole.protocol.template import EXAMPLE_CSV_TEMPLATE


def host_cell(html: str, host_uuid: str) -> str:
    match = re.search(rf'<tr data-uuid="{host_uuid}">(.*?)</tr>', html, re.S)
    assert match, f"host {host_uuid} not listed"
    return match.group(1)


async def test_hosts_list_shows_a_new_cluster_on_the_first_cpu_host(app_client: httpx.AsyncClient) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    hosts = (await (await admin_api(app_client)).list_hosts()).records()
    assert hosts and hosts[0]["type"] == "cpu"
    name = unique("Placed")
    uuid = await create_cluster(app_client, csrf, name, EXAMPLE_CSV_TEMPLATE)
    page = await app_client.get("/hosts")
    assert page.status_code == 200 and "<h1>Hosts</h1>" in page.text
    assert name in host_cell(page.text, hosts[0]["uuid"])
    assert all(name not in host_cell(page.text, host["uuid"]) for host in hosts[1:])
    detail = await app_client.get(f"/clusters/{uuid}")
    assert "the first cpu host" in detail.text
    refused = await app_client.post(f"/clusters/{uuid}/host", data={"csrf_token": csrf, "host_uuid": "x"})
    assert refused.status_code == 422 and "Choose a host from the list" in refused.text
    await app_client.post(f"/clusters/{uuid}/delete", data={"csrf_token": csrf})


async def test_switch_host_on_the_emulators_second_host(emulator) -> None:
    async with in_process_console(emulator.url) as app_client:
        await _switch_host(app_client)


async def _switch_host(app_client: httpx.AsyncClient) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    hosts = (await (await admin_api(app_client)).list_hosts()).records()
    first_cpu, other = hosts[0]["uuid"], hosts[1]["uuid"]
    name = unique("Mover")
    uuid = await create_cluster(app_client, csrf, name, EXAMPLE_CSV_TEMPLATE)
    page = await app_client.get("/hosts")
    assert name in host_cell(page.text, first_cpu) and name not in host_cell(page.text, other)

    refused = await app_client.post(f"/clusters/{uuid}/host", data={"csrf_token": csrf, "host_uuid": "x"})
    assert refused.status_code == 422 and "Choose a host from the list" in refused.text
    moved = await app_client.post(f"/clusters/{uuid}/host", data={"csrf_token": csrf, "host_uuid": other})
    assert moved.status_code == 303
    detail = await app_client.get(moved.headers["location"])
    # Hosts by name ("cpu host 2", numbered per type in Hanami's order), the uuid only as a detail.
    label = f"{hosts[1]['type']} host {sum(1 for h in hosts[:2] if h['type'] == hosts[1]['type'])}"
    assert f"Cluster moved to {label} (id {other})" in detail.text
    assert re.search(rf'data-testid="cluster-host">\s*{label} <details class="id-detail"><summary>id</summary>'
                     rf'<code class="uuid copy-id">{other}</code>', detail.text)
    assert f">{label} (current)</option>" in detail.text and f"— {other}" not in detail.text
    fragment = await app_client.get("/hosts", headers=HX)
    assert "<html" not in fragment.text
    assert name in host_cell(fragment.text, other) and name not in host_cell(fragment.text, first_cpu)
    await app_client.post(f"/clusters/{uuid}/delete", data={"csrf_token": csrf})


async def test_a_host_names_ten_clusters_and_links_to_the_rest(app_client: httpx.AsyncClient) -> None:
    """A host's row names its first ten clusters (by name) and links to the cluster list filtered by
    host, which lists them all, keeps the filter through a search, and says so when the host is gone."""
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    api = await admin_api(app_client)
    first_cpu = (await api.list_hosts()).records()[0]
    prefix = unique("Crowd")
    uuids = [await create_cluster(app_client, csrf, f"{prefix} {n:02d}", EXAMPLE_CSV_TEMPLATE) for n in range(11)]
    try:
        everyone = sorted((await api.list_clusters()).records(), key=lambda c: str(c["name"]).lower())
        cell = host_cell((await app_client.get("/hosts")).text, first_cpu["uuid"])
        named = re.findall(r'<li><a href="/clusters/([0-9a-f-]+)">', cell)
        assert named == [str(c["uuid"]) for c in everyone[:10]]  # nothing else is moved: all on the first host
        more = re.search(r'<a href="(/clusters\?host=[^"]+)">and (\d+) more on cpu host 1</a>', cell)
        assert more and int(more.group(2)) == len(everyone) - 10

        filtered = await app_client.get(more.group(1).replace("&amp;", "&") + "&per_page=100")
        assert 'data-testid="host-filter">Clusters on cpu host 1' in filtered.text
        assert set(uuids) <= set(re.findall(r'<tr data-uuid="([0-9a-f-]+)">', filtered.text))
        assert f'<input type="hidden" name="host" value="{first_cpu["uuid"]}">' in filtered.text
        searched = await app_client.get("/clusters", params={"host": first_cpu["uuid"], "q": f"{prefix} 03"})
        assert re.findall(r'<tr data-uuid="([0-9a-f-]+)">', searched.text) == [uuids[3]]
        assert "Clusters on cpu host 1" in searched.text

        gone = await app_client.get("/clusters", params={"host": "00000000-0000-0000-0000-000000000000"})
        assert gone.status_code == 200 and 'data-testid="host-gone"' in gone.text
        assert "host-filter" not in gone.text and uuids[0] in gone.text
    finally:
        for uuid in uuids:
            await app_client.post(f"/clusters/{uuid}/delete", data={"csrf_token": csrf})
