"""Verification of an archive zip against its ``.CHECKSUM`` file (``sha256sum`` format)."""

from __future__ import annotations

import hashlib
import re

from .errors import ChecksumError, ChecksumMismatch
from .http import snippet

_CHECKSUM_LINE = re.compile(rb"^\s*([0-9a-fA-F]{64})\s+\*?(\S+)\s*$")


def parse_checksum(text: bytes, *, url: str) -> tuple[str, str]:
    """Parse ``<sha256 hex>  <file name>`` -> (hex, name)."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) != 1 or not (m := _CHECKSUM_LINE.match(lines[0])):
        raise ChecksumError(
            f"malformed checksum file {url}: expected '<sha256 hex>  <file name>', "
            f"got {snippet(text, 160)!r}"
        )
    return m.group(1).decode().lower(), m.group(2).decode()


def verify_checksum(data: bytes, checksum_text: bytes, *, url: str) -> str:
    """Check ``data`` (the file at ``url``) against its CHECKSUM text; return the sha256 hex or raise."""
    expected, name = parse_checksum(checksum_text, url=url + ".CHECKSUM")
    file_name = url.rsplit("/", 1)[-1]
    if name.rsplit("/", 1)[-1] != file_name:
        raise ChecksumError(f"checksum file {url}.CHECKSUM is for {name!r}, not for {file_name!r}")
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise ChecksumMismatch(url, expected, actual)
    return actual
