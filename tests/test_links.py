"""Signed result links: HMAC over path and expiry."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from r2v.errors import LinkExpired, LinkInvalid
from r2v.tasks.links import LinkSigner, result_path

PATH = result_path("task-unified-1700000000-abcdefgh")


def parts(link: str) -> tuple[str, str, str]:
    split = urlsplit(link)
    query = {k: v[0] for k, v in parse_qs(split.query).items()}
    return split.path, query["expires"], query["signature"]


def test_a_signed_link_verifies_until_it_expires() -> None:
    signer = LinkSigner(b"s" * 32, ttl_seconds=86400)
    path, expires, signature = parts(signer.sign(PATH, now=1000))
    assert path == PATH
    assert int(expires) == 1000 + 86400
    signer.verify(path, expires, signature, now=1000 + 86400)
    with pytest.raises(LinkExpired):
        signer.verify(path, expires, signature, now=1000 + 86401)


@pytest.mark.parametrize("field", ["path", "expires", "signature", "secret"])
def test_tampering_with_any_part_is_refused(field: str) -> None:
    signer = LinkSigner(b"s" * 32, ttl_seconds=60)
    path, expires, signature = parts(signer.sign(PATH, now=1000))
    if field == "path":
        path = result_path("task-unified-1700000000-zzzzzzzz")
    elif field == "expires":
        expires = str(int(expires) + 3600)
    elif field == "signature":
        signature = signature[:-2] + ("AA" if not signature.endswith("AA") else "BB")
    else:
        signer = LinkSigner(b"t" * 32, ttl_seconds=60)
    with pytest.raises(LinkInvalid):
        signer.verify(path, expires, signature, now=1000)


@pytest.mark.parametrize(("expires", "signature"), [(None, "x"), ("1", None), ("abc", "x")])
def test_unsigned_links_are_refused(expires: str | None, signature: str | None) -> None:
    with pytest.raises(LinkInvalid):
        LinkSigner(b"s" * 32, 60).verify(PATH, expires, signature, now=0)


def test_short_secrets_are_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        LinkSigner(b"short", 60)
