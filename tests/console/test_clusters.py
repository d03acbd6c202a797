"""Cluster pages in-process against the real emulator: list, editor, create, detail, delete."""

from __future__ import annotations

import re
import secrets

from pathlib import Path

import httpx

import webconsole.emulator

from tests.conftest import ADMIN_ID, ADMIN_PASSWORD, console_settings, login, start_emulator
from webconsole.app import create_app
from webconsole.hanami.client import HanamiClient
from webconsole.protocol.template import EXAMPLE_CSV_TEMPLATE, EXAMPLE_MNIST_TEMPLATE
from webconsole.web.clusters.pages import known_template

HX = {"HX-Request": "true"}


def unique(prefix: str) -> str:
    return f"{prefix} {secrets.token_hex(3)}"


async def create_cluster(client: httpx.AsyncClient, csrf: str, name: str, template: str = EXAMPLE_MNIST_TEMPLATE) -> str:
    """Create through the console's form; returns the new cluster's uuid."""
    response = await client.post("/clusters", data={"csrf_token": csrf, "name": name, "template": template})
    assert response.status_code == 303, response.text[:2000]
    match = re.search(r"/clusters/([0-9a-f-]{36})$", response.headers["location"])
    assert match, response.headers["location"]
    return match.group(1)


async def test_list_shows_clusters_and_searches(app_client: httpx.AsyncClient) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    name = unique("Listed")
    uuid = await create_cluster(app_client, csrf, name)
    page = await app_client.get("/clusters")
    assert page.status_code == 200
    assert name in page.text and uuid in page.text and "<html" in page.text
    fragment = await app_client.get("/clusters", params={"q": name, "sort": "uuid", "order": "desc"}, headers=HX)
    assert fragment.status_code == 200
    assert "<html" not in fragment.text and "<table" in fragment.text
    assert name in fragment.text and fragment.text.count("<tr data-uuid") == 1
    assert fragment.headers["vary"].lower().find("hx-request") >= 0
    nothing = await app_client.get("/clusters", params={"q": "no such cluster xyz"}, headers=HX)
    assert "No cluster matches" in nothing.text
    await app_client.post(f"/clusters/{uuid}/delete", data={"csrf_token": csrf})


async def test_new_form_offers_examples_and_draws_the_layout(app_client: httpx.AsyncClient) -> None:
    await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    empty = await app_client.get("/clusters/new")
    assert empty.status_code == 200
    assert 'data-testid="template-empty"' in empty.text and "?example=mnist" in empty.text
    mnist = await app_client.get("/clusters/new", params={"example": "mnist"})
    assert "number_of_neurons: 784" in mnist.text
    assert 'data-testid="template-ok"' in mnist.text and "3 bricks, 1194 neurons" in mnist.text
    # The drawing: input -> hidden -> output with their neuron counts, two links between them.
    kinds = re.findall(r'<g class="brick brick-(\w+)" data-kind="\w+" data-neurons="(\d+)"', mnist.text)
    assert kinds == [("input", "784"), ("hidden", "400"), ("output", "10")]
    assert mnist.text.count('<line class="brick-link"') == 2
    assert "input test_input (784) → hidden (400) → output test_output (10)" in mnist.text
    assert "style=" not in mnist.text  # strict CSP: SVG attributes and classes only
    csv = await app_client.get("/clusters/new", params={"example": "csv"})
    assert re.findall(r'data-neurons="(\d+)"', csv.text) == ["1", "32", "1"]


async def test_check_fragment_reports_line_and_column(app_client: httpx.AsyncClient) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    broken = EXAMPLE_MNIST_TEMPLATE.replace("number_of_neurons: 400", "number_of_neurons: 4$0")
    response = await app_client.post(
        "/clusters/new/check", data={"csrf_token": csrf, "name": "", "template": broken.replace("\n", "\r\n")}, headers=HX
    )
    assert response.status_code == 200
    assert "<html" not in response.text and 'id="template-feedback"' in response.text
    # Line 12 is "        number_of_neurons: 4$0"; '$' is at column 29.
    assert 'data-line="12"' in response.text and 'data-column="29"' in response.text
    assert "Line 12, column 29:" in response.text and "invalid character" in response.text
    assert "12 |         number_of_neurons: 4$0" in response.text
    # A semantic error: an unknown brick field.
    typo = EXAMPLE_MNIST_TEMPLATE.replace("output: test_output", "outptu: test_output")
    response = await app_client.post("/clusters/new/check", data={"csrf_token": csrf, "template": typo}, headers=HX)
    assert "unkown brick-field &#39;outptu&#39;" in response.text
    assert 'data-line="14" data-column="9"' in response.text and "it reports this at line 15, column 9" in response.text
    # Without JavaScript the same endpoint answers with the whole form.
    page = await app_client.post("/clusters/new/check", data={"csrf_token": csrf, "name": "keep me", "template": broken})
    assert "<html" in page.text and 'value="keep me"' in page.text and "Line 12, column 29:" in page.text


