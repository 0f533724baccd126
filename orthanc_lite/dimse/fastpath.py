"""The C-STORE fast path of our SCP: receive a dataset into memory (spilled to a file past a threshold) and send
the C-STORE-RSP without building pydicom datasets.

pynetdicom's chunked receive (STORE_RECV_CHUNKED_DATASET) writes every dataset to a NamedTemporaryFile behind
a File Meta header built with pydicom, and its responses go through a pydicom Dataset and pydicom's writer: in
the per-stage profile (bench/stages.py) that was about 0.6 ms of receive and 0.7 ms of response CPU per
instance, next to 0.3 ms of parse. Here, for associations our SCP accepted (dimse/handlers.py marks them):
- `decode_msg` follows pynetdicom's `DIMSEMessage.decode_msg` (MIT licence) but puts a C-STORE-RQ's dataset
  in a `SpoolBuffer`: the File Meta bytes (encoded directly, byte-identical to pynetdicom's), then the data
  set, in memory up to IN_MEMORY_BYTES and in a file of the storage's incoming folder beyond (flat memory);
- `send_msg` encodes a plain C-STORE-RSP (no error comment, no offending element, nobody listening to
  EVT_DIMSE_SENT) straight to bytes, identical to pynetdicom's encoding (tests/dimse/test_fastpath.py).
Every other message, and every association we did not accept (C-GET sub-operations of our SCU), keeps
pynetdicom's own code. Only pynetdicom 3.0.x is patched.
"""

from __future__ import annotations

import io
import logging
import os
import struct
import threading
import uuid
from typing import Any, Final

import pynetdicom
from pynetdicom import PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION, evt
from pynetdicom.dimse import DIMSEServiceProvider
from pynetdicom.dimse_messages import _MESSAGE_TYPES, C_STORE_RQ, DIMSEMessage
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dsutils import decode
from pynetdicom.pdu_primitives import P_DATA

logger = logging.getLogger(__name__)

IN_MEMORY_BYTES: Final = 4 * 1024 * 1024  # as the REST upload's in-memory threshold (rest/helpers.py)

_installed = False
_lock = threading.Lock()


# -- encoding ---------------------------------------------------------------------------------------


def _pad_uid(uid: str) -> bytes:
    raw = uid.encode("ascii")
    return raw + b"\0" if len(raw) % 2 else raw


def _explicit(group: int, element: int, vr: bytes, value: bytes) -> bytes:
    if vr == b"OB":
        return struct.pack("<HH2s2xI", group, element, vr, len(value)) + value
    return struct.pack("<HH2sH", group, element, vr, len(value)) + value


_VERSION_NAME: Final = PYNETDICOM_IMPLEMENTATION_VERSION.encode("ascii")
_META_TAIL: Final = (_explicit(2, 0x12, b"UI", _pad_uid(PYNETDICOM_IMPLEMENTATION_UID))
                     + _explicit(2, 0x13, b"SH", _VERSION_NAME + b" " * (len(_VERSION_NAME) % 2)))


def file_meta_prefix(sop_class_uid: str, sop_instance_uid: str, transfer_syntax: str) -> bytes:
    """Preamble, "DICM" and the File Meta group that pynetdicom's chunked receive writes (create_file_meta with
    its implementation UID and version, then pydicom's write_file_meta_info), without pydicom."""
    body = (_explicit(2, 0x01, b"OB", b"\x00\x01")
            + _explicit(2, 0x02, b"UI", _pad_uid(sop_class_uid))
            + _explicit(2, 0x03, b"UI", _pad_uid(sop_instance_uid))
            + _explicit(2, 0x10, b"UI", _pad_uid(transfer_syntax))
            + _META_TAIL)
    return b"\0" * 128 + b"DICM" + _explicit(2, 0x00, b"UL", struct.pack("<I", len(body))) + body


def _implicit(element: int, value: bytes) -> bytes:
    return struct.pack("<HHI", 0, element, len(value)) + value


def store_response_command(sop_class_uid: str, message_id: int, status: int, sop_instance_uid: str) -> bytes:
    """The command set of a C-STORE-RSP without error comment or offending element, Implicit VR Little Endian."""
    body = (_implicit(0x0002, _pad_uid(sop_class_uid))
            + _implicit(0x0100, struct.pack("<H", 0x8001))
            + _implicit(0x0120, struct.pack("<H", message_id))
            + _implicit(0x0800, struct.pack("<H", 0x0101))
            + _implicit(0x0900, struct.pack("<H", status))
            + _implicit(0x1000, _pad_uid(sop_instance_uid)))
    return _implicit(0x0000, struct.pack("<I", len(body))) + body


# -- receiving --------------------------------------------------------------------------------------


