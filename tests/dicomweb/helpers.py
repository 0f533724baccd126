"""Helpers of the DICOMweb tests: build small DICOM files with pydicom, split multipart answers."""

from __future__ import annotations

import email.parser
import email.policy
import io

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"


def make_instance(study: str, series: str, sop: str | None = None, number: int = 1, patient: str = "P1",
                  name: str = "DOE^JOHN", modality: str = "CT", implicit: bool = False,
                  description: str = "Head") -> bytes:
    """A small CT image (4x4, 16 bits) as a DICOM file."""
    ds = Dataset()
    ds.SOPClassUID = CT_IMAGE
    ds.SOPInstanceUID = sop or generate_uid()
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.PatientID = patient
    ds.PatientName = name
    ds.PatientBirthDate = "19700101"
    ds.StudyDate = "20240102"
    ds.StudyTime = "101010"
    ds.AccessionNumber = "ACC1"
    ds.StudyDescription = description
    ds.Modality = modality
    ds.SeriesNumber = 3
    ds.InstanceNumber = number
    ds.ImagePositionPatient = [0.0, 0.0, float(number)]
    ds.SliceThickness = "1.5"
    ds.Rows = 4
    ds.Columns = 4
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    seq_item = Dataset()
    seq_item.CodeValue = "T-A0100"
    seq_item.CodingSchemeDesignator = "SRT"
    ds.AnatomicRegionSequence = [seq_item]
    ds.PixelData = bytes(range(32))
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CT_IMAGE
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True, implicit_vr=implicit, little_endian=True)
    return out.getvalue()


def split_multipart(content_type: str, body: bytes) -> list[tuple[dict[str, str], bytes]]:
    """The parts of a multipart answer, parsed by the standard library (headers, payload)."""
    raw = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode() + body
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    assert message.is_multipart(), content_type
    out = []
    for part in message.iter_parts():
        out.append(({k: str(v) for k, v in part.items()}, part.get_payload(decode=True)))
    return out


def stow_body(files: list[bytes], boundary: str = "XyZBoundary") -> bytes:
    chunks = []
    for data in files:
        chunks.append(f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + data + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks)


def read(data: bytes) -> Dataset:
    return pydicom.dcmread(io.BytesIO(data), force=True)
