"""Metadata, attachments and labels of one resource (~ the matching parts of Orthanc's OrthancRestResources.cpp,
ServerContext.cpp and StatelessDatabaseOperations.cpp): name resolution, revisions (ETag / If-Match), change log.

Must not import aiohttp: rest/metadata.py and rest/attachments.py do the HTTP side.
"""

from __future__ import annotations

import hashlib
import logging
import re
import uuid as uuidlib
import zlib
from typing import Final

from ..config import Settings
from ..errors import ErrorCode, OrthancError
from ..executors import SMALL_INLINE_BYTES
from ..model import (
    ATTACHMENT_NAMES,
    AttachmentInfo,
    AttachmentType,
    MetadataType,
    ResourceLevel,
)
from ..storage.base import StoredFile, unlink_quietly
from .context import ServerContext, now_iso

logger = logging.getLogger(__name__)

USER_MIN: Final = 1024
USER_MAX: Final = 65535
COMPRESSION_NONE: Final = 1
COMPRESSION_ZLIB: Final = 2  # zlib-with-size, Orthanc's CompressionType_ZlibWithSize

_INT32 = re.compile(r"[+-]?[0-9]+")
_INT64 = re.compile(r"[+-]?[0-9]+")
_LABEL = re.compile(r"[A-Za-z0-9_-]{1,64}")
_BUILTIN_METADATA: Final = {m.name: int(m) for m in MetadataType}
_BUILTIN_ATTACHMENTS: Final = {name: number for number, name in ATTACHMENT_NAMES.items()}

Expected = tuple[int, str]  # (revision, MD5) parsed from an If-Match / If-None-Match header


# --- names ------------------------------------------------------------------------------------------

def _lexical_int(text: str) -> int | None:
    """boost::lexical_cast<int>: an optionally signed decimal that fits in 32 bits, nothing else."""
    if not _INT32.fullmatch(text):
        return None
    value = int(text)
    return value if -(2**31) <= value < 2**31 else None


def metadata_type(settings: Settings, name: str) -> int:
    """A built-in name, a number, or a UserMetadata name (Orthanc's StringToMetadata); else InexistentItem."""
    if name in _BUILTIN_METADATA:
        return _BUILTIN_METADATA[name]
    number = _lexical_int(name)
    if number is not None:
        return number
    user = settings.user_metadata
    if name in user:
        return int(user[name])
    raise OrthancError(ErrorCode.InexistentItem)


def metadata_name(settings: Settings, number: int) -> str:
    """Built-in name, else the UserMetadata name, else the number (Orthanc's EnumerationToString)."""
    try:
        return MetadataType(number).name
    except ValueError:
        pass
    for name, value in settings.user_metadata.items():
        if int(value) == number:
            return name
    return str(number)


def content_type(settings: Settings, name: str) -> int:
    """dicom / dicom-as-json / dicom-until-pixel-data, a number, or a UserContentType name; else InexistentItem."""
    if name in _BUILTIN_ATTACHMENTS:
        return _BUILTIN_ATTACHMENTS[name]
    number = _lexical_int(name)
    if number is not None:
        return number
    user = settings.user_content_types
    if name in user:
        return int(user[name][0])
    raise OrthancError(ErrorCode.InexistentItem)


def content_type_name(settings: Settings, number: int) -> str:
    if number in ATTACHMENT_NAMES:
        return ATTACHMENT_NAMES[number]
    for name, (value, _mime) in settings.user_content_types.items():
        if int(value) == number:
            return name
    return str(number)


def content_type_mime(settings: Settings, number: int) -> str:
    """The MIME type answered by .../data: DICOM, JSON, or the one of UserContentType (octet-stream by default)."""
    if number in (AttachmentType.DICOM, AttachmentType.DICOM_UNTIL_PIXEL_DATA):
        return "application/dicom"
    if number == AttachmentType.DICOM_AS_JSON:
        return "application/json"
    for value, mime in settings.user_content_types.values():
        if int(value) == number and mime:
            return mime
    return "application/octet-stream"


def content_type_extension(number: int) -> str:
    """Extension of the Content-Disposition file name (the file is named after its UUID, as Orthanc does)."""
    if number in (AttachmentType.DICOM, AttachmentType.DICOM_UNTIL_PIXEL_DATA):
        return ".dcm"
    if number == AttachmentType.DICOM_AS_JSON:
        return ".json"
    return ""


