"""Downloading reference URLs that strangers send, without letting them reach inside.

The host is resolved once and every address it resolves to is vetted; the connection then
goes to the vetted address itself (the name is kept for the Host header and TLS), so a
second lookup cannot swap in a private address. Redirects are followed by hand, each hop
vetted again. Bodies stream to disk under a byte cap that holds whatever Content-Length
claims, within one overall deadline. Proxies from the environment are never used.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx

from r2v.errors import ReferenceFetchFailed, ReferenceInvalid

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_REDIRECTS = {301, 302, 303, 307, 308}
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")


@dataclass(frozen=True)
class FetchLimits:
    """Timeouts of one download; `deadline` bounds all hops and the whole body together."""

    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    deadline: float = 120.0
    max_redirects: int = 5


@dataclass(frozen=True)
class Fetched:
    """A downloaded body on disk."""

    url: str
    path: Path
    size: int
    content_type: str | None


def unwrap(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 form carries (mapped, NAT64, 6to4, Teredo), else itself."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if address.sixtofour is not None:
            return address.sixtofour
        if address.teredo is not None:
            return address.teredo[1]
    return address


def is_public(address: IPAddress) -> bool:
    """Whether the address is a public unicast one (after unwrapping IPv6 forms of IPv4)."""
    if isinstance(address, ipaddress.IPv6Address) and address in _NAT64_LOCAL:
        return False
    # A wrapped IPv4 address is judged as itself: the wrapper's own prefix is never "global".
    candidate = unwrap(address)
    return candidate.is_global and not (candidate.is_multicast or candidate.is_reserved)


class Fetcher:
    """Downloads http(s) URLs to files, refusing private addresses unless allow-listed."""

    def __init__(
        self,
        allow_hosts: Iterable[str] = (),
        limits: FetchLimits | None = None,
        *,
        user_agent: str = "r2v-fetcher/0.1",
    ) -> None:
        self._allow = {entry.lower() for entry in allow_hosts}
        self.limits = limits or FetchLimits()
        self._user_agent = user_agent

    def _vet(self, url: str) -> tuple[str, IPAddress, int]:
        """(host, address to connect to, port) for `url`, or raise when it may not be reached."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise ReferenceFetchFailed("only http:// and https:// URLs can be fetched")
        host = (parts.hostname or "").lower()
        if not host:
            raise ReferenceFetchFailed("the URL has no host")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise ReferenceFetchFailed("the URL's port is not a number") from exc
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise ReferenceFetchFailed(f"the host {host!r} could not be resolved") from exc
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
        if not addresses:
            raise ReferenceFetchFailed(f"the host {host!r} has no address")
        display = f"[{host}]" if ":" in host else host
        if f"{display}:{port}" not in self._allow and f"{host}:{port}" not in self._allow:
            private = [a for a in addresses if not is_public(a)]
            if private:
                raise ReferenceFetchFailed(
                    f"the host {host!r} resolves to a private or reserved address "
                    f"({private[0]}): use a publicly reachable URL, or upload the file"
                )
        return host, addresses[0], port

    def fetch(self, url: str, dest: Path, max_bytes: int) -> Fetched:
        """Download `url` into `dest`; raise `ReferenceFetchFailed` or `ReferenceInvalid`."""
        limits = self.limits
        deadline = time.monotonic() + limits.deadline
        timeout = httpx.Timeout(
            connect=limits.connect_timeout, read=limits.read_timeout, write=10.0, pool=5.0
        )
        with httpx.Client(trust_env=False, follow_redirects=False, timeout=timeout) as client:
            current = url
            for _hop in range(limits.max_redirects + 1):
                host, address, port = self._vet(current)
                parts = urlsplit(current)
                literal = f"[{address}]" if address.version == 6 else str(address)
                target = parts._replace(netloc=f"{literal}:{port}", fragment="").geturl()
                default_port = 443 if parts.scheme == "https" else 80
                host_header = parts.hostname or host
                if ":" in host_header:
                    host_header = f"[{host_header}]"
                if port != default_port:
                    host_header = f"{host_header}:{port}"
                request = client.build_request(
                    "GET",
                    target,
                    headers={"Host": host_header, "User-Agent": self._user_agent},
                    extensions={"sni_hostname": host, "timeout": timeout.as_dict()},
                )
                try:
                    response = client.send(request, stream=True)
                except httpx.TimeoutException as exc:
                    raise ReferenceFetchFailed(f"timed out connecting to {host}") from exc
                except httpx.HTTPError as exc:
                    raise ReferenceFetchFailed(f"could not connect to {host}: {exc}") from exc
                try:
                    if response.status_code in _REDIRECTS and "location" in response.headers:
                        current = urljoin(current, response.headers["location"])
                        continue
                    if response.status_code != 200:
                        raise ReferenceFetchFailed(
                            f"the server answered HTTP {response.status_code}: "
                            "check that the URL is public and points at the file itself"
                        )
                    size = self._stream(response, dest, max_bytes, deadline)
                    return Fetched(current, dest, size, response.headers.get("content-type"))
                finally:
                    response.close()
            raise ReferenceFetchFailed(
                f"more than {limits.max_redirects} redirects: link the file directly"
            )

    def _stream(self, response: httpx.Response, dest: Path, max_bytes: int, deadline: float) -> int:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise ReferenceInvalid(_too_large(int(declared), max_bytes))
        size = 0
        try:
            with dest.open("wb") as out:
                for chunk in response.iter_bytes(64 * 1024):
                    size += len(chunk)
                    if size > max_bytes:
                        raise ReferenceInvalid(_too_large(size, max_bytes, at_least=True))
                    if time.monotonic() > deadline:
                        raise ReferenceFetchFailed(
                            f"the download took longer than {self.limits.deadline:.0f} s: "
                            "use a faster host or a smaller file"
                        )
                    out.write(chunk)
        except httpx.TimeoutException as exc:
            raise ReferenceFetchFailed(
                "the server stopped sending the file (read timeout)"
            ) from exc
        except httpx.HTTPError as exc:
            raise ReferenceFetchFailed(f"the download broke off: {exc}") from exc
        return size


def _too_large(size: int, limit: int, *, at_least: bool = False) -> str:
    more = "more than " if at_least else ""
    return f"the file is {more}{size / 1e6:.1f} MB; the limit is {limit / 1e6:.0f} MB"
