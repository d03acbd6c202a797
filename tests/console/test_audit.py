"""The audit timeline: Hanami's audit log (own entries) merged with the console's trail, filtered and paged."""

from __future__ import annotations

import re
import secrets
import time
from datetime import datetime, timezone

import httpx

from tests.conftest import ADMIN_ID, ADMIN_PASSWORD, login
from tests.console.test_admin import MEMBER_PASSWORD, admin_cleanup, create_member, create_project
from webconsole.hanami.client import HanamiClient
from webconsole.protocol.template import EXAMPLE_CSV_TEMPLATE
from webconsole.web.admin.audit import parse_backend_time


def rows_of(html: str) -> list[str]:
    return re.findall(r'<tr class="source-(backend|console)"', html)


def test_backend_times_without_padding_parse() -> None:
    # Hanami's local time (Q-L4), read in the console host's time zone: compared with a value made
    # independently, not with another parse (two Nones would be equal).
    expected = datetime(2024, 1, 8, 9, 3, 7).timestamp()
    assert parse_backend_time("2024-1-8 9:3:7") == expected
    assert parse_backend_time("2024-01-08 09:03:07") == expected
    assert parse_backend_time("2024-12-31 23:59:59") == datetime(2024, 12, 31, 23, 59, 59).timestamp()
    for garbage in ("garbage", "2024-1-8", "2024-1-8 9:3", "2024-13-8 9:3:7", None, ""):
        assert parse_backend_time(garbage) is None, garbage


def backend_times(html: str) -> list[str]:
    """The UTC time cells of the Hanami rows."""
    return re.findall(r'<tr class="source-backend"[^>]*>\s*<td title="Hanami local time [^"]*">([^<]*)</td>', html)


