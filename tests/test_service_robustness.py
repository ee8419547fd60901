"""Service robustness: hostile or malformed input is refused per input with a clear reason, and
nothing bad is stored. Refused url addresses are never dialled: the guard itself is tested."""

from __future__ import annotations

import io
import ipaddress
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service_helpers import b64, create_key, db_url, service_cache, start_server
from tsnegrid.service.app import create_app
from tsnegrid.service.config import ServiceConfig
from tsnegrid.service.errors import UrlRefusedError
from tsnegrid.service.urlfetch import AllowList, check_url, embedded_ipv4, fetch, is_public

__all__ = ["db_url", "service_cache", "start_server"]  # fixtures used by name

# Loopback (127.0.0.1) and the cloud metadata address (169.254.169.254) hidden in IPv6 forms.
EMBEDDED_INTERNAL = [
    "::7f00:1", "::127.0.0.1",  # IPv4-compatible
    "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe",  # NAT64 well-known prefix
    "2002:7f00:1::", "2002:a9fe:a9fe::",  # 6to4
    "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo whose client is 127.0.0.1 (obfuscated)
    "::ffff:7f00:1", "::ffff:169.254.169.254",  # IPv4-mapped
    "64:ff9b:1::a00:1",  # local-use NAT64 (RFC 8215)
    "::8.8.8.8",  # IPv4-compatible is deprecated and never routed, whatever it carries
]


@pytest.mark.parametrize("addr", EMBEDDED_INTERNAL)
def test_embedded_ipv4_forms_are_not_public(addr: str) -> None:
    assert not is_public(ipaddress.ip_address(addr))


@pytest.mark.parametrize("addr", EMBEDDED_INTERNAL)
def test_embedded_ipv4_urls_are_refused_before_connecting(addr: str, monkeypatch: Any) -> None:
    def no_connect(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a connection was attempted")

    monkeypatch.setattr(socket.socket, "connect", no_connect)
    with pytest.raises(UrlRefusedError, match="refused"):
        check_url(f"http://[{addr}]/x.png")
    with pytest.raises(UrlRefusedError, match="refused"):
        fetch(f"http://[{addr}]:8080/x.png")


def test_the_refusal_names_the_embedded_address() -> None:
    with pytest.raises(UrlRefusedError, match=r"carrying 169\.254\.169\.254"):
        check_url("http://[64:ff9b::a9fe:a9fe]/")
    teredo = ipaddress.IPv6Address("2001:0:4136:e378:8000:63bf:80ff:fffe")
    assert ipaddress.IPv4Address("127.0.0.1") in embedded_ipv4(teredo)


@pytest.mark.parametrize("addr", ["2606:4700:4700::1111", "64:ff9b::808:808", "2002:808:808::1",
                                  "2a00:1450:4001::200e"])
def test_global_ipv6_and_forms_of_public_ipv4_stay_allowed(addr: str) -> None:
    assert is_public(ipaddress.ip_address(addr))


# ---- the API in-process ---------------------------------------------------------------------


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    config = ServiceConfig(data_dir=tmp_path / "data", workers=0, cache_dir=tmp_path / "cache")
    key = create_key(config.data_dir, "app")
    with TestClient(create_app(config), raise_server_exceptions=False) as client:
        yield client, {"Authorization": f"Key {key}", "Content-Type": "application/json"}


def png(w: int = 8, h: int = 8, colour: tuple[int, int, int] = (10, 120, 200)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), colour).save(buf, "PNG")
    return buf.getvalue()


def raw_input(input_id: str, metadata: str = "{}") -> str:
    """One input as JSON text (so that it can hold what json.dumps would not write)."""
    return (f'{{"id": "{input_id}", "data": {{"image": {{"base64": "{b64(png())}"}}, '
            f'"metadata": {metadata}}}}}')


@pytest.mark.parametrize("bad", ['{"x": NaN}', '{"x": Infinity}', '{"a": [1, -Infinity]}'])
def test_nan_or_infinity_in_metadata_is_refused_and_nothing_is_stored(api: Any,
                                                                      bad: str) -> None:
    client, headers = api
    body = f'{{"inputs": [{raw_input("bad", bad)}, {raw_input("good")}]}}'
    r = client.post("/v2/inputs", content=body, headers=headers)
    assert r.status_code == 200, r.text
    bad_out, good_out = r.json()["inputs"]
    assert bad_out["status"]["code"] == 30104
    assert "data.metadata" in bad_out["status"]["description"]
    assert good_out["status"]["code"] == 30000
    assert client.get("/v2/inputs/bad", headers=headers).status_code == 404
    again = client.post("/v2/inputs", content=f'{{"inputs": [{raw_input("bad", "{}")}]}}',
                        headers=headers)
    assert again.status_code == 200, again.text  # the retry is not a duplicate


