"""SSRF guard of url inputs. Refused addresses never get a connection; the positive cases use a
local server on 127.0.0.x reached only through the allow-list. No traffic leaves the machine."""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from PIL import Image

from tsnegrid.service.errors import UrlRefusedError
from tsnegrid.service.urlfetch import AllowList, check_url, fetch, is_public

PNG = io.BytesIO()
Image.new("RGB", (8, 8), (200, 10, 10)).save(PNG, "PNG")


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        path, _, query = self.path.partition("?")
        if path == "/img.png":
            self._send(200, PNG.getvalue(), "image/png")
        elif path == "/redirect":
            self.send_response(302)
            self.send_header("Location", query.removeprefix("to="))
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/loop":
            self.send_response(302)
            self.send_header("Location", "/loop")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/big":
            self._send(200, b"x" * 100_000, "application/octet-stream")
        elif path == "/slow":
            time.sleep(2)
            self._send(200, b"late", "text/plain")
        else:
            self._send(404, b"no", "text/plain")

    def _send(self, code: int, body: bytes, kind: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def local_server() -> Iterator[str]:
    """An HTTP server on 127.0.0.2 (loopback, so refused unless allow-listed)."""
    server = ThreadingHTTPServer(("127.0.0.2", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.2:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


ALLOW_LOCAL = AllowList.parse(["127.0.0.2/32"])

REFUSED = [
    "http://127.0.0.1/", "http://127.0.0.1:8080/x.png", "http://localhost/",
    "http://10.0.0.1/", "http://10.255.1.2:81/a", "http://192.168.1.1/", "http://172.16.0.1/",
    "http://169.254.169.254/latest/meta-data/", "http://[::1]/", "http://[fd00:ec2::254]/",
    "http://[::ffff:127.0.0.1]/", "http://0.0.0.0/", "http://2130706433/", "http://0x7f.1/",
    "http://100.100.100.200/", "http://224.0.0.1/", "https://127.0.0.1/",
]


@pytest.mark.parametrize("url", REFUSED)
def test_internal_addresses_are_refused_before_connecting(url: str, monkeypatch: Any) -> None:
    def no_connect(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a connection was attempted")

    monkeypatch.setattr(socket.socket, "connect", no_connect)
    with pytest.raises(UrlRefusedError, match="refused"):
        fetch(url)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://x/",
                                 "javascript:alert(1)", "/relative.png", "http://", "",
                                 "http://[::1"])
def test_other_schemes_and_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(UrlRefusedError):
        check_url(url)


def test_names_are_checked_after_resolution(monkeypatch: Any) -> None:
    real = socket.getaddrinfo

    def fake(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "images.internal.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    with pytest.raises(UrlRefusedError, match="10.1.2.3"):
        check_url("http://images.internal.test/a.png")
    assert check_url("http://images.internal.test/a.png",
                     AllowList.parse(["images.internal.test"])).port == 80


def test_public_addresses_pass_the_address_check() -> None:
    import ipaddress

    assert is_public(ipaddress.ip_address("93.184.215.14"))
    assert not is_public(ipaddress.ip_address("::ffff:10.0.0.1"))


def test_allow_listed_local_server_is_fetched(local_server: str) -> None:
    assert fetch(local_server + "/img.png", allow=ALLOW_LOCAL) == PNG.getvalue()
    with pytest.raises(UrlRefusedError, match="refused"):
        fetch(local_server + "/img.png")  # not allow-listed: loopback


def test_redirects_are_followed_and_checked(local_server: str) -> None:
    ok = f"{local_server}/redirect?to={local_server}/img.png"
    assert fetch(ok, allow=ALLOW_LOCAL) == PNG.getvalue()
    for target in ("http://127.0.0.1:1/img.png", "http://10.0.0.1/",
                   "http://169.254.169.254/latest/meta-data/", "file:///etc/passwd"):
        with pytest.raises(UrlRefusedError):
            fetch(f"{local_server}/redirect?to={target}", allow=ALLOW_LOCAL)
    with pytest.raises(UrlRefusedError, match="redirects"):
        fetch(local_server + "/loop", allow=ALLOW_LOCAL, max_redirects=3)


def test_size_and_time_limits(local_server: str) -> None:
    with pytest.raises(UrlRefusedError, match="limit"):
        fetch(local_server + "/big", allow=ALLOW_LOCAL, max_bytes=1000)
    with pytest.raises(UrlRefusedError, match="longer"):
        fetch(local_server + "/slow", allow=ALLOW_LOCAL, timeout_s=0.5)
    with pytest.raises(UrlRefusedError, match="404"):
        fetch(local_server + "/missing", allow=ALLOW_LOCAL)
