"""The one CSV member of an archive zip: located with ``zipfile``, inflated with ISA-L, streamed.

``zipfile`` reads the directory and checks the member list; the member's raw
deflate stream is then read in place (a view into the zip bytes, no copy) and
inflated with ISA-L (``isal``), which is ~2.3x stdlib zlib here and releases
the GIL. :class:`MemberReader` inflates on demand, one pyarrow CSV block at a
time, so pyarrow's I/O thread inflates while its parser works on the previous
block and the whole CSV never exists in memory. Both bespoke pieces (reading
the stream in place, streaming) are kept because ``bench/bench_parse.py``
measures what they buy against ``zipfile``'s own reader; see
``bench/README.md``. CRC-32 and size are checked exactly as ``zipfile`` would.
"""

from __future__ import annotations

import io
import zipfile
import zlib

from isal import isal_zlib  # ISA-L inflate + CRC-32: ~2.3x / ~3.5x stdlib zlib here

from .errors import CorruptArchive
from .http import describe_exception

#: Refuse zip members that claim to inflate beyond this (zip-bomb guard).
MAX_MEMBER_BYTES = 8 * 1024**3

_INFLATE_ERRORS = (zlib.error, isal_zlib.error)


def open_member(data: bytes, source: str) -> tuple[zipfile.ZipInfo, bytes | None, memoryview | None]:
    """Validate the zip directory; return (info, stored bytes, deflate stream).

    Exactly one of the last two is set: the member's bytes when it is not
    deflated (read by zipfile, which checks the CRC), else a view of its raw
    deflate stream inside ``data`` (no copy).
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            members = [info for info in zf.infolist() if not info.is_dir()]
            csvs = [info for info in members if info.filename.lower().endswith(".csv")]
            if len(csvs) != 1 or len(members) != 1:
                raise CorruptArchive(
                    f"{source}: expected exactly one CSV member, found "
                    f"{[info.filename for info in members]}"
                )
            info = csvs[0]
            if info.file_size > MAX_MEMBER_BYTES:
                raise CorruptArchive(
                    f"{source}: member {info.filename!r} claims {info.file_size} bytes "
                    f"uncompressed (limit {MAX_MEMBER_BYTES})"
                )
            if info.flag_bits & 0x1:
                raise CorruptArchive(f"{source}: member {info.filename!r} is encrypted")
            if info.compress_type == zipfile.ZIP_DEFLATED:
                return info, None, _deflate_stream(data, info, source)
            return info, zf.read(info), None  # stored/other: zipfile checks the CRC
    except CorruptArchive:
        raise
    except (zipfile.BadZipFile, *_INFLATE_ERRORS, EOFError, ValueError, NotImplementedError) as exc:
        raise CorruptArchive(f"{source}: corrupt zip archive ({describe_exception(exc)})") from exc


def read_zip_member(data: bytes, *, source: str) -> tuple[str, bytes]:
    """Return (member name, bytes) of the single CSV inside a zip, all in memory."""
    info, stored, raw = open_member(data, source)
    if raw is None:
        return info.filename, stored  # type: ignore[return-value]
    return info.filename, inflate_member(raw, info, source)


def _deflate_stream(data: bytes, info: zipfile.ZipInfo, source: str) -> memoryview:
    """The raw deflate bytes of ``info`` inside ``data`` (a view, no copy)."""
    off = info.header_offset
    header = data[off : off + 30]
    if len(header) < 30 or header[:4] != b"PK\x03\x04":
        raise CorruptArchive(f"{source}: bad local file header for {info.filename!r}")
    name_len = int.from_bytes(header[26:28], "little")
    extra_len = int.from_bytes(header[28:30], "little")
    start = off + 30 + name_len + extra_len
    raw = memoryview(data)[start : start + info.compress_size]
    if len(raw) != info.compress_size:
        raise CorruptArchive(f"{source}: member {info.filename!r} is truncated")
    return raw


def inflate_member(raw: memoryview, info: zipfile.ZipInfo, source: str) -> bytes:
    """Inflate a whole deflated member in one call with a pre-sized output buffer;
    the CRC-32 and size are verified exactly as zipfile would."""
    try:
        out = isal_zlib.decompress(raw, -15, max(info.file_size, 1))
    except _INFLATE_ERRORS as exc:
        raise CorruptArchive(f"{source}: corrupt zip archive ({exc})") from exc
    _check_member(info, len(out), isal_zlib.crc32(out), source)
    return out


def _check_member(info: zipfile.ZipInfo, size: int, crc: int, source: str) -> None:
    if size != info.file_size:
        raise CorruptArchive(
            f"{source}: member {info.filename!r} inflates to {size} bytes, "
            f"directory says {info.file_size}"
        )
    if crc != info.CRC:
        raise CorruptArchive(f"{source}: corrupt zip archive (bad CRC-32 for {info.filename!r})")


class MemberReader(io.RawIOBase):
    """Read-only file over a deflated zip member that inflates on demand.

    pyarrow's CSV reader pulls ``block_size`` bytes at a time, so at most a few
    blocks of CSV exist at once and each is parsed while still in cache; with
    ``use_threads=True`` pyarrow's I/O thread inflates (ISA-L releases the GIL)
    while its CPU threads parse earlier blocks. The CRC-32 and size are checked
    when the stream ends; any failure is kept in :attr:`error` (pyarrow may wrap
    exceptions raised inside ``read``).
    """

    def __init__(self, raw: memoryview, info: zipfile.ZipInfo, source: str):
        super().__init__()
        self._raw, self._info, self._source = raw, info, source
        self._pos = 0
        self._d = isal_zlib.decompressobj(-15)
        self._tail = b""
        self._size = 0
        self._crc = 0
        self._prefix = b""
        self._stalled = False  # input exhausted and the decompressor gave nothing more
        self.done = False
        self.error: CorruptArchive | None = None

    def readable(self) -> bool:
        return True

    def peek(self, size: int = 1 << 16) -> bytes:
        """At least ``size`` bytes from the start (fewer only at EOF), and up to
        the first newline if it comes later; not consumed."""
        while not self.done and (
            len(self._prefix) < size or (b"\n" not in self._prefix and len(self._prefix) < 1 << 24)
        ):
            self._prefix += self._inflate(max(size, 1 << 16))
        return self._prefix

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            pieces = [self.read(1 << 22)]
            while pieces[-1]:
                pieces.append(self.read(1 << 22))
            return b"".join(pieces)
        if self._prefix:
            out, self._prefix = self._prefix[:size], self._prefix[size:]
            return out
        return self._inflate(size) if size else b""

    def drain(self) -> None:
        """Inflate (and discard) the rest, so the CRC-32 and size get checked."""
        while not self.done:
            self._inflate(1 << 22)

    def _inflate(self, size: int) -> bytes:
        try:
            return self._inflate_unchecked(size)
        except CorruptArchive as exc:
            self.error = exc
            raise

    def _inflate_unchecked(self, size: int) -> bytes:
        pieces: list[bytes] = []
        got = 0
        feed = max(size // 2, 1 << 16)  # compressed bytes per step (archives inflate 3-10x)
        d = self._d
        while got < size and not self.done:
            if d.eof:
                self._finish()
                break
            if self._tail:
                src = self._tail
            elif self._pos < len(self._raw):
                src = self._raw[self._pos : self._pos + feed]
                self._pos += len(src)
            elif not self._stalled:
                src = b""  # all input in: collect output the decompressor still holds
            else:
                raise CorruptArchive(
                    f"{self._source}: corrupt zip archive (deflate stream of "
                    f"{self._info.filename!r} ends early)"
                )
            try:
                out = d.decompress(src, size - got)
            except _INFLATE_ERRORS as exc:
                raise CorruptArchive(f"{self._source}: corrupt zip archive ({exc})") from exc
            self._tail = d.unconsumed_tail
            self._stalled = not src and not out
            if out:
                self._size += len(out)
                if self._size > self._info.file_size:
                    raise CorruptArchive(
                        f"{self._source}: member {self._info.filename!r} inflates beyond the "
                        f"{self._info.file_size} bytes its directory entry says"
                    )
                self._crc = isal_zlib.crc32(out, self._crc)
                pieces.append(out)
                got += len(out)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def _finish(self) -> None:
        self.done = True
        self._raw = memoryview(b"")
        _check_member(self._info, self._size, self._crc, self._source)
