"""Faults between the console and Hanami, and crashes of either: what the person sees, that the
console recovers when the backend does, and that nothing is left behind on the backend.

Each case runs on SQLite (the default store) and Redis (replicas).
"""

from __future__ import annotations

import asyncio
import html
import json
import re
import secrets
import socket
import struct
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_ID, ADMIN_PASSWORD, ConsoleServer, console_settings, login, wait_for
from tests.faults.conftest import BACKEND_TIMEOUT, BackendProcess, ConsoleProcess
from tests.faults.proxy import FaultProxy
from webconsole.hanami.client import HanamiAPI
from webconsole.sessions import open_store, read_record

TRACEBACK = re.compile(r"Traceback|File \"/|\bline \d+, in\b")
POLL = {"HX-Request": "true", "X-Console-Poll": "1"}


def assert_a_message_not_a_traceback(page: httpx.Response, *expected: str) -> None:
    assert not TRACEBACK.search(page.text), page.text[:2000]
    text = html.unescape(page.text)
    for phrase in expected:
        assert phrase in text, (phrase, page.status_code, text[:2000])


def csv_rows(lines: int) -> bytes:
    return b"x,y\n" + b"".join(b"%d.25,%d.5\n" % (i % 97, i % 89) for i in range(lines))


async def upload_state(store_url: str, upload_id: str) -> dict:
    store = open_store(store_url)
    try:
        return await read_record(store, f"upload:{upload_id}") or {}
    finally:
        await store.aclose()


async def start_csv_upload(client: httpx.AsyncClient, name: str, lines: int = 60000) -> str:
    answer = await client.post("/datasets/upload", data={"csrf_token": client.csrf, "kind": "csv", "name": name},
                               files={"csv": ("rows.csv", csv_rows(lines), "text/csv")})
    assert answer.status_code == 303, answer.text[:500]
    return answer.headers["location"].rsplit("/", 1)[1]


async def sending(store_url: str, upload_id: str) -> dict:
    """Wait until the console -> Hanami leg is under way (some bytes sent, not all)."""

    async def under_way() -> dict | None:
        state = await upload_state(store_url, upload_id)
        return state if state.get("phase") == "sending" and 0 < state.get("bytes_sent", 0) < state["bytes_total"] else None

    return await wait_for(under_way, timeout=30, interval=0.05)


async def status_page(client: httpx.AsyncClient, upload_id: str) -> httpx.Response:
    page = await client.get(f"/datasets/uploads/{upload_id}", headers=POLL)
    assert page.status_code == 200, page.text[:500]
    return page


async def names_on_backend(hanami: HanamiAPI) -> list[str]:
    return [str(record.get("name")) for record in (await hanami.list_datasets()).records()]


# -- page loads ------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["drop", "blackhole"])
async def test_a_page_load_while_the_backend_is_unreachable(console, proxy: FaultProxy, browser, mode) -> None:
    proxy.set_mode(mode)
    proxy.cut()  # pooled connections too
    started = time.monotonic()
    page = await browser.get("/clusters")
    assert time.monotonic() - started < BACKEND_TIMEOUT * 3  # the user is not left waiting
    assert page.status_code == 503
    assert_a_message_not_a_traceback(page, "Hanami cannot be reached")
    proxy.set_mode("pass")
    assert (await browser.get("/clusters")).status_code == 200


async def test_a_slow_link_still_serves_pages(console, proxy: FaultProxy, browser) -> None:
    proxy.set_mode("delay", delay=0.05)
    proxy.cut()
    page = await browser.get("/datasets")
    assert page.status_code == 200 and "Datasets" in page.text


async def test_a_page_load_while_the_backend_is_killed_and_after_it_restarts(
    console, backend: BackendProcess, browser,
) -> None:
    backend.kill()
    page = await browser.get("/clusters")
    assert page.status_code == 503
    assert_a_message_not_a_traceback(page, "Hanami cannot be reached")
    backend.start()
    assert (await browser.get("/clusters")).status_code == 200


async def test_task_polling_while_the_backend_is_away(console, proxy: FaultProxy, browser, hanami) -> None:
    from webconsole.protocol.template import EXAMPLE_CSV_TEMPLATE

    cluster = await hanami.create_cluster(f"poll_{secrets.token_hex(3)}", EXAMPLE_CSV_TEMPLATE)
    try:
        url = f"/clusters/{cluster['uuid']}/tasks"
        assert (await browser.get(url, headers=POLL)).status_code in (200, 286)
        proxy.set_mode("drop")
        proxy.cut()
        fragment = await browser.get(url, headers=POLL)
        assert fragment.status_code == 503
        assert_a_message_not_a_traceback(fragment, "Hanami cannot be reached")
        proxy.set_mode("pass")
        assert (await browser.get(url, headers=POLL)).status_code in (200, 286)
    finally:
        await hanami.delete_cluster(cluster["uuid"])


