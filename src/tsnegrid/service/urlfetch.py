"""Fetch an image url for the server, refusing requests that would reach inside the network.

Only http(s). Every hop (redirects included) is resolved first and refused when any address is
loopback, private, link-local (cloud metadata), multicast, reserved or otherwise not global
(an IPv6 address also when an IPv4 address embedded in it is: mapped, compatible, 6to4,
Teredo, NAT64), unless the allow-list names the host or a network holding the address. The
connection then goes to the address that was checked (no second DNS lookup), with a size
limit and one deadline for the whole fetch, redirects included.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
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


# IPv6 ranges Python's ``is_global`` (3.11) lets through but that must not be dialled: the
# local-use NAT64 prefix (RFC 8215) and the newer documentation prefix (RFC 9637).
_NOT_GLOBAL_V6 = (ipaddress.IPv6Network("64:ff9b:1::/48"), ipaddress.IPv6Network("3fff::/20"))
_COMPATIBLE = ipaddress.IPv6Network("::/96")  # deprecated IPv4-compatible ::a.b.c.d
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # well-known NAT64 prefix (RFC 6052)


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries: mapped, compatible, 6to4, Teredo (server
    and client) and NAT64 forms; a packet to one of them may end up at that IPv4 address."""
    out: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        out.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        out.append(ip.sixtofour)
    if ip.teredo is not None:
        out.extend(ip.teredo)
    if ip in _COMPATIBLE or ip in _NAT64:
        out.append(ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF))
    return out


def is_public(ip: IPAddress) -> bool:
    """True for globally routable unicast addresses only; an IPv6 address also needs every IPv4
    address embedded in it to be one."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = embedded_ipv4(ip)
        if ip.ipv4_mapped is not None:
            return is_public(ip.ipv4_mapped)
        if ip in _COMPATIBLE or any(ip in net for net in _NOT_GLOBAL_V6):
            return False  # deprecated or local-use forms: never routed to the public internet
        if not all(is_public(v4) for v4 in inner):
            return False
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
            inner = embedded_ipv4(ip) if isinstance(ip, ipaddress.IPv6Address) else []
            shown = f"{ip} (carrying {', '.join(map(str, inner))})" if inner else str(ip)
            raise UrlRefusedError(f"url host {host!r} resolves to {shown}, a loopback, private, "
                                  "link-local or reserved address; refused")
    return Target(url, host, port, ips[0])


def _pinned_request(client: httpx.AsyncClient, target: Target) -> httpx.Request:
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


async def _read_body(resp: httpx.Response, max_bytes: int) -> bytes:
    if resp.status_code != 200:
        raise UrlRefusedError(f"url answered HTTP {resp.status_code}")
    declared = resp.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise UrlRefusedError(f"url body of {int(declared):,} bytes exceeds the limit of "
                              f"{max_bytes:,}")
    chunks, size = [], 0
    async for chunk in resp.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise UrlRefusedError(f"url body exceeds the limit of {max_bytes:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _fetch(url: str, allow: AllowList, timeout_s: float, max_bytes: int,
                 max_redirects: int) -> bytes:
    async with httpx.AsyncClient(timeout=httpx.Timeout(timeout_s), follow_redirects=False,
                                 trust_env=False) as client:
        for _hop in range(max_redirects + 1):
            target = await asyncio.to_thread(check_url, url, allow)  # DNS may block
            try:
                resp = await client.send(_pinned_request(client, target), stream=True)
                try:
                    if resp.status_code in REDIRECTS and "location" in resp.headers:
                        url = urljoin(url, resp.headers["location"])
                        continue
                    return await _read_body(resp, max_bytes)
                finally:
                    await resp.aclose()
            except httpx.TimeoutException as exc:
                raise UrlRefusedError(f"url took longer than {timeout_s:g} s") from exc
            except httpx.HTTPError as exc:
                raise UrlRefusedError(f"cannot fetch url: {type(exc).__name__}") from exc
    raise UrlRefusedError(f"more than {max_redirects} redirects")


async def fetch_async(url: str, *, allow: AllowList = AllowList(), timeout_s: float = 10.0,
                      max_bytes: int = 10 * 2**20, max_redirects: int = 5) -> bytes:
    """GET ``url`` following at most ``max_redirects`` vetted redirects; return the body.
    ``timeout_s`` bounds the whole fetch (resolving, every redirect, slow headers, a body
    trickling in), not each read."""
    try:
        async with asyncio.timeout(timeout_s):
            return await _fetch(url, allow, timeout_s, max_bytes, max_redirects)
    except TimeoutError as exc:
        raise UrlRefusedError(f"url took longer than {timeout_s:g} s in all") from exc


def fetch(url: str, *, allow: AllowList = AllowList(), timeout_s: float = 10.0,
          max_bytes: int = 10 * 2**20, max_redirects: int = 5) -> bytes:
    """``fetch_async`` from synchronous code (a thread without an event loop)."""
    return asyncio.run(fetch_async(url, allow=allow, timeout_s=timeout_s, max_bytes=max_bytes,
                                   max_redirects=max_redirects))
