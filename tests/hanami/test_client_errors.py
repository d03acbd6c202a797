"""The client's failures word for word, with the endpoint they name, against the scripted server:
what the console logs and shows for each (and that the token is never in it)."""

from __future__ import annotations

import asyncio
import logging
import re
import ssl

import pytest

from tests.hanami.hanami_scripted import Reply, ScriptedHTTP, free_port_refused
from webconsole.hanami import HanamiClient
from webconsole.hanami.errors import BackendError, BackendUnavailable, BadRequest


@pytest.mark.parametrize("value", [1.5, True, None, ["a"]])
async def test_query_values_must_be_text_or_whole_numbers(http_server: ScriptedHTTP, client: HanamiClient,
                                                          token: str, value: object) -> None:
    with pytest.raises(TypeError) as raised:
        await client.request("GET", "v1/dataset", token=token, query={"uuid": value})  # type: ignore[dict-item]
    assert str(raised.value) == "query value for 'uuid' must be str or int"
    assert http_server.seen == []


@pytest.mark.parametrize("value", ["a b", "x&y=1", "a#b", "ü", "a?b", "%41"])
async def test_query_values_that_change_the_url_are_refused_before_sending(
        http_server: ScriptedHTTP, client: HanamiClient, token: str, value: str) -> None:
    with pytest.raises(BadRequest) as raised:
        await client.request("GET", "v1/dataset", token=token, query={"uuid": value, "page": 1})
    assert (raised.value.message, raised.value.status) == (
        "Given item 'uuid' contains characters that are not allowed", 400)
    assert http_server.seen == []


async def test_allowed_query_values_go_as_they_are(http_server: ScriptedHTTP, client: HanamiClient, token: str) -> None:
    http_server.on("GET", "/control/v1/dataset", {"ok": 1})
    await client.request("GET", "v1/dataset", token=token, query={"uuid": "aZ0_@.:/+-", "page": 0, "n": -3})
    assert http_server.seen[0].target == "/control/v1/dataset?uuid=aZ0_@.:/+-&page=0&n=-3"


async def test_a_ping_that_gets_in_without_a_token_is_a_backend_error(http_server: ScriptedHTTP,
                                                                       client: HanamiClient) -> None:
    http_server.on("GET", "/control/v1/auth", {"id": "nobody"})
    with pytest.raises(BackendError) as raised:
        await client.ping()
    assert (raised.value.message, raised.value.endpoint) == (
        "the backend accepted a request without a token", "GET v1/auth")
    seen = http_server.seen[0]
    assert (seen.method, seen.target, seen.body) == ("GET", "/control/v1/auth", b"")


async def test_bodies_go_only_with_post_and_put(http_server: ScriptedHTTP, client: HanamiClient, token: str) -> None:
    for method in ("GET", "DELETE", "POST", "PUT"):
        http_server.on(method, "/control/v1/thing", {"ok": 1})
        await client.request(method, "v1/thing", token=token, body={"a": 1})  # type: ignore[arg-type]
    bodies = {seen.method: seen.body for seen in http_server.seen}
    assert bodies == {"GET": b"", "DELETE": b"", "POST": b'{"a":1}', "PUT": b'{"a":1}'}
    assert all(seen.headers["x-auth-token"] == token for seen in http_server.seen)


async def test_a_success_that_is_not_json(http_server: ScriptedHTTP, client: HanamiClient, token: str) -> None:
    http_server.on("GET", "/control/v1/host/all", Reply(200, "<html>proxy page</html>"))
    with pytest.raises(BackendError) as raised:
        await client.request("GET", "v1/host/all", token=token)
    assert (raised.value.message, raised.value.status, raised.value.endpoint) == (
        "the Hanami backend sent a success answer that is not JSON", 200, "GET v1/host/all")


async def test_no_answer_in_time(http_server: ScriptedHTTP, token: str, caplog: pytest.LogCaptureFixture) -> None:
    http_server.on("GET", "/control/v1/host/all", Reply(action="hang"))
    caplog.set_level(logging.WARNING, "webconsole.hanami")
    async with HanamiClient(http_server.url, timeout=0.3) as client:
        with pytest.raises(BackendUnavailable) as raised:
            await client.request("GET", "v1/host/all", token=token)
    assert (raised.value.message, raised.value.endpoint) == (
        "the Hanami backend did not answer within 0.3 s", "GET v1/host/all")
    assert [r.getMessage() for r in caplog.records] == ["hanami GET v1/host/all: no answer within 0.3 s"]


async def test_closed_without_an_answer(http_server: ScriptedHTTP, client: HanamiClient, token: str,
                                        caplog: pytest.LogCaptureFixture) -> None:
    http_server.on("DELETE", "/control/v1/cluster", Reply(action="close"))
    caplog.set_level(logging.WARNING, "webconsole.hanami")
    with pytest.raises(BackendUnavailable) as raised:
        await client.request("DELETE", "v1/cluster", token=token, query={"uuid": "u"})
    assert (raised.value.message, raised.value.endpoint) == (
        "the Hanami backend closed the connection without answering", "DELETE v1/cluster")
    assert [r.getMessage() for r in caplog.records] == ["hanami DELETE v1/cluster: connection closed without reply"]