async def test_timeline_merges_both_sources_with_filters(app_client, backend) -> None:
    project = f"audit_{secrets.token_hex(3)}"
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    try:
        await create_project(app_client, csrf, project)
        page = await app_client.get("/audit", params={"per_page": 100})
        assert page.status_code == 200
        assert "source-backend" in page.text and "source-console" in page.text
        # The console's entry for the creation, and Hanami's POST v1/project for it.
        console = await app_client.get("/audit", params={"source": "console", "action": "create project",
                                                         "q": project})
        assert set(rows_of(console.text)) == {"console"} and len(rows_of(console.text)) == 1
        assert project in console.text
        from_backend = await app_client.get("/audit", params={"source": "backend", "action": "v1/project",
                                                              "method": "POST"})
        assert rows_of(from_backend.text) and set(rows_of(from_backend.text)) == {"backend"}
        assert "v1/project" in from_backend.text
        # Hanami's times are converted to UTC: the creation just made shows the time it was made.
        times = backend_times(from_backend.text)
        assert times and "?" not in times
        newest = datetime.strptime(max(times), "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
        assert abs(newest - time.time()) < 120, max(times)
        # A time range over the last hour keeps Hanami's rows (a row without a time would be dropped).
        hour_ago = datetime.fromtimestamp(time.time() - 3600, timezone.utc).strftime("%Y-%m-%dT%H:%M")
        recent = await app_client.get("/audit", params={"source": "backend", "action": "v1/project",
                                                        "method": "POST", "since": hour_ago})
        assert "backend" in rows_of(recent.text)
        # The filter state is in the URL: paging links keep it.
        assert "source=backend" in from_backend.text and "method=POST" in from_backend.text
        # Newest first: the creation we just made is on the first page.
        first = await app_client.get("/audit", params={"action": "project", "per_page": 10})
        assert project in first.text
        # A time range in the future matches nothing.
        future = await app_client.get("/audit", params={"since": "2999-01-01T00:00"})
        assert "No entries" in future.text and not rows_of(future.text)
        fragment = await app_client.get("/audit", params={"source": "console"}, headers={"HX-Request": "true"})
        assert fragment.text.lstrip().startswith('<div id="timeline">')
    finally:
        await admin_cleanup(backend.url, [], [project])


async def test_member_sees_only_own_console_entries_and_own_backend_log(app_client, backend) -> None:
    tag = secrets.token_hex(3)
    project, member = f"audm_{tag}", f"audm_user_{tag}"
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    try:
        await create_project(app_client, csrf, project)
        await create_member(app_client, csrf, member, project)
        async with httpx.AsyncClient(transport=app_client._transport, base_url="http://console.test") as other:
            await login(other, member, MEMBER_PASSWORD)
            page = await other.get("/audit", params={"per_page": 100})
            assert page.status_code == 200
            users = set(re.findall(r'<td class="audit-user">([^<]*)</td>', page.text))
            assert users == {member}
            assert "login" in page.text
            # The member made no change request yet: Hanami has no entry for them.
            assert "backend" not in rows_of(page.text)
        # The admin sees the member's login among all console entries.
        admin_view = await app_client.get("/audit", params={"user": member, "source": "console"})
        assert "login" in admin_view.text and member in admin_view.text
    finally:
        await admin_cleanup(backend.url, [member], [project])


async def test_backend_log_paging_exactly_one_full_page_then_more(app_client, backend) -> None:
    """Exactly 100 entries (one full page), then 101: every entry shown, no page past the end asked for
    (a page past the end would answer 500, Q-L3, and the audit page would fail)."""
    user = f"pager_{secrets.token_hex(3)}"
    password = "pager-password-1"
    async with HanamiClient(backend.url) as hanami:
        admin = hanami.api((await hanami.login(ADMIN_ID, ADMIN_PASSWORD)).token)
        await admin.create_user(user, "Pager Admin", password, True)
        try:
            own = hanami.api((await hanami.login(user, password)).token)
            for _ in range(100):  # each renewal is a PUT v1/token: one audit entry of this user
                await own.renew("admin")
            async with httpx.AsyncClient(transport=app_client._transport, base_url="http://console.test") as client:
                await login(client, user, password)
                params = {"source": "backend", "per_page": 100}
                page = await client.get("/audit", params=params)
                assert page.status_code == 200
                assert "1–100 of 100</span>" in page.text
                await own.renew("admin")
                page = await client.get("/audit", params=params)
                assert "1–100 of 101</span>" in page.text
                second = await client.get("/audit", params={**params, "page": 2})
                assert "101–101 of 101</span>" in second.text and len(rows_of(second.text)) == 1
        finally:
            await admin.delete_user(user)


async def test_rows_in_plain_words_with_names_instead_of_uuids(app_client, backend, demo_files) -> None:
    from tests.console.test_clusters import create_cluster

    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    name = f"Audited {secrets.token_hex(3)}"
    cluster = await create_cluster(app_client, csrf, name)
    try:
        # The console's row: its detail names the cluster, the uuid stays as a detail to copy.
        deleted = await app_client.post(f"/clusters/{cluster}/delete", data={"csrf_token": csrf})
        assert deleted.status_code == 303
        console = await app_client.get("/audit", params={"source": "console", "q": cluster})
        assert rows_of(console.text) == ["console"]
        row = console.text.split('<tr class="source-console"')[1].split("</tr>")[0]
        assert f'<code class="uuid copy-id">{cluster}</code>' in row
        # Hanami's row: what was done in words, the endpoint beside it.
        from_backend = await app_client.get("/audit", params={"source": "backend", "action": "v1/cluster", "method": "POST"})
        first = from_backend.text.split('<tr class="source-backend"')[1].split("</tr>")[0]
        assert "create cluster" in first and "<code>v1/cluster</code>" in first
        # A detail naming a listed cluster reads its name, not its uuid.
        other = await create_cluster(app_client, csrf, name + " b", EXAMPLE_CSV_TEMPLATE)
        async with HanamiClient(backend.url) as hanami:
            api = hanami.api((await hanami.login(ADMIN_ID, ADMIN_PASSWORD)).token)
            dataset = await api.upload_csv(f"audit curve {secrets.token_hex(3)}", demo_files.csv)
        try:
            queued = await app_client.post("/tasks/new", data={
                "csrf_token": csrf, "name": "audited request", "type": "request", "cluster_uuid": other,
                "dataset_uuid": dataset, "repeat": "1"})
            assert queued.status_code == 303, queued.text[:500]
            page = await app_client.get("/audit", params={"source": "console", "action": "create task", "q": other})
            row = page.text.split('<tr class="source-console"')[1].split("</tr>")[0]
            assert f"on cluster &#39;{name} b&#39;" in row and f'<code class="uuid copy-id">{other}</code>' in row
        finally:
            await app_client.post(f"/clusters/{other}/delete", data={"csrf_token": csrf})
            async with HanamiClient(backend.url) as hanami:
                api = hanami.api((await hanami.login(ADMIN_ID, ADMIN_PASSWORD)).token)
                await api.delete_dataset(dataset)
    finally:
        async with HanamiClient(backend.url) as hanami:
            api = hanami.api((await hanami.login(ADMIN_ID, ADMIN_PASSWORD)).token)
            if (await api.list_clusters()).find("uuid", cluster):
                await api.delete_cluster(cluster)
