"""Fetch an image url for the server, refusing requests that would reach inside the network.

Only http(s). Every hop (redirects included) is resolved first and refused when any address is
loopback, private, link-local (cloud metadata), multicast, reserved or otherwise not global,
unless the allow-list names the host or a network holding the address. The connection then goes
to the address that was checked (no second DNS lookup), with size and time limits.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from tsnegrid.service.errors import UrlRefusedError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class AllowList:
    """Hosts (by name) and networks that may be fetched even though they are not public."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> AllowList:
        hosts, nets = set(), []
        for entry in entries:
            entry = entry.strip()
            if not entry:
                continue
            try:
                nets.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry.lower().rstrip("."))
        return cls(frozenset(hosts), tuple(nets))

    def allows(self, host: str, ip: IPAddress) -> bool:
        return host.lower().rstrip(".") in self.hosts or any(ip in n for n in self.networks)


def is_public(ip: IPAddress) -> bool:
    """True for globally routable unicast addresses only."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def resolve(host: str, port: int) -> list[IPAddress]:
    """All addresses ``host`` resolves to (an address literal resolves to itself)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UrlRefusedError(f"cannot resolve host {host!r}") from exc
    out: list[IPAddress] = []
    for info in infos:
        addr = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if addr not in out:
            out.append(addr)
    if not out:
        raise UrlRefusedError(f"host {host!r} has no address")
    return out


@dataclass(frozen=True)
class Target:
    """A vetted hop: the url, its host and port, and the address to connect to."""

    url: str
    host: str
    port: int
    ip: IPAddress


def check_url(url: str, allow: AllowList = AllowList()) -> Target:
    """Validate scheme and host and resolve; raise ``UrlRefusedError`` if it may not be fetched."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRefusedError(f"malformed url: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UrlRefusedError(f"url scheme {scheme or '(none)'!r} is not allowed; use http or "
                              "https")
    host = parts.hostname
    if not host:
        raise UrlRefusedError("url has no host")
    port = port or (443 if scheme == "https" else 80)
    ips = resolve(host, port)
    for ip in ips:
        if not is_public(ip) and not allow.allows(host, ip):
            raise UrlRefusedError(f"url host {host!r} resolves to {ip}, a loopback, private, "
                                  "link-local or reserved address; refused")
    return Target(url, host, port, ips[0])


def _pinned_request(client: httpx.Client, target: Target) -> httpx.Request:
    """A GET to the checked address, with the original Host header and TLS server name."""
    url = httpx.URL(target.url)
    default_port = 443 if url.scheme == "https" else 80
    host_header = target.host if target.port == default_port else f"{target.host}:{target.port}"
    if ":" in target.host and not target.host.startswith("["):
        host_header = (f"[{target.host}]" if target.port == default_port
                       else f"[{target.host}]:{target.port}")
    pinned = url.copy_with(host=str(target.ip), port=target.port)
    return client.build_request("GET", pinned, headers={"Host": host_header},
                                extensions={"sni_hostname": target.host})


def _read_body(resp: httpx.Response, max_bytes: int, deadline: float, timeout_s: float) -> bytes:
    if resp.status_code != 200:
        raise UrlRefusedError(f"url answered HTTP {resp.status_code}")
    declared = resp.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise UrlRefusedError(f"url body of {int(declared):,} bytes exceeds the limit of "
                              f"{max_bytes:,}")
    chunks, size = [], 0
    for chunk in resp.iter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise UrlRefusedError(f"url body exceeds the limit of {max_bytes:,} bytes")
        if time.monotonic() > deadline:
            raise UrlRefusedError(f"url took longer than {timeout_s:g} s")
        chunks.append(chunk)
    return b"".join(chunks)


def fetch(url: str, *, allow: AllowList = AllowList(), timeout_s: float = 10.0,
          max_bytes: int = 10 * 2**20, max_redirects: int = 5) -> bytes:
    """GET ``url`` following at most ``max_redirects`` vetted redirects; return the body."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=httpx.Timeout(timeout_s), follow_redirects=False,
                      trust_env=False) as client:
        for _hop in range(max_redirects + 1):
            target = check_url(url, allow)
            try:
                resp = client.send(_pinned_request(client, target), stream=True)
                try:
                    if resp.status_code in REDIRECTS and "location" in resp.headers:
                        url = urljoin(url, resp.headers["location"])
                        continue
                    return _read_body(resp, max_bytes, deadline, timeout_s)
                finally:
                    resp.close()
            except httpx.TimeoutException as exc:
                raise UrlRefusedError(f"url took longer than {timeout_s:g} s") from exc
            except httpx.HTTPError as exc:
                raise UrlRefusedError(f"cannot fetch url: {type(exc).__name__}") from exc
    raise UrlRefusedError(f"more than {max_redirects} redirects")