async def test_nobody_listening(token: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "webconsole.hanami")
    async with HanamiClient(f"http://127.0.0.1:{free_port_refused()}", timeout=2) as client:
        with pytest.raises(BackendUnavailable) as raised:
            await client.request("GET", "v1/host/all", token=token)
    assert (raised.value.message, raised.value.endpoint) == (
        "cannot reach the Hanami backend (ConnectError)", "GET v1/host/all")
    assert [r.getMessage() for r in caplog.records] == ["hanami GET v1/host/all: ConnectError"]
    assert all(token not in r.getMessage() for r in caplog.records)


async def test_an_undecodable_answer(token: str) -> None:
    """A body declared gzip that is not: httpx cannot decode it (a broken proxy in front of Hanami)."""

    async def gzip_lie(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 8\r\nConnection: close\r\n\r\n"
                     b"not gzip")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(gzip_lie, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with HanamiClient(f"http://127.0.0.1:{port}") as liar:
            with pytest.raises(BackendError) as raised:
                await liar.request("GET", "v1/host/all", token=token)
        assert (raised.value.message, raised.value.endpoint) == (
            "the Hanami backend sent an undecodable answer", "GET v1/host/all")
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("url, message", [
    ("ftp://h/x", "Hanami URL must be http(s)://host[:port][/prefix], got 'ftp://h/x'"),
    ("http:///nohost", "Hanami URL must be http(s)://host[:port][/prefix], got 'http:///nohost'"),
])
def test_a_backend_url_that_is_not_http(url: str, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        HanamiClient(url)
    assert str(raised.value) == message


@pytest.mark.parametrize("url, base, ws", [
    ("http://127.0.0.1:1", "http://127.0.0.1:1", "ws://127.0.0.1:1/"),
    ("https://h.example/hanami/", "https://h.example/hanami", "wss://h.example/hanami"),
    ("http://h.example:8080/a/b?x=1#f", "http://h.example:8080/a/b", "ws://h.example:8080/a/b"),
    ("http://h.example/boX/", "http://h.example/boX", "ws://h.example/boX"),
])
async def test_the_backend_url_and_its_websocket_url(url: str, base: str, ws: str) -> None:
    async with HanamiClient(url) as client:
        assert (client.base_url, client.ws_url) == (base, ws)


async def test_environment_proxies_are_ignored(http_server: ScriptedHTTP, token: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port_refused()}")
    monkeypatch.setenv("ALL_PROXY", f"http://127.0.0.1:{free_port_refused()}")
    http_server.on("GET", "/control/v1/host/all", {"ok": 1})
    async with HanamiClient(http_server.url) as client:
        assert await client.request("GET", "v1/host/all", token=token) == {"ok": 1}


async def test_redirects_are_not_followed(http_server: ScriptedHTTP, token: str) -> None:
    http_server.on("GET", "/control/v1/host/all", Reply(302, ""))
    async with HanamiClient(http_server.url) as client:
        with pytest.raises(BackendError):
            await client.request("GET", "v1/host/all", token=token)
    assert len(http_server.seen) == 1


async def test_tls_is_verified_unless_switched_off() -> None:
    async with HanamiClient("https://h.example") as checked, HanamiClient("https://h.example", verify_tls=False) as lax:
        assert checked._ssl is not None and checked._ssl.verify_mode == ssl.CERT_REQUIRED
        assert checked._ssl.check_hostname is True
        assert lax._ssl is not None and lax._ssl.verify_mode == ssl.CERT_NONE and lax._ssl.check_hostname is False
    async with HanamiClient("http://h.example") as plain:
        assert plain._ssl is None


async def test_each_call_is_logged_with_its_status_and_duration(http_server: ScriptedHTTP, client: HanamiClient,
                                                                token: str, caplog: pytest.LogCaptureFixture) -> None:
    http_server.on("GET", "/control/v1/host/all", {"ok": 1})
    caplog.set_level(logging.DEBUG, "webconsole.hanami")
    await client.request("GET", "v1/host/all", token=token)
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("hanami GET")]
    match = re.fullmatch(r"hanami GET v1/host/all -> 200 \((\d+) ms\)", line)
    assert match and int(match.group(1)) < 10_000, line


async def test_a_broken_observer_is_logged_and_sees_no_status_without_an_answer(
        token: str, caplog: pytest.LogCaptureFixture) -> None:
    seen: list[tuple] = []
    caplog.set_level(logging.ERROR, "webconsole.hanami")
    async with HanamiClient(f"http://127.0.0.1:{free_port_refused()}", on_call=lambda *a: seen.append(a)) as client:
        with pytest.raises(BackendUnavailable):
            await client.request("GET", "v1/host/all", token=token)
        assert [(c[0], c[1], c[3]) for c in seen] == [("GET v1/host/all", None, "BackendUnavailable")]
        client.on_call = lambda *a: 1 / 0
        with pytest.raises(BackendUnavailable):
            await client.request("GET", "v1/host/all", token=token)
    assert [r.getMessage() for r in caplog.records] == ["hanami call observer failed"]


async def test_an_error_text_that_is_not_utf8(http_server: ScriptedHTTP, client: HanamiClient, token: str) -> None:
    http_server.on("POST", "/control/v1/cluster", Reply(400, b"bad \xff name"))
    with pytest.raises(BadRequest) as raised:
        await client.request("POST", "v1/cluster", token=token, body={})
    assert raised.value.message == "bad \ufffd name"