# -- uploads, console -> Hanami leg ----------------------------------------------------------------

async def test_link_cut_mid_upload_and_backend_away_then_back(
    console, proxy: FaultProxy, browser, hanami, store_url: str,
) -> None:
    name = f"cut upload {secrets.token_hex(3)}"
    proxy.set_mode("delay", delay=0.03)
    upload_id = await start_csv_upload(browser, name)
    await sending(store_url, upload_id)
    assert name in await names_on_backend(hanami)  # the half-made dataset exists now
    proxy.set_mode("drop")
    proxy.cut()

    async def failed() -> httpx.Response | None:
        page = await status_page(browser, upload_id)
        return page if 'data-phase="failed"' in page.text else None

    page = await wait_for(failed, timeout=20)
    assert_a_message_not_a_traceback(page, "The upload failed.", "Hanami could not be reached to delete the half-made dataset")
    assert "nothing was kept" not in page.text
    assert name in await names_on_backend(hanami)  # owed, not forgotten
    proxy.set_mode("pass")

    async def cleaned() -> httpx.Response | None:
        page = await status_page(browser, upload_id)
        return page if "deleted once Hanami answered again" in page.text else None

    assert_a_message_not_a_traceback(await wait_for(cleaned, timeout=20), "The upload failed.")
    assert name not in await names_on_backend(hanami)
    assert (await browser.get("/datasets")).status_code == 200


async def test_backend_killed_mid_upload_then_restarted(
    console, backend: BackendProcess, proxy: FaultProxy, browser, store_url: str,
) -> None:
    name = f"killed backend {secrets.token_hex(3)}"
    proxy.set_mode("delay", delay=0.03)
    upload_id = await start_csv_upload(browser, name)
    await sending(store_url, upload_id)
    backend.kill()

    async def failed() -> httpx.Response | None:
        page = await status_page(browser, upload_id)
        return page if 'data-phase="failed"' in page.text else None

    page = await wait_for(failed, timeout=20)
    assert_a_message_not_a_traceback(page, "Hanami could not be reached to delete the half-made dataset")
    proxy.set_mode("pass")
    backend.start()

    async def cleaned() -> httpx.Response | None:
        page = await status_page(browser, upload_id)
        return page if "deleted once Hanami answered again" in page.text else None

    await wait_for(cleaned, timeout=20)
    from webconsole.hanami.client import HanamiClient

    async with HanamiClient(backend.url) as client:
        api = client.api((await client.login(ADMIN_ID, ADMIN_PASSWORD)).token)
        assert name not in await names_on_backend(api)


async def test_console_killed_mid_upload_is_lost_promptly_and_swept(
    console: ConsoleServer, proxy: FaultProxy, hanami, store_url: str, tmp_path: Path,
) -> None:
    """The console sending an upload is SIGKILLed: another replica on the same store says "lost"
    within seconds, and its sweep deletes the half-made dataset."""
    doomed = ConsoleProcess(proxy.url, store_url, tmp_path).start()
    name = f"killed console {secrets.token_hex(3)}"
    try:
        async with httpx.AsyncClient(base_url=doomed.url, timeout=30) as client:
            client.csrf = await login(client, ADMIN_ID, ADMIN_PASSWORD)  # type: ignore[attr-defined]
            proxy.set_mode("delay", delay=0.05)
            upload_id = await start_csv_upload(client, name)
            await sending(store_url, upload_id)
            cookies = client.cookies
            doomed.kill()
        killed_at = time.monotonic()
        async with httpx.AsyncClient(base_url=console.url, cookies=cookies, timeout=30) as other:
            page = await status_page(other, upload_id)
            assert 'data-phase="sending"' in page.text  # the other replica sees it running, at first

            async def lost() -> httpx.Response | None:
                page = await status_page(other, upload_id)
                return page if 'data-phase="lost"' in page.text else None

            page = await wait_for(lost, timeout=30)
            assert time.monotonic() - killed_at < 15  # seconds, not a minute
            assert_a_message_not_a_traceback(page, "stopped before it finished")
            assert "hx-trigger" not in page.text
            proxy.set_mode("pass")

            async def swept() -> httpx.Response | None:
                page = await status_page(other, upload_id)
                return page if "was deleted from Hanami" in html.unescape(page.text) else None

            # The sweep deletes on Hanami first and records it after: wait for the record, then
            # check the effect it reports.
            page = await wait_for(swept, timeout=20)
            assert_a_message_not_a_traceback(page, "The half-made dataset was deleted from Hanami")
            assert name not in await names_on_backend(hanami)
    finally:
        if doomed.process.poll() is None:
            doomed.kill()


