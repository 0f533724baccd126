"""The synthetic store: patients x studies x series x instances of small CT images, generated once and cached.

The DICOM bytes are built with pydicom (deterministic UIDs, names, dates and modalities) and cached as one pack file
under bench/.cache/ (gitignored): a header line, then for each instance a 4-byte little-endian length and the bytes.
Instances are ordered patient by patient, so any prefix of the store is a store of whole patients.
"""

from __future__ import annotations

import io
import os
import pathlib
import struct
import time
from dataclasses import dataclass

CACHE_DIR = pathlib.Path(__file__).resolve().parent / ".cache"
FORMAT_VERSION = 1
UID_ROOT = "1.2.826.0.1.3680043.10.1.2"   # a private root for this benchmark

MODALITIES = ("CT", "MR", "CT", "US", "CR", "PT", "CT", "MR")
SURNAMES = ("SMITH", "JOHNSON", "WILLIAMS", "BROWN", "JONES", "GARCIA", "MILLER", "DAVIS", "MARTIN", "LOPEZ",
            "WILSON", "ANDERSON", "THOMAS", "TAYLOR", "MOORE", "JACKSON", "WHITE", "HARRIS", "CLARK", "LEWIS")
GIVEN = ("JOHN", "MARY", "JAMES", "ANNA", "ROBERT", "LINDA", "MICHAEL", "SARAH", "DAVID", "LAURA", "PETER")


@dataclass(frozen=True)
class StoreShape:
    patients: int
    studies: int = 2          # per patient
    series: int = 2           # per study
    instances: int = 25       # per series
    matrix: int = 8           # rows = columns

    @property
    def per_patient(self) -> int:
        return self.studies * self.series * self.instances

    @property
    def total(self) -> int:
        return self.patients * self.per_patient

    @property
    def cache_name(self) -> str:
        return (f"store-v{FORMAT_VERSION}-p{self.patients}-st{self.studies}-se{self.series}-i{self.instances}"
                f"-m{self.matrix}.pack")


def make_instance(shape: StoreShape, p: int, st: int, se: int, i: int) -> bytes:
    """One instance of the store (pure function of its coordinates)."""
    import numpy as np
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

    study_no = p * shape.studies + st
    series_no = study_no * shape.series + se
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = f"{UID_ROOT}.3.{series_no}.{i + 1}"
    ds.PatientID = f"BENCH{p:06d}"
    ds.PatientName = f"{SURNAMES[p % len(SURNAMES)]}^{GIVEN[(p // len(SURNAMES)) % len(GIVEN)]}"
    ds.PatientBirthDate = f"{1930 + p % 80}{1 + p % 12:02d}{1 + p % 28:02d}"
    ds.PatientSex = "MF"[p % 2]
    ds.StudyInstanceUID = f"{UID_ROOT}.1.{study_no}"
    ds.StudyDate = f"{2010 + study_no % 15}{1 + study_no % 12:02d}{1 + study_no % 28:02d}"
    ds.StudyTime = f"{8 + study_no % 10:02d}{study_no % 60:02d}00"
    ds.AccessionNumber = f"ACC{study_no:08d}"
    ds.StudyDescription = f"Bench study {st + 1}"
    ds.StudyID = str(st + 1)
    ds.ReferringPhysicianName = "REFERRER^A"
    ds.InstitutionName = "Bench Hospital"
    ds.SeriesInstanceUID = f"{UID_ROOT}.2.{series_no}"
    ds.Modality = MODALITIES[series_no % len(MODALITIES)]
    ds.SeriesNumber = se + 1
    ds.SeriesDescription = f"Bench series {se + 1}"
    ds.BodyPartExamined = "CHEST"
    ds.Manufacturer = "orthanc_lite bench"
    ds.InstanceNumber = i + 1
    ds.ImagePositionPatient = [0.0, 0.0, float(i)]
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ds.Rows = ds.Columns = shape.matrix
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.PixelData = ((np.arange(shape.matrix * shape.matrix, dtype=np.uint16) + i) % 4096).tobytes()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def generate(shape: StoreShape) -> list[bytes]:
    return [make_instance(shape, p, st, se, i)
            for p in range(shape.patients)
            for st in range(shape.studies)
            for se in range(shape.series)
            for i in range(shape.instances)]


def _header(shape: StoreShape) -> bytes:
    return f"orthanc_lite-bench {FORMAT_VERSION} {shape.total}\n".encode()


def load(shape: StoreShape, cache_dir: pathlib.Path = CACHE_DIR, log: bool = True) -> list[bytes]:
    """The store's instances, from the cache or generated (then cached)."""
    path = cache_dir / shape.cache_name
    if path.exists():
        data = path.read_bytes()
        header = _header(shape)
        if data.startswith(header):
            out: list[bytes] = []
            pos = len(header)
            while pos < len(data):
                (size,) = struct.unpack_from("<I", data, pos)
                out.append(data[pos + 4:pos + 4 + size])
                pos += 4 + size
            if len(out) == shape.total:
                return out
    started = time.perf_counter()
    if log:
        print(f"generating {shape.total} instances ({shape.patients} patients x {shape.studies} studies x "
              f"{shape.series} series x {shape.instances} instances, {shape.matrix}x{shape.matrix})...", flush=True)
    items = generate(shape)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        f.write(_header(shape))
        for item in items:
            f.write(struct.pack("<I", len(item)))
            f.write(item)
    os.replace(tmp, path)
    if log:
        print(f"  generated in {time.perf_counter() - started:.1f} s, cached in {path}", flush=True)
    return items
