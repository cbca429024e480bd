"""HTTP(S) endpoints over real sockets on 127.0.0.1, with the tutorial's exact requests."""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import socket
import ssl

import pytest

from airlab.cloud.auth import Rules
from airlab.cloud.http_api import HttpEndpoints
from airlab.cloud.registry import Registry
from airlab.cloud.tls import (
    DEFAULT_HOSTNAMES,
    generate_certificate,
    make_client_context,
    server_certificate,
)

PK, DN = "k1hipglLdjU", "868488076506128"
AUTH_BODY = (
    b"productKey=k1hipglLdjU&sign=0f655b12adf519b9a7a2b0a990f398b6"
    b"&clientId=868488076506128&deviceName=868488076506128"
)
REGISTER_BODY = (
    b"productKey=k1hipglLdjU&deviceName=868488076506128&random=123456"
    b"&sign=20558baadb2a0b04847767980f0ee67b&signMethod=HmacMD5"
)
REGISTER_REPLY = (
    b'{"code":200,"data":{"deviceName":"868488076506128",'
    b'"deviceSecret":"fef32adf6dad46c2c7cbf335d3a7b021","productKey":"k1hipglLdjU"},'
    b'"message":"success"}'
)


def post(
    conn: http.client.HTTPConnection,
    path: str,
    body: bytes,
    headers: dict[str, str] | None = None,
    method: str = "POST",
) -> tuple[int, bytes, http.client.HTTPResponse]:
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    return resp.status, data, resp


FORM = {"Content-type": "application/x-www-form-urlencoded"}


def check_good_auth(endpoints: HttpEndpoints) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", endpoints.http_port, timeout=10)
    try:
        status, body, _ = post(conn, "/auth/devicename", AUTH_BODY, FORM)
        assert status == 200 and len(body) == 124
    finally:
        conn.close()


def test_tutorial_auth_devicename_over_http(endpoints: HttpEndpoints, tutorial: Registry) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", endpoints.http_port, timeout=10)
    status, body, resp = post(conn, "/auth/devicename", AUTH_BODY, FORM)
    assert status == 200
    assert resp.getheader("Content-Type") == "application/json;charset=utf-8"
    assert len(body) == 124
    reply = json.loads(body)
    assert reply["code"] == 200 and reply["message"] == "success"
    assert len(reply["data"]["iotId"]) == 26
    token = reply["data"]["iotToken"]
    assert len(token) == 32 and int(token, 16) >= 0 and token == token.lower()
    # keep-alive: the same connection serves the registration request
    status, body, _ = post(conn, "/auth/register/device", REGISTER_BODY, FORM)
    assert status == 200 and body == REGISTER_REPLY and len(body) == 149
    conn.close()
    events = tutorial.connection_log()
    assert [(e.protocol, e.event, e.code) for e in events] == [
        ("http", "auth", 200),
        ("http", "register", 200),
    ]
    assert events[0].remote.startswith("127.0.0.1:")


def test_tutorial_requests_over_https(endpoints: HttpEndpoints) -> None:
    context = make_client_context()
    conn = http.client.HTTPSConnection(
        "localhost", endpoints.https_port, timeout=10, context=context
    )
    status, body, _ = post(
        conn, "/auth/register/device", REGISTER_BODY,
        {"Content-Type": "application/x-www-form-urlencoded;charset=utf-8"},
    )  # fmt: skip
    assert status == 200 and body == REGISTER_REPLY
    status, body, _ = post(conn, "/auth/devicename", AUTH_BODY, FORM)
    assert status == 200 and len(body) == 124
    conn.close()