def is_user_metadata(number: int) -> bool:
    return USER_MIN <= number <= USER_MAX


def is_user_content_type(number: int) -> bool:
    return USER_MIN <= number <= USER_MAX


def can_delete_attachment(number: int) -> bool:
    """User attachments, plus the legacy "dicom-as-json" summary (Orthanc >= 1.2.0 lets it go); never "dicom"."""
    return is_user_content_type(number) or number == AttachmentType.DICOM_AS_JSON


# --- revisions ----------------------------------------------------------------------------------------

def etag(revision: int, md5: str) -> str:
    """Orthanc's ETag: the revision, a dash, the MD5 of the content, in double quotes."""
    return f'"{revision}-{md5}"'


def text_md5(value: str) -> str:
    return hashlib.md5(value.encode("utf-8")).hexdigest()


def parse_revision_header(header: str, value: str) -> Expected:
    """An If-Match / If-None-Match value: `"<revision>-<md5>"` (quotes optional); else ParameterOutOfRange."""
    text = value.strip()
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        text = text[1:-1]
    revision, dash, md5 = text.partition("-")
    if dash and _INT64.fullmatch(revision) and -(2**63) <= int(revision) < 2**63:
        return int(revision), md5
    raise OrthancError(ErrorCode.ParameterOutOfRange, f'The "{header}" HTTP header should contain the ETag '
                                                      f"(revision followed by MD5 hash), but found: {text}")


def _expected_for_write(ctx: ServerContext, if_match: Expected | None) -> Expected | None:
    # With CheckRevisions and no If-Match, replacing an existing item must fail: a pair that never matches
    # does that, while creating a new item ignores it (StatelessDatabaseOperations::SetMetadata).
    if if_match is None and ctx.settings.CheckRevisions:
        return (-1, "")
    return if_match


def _expected_for_delete(ctx: ServerContext, if_match: Expected | None) -> Expected | None:
    if if_match is None and ctx.settings.CheckRevisions:
        raise OrthancError(ErrorCode.Revision, 'HTTP header "If-Match" is missing, as "CheckRevisions" is "true"')
    return if_match


def _unknown(public_id: str) -> OrthancError:
    return OrthancError(ErrorCode.UnknownResource)  # no Details, as Orthanc


# --- metadata -----------------------------------------------------------------------------------------

async def list_metadata(ctx: ServerContext, public_id: str, level: ResourceLevel) -> dict[int, tuple[str, int]]:
    """Every metadata of the resource, by number (ascending): (value, revision)."""
    found = await ctx.index.resource_metadata(public_id, level)
    if found is None:
        raise _unknown(public_id)
    return dict(sorted(found.items()))


async def get_metadata(ctx: ServerContext, public_id: str, level: ResourceLevel, mtype: int) -> tuple[str, int] | None:
    """(value, revision), or None when the resource has no such metadata."""
    return (await list_metadata(ctx, public_id, level)).get(mtype)


async def set_metadata(ctx: ServerContext, public_id: str, level: ResourceLevel | None, mtype: int, value: str,
                       if_match: Expected | None) -> int:
    """Create or replace a user metadata; logs UpdatedMetadata. Returns the new revision."""
    if not is_user_metadata(mtype):
        raise OrthancError(ErrorCode.ForbiddenAccess, "Only user metadata (1024..65535) can be modified")
    date = now_iso()
    revision, change = await ctx.index.set_user_metadata(public_id, level, mtype, value,
                                                         _expected_for_write(ctx, if_match), date)
    ctx.publish([change], date)
    return revision


async def delete_metadata(ctx: ServerContext, public_id: str, level: ResourceLevel | None, mtype: int,
                          if_match: Expected | None) -> None:
    """Delete a user metadata (404 when absent); logs UpdatedMetadata."""
    if not is_user_metadata(mtype):
        raise OrthancError(ErrorCode.ForbiddenAccess, "Only user metadata (1024..65535) can be deleted")
    expected = _expected_for_delete(ctx, if_match)
    date = now_iso()
    change = await ctx.index.delete_user_metadata(public_id, level, mtype, expected, date)
    ctx.publish([change], date)