async def test_check_flags_templates_hanami_accepts_but_cannot_use(app_client: httpx.AsyncClient) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    no_output = "version: 1\nbricks:\n    1,1,1\n        input: x\n        number_of_neurons: 3\n"
    response = await app_client.post("/clusters/new/check", data={"csrf_token": csrf, "template": no_output}, headers=HX)
    assert 'data-testid="template-problems"' in response.text and "No output brick" in response.text
    refused = await app_client.post("/clusters", data={"csrf_token": csrf, "name": unique("Broken"), "template": no_output})
    assert refused.status_code == 422 and "Fix the template first" in refused.text


async def test_create_validates_name_and_shows_backend_409(app_client: httpx.AsyncClient) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    bad = await app_client.post("/clusters", data={"csrf_token": csrf, "name": "1x", "template": EXAMPLE_MNIST_TEMPLATE})
    assert bad.status_code == 422 and 'id="name-error"' in bad.text
    name = unique("Twice")
    uuid = await create_cluster(app_client, csrf, name)
    again = await app_client.post("/clusters", data={"csrf_token": csrf, "name": name, "template": EXAMPLE_MNIST_TEMPLATE})
    assert again.status_code == 422
    assert 'class="backend-message"' in again.text and "already exist" in again.text
    assert "number_of_neurons: 784" in again.text  # the form keeps what the user typed
    await app_client.post(f"/clusters/{uuid}/delete", data={"csrf_token": csrf})


async def test_detail_shows_remembered_template_and_the_tasks_seam(app_client: httpx.AsyncClient) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    name = unique("Detailed")
    uuid = await create_cluster(app_client, csrf, name, EXAMPLE_CSV_TEMPLATE)
    assert await known_template(app_client.app.state.store, uuid) == EXAMPLE_CSV_TEMPLATE  # type: ignore[attr-defined]
    page = await app_client.get(f"/clusters/{uuid}")
    assert page.status_code == 200
    assert f"Cluster &#39;{name}&#39; created" in page.text  # the flash after the redirect
    assert 'data-testid="cluster-template"' in page.text and "number_of_neurons: 32" in page.text
    assert 'data-testid="brick-layout"' in page.text
    assert re.search(rf'hx-get="[^"]*/clusters/{uuid}/tasks" hx-trigger="load" hx-swap="outerHTML"', page.text)
    assert "the first cpu host" in page.text
    await app_client.post(f"/clusters/{uuid}/delete", data={"csrf_token": csrf})


async def test_detail_of_a_cluster_created_elsewhere(app_client: httpx.AsyncClient) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    hanami = app_client.app.state.hanami  # type: ignore[attr-defined]
    api = hanami.api((await hanami.login(ADMIN_ID, ADMIN_PASSWORD)).token)
    cluster = await api.create_cluster(unique("Outside"), EXAMPLE_MNIST_TEMPLATE)
    page = await app_client.get(f"/clusters/{cluster['uuid']}")
    assert page.status_code == 200 and 'data-testid="template-unknown"' in page.text
    assert "created outside this console" in page.text
    await app_client.post(f"/clusters/{cluster['uuid']}/delete", data={"csrf_token": csrf})


async def test_unknown_and_malformed_cluster_is_not_found(app_client: httpx.AsyncClient) -> None:
    await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    missing = await app_client.get("/clusters/00000000-0000-4000-8000-000000000000")
    assert missing.status_code == 404
    malformed = await app_client.get("/clusters/not-a-uuid")
    assert malformed.status_code == 404


async def test_delete_asks_first_and_says_what_goes(app_client: httpx.AsyncClient) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    name = unique("Doomed")
    uuid = await create_cluster(app_client, csrf, name)
    confirm = await app_client.get(f"/clusters/{uuid}/delete")
    assert confirm.status_code == 200 and "task history vanishes" in confirm.text and "cluster-busy" not in confirm.text
    no_csrf = await app_client.post(f"/clusters/{uuid}/delete", data={})
    assert no_csrf.status_code == 403
    done = await app_client.post(f"/clusters/{uuid}/delete", data={"csrf_token": csrf})
    assert done.status_code == 303 and done.headers["location"].endswith("/clusters")
    assert await known_template(app_client.app.state.store, uuid) is None  # type: ignore[attr-defined]
    listing = await app_client.get("/clusters")
    assert uuid not in listing.text and "deleted" in listing.text
    assert (await app_client.get(f"/clusters/{uuid}")).status_code == 404


