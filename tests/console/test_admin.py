"""Team administration through the console: projects, users, assignments, roles enforced server-side."""

from __future__ import annotations

import re
import secrets

import httpx

from tests.conftest import ADMIN_ID, ADMIN_PASSWORD, login
from webconsole.hanami.client import HanamiClient
from webconsole.protocol.template import EXAMPLE_CSV_TEMPLATE

MEMBER_PASSWORD = "member-password-1"

# Every admin-only route of the console, GET and POST, with placeholders filled per test.
ADMIN_GETS = [
    "/projects", "/projects/new", "/projects/{project}", "/projects/{project}/delete",
    "/users", "/users/new", "/users/{user}", "/users/{user}/delete",
    "/users/{user}/projects/{project}/remove", "/errors", "/errors?without_user=1",
]
ADMIN_POSTS = [
    ("/projects", {"id": "sneaky_project", "name": "Sneaky"}),
    ("/projects/{project}/delete", {}),
    ("/users", {"id": "sneaky_user", "name": "Sneaky", "password": "password-123"}),
    ("/users/{user}/projects", {"project_id": "{project}", "role": "admin", "is_project_admin": "1"}),
    ("/users/{user}/projects/{project}/remove", {}),
    ("/users/{user}/delete", {}),
]


def _dependency_calls(dependant):
    for sub in dependant.dependencies:
        yield sub.call
        yield from _dependency_calls(sub)


def test_the_refusal_lists_cover_every_admin_route() -> None:
    """Every route of the console that depends on require_admin is in ADMIN_GETS/ADMIN_POSTS."""
    from webconsole.web.routes import ROUTERS
    from webconsole.web.core.deps import require_admin

    def routes(router):
        for route in router.routes:
            nested = getattr(route, "original_router", None)  # a router included into a module's router
            yield from routes(nested) if nested is not None else [route]

    admin_routes = set()
    for router in ROUTERS:
        for route in routes(router):
            if hasattr(route, "dependant") and require_admin in set(_dependency_calls(route.dependant)):
                admin_routes |= {(method, route.path) for method in route.methods}
    listed = {("GET", path.split("?")[0]) for path in ADMIN_GETS} | {("POST", path) for path, _ in ADMIN_POSTS}
    normalise = lambda path: re.sub(r"\{[a-z_]+\}", "{}", path)  # noqa: E731
    assert {(m, normalise(p)) for m, p in admin_routes} == {(m, normalise(p)) for m, p in listed}


async def create_project(client: httpx.AsyncClient, csrf: str, project: str, name: str = "Team Project") -> None:
    response = await client.post("/projects", data={"id": project, "name": name, "csrf_token": csrf})
    assert response.status_code == 303, response.text[:800]
    assert response.headers["location"].endswith(f"/projects/{project}")


async def create_member(client: httpx.AsyncClient, csrf: str, user: str, project: str, role: str = "member") -> None:
    response = await client.post(
        "/users", data={"id": user, "name": "Team Member", "password": MEMBER_PASSWORD, "csrf_token": csrf}
    )
    assert response.status_code == 303, response.text[:800]
    response = await client.post(
        f"/users/{user}/projects", data={"project_id": project, "role": role, "csrf_token": csrf}
    )
    assert response.status_code == 303, response.text[:800]


async def hanami_user(emulator_url: str, user: str) -> dict:
    async with HanamiClient(emulator_url) as hanami:
        return await hanami.api((await hanami.login(ADMIN_ID, ADMIN_PASSWORD)).token).get_user(user)


async def admin_cleanup(emulator_url: str, users: list[str], projects: list[str]) -> None:
    async with HanamiClient(emulator_url) as hanami:
        admin = hanami.api((await hanami.login(ADMIN_ID, ADMIN_PASSWORD)).token)
        existing = {row["id"] for row in (await admin.list_users()).records()}
        for user in users:
            if user in existing:
                await admin.delete_user(user)
        known = {row["id"] for row in (await admin.list_projects()).records()}
        for project in projects:
            if project in known:
                await admin.delete_project(project)


