"""The reference fetcher against a real loopback server: allow-list, redirects, caps, deadline."""

from __future__ import annotations

import ipaddress
import time
from pathlib import Path

import pytest

from r2v.errors import ReferenceFetchFailed, ReferenceInvalid
from r2v.refs.fetch import Fetcher, FetchLimits, is_public
from tests.refserver import RefServer


@pytest.fixture
def fetcher(refserver: RefServer) -> Fetcher:
    return Fetcher([refserver.host_port], FetchLimits(read_timeout=1.0, deadline=2.0))


def test_allow_listed_loopback_host_is_fetched(
    fetcher: Fetcher, refserver: RefServer, media_dir: Path, tmp_path: Path
) -> None:
    fetched = fetcher.fetch(refserver.file_url("photo.jpg"), tmp_path / "a", 10_000_000)
    assert fetched.path.read_bytes() == (media_dir / "photo.jpg").read_bytes()
    assert fetched.size == (media_dir / "photo.jpg").stat().st_size


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "localhost",
        "2130706433",  # 127.0.0.1 as one number
        "0x7f.1",  # 127.0.0.1 in hex and short form
        "[::1]",
        "10.0.0.8",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # carrier-grade NAT
        "0.0.0.0",
        "[::ffff:127.0.0.1]",  # IPv4-mapped
        "[64:ff9b::a00:1]",  # NAT64 of 10.0.0.1
        "[fd00::1]",  # unique local
        "[fe80::1]",  # link-local
        "224.0.0.1",  # multicast
    ],
)
def test_private_and_reserved_hosts_are_refused(host: str, tmp_path: Path) -> None:
    fetcher = Fetcher([])
    with pytest.raises(ReferenceFetchFailed, match="private or reserved"):
        fetcher.fetch(f"http://{host}:9/x.jpg", tmp_path / "x", 1000)


def test_allow_list_is_exact_host_and_port(refserver: RefServer, tmp_path: Path) -> None:
    port = int(refserver.host_port.rsplit(":", 1)[1])
    other_port = Fetcher([f"127.0.0.1:{port + 1}"])
    with pytest.raises(ReferenceFetchFailed, match="private"):
        other_port.fetch(refserver.file_url("photo.jpg"), tmp_path / "x", 10_000_000)


def test_redirect_into_private_space_is_refused(
    fetcher: Fetcher, refserver: RefServer, tmp_path: Path
) -> None:
    # the first hop is allowed; the hop it redirects to (another loopback port) is not
    url = refserver.url("/redirect?to=http://127.0.0.1:1/secret")
    with pytest.raises(ReferenceFetchFailed, match="private"):
        fetcher.fetch(url, tmp_path / "x", 1000)


def test_redirects_are_followed_and_capped(
    fetcher: Fetcher, refserver: RefServer, tmp_path: Path
) -> None:
    target = refserver.file_url("photo.jpg")
    fetched = fetcher.fetch(refserver.url(f"/redirect?to={target}"), tmp_path / "a", 10**7)
    assert fetched.url == target
    url = target
    for _ in range(6):
        url = refserver.url(f"/redirect?to={url}")
    with pytest.raises(ReferenceFetchFailed, match="redirects"):
        fetcher.fetch(url, tmp_path / "b", 10**7)


def test_error_status_is_a_fetch_failure(
    fetcher: Fetcher, refserver: RefServer, tmp_path: Path
) -> None:
    with pytest.raises(ReferenceFetchFailed, match="HTTP 404"):
        fetcher.fetch(refserver.url("/status/404"), tmp_path / "x", 1000)


def test_declared_oversize_is_refused_before_download(
    fetcher: Fetcher, refserver: RefServer, tmp_path: Path
) -> None:
    with pytest.raises(ReferenceInvalid, match="limit is"):
        fetcher.fetch(refserver.url("/lie?bytes=100&claim=5000000"), tmp_path / "x", 1_000_000)


def test_a_body_longer_than_its_content_length_is_cut_at_the_length(
    fetcher: Fetcher, refserver: RefServer, tmp_path: Path
) -> None:
    # HTTP framing ends the body at the declared length; whatever follows is never read
    fetched = fetcher.fetch(refserver.url("/lie?bytes=3000000&claim=1000"), tmp_path / "x", 5000)
    assert fetched.size == 1000 == fetched.path.stat().st_size


def test_body_over_the_cap_without_length_is_cut_off(
    fetcher: Fetcher, refserver: RefServer, tmp_path: Path
) -> None:
    with pytest.raises(ReferenceInvalid, match="more than"):
        fetcher.fetch(refserver.url("/stream?bytes=3000000"), tmp_path / "x", 1_000_000)


def test_body_exactly_at_the_cap_passes(
    fetcher: Fetcher, refserver: RefServer, tmp_path: Path
) -> None:
    fetched = fetcher.fetch(refserver.url("/stream?bytes=1000000"), tmp_path / "x", 1_000_000)
    assert fetched.size == 1_000_000


def test_slow_drip_hits_the_deadline_on_time(
    fetcher: Fetcher, refserver: RefServer, tmp_path: Path
) -> None:
    # every read gets a byte well within the read timeout: only the deadline can stop it
    started = time.monotonic()
    with pytest.raises(ReferenceFetchFailed, match="longer than 2 s"):
        fetcher.fetch(refserver.url("/drip?seconds=20"), tmp_path / "x", 1_000_000)
    assert time.monotonic() - started < 2.0 + 1.0


def test_a_server_that_never_answers_hits_the_read_timeout(
    fetcher: Fetcher, refserver: RefServer, tmp_path: Path
) -> None:
    started = time.monotonic()
    with pytest.raises(ReferenceFetchFailed, match="timed out"):
        fetcher.fetch(refserver.url("/hang?seconds=10"), tmp_path / "x", 1_000_000)
    assert time.monotonic() - started < 1.0 + 1.0


def test_literal_private_addresses_are_refused_without_a_lookup() -> None:
    fetcher = Fetcher(["127.0.0.1:9000"])
    for url in (
        "http://127.0.0.1:8000/a.jpg",
        "http://2130706433/a.jpg",
        "http://0x7f.1/a.jpg",
        "http://017700000001/a.jpg",
        "http://[::ffff:7f00:1]/a.jpg",
        "http://localhost/a.jpg",
        "http://api.localhost/a.jpg",
        "http://169.254.169.254/latest/meta-data",
    ):
        assert fetcher.refusal(url), url
    assert fetcher.refusal("http://127.0.0.1:9000/a.jpg") is None  # allow-listed
    assert fetcher.refusal("https://example.com/a.jpg") is None  # names wait for the fetch
    assert fetcher.refusal("ftp://example.com/a.jpg")


def test_unresolvable_host(tmp_path: Path) -> None:
    with pytest.raises(ReferenceFetchFailed, match="resolved"):
        Fetcher([]).fetch("http://no-such-host.invalid/x.jpg", tmp_path / "x", 1000)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("::ffff:8.8.8.8", True),
        ("::ffff:10.0.0.1", False),
        ("2002:0a00:0001::1", False),  # 6to4 wrapping 10.0.0.1
        ("64:ff9b::808:808", True),  # NAT64 of 8.8.8.8
        ("64:ff9b:1::1", False),  # local-use NAT64
        ("255.255.255.255", False),
        ("240.0.0.1", False),
    ],
)
def test_address_classification(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public