# -- uploads, browser -> console leg ---------------------------------------------------------------

async def test_browser_leg_cut_mid_upload_creates_nothing(console: ConsoleServer, browser, hanami) -> None:
    name = f"browser cut {secrets.token_hex(3)}"
    boundary = "faultboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{browser.csrf}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\ncsv\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\n{name}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"csv\"; filename=\"rows.csv\"\r\n"
            "Content-Type: text/csv\r\n\r\n").encode() + csv_rows(20000)
    cookie = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())
    head = (f"POST /datasets/upload HTTP/1.1\r\nHost: 127.0.0.1:{console.port}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {len(body) * 2}\r\n"
            f"Cookie: {cookie}\r\nOrigin: {console.url}\r\n\r\n").encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", console.port)
    writer.write(head + body)  # half of what the header announces, then the browser goes away
    await writer.drain()
    writer.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.close()
    await browser.aclose()  # only the cut request is left on the console
    requests = console.server.server_state.tasks

    async def request_ended() -> bool:
        return not requests

    await wait_for(request_ended, timeout=20)
    assert not any(Path(console.settings.upload_dir).iterdir())
    assert name not in await names_on_backend(hanami)



# -- a replica on the same store after the backend came back ---------------------------------------

async def test_a_replica_started_later_sweeps_what_is_owed(
    console, proxy: FaultProxy, browser, hanami, store_url: str, backend: BackendProcess,
) -> None:
    """The replica that owes a delete still cannot reach Hanami; one started later on the same
    store (with a working link) does the delete in its sweep at start."""
    name = f"owed delete {secrets.token_hex(3)}"
    proxy.set_mode("delay", delay=0.03)
    upload_id = await start_csv_upload(browser, name)
    await sending(store_url, upload_id)
    proxy.set_mode("drop")
    proxy.cut()

    async def owed() -> bool:
        return (await upload_state(store_url, upload_id)).get("half_dataset") == "pending"

    await wait_for(owed, timeout=20)
    assert name in await names_on_backend(hanami)
    later = ConsoleServer(console_settings(backend.url, session_store_url=store_url,
                                           cleanup_interval=3600)).start()
    try:
        async def swept() -> httpx.Response | None:
            page = await status_page(browser, upload_id)
            return page if "deleted once Hanami answered again" in page.text else None

        # The sweep deletes on Hanami first and records it after: wait for the record.
        page = await wait_for(swept, timeout=20)
    finally:
        later.stop()
    assert_a_message_not_a_traceback(page, "deleted once Hanami answered again")
    assert name not in await names_on_backend(hanami)


# -- the direct-IO bridge --------------------------------------------------------------------------

@pytest.mark.parametrize("fault", ["cut", "blackhole"])
async def test_bridge_loses_the_backend_then_the_cluster_goes_back_to_task_mode(
    console: ConsoleServer, proxy: FaultProxy, hanami, fault: str,
) -> None:
    """The link dies under an open bridge: the page gets a message and the bridge closes; the
    cluster cannot be returned to TASK then, so the sweep does it once Hanami answers again."""
    from tests.console.test_direct_io import DIGIT, Browser, closed, until
    from webconsole.hanami.errors import Conflict

    browser = await Browser(console).login()
    try:
        uuid = await browser.create_cluster()
        ws, _ = await browser.bridge(uuid)
        await ws.send(json.dumps({"op": "ask", "values": DIGIT}))
        await until(ws, lambda m: m["type"] == "output")
        if fault == "cut":
            proxy.set_mode("drop")
            proxy.cut()
        else:
            proxy.set_mode("blackhole")
        await ws.send(json.dumps({"op": "ask", "values": DIGIT}))
        final = await closed(ws, timeout=BACKEND_TIMEOUT * 8)
        assert not TRACEBACK.search(json.dumps(final)) and final["message"]
        assert final["task_mode"] is False and "Return to task mode" in final["message"]
        with pytest.raises(Conflict):  # "already DIRECT": the bridge could not switch it back
            await hanami.set_mode(uuid, "DIRECT")
        proxy.set_mode("pass")

        async def swept() -> bool:
            page = await browser.http.get(f"/clusters/{uuid}/direct")
            return page.status_code == 200 and 'data-testid="left-direct"' not in page.text

        await wait_for(swept, timeout=20)
        with pytest.raises(Conflict):  # "already TASK": the sweep returned it
            await hanami.set_mode(uuid, "TASK")
        ws, _ = await browser.bridge(uuid)  # the console recovered: direct IO works again
        await ws.close()

        async def page_free() -> bool:
            page = await browser.http.get(f"/clusters/{uuid}/direct")
            return 'data-testid="held-by"' not in page.text

        await wait_for(page_free, timeout=20)
        await hanami.delete_cluster(uuid)
    finally:
        await browser.aclose()