async def test_admin_creates_project_and_member_who_sees_only_own_clusters(app_client, backend) -> None:
    tag = secrets.token_hex(3)
    project, member = f"team_{tag}", f"member_{tag}"
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    try:
        await create_project(app_client, csrf, project)
        await create_member(app_client, csrf, member, project)
        # The admin joins the project too, so its cluster is stamped with it.
        response = await app_client.post(
            f"/users/{ADMIN_ID}/projects", data={"project_id": project, "role": "member", "csrf_token": csrf}
        )
        assert response.status_code == 303

        detail = await app_client.get(f"/projects/{project}")
        assert detail.status_code == 200
        assert member in detail.text and ADMIN_ID in detail.text
        users = await app_client.get("/users", params={"q": member})
        assert f"{project} <span class=\"muted\">(member)" in users.text

        async with HanamiClient(backend.url) as hanami:
            admin = hanami.api((await hanami.login(ADMIN_ID, ADMIN_PASSWORD)).token)
            admin = hanami.api((await admin.renew(project)).token)
            admin_cluster = await admin.create_cluster(f"admin_cluster_{tag}", EXAMPLE_CSV_TEMPLATE)
            member_api = hanami.api((await hanami.login(member, MEMBER_PASSWORD)).token)
            member_cluster = await member_api.create_cluster(f"member_cluster_{tag}", EXAMPLE_CSV_TEMPLATE)
            try:
                # The member logs in through the console: lands in the project with role member.
                async with httpx.AsyncClient(transport=app_client._transport, base_url="http://console.test") as other:
                    member_csrf = await login(other, member, MEMBER_PASSWORD)
                    home = await other.get("/")
                    assert f"project <strong>{project}</strong> · role member" in home.text
                    # The layout shows no admin link to a member.
                    assert 'class="admin-link"' not in home.text
                    clusters = await other.get("/clusters")
                    assert clusters.status_code == 200
                    assert f"member_cluster_{tag}" in clusters.text
                    assert f"admin_cluster_{tag}" not in clusters.text
                    listed = [row["name"] for row in (await member_api.list_clusters()).records()]
                    assert listed == [f"member_cluster_{tag}"]
                    await assert_member_refused(other, member_csrf, member, project)
            finally:
                await admin.delete_cluster(admin_cluster["uuid"])
                await admin.delete_cluster(member_cluster["uuid"])
        response = await app_client.post(
            f"/users/{ADMIN_ID}/projects/{project}/remove", data={"csrf_token": csrf}
        )
        assert response.status_code == 303
    finally:
        await admin_cleanup(backend.url, [member], [project])


async def assert_member_refused(client: httpx.AsyncClient, csrf: str, member: str, project: str) -> None:
    """Every admin route answers 403 to a member, called directly with a valid session and CSRF token."""
    fill = lambda text: text.format(user=member, project=project)  # noqa: E731
    for path in ADMIN_GETS:
        response = await client.get(fill(path))
        assert response.status_code == 403, path
        assert "This section is for Hanami admins only." in response.text
    for path, data in ADMIN_POSTS:
        form = {key: fill(value) for key, value in data.items()}
        response = await client.post(fill(path), data={**form, "csrf_token": csrf})
        assert response.status_code == 403, path
        assert "This section is for Hanami admins only." in response.text
        htmx = await client.post(fill(path), data=form, headers={"HX-Request": "true", "X-CSRF-Token": csrf})
        assert htmx.status_code == 403, path
    # Nothing happened: the member is still assigned, the project still exists.
    assert (await client.get("/account")).status_code == 200


