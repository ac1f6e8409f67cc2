"""The reference fetcher against a real loopback server: allow-list, redirects, caps, deadline."""

from __future__ import annotations

import ipaddress
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from r2v.errors import ReferenceFetchFailed, ReferenceInvalid
from r2v.refs.fetch import Fetcher, FetchLimits, is_public
from tests.refserver import RefServer, bomb


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


@pytest.mark.parametrize("encoding", ["gzip", "gzip, gzip", "deflate", "br", "x-whatever"])
def test_an_encoded_body_is_refused_before_any_byte_is_decoded(
    fetcher: Fetcher, refserver: RefServer, tmp_path: Path, encoding: str
) -> None:
    # a few KB on the wire that inflate to 500 MB: decoding before counting is the bomb
    assert len(bomb(encoding, 500_000_000)) < 1_000_000  # made before the clock runs
    url = refserver.url(f"/encoded?enc={encoding}&bytes=500000000")
    with pytest.raises(ReferenceFetchFailed, match="encoded") as caught:
        fetcher.fetch(url, tmp_path / "x", 30_000_000)
    assert "Content-Encoding" in caught.value.message
    assert not (tmp_path / "x").exists() or (tmp_path / "x").stat().st_size == 0


@pytest.mark.parametrize(
    "location",
    [
        "http:\\\\evil.example\\x.jpg",
        "data:image/png;base64,iVBORw0KGgo=",
        "file:///etc/passwd",
        "http://[::1",
        "http://example.com:99999/x.jpg",
        "javascript:alert(1)",
        "gopher://127.0.0.1:70/x",
    ],
)
def test_a_redirect_to_a_malformed_or_foreign_url_fails_the_fetch(
    fetcher: Fetcher, refserver: RefServer, tmp_path: Path, location: str
) -> None:
    url = refserver.url("/redirect?to=" + quote(location, safe=""))
    with pytest.raises(ReferenceFetchFailed, match="redirected"):
        fetcher.fetch(url, tmp_path / "x", 1000)


@pytest.mark.parametrize(
    "address",
    [
        "fec0::1",  # site-local (deprecated, never global)
        "3fff::1",  # documentation (RFC 9637)
        "2001:db8::1",  # documentation
        "2001::1",  # Teredo prefix
        "2001:20::1",  # ORCHIDv2
        "100::1",  # discard-only
        "::",  # unspecified
        "ff02::1",  # multicast
        "fc00::1",  # unique local
        "192.0.2.1",  # TEST-NET-1
        "198.18.0.1",  # benchmarking
        "240.0.0.1",  # reserved
        "255.255.255.255",  # broadcast
    ],
)
def test_every_non_global_range_is_refused(address: str, tmp_path: Path) -> None:
    assert not is_public(ipaddress.ip_address(address))
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(ReferenceFetchFailed, match="private or reserved"):
        Fetcher([]).fetch(f"http://{host}:9/x.jpg", tmp_path / "x", 1000)


def test_public_addresses_stay_public() -> None:
    for address in ("8.8.8.8", "2606:4700:4700::1111", "2a00:1450:4001::1"):
        assert is_public(ipaddress.ip_address(address))


def test_a_server_dripping_its_headers_is_cut_at_the_deadline(
    fetcher: Fetcher, refserver: RefServer, tmp_path: Path
) -> None:
    # each byte comes well within the read timeout; only the overall deadline can end it
    started = time.monotonic()
    with pytest.raises(ReferenceFetchFailed, match="time limit"):
        fetcher.fetch(refserver.url("/drip-headers?seconds=30"), tmp_path / "x", 1000)
    assert time.monotonic() - started < fetcher.limits.deadline + 1.0
    # a webhook receiver doing the same is cut at its timeout too
    started = time.monotonic()
    with pytest.raises(ReferenceFetchFailed):
        fetcher.post(refserver.url("/drip-headers?seconds=30"), b"{}", {}, timeout=1.0)
    assert time.monotonic() - started < 2.0
