"""Build new DICOM instances for /tools/create-dicom (Orthanc's ParsedDicomFile(true), InjectTags, EmbedContent):
fresh identifiers, tags from JSON, a PNG/JPEG image as pixel data or a PDF as an Encapsulated PDF.

SYNC and pure: called through the cpu pool.
"""

from __future__ import annotations

import io
import time
from typing import Any, Final

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian

from ..errors import ErrorCode, OrthancError
from ..model import ResourceLevel
from .modification import decode_data_uri, generate_identifier, parse_tag_or_fail, set_value
from .values import ENCODINGS

PDF_SOP_CLASS: Final = "1.2.840.10008.5.1.4.1.1.104.1"
PIXEL_DATA: Final = 0x7FE00010
SPECIFIC_CHARACTER_SET: Final = 0x00080005
# Tags that Tags may set even when the new instance already has them (InjectTags).
OVERRIDABLE: Final = frozenset({0x00100020, 0x00080022, 0x00080032, 0x00080023, 0x00080033, 0x00080012, 0x00080013,
                                0x00080021, 0x00080031, 0x00080020, 0x00080030})

def new_dataset(encoding: str) -> Dataset:
    """An empty instance with new identifiers (PatientID, Study/Series/SOP Instance UIDs) and the character set
    of `encoding` (an Orthanc encoding name)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    term = ENCODINGS.get(encoding, "ISO_IR 100")
    if term:
        ds.SpecificCharacterSet = term
    ds.PatientID = generate_identifier(ResourceLevel.PATIENT)
    ds.StudyInstanceUID = generate_identifier(ResourceLevel.STUDY)
    ds.SeriesInstanceUID = generate_identifier(ResourceLevel.SERIES)
    ds.SOPInstanceUID = generate_identifier(ResourceLevel.INSTANCE)
    return ds


def now_dicom() -> tuple[str, str]:
    """UTC date and time as Orthanc writes them into created instances."""
    moment = time.gmtime()
    return time.strftime("%Y%m%d", moment), time.strftime("%H%M%S", moment) + ".000000"


def set_creation_dates(ds: Dataset, parent_level: ResourceLevel | None) -> None:
    date, clock = now_dicom()
    ds.AcquisitionDate, ds.AcquisitionTime = date, clock
    ds.ContentDate, ds.ContentTime = date, clock
    ds.InstanceCreationDate, ds.InstanceCreationTime = date, clock
    if parent_level in (None, ResourceLevel.PATIENT, ResourceLevel.STUDY):
        ds.SeriesDate, ds.SeriesTime = date, clock
    if parent_level in (None, ResourceLevel.PATIENT):
        ds.StudyDate, ds.StudyTime = date, clock


def inject_tags(ds: Dataset, tags: Any, decode_binary: bool, private_creator: str, force: bool) -> None:
    if not isinstance(tags, dict):
        raise OrthancError(ErrorCode.BadRequest, "Tags field is not an array")
    for name, value in tags.items():
        tag = parse_tag_or_fail(name)
        if tag == SPECIFIC_CHARACTER_SET:
            continue
        if not force and tag not in OVERRIDABLE and tag in ds:
            raise OrthancError(ErrorCode.CreateDicomOverrideTag, name)
        if tag == PIXEL_DATA:
            raise OrthancError(ErrorCode.CreateDicomUseContent)
        set_value(ds, tag, value, decode_binary, private_creator)


def embed_content(ds: Dataset, content: str) -> None:
    """A data URI: image/png or image/jpeg become the pixel data, application/pdf an Encapsulated PDF."""
    decoded = decode_data_uri(content)
    if decoded is None:
        raise OrthancError(ErrorCode.BadFileFormat)
    mime, payload = decoded
    if mime in ("image/png", "image/jpeg"):
        embed_image(ds, payload)
    elif mime == "application/pdf":
        embed_pdf(ds, payload)
    else:
        raise OrthancError(ErrorCode.NotImplemented, f"Unsupported MIME type for the content of a new instance: {mime}")


def embed_image(ds: Dataset, payload: bytes) -> None:
    try:
        image = Image.open(io.BytesIO(payload))
        image.load()
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise OrthancError(ErrorCode.BadFileFormat, f"Cannot decode the image: {exc}") from None
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        pixels = np.asarray(image).astype("<u2")
        samples, photometric, bits = 1, "MONOCHROME2", 16
    elif image.mode in ("L", "1", "P") and image.mode != "P":
        pixels = np.asarray(image.convert("L"), dtype=np.uint8)
        samples, photometric, bits = 1, "MONOCHROME2", 8
    else:
        pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)
        samples, photometric, bits = 3, "RGB", 8
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = bits
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    if samples == 3:
        ds.PlanarConfiguration = 0
    ds.Rows, ds.Columns = int(pixels.shape[0]), int(pixels.shape[1])
    data = pixels.tobytes()
    if len(data) % 2:
        data += b"\0"
    ds.PixelData = data
    ds["PixelData"].VR = "OW" if bits == 16 else "OB"


def embed_pdf(ds: Dataset, payload: bytes) -> None:
    if not payload.startswith(b"%PDF"):
        raise OrthancError(ErrorCode.BadFileFormat, "Not a PDF file")
    ds.SOPClassUID = PDF_SOP_CLASS
    ds.file_meta.MediaStorageSOPClassUID = UID(PDF_SOP_CLASS)
    ds.Modality = "OT"
    ds.ConversionType = "WSD"
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocument = payload + (b"\0" if len(payload) % 2 else b"")


def copy_parent_tags(ds: Dataset, sibling: Dataset, module_tags: frozenset[int]) -> None:
    """Copy the string values of the parents' modules from a sibling instance (sequences are not copied)."""
    from .modification import STRING_VRS
    for tag in sorted(module_tags):
        if tag not in sibling:
            continue
        elem = sibling[tag]
        if elem.VR not in STRING_VRS:
            continue
        ds.add_new(tag, elem.VR, elem.value if elem.value is not None else "")