async def test_project_list_detail_and_delete_warning(app_client, backend) -> None:
    project = f"plist_{secrets.token_hex(3)}"
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    try:
        await create_project(app_client, csrf, project, "Listed Project")
        listing = await app_client.get("/projects", params={"q": project})
        assert listing.status_code == 200 and "Listed Project" in listing.text
        fragment = await app_client.get("/projects", params={"q": project}, headers={"HX-Request": "true"})
        assert fragment.text.lstrip().startswith('<div id="project-table">')
        assert "<html" not in fragment.text
        empty = await app_client.get("/projects", params={"q": "no_such_project_anywhere"})
        assert "Nothing matches" in empty.text
        confirm = await app_client.get(f"/projects/{project}/delete")
        assert confirm.status_code == 200
        assert "Hanami does not check whether users or resources are still in this project" in confirm.text
        response = await app_client.post(f"/projects/{project}/delete", data={"csrf_token": csrf})
        assert response.status_code == 303 and response.headers["location"].endswith("/projects")
        after = await app_client.get("/projects")
        assert f"Project {project} deleted." in after.text
        assert (await app_client.get(f"/projects/{project}")).status_code == 404
    finally:
        await admin_cleanup(backend.url, [], [project])


async def test_create_forms_check_rules_and_show_backend_refusals(app_client, backend) -> None:
    project = f"dup_{secrets.token_hex(3)}"
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    try:
        form = await app_client.get("/projects/new")
        assert 'pattern="[a-zA-Z][a-zA-Z_0-9]*"' in form.text and 'minlength="4"' in form.text
        assert "js/forms.js" in form.text
        bad = await app_client.post("/projects", data={"id": "1x", "name": "ok name", "csrf_token": csrf})
        assert bad.status_code == 422
        assert "4 to 256 letters, digits or underscores, starting with a letter." in bad.text
        assert 'value="1x"' in bad.text
        await create_project(app_client, csrf, project)
        again = await app_client.post("/projects", data={"id": project, "name": "Again", "csrf_token": csrf},
                                      headers={"HX-Request": "true"})
        assert again.status_code == 422
        assert f"Project with id &#39;{project}&#39; already exist." in again.text
        assert again.text.lstrip().startswith('<form id="project-form"')

        user_form = await app_client.get("/users/new")
        assert 'pattern="[a-zA-Z][a-zA-Z_0-9@]*"' in user_form.text and 'maxlength="4096"' in user_form.text
        bad_user = await app_client.post(
            "/users", data={"id": "ab", "name": "9 starts with digit", "password": "short", "csrf_token": csrf}
        )
        assert bad_user.status_code == 422
        assert "4 to 256 letters, digits, underscores or @, starting with a letter." in bad_user.text
        assert "4 to 256 letters, digits, underscores or spaces, starting with a letter." in bad_user.text
        assert "At least 8 characters (at most 4096 bytes)." in bad_user.text
        assert "short" not in re.sub(r"<[^>]+>", "", bad_user.text).split("Password")[1][:200]
        duplicate = await app_client.post(
            "/users", data={"id": ADMIN_ID, "name": "Someone", "password": "long-enough-1", "csrf_token": csrf}
        )
        assert duplicate.status_code == 422
        assert f"User with id &#39;{ADMIN_ID}&#39; already exist." in duplicate.text

        bad_role = await app_client.post(
            f"/users/{ADMIN_ID}/projects", data={"project_id": project, "role": "no", "csrf_token": csrf}
        )
        assert bad_role.status_code == 422 and 'id="role-error"' in bad_role.text
        assert "4 to 256 letters, digits or underscores" in bad_role.text
    finally:
        await admin_cleanup(backend.url, [], [project])