def test_dot_ids_are_refused(api: Any) -> None:
    client, headers = api
    body = f'{{"inputs": [{raw_input(".")}, {raw_input("..")}, {raw_input("a.b")}]}}'
    r = client.post("/v2/inputs", content=body, headers=headers)
    assert r.status_code == 200, r.text
    dot, dotdot, fine = r.json()["inputs"]
    for out in (dot, dotdot):
        assert out["status"]["code"] == 30104
        assert "cannot be used in a url" in out["status"]["description"]
    assert fine["status"]["code"] == 30000
    ids = [i["id"] for i in client.get("/v2/inputs", headers=headers).json()["inputs"]]
    assert ids == ["a.b"]


@pytest.fixture
def db_api(tmp_path: Path, db_url: str | None) -> Iterator[tuple[TestClient, dict[str, str],
                                                                  ServiceConfig]]:
    config = ServiceConfig(data_dir=tmp_path / "data", db=db_url, workers=0,
                           cache_dir=tmp_path / "cache")
    key = create_key(config.data_dir, "app", db_url)
    with TestClient(create_app(config), raise_server_exceptions=False) as client:
        yield client, {"Authorization": f"Key {key}", "Content-Type": "application/json"}, config


def test_an_id_taken_by_a_concurrent_upload_is_a_duplicate_and_the_rest_is_stored(
        db_api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The race made deterministic: another upload stores ``dup`` after this request checked
    its ids and before it wrote its rows."""
    from tsnegrid.service.api.methods import inputs as route
    from tsnegrid.service.db import App, Database, Input

    client, headers, config = db_api
    real = route.check_image
    raced: list[bool] = []

    def racing(data: bytes, *args: Any) -> Any:
        if not raced:
            raced.append(True)
            other = Database(config.db_url)
            try:
                with other.session() as s:
                    app_id = s.query(App.id).scalar()
                    s.add(Input(app_id=app_id, input_id="dup", blob_key="0" * 64, mime="image/png",
                                width=8, height=8, size_bytes=1, meta={}))
            finally:
                other.close()
        return real(data, *args)

    monkeypatch.setattr(route, "check_image", racing)
    body = {"inputs": [{"id": i, "data": {"image": {"base64": b64(png())}}}
                       for i in ("dup", "a", "b", "c")]}
    r = client.post("/v2/inputs", json=body, headers=headers)
    assert r.status_code == 200, r.text
    codes = [o["status"]["code"] for o in r.json()["inputs"]]
    assert codes == [30100, 30000, 30000, 30000]
    assert r.json()["status"]["code"] == 10010
    listed = {i["id"] for i in client.get("/v2/inputs", headers=headers).json()["inputs"]}
    assert listed == {"dup", "a", "b", "c"}


def test_concurrent_uploads_of_one_id_store_it_once_and_lose_no_other_input(
        db_api: Any) -> None:
    client, headers, _config = db_api
    image = b64(png())
    results: list[Any] = []

    def upload(n: int) -> None:
        body = {"inputs": [{"id": "same", "data": {"image": {"base64": image}}},
                           {"id": f"own-{n}", "data": {"image": {"base64": image}}}]}
        results.append(client.post("/v2/inputs", json=body, headers=headers))

    threads = [threading.Thread(target=upload, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 8 and all(r.status_code == 200 for r in results), \
        [r.text for r in results if r.status_code != 200]
    same = [r.json()["inputs"][0]["status"]["code"] for r in results]
    assert sorted(same) == [30000] + [30100] * 7
    listed = {i["id"] for i in client.get("/v2/inputs", headers=headers).json()["inputs"]}
    assert listed == {"same"} | {f"own-{n}" for n in range(8)}


# ---- slow urls ------------------------------------------------------------------------------


class Trickle(BaseHTTPRequestHandler):
    """Loopback peers that answer slowly: a byte of the headers at a time, a redirect chain
    whose every hop waits, or a body that trickles in. ``asked`` lists the paths requested,
    ``ended`` each answer's path and whether it was sent in full ("sent") or the client
    hung up first ("cut")."""

    asked: ClassVar[list[str]] = []
    ended: ClassVar[list[tuple[str, str]]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def _drip(self, data: bytes, every_s: float) -> None:
        for i in range(len(data)):
            self.wfile.write(data[i:i + 1])
            self.wfile.flush()
            time.sleep(every_s)

    def do_GET(self) -> None:  # noqa: N802
        path, _, query = self.path.partition("?")
        self.asked.append(self.path)
        outcome = "sent"
        try:
            if path == "/headers":  # one header byte every 0.15 s: 8 s for the whole answer
                self._drip(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nX-Pad: "
                           + b"x" * 8 + b"\r\n\r\n", 0.15)
            elif path == "/hops":  # each hop waits 0.5 s before redirecting
                n = int(query or "0")
                time.sleep(0.5)
                self.send_response(302 if n else 404)
                self.send_header("Location", f"/hops?{n - 1}")
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif path == "/body":  # 200 bytes at one every 0.05 s: 10 s
                self.send_response(200)
                self.send_header("Content-Length", "200")
                self.end_headers()
                self._drip(b"y" * 200, 0.05)
        except OSError:  # the client gave up: expected
            outcome = "cut"
        self.ended.append((self.path, outcome))


@pytest.fixture
def slow_server() -> Iterator[str]:
    Trickle.asked.clear()
    Trickle.ended.clear()
    server = ThreadingHTTPServer(("127.0.0.2", 0), Trickle)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.2:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("path", ["/headers", "/hops?5", "/body"])
def test_one_deadline_bounds_the_whole_fetch(slow_server: str, path: str) -> None:
    """Without a total deadline each of these takes 3 to 10 s (every read is quick) and ends
    with the whole answer; with it the fetch gives up after 1 s, leaving the server's answer
    cut short: the trickle is not read to its end, the chain of hops not followed to its last."""
    with pytest.raises(UrlRefusedError, match="longer than 1 s"):
        fetch(slow_server + path, allow=AllowList.parse(["127.0.0.2/32"]), timeout_s=1.0)
    if path.startswith("/hops"):
        assert Trickle.asked and "/hops?0" not in Trickle.asked, Trickle.asked
        return
    def mine() -> list[tuple[str, str]]:  # a hop of the case before may still be answering,
        return [e for e in Trickle.ended if e[0] == path]  # late, into the shared list

    deadline = time.monotonic() + 30  # the server notices at its next byte or two
    while not mine() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert mine() == [(path, "cut")]


def test_no_database_connection_is_held_while_a_url_is_fetched(
        api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from tsnegrid.service import ingest

    client, headers = api
    state = client.app.state.service
    held: list[int] = []

    def fake_fetch(url: str, **kwargs: Any) -> bytes:
        held.append(state.db.engine.pool.checkedout())
        return png()

    monkeypatch.setattr(ingest, "fetch", fake_fetch)
    body = {"inputs": [{"id": "u", "data": {"image": {"url": "http://images.example/a.png"}}}]}
    r = client.post("/v2/inputs", json=body, headers=headers)
    assert r.status_code == 200, r.text
    assert held == [0]


def test_url_fetches_of_one_app_are_bounded() -> None:
    from tsnegrid.service.errors import LimitError
    from tsnegrid.service.ingest import FetchSlots

    slots = FetchSlots(overall=3, per_app=2, wait_s=0.05)
    with slots.slot(1), slots.slot(1):
        with pytest.raises(LimitError, match="2 url fetches"):
            with slots.slot(1):
                pass
        with slots.slot(2):  # another app still gets one
            with pytest.raises(LimitError, match="busy"):
                with slots.slot(3):
                    pass
    with slots.slot(1):  # released again
        pass


def test_slow_urls_do_not_stall_other_requests(slow_server: str, start_server: Any,
                                               tmp_path: Path) -> None:
    """The reported case on a real server: 16 uploads (more than the database pool holds)
    whose url sends one header byte at a time; meanwhile /healthz, listing and base64 uploads
    answer at once, and every slow upload is answered within its deadline (plus the wait for
    a fetch slot)."""
    server = start_server(TSNEGRID_SERVICE_WORKERS="0", TSNEGRID_SERVICE_URL_TIMEOUT_S="2",
                          TSNEGRID_SERVICE_URL_ALLOW="127.0.0.2/32")
    key = create_key(server.data_dir, "app")
    auth = {"Authorization": f"Key {key}"}
    slow_answers: list[Any] = []

    def slow_upload(n: int) -> None:
        body = {"inputs": [{"id": f"slow-{n}", "data": {"image": {"url": slow_server
                                                                  + "/headers"}}}]}
        slow_answers.append(httpx.post(server.url + "/v2/inputs", json=body, headers=auth,
                                       timeout=30))

    threads = [threading.Thread(target=slow_upload, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    time.sleep(0.5)  # the slow fetches are under way
    for n in range(3):
        started = time.monotonic()
        assert httpx.get(server.url + "/healthz", timeout=30).status_code == 200
        assert httpx.get(server.url + "/v2/inputs", headers=auth, timeout=30).status_code == 200
        body = {"inputs": [{"id": f"fast-{n}", "data": {"image": {"base64": b64(png())}}}]}
        r = httpx.post(server.url + "/v2/inputs", json=body, headers=auth, timeout=30)
        assert r.status_code == 200, r.text
        assert time.monotonic() - started < 5  # not queued behind the slow urls
    for t in threads:
        t.join(30)
    assert len(slow_answers) == 16
    codes = Counter(a.json()["inputs"][0]["status"]["code"] for a in slow_answers)
    assert all(a.status_code == 400 for a in slow_answers)  # each one refused, none a 500
    assert set(codes) <= {30105, 30106}, codes  # took too long, or no fetch slot in time