def test_https_certificate_names_aliyun_hosts(endpoints: HttpEndpoints) -> None:
    context = make_client_context()
    for name in ("iot-auth.cn-shanghai.aliyuncs.com", f"{PK}.iot-as-mqtt.cn-shanghai.aliyuncs.com",
                 "a1qsHBbKtmc.iot-as-mqtt.cn-shanghai.aliyuncs.com", "127.0.0.1"):  # fmt: skip
        with (
            socket.create_connection(("127.0.0.1", endpoints.https_port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname=name) as tls,
        ):
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
    with (
        socket.create_connection(("127.0.0.1", endpoints.https_port), timeout=10) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        context.wrap_socket(raw, server_hostname="example.com")


def test_tls_certificate_contents(tmp_path) -> None:
    from cryptography import x509

    cert = server_certificate()
    assert server_certificate() is cert  # cached per process
    assert server_certificate(fresh=True) is not cert
    parsed = x509.load_pem_x509_certificate(server_certificate().cert_pem.encode())
    names = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    dns = set(names.get_values_for_type(x509.DNSName))
    assert {
        "localhost",
        "iot-auth.cn-shanghai.aliyuncs.com",
        "*.mqtt.iothub.aliyuncs.com",
        "*.iot-as-mqtt.eu-central-1.aliyuncs.com",
        "*.us-east-1.aliyuncs.com",
    } <= dns
    span = parsed.not_valid_after_utc - parsed.not_valid_before_utc
    assert span.days >= 3650
    paths = generate_certificate(["localhost"]).write(tmp_path)
    assert paths["key"].stat().st_mode & 0o077 == 0
    assert "127.0.0.1" in DEFAULT_HOSTNAMES


def test_bad_inputs_never_kill_the_service(endpoints: HttpEndpoints, tutorial: Registry) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", endpoints.http_port, timeout=10)
    # malformed form: parsed leniently, then 460 for the missing fields
    status, body, _ = post(conn, "/auth/devicename", b"%%%&&==garbage", FORM)
    assert status == 200 and json.loads(body)["code"] == 460
    check_good_auth(endpoints)
    # non-UTF-8 body, raw and percent-encoded
    for bad in (b"productKey=\xff\xfe", b"productKey=%FF%FE&deviceName=x"):
        status, body, _ = post(conn, "/auth/register/device", bad, FORM)
        assert status == 200 and json.loads(body) == {"code": 460, "message": "param error"}
        check_good_auth(endpoints)
    # empty body
    status, body, _ = post(conn, "/auth/devicename", b"", FORM)
    assert json.loads(body)["code"] == 460
    # unknown path, wrong method
    status, body, _ = post(conn, "/auth/nothing", b"a=b", FORM)
    assert status == 404
    status, body, resp = post(conn, "/auth/devicename", b"", method="GET")
    assert status == 405 and resp.getheader("Allow") == "POST"
    status, _, _ = post(conn, "/", b"", method="GET")
    assert status == 404
    check_good_auth(endpoints)
    conn.close()
    # huge body -> 413, connection closed, service alive
    conn = http.client.HTTPConnection("127.0.0.1", endpoints.http_port, timeout=10)
    status, body, resp = post(conn, "/auth/devicename", b"a=" + b"x" * (200 * 1024), FORM)
    assert status == 413 and resp.getheader("Connection") == "close"
    conn.close()
    check_good_auth(endpoints)
    # garbage that is not HTTP at all, and a client that goes away mid-body
    with socket.create_connection(("127.0.0.1", endpoints.http_port), timeout=10) as raw:
        raw.sendall(b"\x16\x03\x01 not http\r\n\r\n")
        assert raw.recv(100).startswith(b"HTTP/1.")  # a 400 from the server
    with socket.create_connection(("127.0.0.1", endpoints.http_port), timeout=10) as raw:
        raw.sendall(b"POST /auth/devicename HTTP/1.1\r\nContent-Length: 100\r\n\r\nproductKey")
    # plain HTTP on the TLS port
    with socket.create_connection(("127.0.0.1", endpoints.https_port), timeout=10) as raw:
        raw.sendall(b"POST /auth/devicename HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
        with contextlib.suppress(OSError):  # the TLS listener drops it
            raw.recv(100)
    check_good_auth(endpoints)
    events = [e for e in tutorial.connection_log() if not e.accepted]
    assert {e.code for e in events} >= {460, 404, 405, 413}
    assert all(e.protocol == "http" for e in events)


def test_connection_close_header(endpoints: HttpEndpoints) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", endpoints.http_port, timeout=10)
    status, _, resp = post(conn, "/auth/devicename", AUTH_BODY, FORM | {"Connection": "close"})
    assert status == 200 and resp.getheader("Connection") == "close"
    conn.close()


def test_raw_module_style_request(endpoints: HttpEndpoints) -> None:
    """What the module sends: HTTP/1.1, lower-case 'Content-type', body of 112 bytes."""
    request = (
        b"POST /auth/devicename HTTP/1.1\r\nHost: iot-auth.cn-shanghai.aliyuncs.com\r\n"
        b"Content-type: application/x-www-form-urlencoded\r\nContent-Length: 112\r\n\r\n"
        + AUTH_BODY
    )
    assert len(AUTH_BODY) == 112
    with socket.create_connection(("127.0.0.1", endpoints.http_port), timeout=10) as raw:
        raw.sendall(request)
        reader = raw.makefile("rb")
        assert reader.readline() == b"HTTP/1.1 200 OK\r\n"
        headers = {}
        while (line := reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.lower()] = value.strip()
        assert headers["content-length"] == "124"
        assert len(reader.read(124)) == 124


def test_admin_publish(endpoints: HttpEndpoints) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", endpoints.http_port, timeout=10)
    body = json.dumps({"topic": f"/{PK}/{DN}/user/get", "payload": "HelloWorld", "qos": 1})
    status, data, _ = post(conn, "/admin/publish", body.encode())
    assert status == 401
    status, data, _ = post(conn, "/admin/publish", body.encode(), {"Authorization": "Bearer no"})
    assert status == 401
    auth = {"Authorization": "Bearer s3cret-admin", "Content-Type": "application/json"}
    status, data, _ = post(conn, "/admin/publish", body.encode(), auth)
    assert status == 200 and json.loads(data)["result"] == 1
    b64 = json.dumps({"topic": "/t", "payload_b64": base64.b64encode(b"\x00\x01").decode()})
    status, data, _ = post(conn, "/admin/publish", b64.encode(), auth)
    assert status == 200
    assert endpoints.published == [  # type: ignore[attr-defined]
        (f"/{PK}/{DN}/user/get", b"HelloWorld", 1),
        ("/t", b"\x00\x01", 0),
    ]
    for bad in (b"not json", b"[]", b'{"topic":""}', b'{"topic":"/t","qos":2}',
                b'{"topic":"/t","payload_b64":"!!"}', b'{"topic":"/t","payload":5}'):  # fmt: skip
        status, _, _ = post(conn, "/admin/publish", bad, auth)
        assert status == 400, bad
    status, _, _ = post(conn, "/admin/publish", b"", method="GET")
    assert status == 405
    conn.close()
    check_good_auth(endpoints)


def test_admin_without_publisher_or_token(rules: Rules) -> None:
    with HttpEndpoints(rules, https_port=None, admin_token="t") as api:
        conn = http.client.HTTPConnection("127.0.0.1", api.http_port, timeout=10)
        status, _, _ = post(
            conn, "/admin/publish", b'{"topic":"/t"}', {"Authorization": "Bearer t"}
        )
        assert status == 503
        conn.close()
        with pytest.raises(RuntimeError):
            _ = api.https_port
    with HttpEndpoints(rules, https_port=None, publisher=lambda *a: None) as api:
        conn = http.client.HTTPConnection("127.0.0.1", api.http_port, timeout=10)
        status, _, _ = post(conn, "/admin/publish", b'{"topic":"/t"}', {"Authorization": "Bearer "})
        assert status == 401
        conn.close()
    assert not api.running


def test_publisher_errors_are_answered(rules: Rules) -> None:
    def publisher(topic: str, payload: bytes, qos: int) -> None:
        raise ValueError("no such device online")

    with HttpEndpoints(rules, https_port=None, admin_token="t", publisher=publisher) as api:
        conn = http.client.HTTPConnection("127.0.0.1", api.http_port, timeout=10)
        status, data, _ = post(
            conn, "/admin/publish", b'{"topic":"/t"}', {"Authorization": "Bearer t"}
        )
        assert status == 400 and b"no such device" in data
        conn.close()


def test_urls_and_restart(rules: Rules) -> None:
    api = HttpEndpoints(rules, https_port=None)
    api.start()
    assert api.http_url == f"http://127.0.0.1:{api.http_port}"
    api.stop()
    api.stop()
