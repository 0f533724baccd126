"""A forward-only ZIP writer (PKWARE APPNOTE 6.3): members compressed elsewhere, possibly in parallel, are laid
out in order without ever seeking back, with ZIP64 records when sizes, offsets or counts need them.

Pure and sync (no I/O): each method returns the bytes to send next. deflate_member() is the CPU part, safe
to run in several threads at once (zlib releases the GIL).
"""

from __future__ import annotations

import struct
import time
import zlib
from dataclasses import dataclass
from typing import Final

_LOCAL: Final = 0x04034B50
_CENTRAL: Final = 0x02014B50
_DESCRIPTOR: Final = 0x08074B50
_END: Final = 0x06054B50
_END64: Final = 0x06064B50
_LOCATOR64: Final = 0x07064B50
_DEFLATED: Final = 8
_FLAG_DESCRIPTOR: Final = 0x0008
_FLAG_UTF8: Final = 0x0800
_MAX32: Final = 0xFFFFFFFF
_MAX16: Final = 0xFFFF
_UNIX_FILE: Final = (0o100644 << 16)
_MADE_BY: Final = (3 << 8) | 45  # Unix, spec 4.5


@dataclass(frozen=True, slots=True)
class Deflated:
    crc: int
    size: int
    data: bytes


def deflate_member(data: bytes, level: int) -> Deflated:
    """Compress one whole member (raw deflate) and compute its CRC-32."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
    out = compressor.compress(data) + compressor.flush()
    return Deflated(zlib.crc32(data), len(data), out)


class StreamDeflater:
    """Compress one large member chunk by chunk (the CRC and sizes grow as it goes)."""

    def __init__(self, level: int) -> None:
        self._compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
        self.crc = 0
        self.size = 0
        self.compressed_size = 0

    def feed(self, chunk: bytes) -> bytes:
        self.crc = zlib.crc32(chunk, self.crc)
        self.size += len(chunk)
        out = self._compressor.compress(chunk)
        self.compressed_size += len(out)
        return out

    def finish(self) -> bytes:
        out = self._compressor.flush()
        self.compressed_size += len(out)
        return out


@dataclass
class _Central:
    name: bytes
    flags: int
    dos_time: int
    dos_date: int
    crc: int
    compressed_size: int
    size: int
    offset: int


def _dos_time(now: float) -> tuple[int, int]:
    t = time.localtime(now)
    year = max(1980, t.tm_year)
    return (t.tm_hour << 11) | (t.tm_min << 5) | (t.tm_sec // 2), ((year - 1980) << 9) | (t.tm_mon << 5) | t.tm_mday


class ZipStreamWriter:
    """Lays out members one after the other; `offset` is the number of bytes produced so far."""

    def __init__(self) -> None:
        self.offset = 0
        self._members: list[_Central] = []
        self._open: _Central | None = None
        self._open_zip64 = False

    def _encode_name(self, name: str) -> tuple[bytes, int]:
        try:
            return name.encode("ascii"), 0
        except UnicodeEncodeError:
            return name.encode("utf-8"), _FLAG_UTF8

    def whole_member(self, name: str, deflated: Deflated, now: float | None = None) -> list[bytes]:
        """A member whose compressed bytes are all known: local header (with its CRC and sizes) and data."""
        raw, flags = self._encode_name(name)
        dos_time, dos_date = _dos_time(now if now is not None else time.time())
        entry = _Central(raw, flags, dos_time, dos_date, deflated.crc, len(deflated.data), deflated.size, self.offset)
        zip64 = entry.size >= _MAX32 or entry.compressed_size >= _MAX32
        extra = struct.pack("<HHQQ", 1, 16, entry.size, entry.compressed_size) if zip64 else b""
        header = struct.pack("<IHHHHHIIIHH", _LOCAL, 45 if zip64 else 20, flags, _DEFLATED, dos_time, dos_date,
                             entry.crc, _MAX32 if zip64 else entry.compressed_size, _MAX32 if zip64 else entry.size,
                             len(raw), len(extra)) + raw + extra
        self._members.append(entry)
        self.offset += len(header) + len(deflated.data)
        return [header, deflated.data]

    def begin_member(self, name: str, expected_size: int, now: float | None = None) -> bytes:
        """The local header of a member streamed in chunks; its CRC and sizes follow in end_member()."""
        raw, flags = self._encode_name(name)
        dos_time, dos_date = _dos_time(now if now is not None else time.time())
        # Incompressible data grows a little under deflate: decide ZIP64 with a margin.
        self._open_zip64 = expected_size >= _MAX32 - (expected_size >> 6) - (1 << 20)
        extra = struct.pack("<HHQQ", 1, 16, 0, 0) if self._open_zip64 else b""
        flags |= _FLAG_DESCRIPTOR
        self._open = _Central(raw, flags, dos_time, dos_date, 0, 0, 0, self.offset)
        header = struct.pack("<IHHHHHIIIHH", _LOCAL, 45 if self._open_zip64 else 20, flags, _DEFLATED, dos_time,
                             dos_date, 0, _MAX32 if self._open_zip64 else 0, _MAX32 if self._open_zip64 else 0,
                             len(raw), len(extra)) + raw + extra
        self.offset += len(header)
        return header

    def member_data(self, data: bytes) -> bytes:
        self.offset += len(data)
        return data

    def end_member(self, crc: int, compressed_size: int, size: int) -> bytes:
        entry = self._open
        if entry is None:
            raise RuntimeError("no member is open")
        entry.crc, entry.compressed_size, entry.size = crc, compressed_size, size
        if self._open_zip64:
            descriptor = struct.pack("<IIQQ", _DESCRIPTOR, crc, compressed_size, size)
        else:
            if compressed_size >= _MAX32 or size >= _MAX32:
                raise OverflowError("member larger than announced")
            descriptor = struct.pack("<IIII", _DESCRIPTOR, crc, compressed_size, size)
        self._members.append(entry)
        self._open = None
        self.offset += len(descriptor)
        return descriptor

    def finish(self) -> bytes:
        """The central directory and the end records (ZIP64 ones when needed)."""
        start = self.offset
        parts: list[bytes] = []
        for m in self._members:
            values = []
            size = m.size
            csize = m.compressed_size
            offset = m.offset
            if m.size >= _MAX32:
                values.append(m.size)
                size = _MAX32
            if m.compressed_size >= _MAX32:
                values.append(m.compressed_size)
                csize = _MAX32
            if m.offset >= _MAX32:
                values.append(m.offset)
                offset = _MAX32
            extra = struct.pack("<HH" + "Q" * len(values), 1, 8 * len(values), *values) if values else b""
            parts.append(struct.pack("<IHHHHHHIIIHHHHHII", _CENTRAL, _MADE_BY, 45 if values else 20, m.flags,
                                     _DEFLATED, m.dos_time, m.dos_date, m.crc, csize, size, len(m.name), len(extra),
                                     0, 0, 0, _UNIX_FILE, offset) + m.name + extra)
        directory = b"".join(parts)
        end_offset = start + len(directory)
        count = len(self._members)
        out = [directory]
        if count >= _MAX16 or start >= _MAX32 or len(directory) >= _MAX32:
            out.append(struct.pack("<IQHHIIQQQQ", _END64, 44, _MADE_BY, 45, 0, 0, count, count, len(directory), start))
            out.append(struct.pack("<IIQI", _LOCATOR64, 0, end_offset, 1))
            out.append(struct.pack("<IHHHHIIH", _END, 0, 0, _MAX16, _MAX16, _MAX32, _MAX32, 0))
        else:
            out.append(struct.pack("<IHHHHIIH", _END, 0, 0, count, count, len(directory), start, 0))
        data = b"".join(out)
        self.offset += len(data)
        return data
