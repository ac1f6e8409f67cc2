"""Downloading reference URLs that strangers send, without letting them reach inside.

The host is resolved once and every address it resolves to is vetted; the connection then
goes to the vetted address itself (the name is kept for the Host header and TLS), so a
second lookup cannot swap in a private address. Redirects are followed by hand, each hop
vetted again. Bodies stream to disk under a byte cap that holds whatever Content-Length
claims. One deadline bounds everything: the lookup, and every connect, read and write of the
request (headers included: see `deadline.py`), so a server dripping a byte at a time gets
nowhere.
Proxies from the environment are never used.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx

from r2v.errors import ReferenceFetchFailed, ReferenceInvalid
from r2v.refs.deadline import deadline_client

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_REDIRECTS = {301, 302, 303, 307, 308}
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
# IPv6 on the public internet is global unicast (2000::/3), less the ranges in it that are
# not (protocol assignments, Teredo and ORCHID among them, and documentation). Anything
# outside 2000::/3 (site-local fec0::/10, unique local, link-local, …) is never public.
_IPV6_GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")
_IPV6_NOT_PUBLIC = tuple(
    ipaddress.ip_network(net) for net in ("2001::/23", "2001:db8::/32", "3fff::/20")
)


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
    if isinstance(candidate, ipaddress.IPv6Address) and (
        candidate not in _IPV6_GLOBAL_UNICAST or any(candidate in net for net in _IPV6_NOT_PUBLIC)
    ):
        return False
    return candidate.is_global and not (candidate.is_multicast or candidate.is_reserved)


def literal_address(host: str) -> IPAddress | None:
    """The address a host names without any lookup, in every form the resolver accepts.

    Besides plain IPv4 and IPv6, that is the legacy numeric forms (`2130706433`, `0x7f.1`,
    `017700000001`) that `inet_aton` and so `getaddrinfo` read as IPv4.
    """
    host = host.strip("[]").split("%")[0]
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def _redirect_target(current: str, location: str) -> str:
    """Where a redirect leads, or `ReferenceFetchFailed` when it is no usable http(s) URL."""
    try:
        target = urljoin(current, location)
        parts = urlsplit(target)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as exc:
        raise ReferenceFetchFailed("the server redirected to a malformed URL") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname or "\\" in target:
        shown = location if len(location) <= 60 else location[:57] + "..."
        raise ReferenceFetchFailed(
            f"the server redirected to {shown!r}, which is not an http(s) URL r2v can fetch"
        )
    return target


def _allow_entry(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _port_of(url: str) -> tuple[str, str, int]:
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
    return parts.scheme, host, port


class Fetcher:
    """Downloads http(s) URLs to files, refusing private addresses unless allow-listed."""

    def __init__(
        self,
        allow_hosts: Iterable[str] = (),
        limits: FetchLimits | None = None,
        *,
        user_agent: str = "r2v-fetcher/0.1",
        on_bytes: Callable[[int], None] = lambda _n: None,
    ) -> None:
        self._on_bytes = on_bytes
        self._allow = {entry.lower() for entry in allow_hosts}
        self.limits = limits or FetchLimits()
        self._user_agent = user_agent

    def allowed(self, host: str, port: int) -> bool:
        """Whether `host:port` is on the allow-list (and so may be private)."""
        return _allow_entry(host, port) in self._allow

    def refusal(self, url: str) -> str | None:
        """Why `url` can be refused without any lookup (a private literal address), or None.

        This is what the API can judge at creation; names are judged when fetched.
        """
        try:
            _scheme, host, port = _port_of(url)
        except ReferenceFetchFailed as exc:
            return exc.message
        if self.allowed(host, port):
            return None
        address = literal_address(host)
        if host == "localhost" or host.endswith(".localhost"):
            address = ipaddress.ip_address("127.0.0.1")
        if address is not None and not is_public(address):
            return (
                f"{host} is a private or reserved address; use a publicly reachable URL, or "
                f"set R2V_FETCH_ALLOW_HOSTS={_allow_entry(host, port)} on the server to allow it"
            )
        return None

    def callback_refusal(self, url: str) -> str | None:
        """Why `url` cannot be a webhook target, judged without a lookup, or None.

        Callbacks must be https, except to allow-listed hosts; private literals are refused.
        """
        try:
            scheme, host, port = _port_of(url)
        except ReferenceFetchFailed as exc:
            return exc.message
        if scheme != "https" and not self.allowed(host, port):
            return "callback_url must be an https:// URL (plain http only for allow-listed hosts)"
        return self.refusal(url)

    def _resolve(self, host: str, port: int, deadline: float) -> list[IPAddress]:
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="r2v-dns")
        future = pool.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
        pool.shutdown(wait=False)  # a lookup that hangs finishes on its own, unwaited
        try:
            infos = future.result(timeout=max(0.1, deadline - time.monotonic()))
        except FutureTimeout as exc:
            raise ReferenceFetchFailed(f"looking up {host!r} took too long") from exc
        except (OSError, UnicodeError) as exc:
            raise ReferenceFetchFailed(f"the host {host!r} could not be resolved") from exc
        return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]

    def _vet(self, url: str, deadline: float) -> tuple[str, IPAddress, int]:
        """(host, address to connect to, port) for `url`, or raise when it may not be reached."""
        _scheme, host, port = _port_of(url)
        addresses = self._resolve(host, port, deadline)
        if not addresses:
            raise ReferenceFetchFailed(f"the host {host!r} has no address")
        if not self.allowed(host, port):
            private = [a for a in addresses if not is_public(a)]
            if private:
                raise ReferenceFetchFailed(
                    f"the host {host!r} resolves to a private or reserved address "
                    f"({private[0]}): use a publicly reachable URL, or upload the file"
                )
        return host, addresses[0], port

    def fetch(
        self,
        url: str,
        dest: Path,
        max_bytes: int,
        *,
        check: Callable[[], None] = lambda: None,
        deadline: float | None = None,
    ) -> Fetched:
        """Download `url` into `dest`; raise `ReferenceFetchFailed` or `ReferenceInvalid`.

        `check` runs as the body arrives; whatever it raises stops the download. `deadline`
        (a `time.monotonic()` value) ends it sooner than the fetcher's own limit would.
        """
        own = time.monotonic() + self.limits.deadline
        deadline = own if deadline is None else min(own, deadline)
        with deadline_client(deadline) as client:
            current = url
            for _hop in range(self.limits.max_redirects + 1):
                response = self._send(client, current, deadline)
                try:
                    if response.status_code in _REDIRECTS and "location" in response.headers:
                        current = _redirect_target(current, response.headers["location"])
                        continue
                    if response.status_code != 200:
                        raise ReferenceFetchFailed(
                            f"the server answered HTTP {response.status_code}: "
                            "check that the URL is public and points at the file itself"
                        )
                    size = self._stream(response, dest, max_bytes, deadline, check)
                    return Fetched(current, dest, size)
                finally:
                    response.close()
            raise ReferenceFetchFailed(
                f"more than {self.limits.max_redirects} redirects: link the file directly"
            )

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
        """POST `body` to the vetted address of `url` (no redirects); the status code.

        Raises `ReferenceFetchFailed` when the target may not or cannot be reached.
        """
        deadline = time.monotonic() + timeout
        with deadline_client(deadline) as client:
            response = self._send(
                client, url, deadline, method="POST", body=body, headers=headers, wait=timeout
            )
            response.close()
            return response.status_code

    def _send(
        self,
        client: httpx.Client,
        url: str,
        deadline: float,
        *,
        method: str = "GET",
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        wait: float | None = None,
    ) -> httpx.Response:
        """Send one request to the vetted address of `url`; the body is left to stream.

        `wait` is how long the answer may take to begin (default: the read timeout).
        """
        host, address, port = self._vet(url, deadline)
        parts = urlsplit(url)
        literal = f"[{address}]" if address.version == 6 else str(address)
        target = parts._replace(netloc=f"{literal}:{port}", fragment="").geturl()
        host_header = f"[{host}]" if ":" in host else host
        if port != (443 if parts.scheme == "https" else 80):
            host_header = f"{host_header}:{port}"
        left = max(0.1, deadline - time.monotonic())
        timeout = httpx.Timeout(
            connect=min(self.limits.connect_timeout, left),
            read=min(self.limits.read_timeout if wait is None else wait, left),
            write=min(10.0, left),
            pool=min(5.0, left),
        )
        try:
            request = client.build_request(
                method,
                target,
                content=body,
                headers={
                    **(headers or {}),
                    "Host": host_header,
                    "User-Agent": self._user_agent,
                    # byte caps count what arrives; nobody should have to inflate a bomb
                    "Accept-Encoding": "identity",
                },
                extensions={"sni_hostname": host, "timeout": timeout.as_dict()},
            )
        except httpx.InvalidURL as exc:
            raise ReferenceFetchFailed("the URL cannot be requested as written") from exc
        try:
            return client.send(request, stream=True)
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            # httpx reads a redirect's Location even when not following it
            raise ReferenceFetchFailed("the server redirected to a malformed URL") from exc
        except httpx.RemoteProtocolError as exc:
            if "location" in str(exc).lower():
                raise ReferenceFetchFailed("the server redirected to a malformed URL") from exc
            raise ReferenceFetchFailed(f"could not reach {host}: {exc}") from exc
        except httpx.TimeoutException as exc:
            if time.monotonic() >= deadline:
                raise ReferenceFetchFailed(
                    f"{host} did not answer within the download's time limit "
                    f"({self.limits.deadline:.0f} s)"
                ) from exc
            raise ReferenceFetchFailed(f"timed out reaching {host}") from exc
        except httpx.HTTPError as exc:
            raise ReferenceFetchFailed(f"could not reach {host}: {exc}") from exc

    def _stream(
        self,
        response: httpx.Response,
        dest: Path,
        max_bytes: int,
        deadline: float,
        check: Callable[[], None],
    ) -> int:
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            # decoding first and counting after is how a 2 KB body becomes gigabytes
            raise ReferenceFetchFailed(
                f"the server sent the file encoded ({encoding[:40]}); r2v takes files only "
                "as they are: serve it without Content-Encoding"
            )
        declared = response.headers.get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > max_bytes:
            raise ReferenceInvalid(too_large(int(declared), max_bytes))
        size = 0
        try:
            with dest.open("wb") as out:
                for chunk in response.iter_raw():
                    size += len(chunk)
                    if size > max_bytes:
                        raise ReferenceInvalid(too_large(size, max_bytes, at_least=True))
                    check()
                    out.write(chunk)
                    self._on_bytes(len(chunk))
        except httpx.TimeoutException as exc:
            if time.monotonic() >= deadline:
                raise ReferenceFetchFailed(
                    f"the download took longer than {self.limits.deadline:.0f} s: "
                    "use a faster host or a smaller file"
                ) from exc
            raise ReferenceFetchFailed(
                "the server stopped sending the file (read timeout)"
            ) from exc
        except httpx.HTTPError as exc:
            raise ReferenceFetchFailed(f"the download broke off: {exc}") from exc
        return size


def too_large(size: int, limit: int, *, at_least: bool = False) -> str:
    more = "more than " if at_least else ""
    return f"the file is {more}{size / 1e6:.1f} MB; the limit is {limit / 1e6:.0f} MB"