# --- attachments --------------------------------------------------------------------------------------

async def list_attachments(ctx: ServerContext, public_id: str, level: ResourceLevel) -> dict[int, AttachmentInfo]:
    found = await ctx.index.resource_attachments(public_id, level)
    if found is None:
        raise _unknown(public_id)
    return dict(sorted(found.items()))


async def attachment_info(ctx: ServerContext, public_id: str, level: ResourceLevel | None,
                          ftype: int) -> AttachmentInfo:
    """The attachment, or UnknownResource (404) when the resource or the attachment is missing."""
    found = await ctx.index.resource_attachments(public_id, level)
    if found is None:
        raise _unknown(public_id)
    info = found.get(ftype)
    if info is None:
        raise OrthancError(ErrorCode.UnknownResource)
    return info


async def read_attachment(ctx: ServerContext, info: AttachmentInfo, as_stored: bool = False,
                          start: int | None = None, end: int | None = None) -> bytes:
    """The content (decompressed unless as_stored), or its [start, end) slice."""
    decompress = info.compression != COMPRESSION_NONE and not as_stored
    try:
        if start is None or end is None:
            return await ctx.storage.read(info.uuid, decompress)
        return await ctx.storage.read_range(info.uuid, start, end, decompress)
    except FileNotFoundError:
        raise OrthancError(ErrorCode.InexistentFile, f"The file of attachment {info.uuid} is missing") from None


async def _store_bytes(ctx: ServerContext, data: bytes, compress: bool, ftype: int) -> AttachmentInfo:
    file_uuid = str(uuidlib.uuid4())
    stored = await ctx.executors.run_io(ctx.storage.create_from_bytes_sync, data, file_uuid, compress)
    return _attachment_of(ctx, stored, ftype)


def _attachment_of(ctx: ServerContext, stored: StoredFile, ftype: int) -> AttachmentInfo:
    keep_md5 = bool(ctx.settings.StoreMD5ForAttachments)
    return AttachmentInfo(stored.uuid, ftype, stored.uncompressed_size, stored.compressed_size,
                          stored.uncompressed_md5 if keep_md5 else "", stored.compressed_md5 if keep_md5 else "",
                          COMPRESSION_ZLIB if stored.compressed else COMPRESSION_NONE)


async def _remove_files(ctx: ServerContext, files: list[tuple[str, bool]], owner: str) -> None:
    for file_uuid, _compressed in files:
        try:
            await ctx.storage.remove(file_uuid)
        except OSError:
            logger.warning("Cannot remove file %s of an attachment of %s", file_uuid, owner)


async def put_attachment(ctx: ServerContext, public_id: str, level: ResourceLevel | None, ftype: int,
                         if_match: Expected | None, data: bytes | None = None,
                         spooled: tuple[str, str] | None = None) -> tuple[int, str]:
    """Create or replace a user attachment from bytes, or from a spooled file (path, MD5) that this consumes.

    The file is written first, then one index transaction swaps the rows; the replaced file is removed
    after the commit, and the new one if the transaction fails. Logs UpdatedAttachment.
    Returns the new revision and the MD5 of the content (for the ETag).
    """
    if not is_user_content_type(ftype):
        if spooled is not None:
            await ctx.executors.run_io(unlink_quietly, spooled[0])
        raise OrthancError(ErrorCode.ForbiddenAccess, "Only user attachments (1024..65535) can be modified")
    compress = bool(ctx.settings.StorageCompression)
    file_uuid = str(uuidlib.uuid4())
    if spooled is not None:
        path, md5 = spooled
        try:
            stored = await ctx.storage.create_from_file(path, file_uuid, md5, compress)
        except BaseException:
            await ctx.executors.run_io(unlink_quietly, path)
            raise
    else:
        stored = await ctx.executors.run_io(ctx.storage.create_from_bytes_sync, data or b"", file_uuid, compress)
    att = _attachment_of(ctx, stored, ftype)
    date = now_iso()
    try:
        revision, removed, change = await ctx.index.set_attachment(public_id, level, att,
                                                                   _expected_for_write(ctx, if_match), date)
    except BaseException:
        await ctx.storage.remove(att.uuid)
        raise
    await _remove_files(ctx, removed, public_id)
    ctx.publish([change], date)
    logger.info("Attachment %s stored on resource %s (revision %d)", content_type_name(ctx.settings, ftype),
                public_id, revision)
    return revision, stored.uncompressed_md5