async def test_empty_states_for_a_new_user(app_client: httpx.AsyncClient) -> None:
    """A member of a fresh project sees no clusters or checkpoints, and is told what to do first."""
    hanami = app_client.app.state.hanami  # type: ignore[attr-defined]
    admin = hanami.api((await hanami.login(ADMIN_ID, ADMIN_PASSWORD)).token)
    suffix = secrets.token_hex(3)
    project, user, password = f"fresh_{suffix}", f"newbie_{suffix}", "newbie-password-1"
    await admin.create_project(project, "Fresh Project")
    await admin.create_user(user, "New Bie", password, False)
    await admin.assign_project(user, project, "member", False)
    try:
        await login(app_client, user, password)
        clusters = await app_client.get("/clusters")
        assert clusters.status_code == 200 and 'data-testid="clusters-empty"' in clusters.text
        assert "Create from the MNIST example" in clusters.text and "/clusters/new?example=mnist" in clusters.text
        checkpoints = await app_client.get("/checkpoints")
        assert 'data-testid="checkpoints-empty"' in checkpoints.text and "Save a checkpoint" in checkpoints.text
    finally:
        await admin.delete_user(user)
        await admin.delete_project(project)


async def test_detail_without_host_and_checkpoint_listing_rights(tmp_path) -> None:
    """A policy that refuses the host and checkpoint lists to members still shows the cluster page."""
    default = (Path(webconsole.emulator.__file__).parent / "policies").read_text()
    policy = tmp_path / "policies"
    policy.write_text(
        default.replace("v1/checkpoint/all\n- GET: admin, member", "v1/checkpoint/all\n- GET: admin")
        .replace("v1/host/all\n- GET: admin, member", "v1/host/all\n- GET: admin")
    )
    server = start_emulator(tmp_path / "state", policy_file=policy)
    try:
        suffix = secrets.token_hex(3)
        project, user, password = f"strict_{suffix}", f"member_{suffix}", "member-password-1"
        async with HanamiClient(server.url) as hanami:
            admin = hanami.api((await hanami.login(ADMIN_ID, ADMIN_PASSWORD)).token)
            await admin.create_project(project, "Strict Project")
            await admin.create_user(user, "A Member", password, False)
            await admin.assign_project(user, project, "member", False)
        app = create_app(console_settings(server.url))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://console.test") as client:
                csrf = await login(client, user, password)
                uuid = await create_cluster(client, csrf, unique("Strict"), EXAMPLE_CSV_TEMPLATE)
                page = await client.get(f"/clusters/{uuid}")
                assert page.status_code == 200
                assert "Your role may not list the hosts" in page.text
                assert "Your role may not list checkpoints" in page.text
                assert (await client.get("/hosts")).status_code == 403
    finally:
        server.stop()


async def test_list_sorts_and_pages(app_client: httpx.AsyncClient) -> None:
    await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    hanami = app_client.app.state.hanami  # type: ignore[attr-defined]
    api = hanami.api((await hanami.login(ADMIN_ID, ADMIN_PASSWORD)).token)
    prefix = f"Paged {secrets.token_hex(3)}"
    uuids = [(await api.create_cluster(f"{prefix} {i:02d}", EXAMPLE_CSV_TEMPLATE))["uuid"] for i in range(11)]
    try:
        first = await app_client.get("/clusters", params={"q": prefix, "per_page": 10, "sort": "name", "order": "desc"}, headers=HX)
        names = re.findall(rf">({prefix} \d\d)</a>", first.text)
        assert names == [f"{prefix} {i:02d}" for i in range(10, 0, -1)]
        assert "1–10 of 11" in first.text and 'rel="next"' in first.text
        second = await app_client.get(
            "/clusters", params={"q": prefix, "per_page": 10, "sort": "name", "order": "desc", "page": 2}, headers=HX
        )
        assert re.findall(rf">({prefix} \d\d)</a>", second.text) == [f"{prefix} 00"]
        assert 'rel="prev"' in second.text
    finally:
        for uuid in uuids:
            await api.delete_cluster(uuid)
