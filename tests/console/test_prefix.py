"""The console under a URL prefix (/console), as behind a reverse proxy."""

from __future__ import annotations

import re
from typing import Iterator

import httpx
import pytest

from tests.conftest import ADMIN_ID, ADMIN_PASSWORD, ConsoleServer, console_settings, csrf_from

URL_ATTRIBUTES = re.compile(r'\b(?:href|src|action|hx-get|hx-post|data-ws-url|data-url)="([^"]*)"')


@pytest.fixture(scope="module")
def prefixed(backend) -> Iterator[ConsoleServer]:
    server = ConsoleServer(console_settings(backend.url, root_path="/console")).start()
    yield server
    server.stop()


def _local_urls(html: str) -> list[str]:
    return [url for url in URL_ATTRIBUTES.findall(html) if url.startswith("/")]


def test_every_link_form_and_static_file_is_under_the_prefix(prefixed: ConsoleServer) -> None:
    assert prefixed.url.endswith("/console")
    with httpx.Client() as browser:
        login_page = browser.get(prefixed.url + "/login")
        assert login_page.status_code == 200
        urls = _local_urls(login_page.text)
        assert urls and all(url.startswith("/console/") for url in urls), urls
        done = browser.post(prefixed.url + "/login", data={
            "user_id": ADMIN_ID, "password": ADMIN_PASSWORD, "next": "/",
            "csrf_token": csrf_from(login_page.text)})
        assert done.status_code == 303 and done.headers["location"] == "/console/"
        cookie = done.headers["set-cookie"]
        assert "Path=/console" in cookie
        home = browser.get(prefixed.url + "/")
        assert home.status_code == 200
        urls = _local_urls(home.text)
        assert all(url.startswith("/console/") for url in urls), [u for u in urls if not u.startswith("/console/")]
        for url in {u for u in urls if "/static/" in u}:
            assert browser.get(f"http://127.0.0.1:{prefixed.port}{url}").status_code == 200, url
        # Every page the navigation offers renders under the prefix, with prefixed links only.
        for url in {u for u in urls if "/static/" not in u and "logout" not in u and "project" != u.rsplit('/', 1)[-1]}:
            page = browser.get(f"http://127.0.0.1:{prefixed.port}{url}")
            assert page.status_code == 200, url
            bad = [u for u in _local_urls(page.text) if not u.startswith("/console/")]
            assert not bad, (url, bad)


def test_login_redirect_keeps_the_prefix(prefixed: ConsoleServer) -> None:
    with httpx.Client() as browser:
        page = browser.get(prefixed.url + "/datasets?q=digits")
        assert page.status_code == 303
        # next is the path inside the app (without the prefix), query string kept
        assert page.headers["location"] == "/console/login?next=/datasets%3Fq%3Ddigits"
        form = browser.get(f"http://127.0.0.1:{prefixed.port}{page.headers['location']}")
        assert '<input type="hidden" name="next" value="/datasets?q=digits">' in form.text
        done = browser.post(prefixed.url + "/login", data={
            "user_id": ADMIN_ID, "password": ADMIN_PASSWORD, "next": "/datasets?q=digits",
            "csrf_token": csrf_from(form.text)})
        assert done.status_code == 303 and done.headers["location"] == "/console/datasets?q=digits"


def test_a_proxy_that_strips_the_prefix_works_too(prefixed: ConsoleServer) -> None:
    # nginx with `proxy_pass http://console/;` removes /console before the request reaches us.
    with httpx.Client() as browser:
        page = browser.get(f"http://127.0.0.1:{prefixed.port}/login")
        assert page.status_code == 200
        assert all(url.startswith("/console/") for url in _local_urls(page.text))