async def test_user_with_admin_flag_assignment_conflict_and_removal(app_client, backend) -> None:
    tag = secrets.token_hex(3)
    user, project = f"boss_{tag}", f"bp_{tag}"
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    try:
        response = await app_client.post("/users", data={
            "id": user, "name": "Second Admin", "password": "password-boss", "is_admin": "1", "csrf_token": csrf})
        assert response.status_code == 303
        detail = await app_client.get(f"/users/{user}")
        assert '<span class="badge badge-admin">admin</span>' in detail.text
        assert "Delete user" in detail.text
        # Hanami takes any project id and any role; the console offers and accepts only real ones.
        typo = {"project_id": project, "role": "member", "csrf_token": csrf}
        refused = await app_client.post(f"/users/{user}/projects", data=typo)
        assert refused.status_code == 422 and f"There is no project &#39;{project}&#39;" in refused.text
        await create_project(app_client, csrf, project, "Boss project")
        unknown_role = await app_client.post(f"/users/{user}/projects", data={**typo, "role": "tester"})
        assert unknown_role.status_code == 422 and "The access policy knows no role &#39;tester&#39;" in unknown_role.text
        assert "tester" not in str((await hanami_user(backend.url, user)).get("projects"))
        detail = await app_client.get(f"/users/{user}")
        assert f'<option value="{project}"' in detail.text and '<option value="member"' in detail.text
        data = {"project_id": project, "role": "member", "is_project_admin": "1", "csrf_token": csrf}
        assert (await app_client.post(f"/users/{user}/projects", data=data)).status_code == 303
        detail = await app_client.get(f"/users/{user}")
        assert "<td>member</td>" in detail.text
        conflict = await app_client.post(f"/users/{user}/projects", data=data, headers={"HX-Request": "true"})
        assert conflict.status_code == 422
        assert "is already assigned to user" in conflict.text
        assert conflict.text.lstrip().startswith('<form id="assign-form"')
        confirm = await app_client.get(f"/users/{user}/projects/{project}/remove")
        assert confirm.status_code == 200 and "Remove project" in confirm.text
        removed = await app_client.post(f"/users/{user}/projects/{project}/remove", data={"csrf_token": csrf})
        assert removed.status_code == 303
        assert "<td>member</td>" not in (await app_client.get(f"/users/{user}")).text
        deleted = await app_client.post(f"/users/{user}/delete", data={"csrf_token": csrf})
        assert deleted.status_code == 303 and deleted.headers["location"].endswith("/users")
        assert (await app_client.get(f"/users/{user}")).status_code == 404
    finally:
        await admin_cleanup(backend.url, [user], [project])


async def test_self_delete_hidden_and_refused(app_client) -> None:
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    detail = await app_client.get(f"/users/{ADMIN_ID}")
    assert detail.status_code == 200
    assert "Delete user" not in detail.text and "you cannot delete yourself" in detail.text
    confirm = await app_client.get(f"/users/{ADMIN_ID}/delete")
    assert "You cannot delete your own account." in confirm.text
    assert f'action="/users/{ADMIN_ID}/delete"' not in confirm.text
    response = await app_client.post(f"/users/{ADMIN_ID}/delete", data={"csrf_token": csrf})
    assert response.status_code == 303 and response.headers["location"].endswith(f"/users/{ADMIN_ID}")
    page = await app_client.get(f"/users/{ADMIN_ID}")
    assert "You cannot delete your own account. Ask another admin to do it." in page.text
    users = await app_client.get("/users")
    assert ADMIN_ID in users.text
    audit = await app_client.get("/audit", params={"source": "console", "action": "delete user", "user": ADMIN_ID})
    assert "badge-refused" in audit.text and "You cannot delete your own account." in audit.text


async def test_malformed_ids_in_urls_never_reach_the_backend(app_client) -> None:
    await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    assert (await app_client.get("/users/ab")).status_code == 404
    assert (await app_client.get("/projects/9bad")).status_code == 404


async def test_my_account_for_admin_and_member(app_client, backend) -> None:
    tag = secrets.token_hex(3)
    project, member = f"acct_{tag}", f"acct_member_{tag}"
    csrf = await login(app_client, ADMIN_ID, ADMIN_PASSWORD)
    try:
        await create_project(app_client, csrf, project)
        await create_member(app_client, csrf, member, project)
        page = await app_client.get("/account")
        assert page.status_code == 200
        # an admin's assignments are all listed: no field to type a project id into
        assert "virtual" in page.text and 'id="project_id"' not in page.text
        async with httpx.AsyncClient(transport=app_client._transport, base_url="http://console.test") as other:
            await login(other, member, MEMBER_PASSWORD)
            mine = await other.get("/account")
            assert mine.status_code == 200
            assert "Hanami has no way for a non-admin to list their own projects" in mine.text
            assert f'<dd data-testid="account-project">{project}</dd>' in mine.text
            assert 'id="project_id"' in mine.text  # a member may know of an assignment the console has not seen
    finally:
        await admin_cleanup(backend.url, [member], [project])