async def test_bridge_when_the_backend_is_killed_and_restarted(
    console: ConsoleServer, backend: BackendProcess,
) -> None:
    """A SIGKILLed Hanami takes its clusters with it: the page is told, the console keeps no lock
    or direct-mode record that would block or confuse the restarted backend."""
    from tests.console.test_direct_io import DIGIT, Browser, closed

    browser = await Browser(console).login()
    try:
        uuid = await browser.create_cluster()
        ws, _ = await browser.bridge(uuid)
        backend.kill()
        await ws.send(json.dumps({"op": "ask", "values": DIGIT}))
        final = await closed(ws, timeout=BACKEND_TIMEOUT * 8)
        assert not TRACEBACK.search(json.dumps(final)) and final["message"]
        backend.start()
        page = await browser.http.get(f"/clusters/{uuid}/direct")
        assert page.status_code == 404  # gone with the restart, said plainly
        assert_a_message_not_a_traceback(page, "Not found")

        async def nothing_kept() -> bool:
            store = open_store(console.settings.session_store_url)
            try:
                return not await store.keys(f"bridge:{uuid}") and not await store.keys(f"direct-mode:{uuid}")
            finally:
                await store.aclose()

        await wait_for(nothing_kept, timeout=20)
        assert (await browser.http.get("/clusters")).status_code == 200
    finally:
        await browser.aclose()


async def test_an_upload_over_a_slow_link_completes(console, proxy: FaultProxy, browser, hanami) -> None:
    name = f"slow link {secrets.token_hex(3)}"
    proxy.set_mode("delay", delay=0.01)
    upload_id = await start_csv_upload(browser, name, lines=20000)

    async def done() -> httpx.Response | None:
        page = await status_page(browser, upload_id)
        return page if 'data-phase="done"' in page.text else None

    assert_a_message_not_a_traceback(await wait_for(done, timeout=60), "is ready on Hanami")
    made = [d for d in (await hanami.list_datasets()).records() if d.get("name") == name]
    assert len(made) == 1 and (await hanami.dataset_progress(made[0]["uuid"]))["complete"] is True
    await hanami.delete_dataset(made[0]["uuid"])


async def test_console_killed_with_an_open_bridge(
    console: ConsoleServer, proxy: FaultProxy, hanami, store_url: str, tmp_path: Path,
) -> None:
    """The console holding a bridge is SIGKILLed: its lock lapses within seconds, and the other
    replica's sweep returns the cluster to task mode; the page on that replica then offers direct IO."""
    from tests.console.test_direct_io import Browser
    from webconsole.hanami.errors import Conflict

    doomed = ConsoleProcess(proxy.url, store_url, tmp_path).start()
    browser = await Browser(doomed).login()  # type: ignore[arg-type]
    try:
        uuid = await browser.create_cluster()
        ws, _ = await browser.bridge(uuid)
        doomed.kill()
        with pytest.raises(Conflict):  # "already DIRECT": the dead console left it there
            await hanami.set_mode(uuid, "DIRECT")
        other = Browser(console)
        other.http.cookies.update(browser.http.cookies)

        async def returned() -> bool:
            page = await other.http.get(f"/clusters/{uuid}/direct")
            return (page.status_code == 200 and 'data-testid="held-by"' not in page.text
                    and 'data-testid="left-direct"' not in page.text)

        await wait_for(returned, timeout=30)
        with pytest.raises(Conflict):  # "already TASK": the sweep switched it back
            await hanami.set_mode(uuid, "TASK")
        await other.aclose()
        await hanami.delete_cluster(uuid)
    finally:
        await browser.aclose()
        if doomed.process.poll() is None:
            doomed.kill()
