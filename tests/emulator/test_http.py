"""Transport and pipeline quirks (§1.1-§1.4, §1.7) over real HTTP."""

from __future__ import annotations

import socket

import httpx

from tests.emulator.emu_helpers import Api


def raw_request(server, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_success_headers_and_sorted_compact_json(admin: Api):
    resp = admin.call("GET", "v1/auth")
    assert resp.status_code == 200
    assert resp.headers["server"] == "ToriiGateway"
    assert resp.headers["content-type"] == "text/json"
    assert resp.headers["connection"] == "close"
    assert resp.text == ('{"id":"asdf","is_admin":true,"is_project_admin":true,"name":"Admin",'
                         '"project_id":"admin","role":"admin"}')


def test_one_request_per_connection(hanami):
    reply = raw_request(hanami, b"GET /control/v1/auth HTTP/1.1\r\nHost: x\r\n\r\n"
                                b"GET /control/v1/auth HTTP/1.1\r\nHost: x\r\n\r\n")
    assert reply.count(b"HTTP/1.1 ") == 1
    assert b"Connection: close" in reply


def test_dotdot_is_400_with_empty_body(admin: Api):
    resp = admin.call("GET", "v1/cluster/all", query="x=..")
    assert (resp.status_code, resp.text) == (400, "")
    assert resp.headers["content-type"] == "text/plain"


def test_unsupported_methods_get_ascii_table(hanami):
    for method in ("HEAD", "OPTIONS", "PATCH"):
        reply = raw_request(hanami, f"{method} /control/v1/auth HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert reply.startswith(b"HTTP/1.1 400"), reply
        assert f"Invalid request-method '{method}'".encode() in reply
        assert b"| Error-Message Nr. 0 |" in reply


def test_non_control_paths(hanami):
    resp = httpx.post(f"{hanami.url}/foo/bar")
    assert resp.status_code == 404
    assert "no matching endpoint found for path '/foo/bar'" in resp.text
    assert resp.text.startswith("+-")
    # a GET outside /control is a dashboard file request: missing file -> 500 with empty body
    resp = httpx.get(f"{hanami.url}/index.html")
    assert (resp.status_code, resp.text) == (500, "")
    # the Go SDK's //control/... URLs are not routed (Q-S3)
    assert httpx.post(f"{hanami.url}//control/v1/cluster/save").status_code == 404


def test_uri_without_slash(admin: Api):
    resp = admin.call("GET", "auth")
    assert (resp.status_code, resp.text) == (400, "Uri doesn't start with '/'")


def test_unknown_endpoint_and_trailing_slash_are_policy_denials(admin: Api):
    assert admin.call("GET", "v1/cluster/").text == "Access denied by policy"
    assert admin.call("GET", "v1/nothing").status_code == 401
    # allowed by the policy but not implemented -> 500 with empty body (Q-A6)
    for method, path in [("GET", "v1/foreward"), ("POST", "v1/dataset"), ("GET", "v1/template")]:
        resp = admin.call(method, path, {} if method == "POST" else None)
        assert (resp.status_code, resp.text) == (500, ""), path


def test_json_body_errors(admin: Api):
    resp = admin.call("POST", "v1/project", "")
    assert resp.status_code == 400
    assert resp.text == ("Failed to parse input-values, because of json-parser error: "
                         "[json.exception.parse_error.101] parse error at line 1, column 1: syntax "
                         "error while parsing value - unexpected end of input; expected '[', '{', or a literal")
    resp = admin.call("POST", "v1/project", "{nope")
    assert resp.status_code == 400
    assert resp.text.startswith("Failed to parse input-values, because of json-parser error: ")


def test_query_is_not_percent_decoded(admin: Api):
    resp = admin.call("GET", "v1/user", query="id=a%40b.c")
    assert resp.status_code == 400
    assert resp.text == "Given item 'id' doesn't match with regex \"^[a-zA-Z][a-zA-Z_0-9@]*$\""


def test_query_overrides_body_and_coerces_numbers(admin: Api):
    resp = admin.call("POST", "v1/project", {"id": "bodyid1", "name": "From Body"}, query="id=queryid1")
    assert resp.status_code == 200
    assert resp.json()["id"] == "queryid1"
    # numbers in the query become ints/floats
    resp = admin.call("GET", "v1/audit_log", query="page=1.5")
    assert resp.text == "Value-validation failed, because a item 'page'  has the false type: Exprect int-type."
    resp = admin.call("GET", "v1/user", query="id=1234")
    assert resp.text == "Value-validation failed, because a item 'id'  has the false type: Exprect string-type."
    # repeated keys: last wins
    assert admin.call("GET", "v1/audit_log", query="page=x&page=0").status_code == 200


def test_token_field_is_injected_and_removed(admin: Api):
    # a client supplied token is never an error and never used
    assert admin.call("GET", "v1/cluster/all", query="token=garbage").status_code == 200
    resp = admin.call("POST", "v1/project", {"id": "tokenproj", "name": "Token Proj", "token": "x"})
    assert resp.status_code == 200
    # GET v1/auth keeps the field but always uses the header token (Q-A2)
    assert admin.call("GET", "v1/auth", query="token=abc").status_code == 200
    anonymous = Api(admin.server)
    resp = anonymous.call("GET", "v1/auth", query=f"token={admin.token}")
    assert (resp.status_code, resp.text) == (401, "Failed to validate JWT-Token")


def test_bearer_prefix_fails_token_character_check(admin: Api):
    resp = admin.call("GET", "v1/auth", headers={"X-Auth-Token": f"Bearer {admin.token}"})
    # header set twice would be odd; send it alone
    resp = httpx.get(f"{admin.base}/control/v1/auth", headers={"X-Auth-Token": f"Bearer {admin.token}"})
    assert resp.status_code == 400
    assert resp.text == "Given item 'token' doesn't match with regex \"^[a-zA-Z_.\\-0-9]*$\""


def test_body_limit_drops_connection(hanami):
    body = b"{" + b" " * (1024 * 1024 + 10) + b"}"
    head = (f"POST /control/v1/project HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    try:
        reply = raw_request(hanami, head + body)
    except ConnectionResetError:
        reply = b""
    assert reply == b""
    assert httpx.get(f"{hanami.url}/control/v1/auth").status_code == 401  # still alive


def test_websocket_handshake_on_any_path(hanami):
    handshake = (b"GET /some/path?x=1 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    close_frame = b"\x88\x82abcd" + bytes(b ^ m for b, m in zip(b"\x03\xe8", b"ab"))
    reply = raw_request(hanami, handshake + close_frame)  # frame in the same packet as the handshake
    assert reply.startswith(b"HTTP/1.1 101")
    assert b"Server: Boost.Beast/" in reply and b"torii-websocket-ssl" in reply
    assert reply.endswith(b"\x88\x02\x03\xe8")  # the close frame was answered