async def delete_attachment(ctx: ServerContext, public_id: str, level: ResourceLevel | None, ftype: int,
                            if_match: Expected | None) -> None:
    """Delete a user attachment (404 when absent): index first, then the file. Logs UpdatedAttachment."""
    if not can_delete_attachment(ftype):
        raise OrthancError(ErrorCode.ForbiddenAccess, "This attachment cannot be deleted")
    expected = _expected_for_delete(ctx, if_match)
    date = now_iso()
    removed, change = await ctx.index.delete_attachment(public_id, level, ftype, expected, date)
    await _remove_files(ctx, removed, public_id)
    ctx.publish([change], date)


async def change_compression(ctx: ServerContext, public_id: str, level: ResourceLevel | None, ftype: int,
                             compress: bool) -> None:
    """Rewrite an attachment compressed (zlib-with-size) or uncompressed; a no-op when it already is."""
    info = await attachment_info(ctx, public_id, level, ftype)
    if (info.compression != COMPRESSION_NONE) == compress:
        return
    data = await read_attachment(ctx, info)
    att = await _store_bytes(ctx, data, compress, ftype)
    date = now_iso()
    try:
        change = await ctx.index.replace_attachment_file(public_id, info.uuid, att, date)
    except BaseException:
        await ctx.storage.remove(att.uuid)
        raise
    await _remove_files(ctx, [(info.uuid, info.compression != COMPRESSION_NONE)], public_id)
    ctx.publish([change], date)


async def _md5(ctx: ServerContext, data: bytes) -> str:
    if len(data) <= SMALL_INLINE_BYTES:
        return hashlib.md5(data).hexdigest()
    return await ctx.executors.run_cpu(lambda: hashlib.md5(data).hexdigest())


async def verify_md5(ctx: ServerContext, public_id: str, ftype: int) -> bool | None:
    """True when the stored bytes (and, if compressed, the decompressed ones) match their MD5.

    None when the resource has no such attachment or no MD5 was stored (Orthanc then answers nothing).
    """
    found = await ctx.index.resource_attachments(public_id, None)
    if found is None:
        raise _unknown(public_id)
    info = found.get(ftype)
    if info is None or not info.compressed_md5 or not info.uncompressed_md5:
        return None
    raw = await read_attachment(ctx, info, as_stored=True)
    if await _md5(ctx, raw) != info.compressed_md5:
        ok = False
    elif info.compression == COMPRESSION_NONE:
        ok = True
    else:
        try:
            data = await ctx.executors.run_cpu(zlib.decompress, raw[8:]) if len(raw) > 8 else b""
        except zlib.error:
            return False
        ok = await _md5(ctx, data) == info.uncompressed_md5
    logger.info("The attachment %s of resource %s has %s MD5", ftype, public_id, "the right" if ok else "a bad")
    return ok


# --- labels -------------------------------------------------------------------------------------------

def check_label(label: str) -> None:
    """Orthanc's label syntax: 1 to 64 characters among letters, digits, "_" and "-"."""
    if not _LABEL.fullmatch(label):
        raise OrthancError(ErrorCode.ParameterOutOfRange,
                           "A label must be a non-empty, alphanumeric string, possibly with '_' and '-' characters, "
                           f"and at most 64 characters long, but got: {label}")


async def list_labels(ctx: ServerContext, public_id: str, level: ResourceLevel) -> list[str]:
    found = await ctx.index.resource_labels(public_id, level)
    if found is None:
        raise _unknown(public_id)
    return found


async def add_label(ctx: ServerContext, public_id: str, level: ResourceLevel, label: str) -> None:
    check_label(label)
    await ctx.index.modify_label(public_id, level, label, True)


async def remove_label(ctx: ServerContext, public_id: str, level: ResourceLevel, label: str) -> None:
    check_label(label)
    await ctx.index.modify_label(public_id, level, label, False)


async def all_labels(ctx: ServerContext) -> list[str]:
    return await ctx.index.all_labels()