class SpoolBuffer(io.BytesIO):
    """A received C-STORE dataset as a whole DICOM file: in memory up to `limit` bytes, then in a file of
    `folder` (named by us, never by the peer). pynetdicom requires a BytesIO as the request's DataSet."""

    def __init__(self, prefix: bytes, folder: str, limit: int | None = None) -> None:
        super().__init__()
        super().write(prefix)
        self._folder = folder
        self._limit = IN_MEMORY_BYTES if limit is None else limit
        self.path: str | None = None
        self._file: io.BufferedWriter | None = None

    def write(self, data: Any) -> int:
        if self._file is not None:
            return self._file.write(data)
        if self.tell() + len(data) <= self._limit:
            return super().write(data)
        path = os.path.join(self._folder, f"dimse-{uuid.uuid4().hex}.dcm")
        self._file = open(path, "wb")  # noqa: SIM115 - closed by finish() or discard()
        self.path = path
        self._file.write(self.getbuffer())
        super().seek(0)
        super().truncate()
        return self._file.write(data)

    def finish(self) -> None:
        """The last fragment arrived: close the spill file (its fsync is the store's business)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def discard(self) -> None:
        """The transfer was cut: drop the spill file."""
        self.finish()
        if self.path is not None:
            try:
                os.unlink(self.path)
            except OSError:
                pass
            self.path = None


def _spool_folder(assoc: Any) -> str | None:
    """The incoming folder for the datasets of an association our SCP accepted (None for any other)."""
    return getattr(assoc, "_ol_spool_dir", None)


_original_decode_msg = DIMSEMessage.decode_msg


def _decode_msg(self: Any, primitive: P_DATA, assoc: Any = None) -> bool:
    """pynetdicom's decode_msg for our SCP's associations, with a SpoolBuffer for a C-STORE-RQ's dataset."""
    folder = _spool_folder(assoc) if assoc is not None else None
    if folder is None or primitive.__class__ is not P_DATA:
        return _original_decode_msg(self, primitive, assoc)  # type: ignore[no-any-return]
    for context_id, data in primitive.presentation_data_value_list:
        control = data[0]
        if control & 1:  # command set fragment
            self.encoded_command_set.write(data[1:])
            if control & 2:  # the last one: decode it
                self.context_id = context_id
                self.command_set = decode(self.encoded_command_set, True, True)
                self.__class__ = _MESSAGE_TYPES[int(self.command_set.CommandField)][1]
                if self.command_set.CommandDataSetType == 0x0101:
                    return True
                if isinstance(self, C_STORE_RQ):
                    cs = self.command_set
                    syntax = assoc._accepted_cx[context_id].transfer_syntax[0]
                    self.data_set = SpoolBuffer(
                        file_meta_prefix(str(cs.AffectedSOPClassUID), str(cs.AffectedSOPInstanceUID),
                                         str(syntax)), folder)
        else:  # data set fragment
            self.data_set.write(data[1:])
            if control & 2:
                if isinstance(self.data_set, SpoolBuffer):
                    self.data_set.finish()
                return True
    return False


# -- sending ----------------------------------------------------------------------------------------

_original_send_msg = DIMSEServiceProvider.send_msg


def _send_msg(self: Any, primitive: Any, context_id: int) -> None:
    """pynetdicom's send_msg, with a plain C-STORE-RSP of our SCP encoded directly."""
    responding_to = primitive.MessageIDBeingRespondedTo if primitive.__class__ is C_STORE else None
    if (responding_to is not None
            and primitive.ErrorComment is None and primitive.OffendingElement is None
            and _spool_folder(self.assoc) is not None and not self.assoc.get_handlers(evt.EVT_DIMSE_SENT)):
        command = store_response_command(str(primitive.AffectedSOPClassUID), int(responding_to), int(primitive.Status),
                                         str(primitive.AffectedSOPInstanceUID))
        max_pdu = self.maximum_pdu_size
        if not max_pdu or len(command) + 6 <= max_pdu:
            pdata = P_DATA()
            pdata.presentation_data_value_list.append((context_id, b"\x03" + command))
            self.dul.send_pdu(pdata)
            return
    _original_send_msg(self, primitive, context_id)


def mark(assoc: Any, incoming_dir: str) -> None:
    """Give an association our SCP accepted the fast path (its datasets spool to `incoming_dir`)."""
    assoc._ol_spool_dir = incoming_dir


def install() -> bool:
    """Patch pynetdicom once per process; returns whether the fast path is active."""
    global _installed
    with _lock:
        if _installed:
            return True
        if not pynetdicom.__version__.startswith("3.0."):
            logger.warning("pynetdicom %s: keeping its C-STORE receive and response (only 3.0.x is patched)",
                           pynetdicom.__version__)
            return False
        DIMSEMessage.decode_msg = _decode_msg  # type: ignore[method-assign]
        DIMSEServiceProvider.send_msg = _send_msg  # type: ignore[method-assign]
        _installed = True
        return True
