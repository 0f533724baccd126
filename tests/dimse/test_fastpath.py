"""The C-STORE fast path (dimse/fastpath.py) produces exactly pynetdicom's bytes, and spools big datasets to disk."""

from __future__ import annotations

import io
import os
import pathlib

import pytest
from pydicom.filewriter import write_file_meta_info
from pynetdicom import dimse_messages
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dsutils import create_file_meta, encode

from orthanc_lite.dimse import fastpath

UIDS = [
    ("1.2.840.10008.5.1.4.1.1.2", "1.2.3.4.5.6", "1.2.840.10008.1.2.1"),      # odd / even / odd lengths
    ("1.2.840.10008.5.1.4.1.1.7", "1.2.826.0.1.3680043.8.498.1", "1.2.840.10008.1.2"),
    ("1.2.840.10008.5.1.4.1.1.4", "2.25.1234567890123456789012345678901234", "1.2.840.10008.1.2.4.70"),
]


@pytest.mark.parametrize("sop_class, sop_instance, syntax", UIDS)
def test_file_meta_prefix_is_pynetdicoms(sop_class: str, sop_instance: str, syntax: str) -> None:
    expected = io.BytesIO()
    expected.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(expected, create_file_meta(sop_class_uid=sop_class, sop_instance_uid=sop_instance,
                                                    transfer_syntax=syntax))
    assert fastpath.file_meta_prefix(sop_class, sop_instance, syntax) == expected.getvalue()


@pytest.mark.parametrize("status", [0x0000, 0xA700, 0xC000, 0xB000])
@pytest.mark.parametrize("sop_class, sop_instance, _syntax", UIDS)
def test_store_response_is_pynetdicoms(sop_class: str, sop_instance: str, _syntax: str, status: int) -> None:
    rsp = C_STORE()
    rsp.MessageID = 17
    rsp.MessageIDBeingRespondedTo = 17
    rsp.AffectedSOPClassUID = sop_class
    rsp.AffectedSOPInstanceUID = sop_instance
    rsp.Status = status
    message = dimse_messages.C_STORE_RSP()
    message.primitive_to_message(rsp)
    expected = encode(message.command_set, True, True)
    assert fastpath.store_response_command(sop_class, 17, status, sop_instance) == expected


def test_spool_buffer_stays_in_memory_below_the_limit(tmp_path: pathlib.Path) -> None:
    buf = fastpath.SpoolBuffer(b"HEAD", str(tmp_path), limit=100)
    buf.write(b"x" * 50)
    buf.finish()
    assert buf.path is None
    assert buf.getvalue() == b"HEAD" + b"x" * 50
    assert os.listdir(tmp_path) == []


def test_spool_buffer_spills_to_a_file_past_the_limit(tmp_path: pathlib.Path) -> None:
    buf = fastpath.SpoolBuffer(b"HEAD", str(tmp_path), limit=100)
    for _ in range(5):
        buf.write(b"y" * 40)
    buf.finish()
    assert buf.path is not None and pathlib.Path(buf.path).parent == tmp_path
    assert pathlib.Path(buf.path).read_bytes() == b"HEAD" + b"y" * 200
    assert buf.getvalue() == b""  # memory released once spilled
    buf.discard()
    assert os.listdir(tmp_path) == []
