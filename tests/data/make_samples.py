"""Small synthetic DICOM instances built with pydicom (tests and benchmarks)."""

from __future__ import annotations

import io

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid


def make_instance(patient_id: str = "P1", patient_name: str = "Doe^John", study_uid: str | None = None,
                  series_uid: str | None = None, sop_uid: str | None = None, modality: str = "CT",
                  study_date: str = "20240102", instance_number: int = 1, size: int = 8,
                  **tags: object) -> bytes:
    """One small CT instance as the bytes of a DICOM Part 10 file."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_uid or generate_uid()
    ds.PatientID = patient_id
    ds.PatientName = patient_name
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "M"
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.StudyDate = study_date
    ds.StudyTime = "101010"
    ds.AccessionNumber = "ACC" + patient_id
    ds.StudyDescription = "Study of " + patient_id
    ds.StudyID = "1"
    ds.Modality = modality
    ds.SeriesNumber = 1
    ds.SeriesDescription = "Series"
    ds.InstanceNumber = instance_number
    ds.Rows = size
    ds.Columns = size
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.PixelData = (np.arange(size * size, dtype=np.uint16) % 4096).tobytes()
    for key, value in tags.items():
        setattr(ds, key, value)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def make_series(count: int, patient_id: str = "P1", **kw: object) -> list[bytes]:
    study_uid = kw.pop("study_uid", None) or generate_uid()
    series_uid = kw.pop("series_uid", None) or generate_uid()
    return [make_instance(patient_id, study_uid=str(study_uid), series_uid=str(series_uid), instance_number=i + 1, **kw)
            for i in range(count)]
