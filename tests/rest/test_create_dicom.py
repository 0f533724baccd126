"""POST /tools/create-dicom: tags, images and PDFs as data URIs, series from arrays, parents, errors."""

from __future__ import annotations

import base64
import io

import aiohttp
from PIL import Image

from tests.conftest import testdata, upload


def png(mode: str, size: tuple[int, int] = (5, 3)) -> str:
    buffer = io.BytesIO()
    colour = {"L": 7, "RGB": (1, 2, 3), "RGBA": (1, 2, 3, 4), "I;16": 300}[mode]
    Image.new(mode, size, colour).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


PDF = b"%PDF-1.1\n%%EOF\n"


async def _create(http: aiohttp.ClientSession, body: dict, status: int = 200) -> dict:
    async with http.post("/tools/create-dicom", json=body) as resp:
        assert resp.status == status, await resp.text()
        return await resp.json()


async def _tags(http: aiohttp.ClientSession, instance: str) -> dict:
    async with http.get(f"/instances/{instance}/tags?simplify") as resp:
        return await resp.json()


async def test_create_plain_instance(http: aiohttp.ClientSession) -> None:
    answer = await _create(http, {"Tags": {"PatientName": "A^B", "StudyDescription": "Desc"}})
    assert answer["Status"] == "Success" and answer["Path"] == f"/instances/{answer['ID']}"
    tags = await _tags(http, answer["ID"])
    assert tags["PatientName"] == "A^B" and tags["StudyDescription"] == "Desc"
    assert tags["SpecificCharacterSet"] == "ISO_IR 100"
    for name in ("StudyDate", "SeriesDate", "ContentDate", "InstanceCreationDate", "AcquisitionDate"):
        assert len(tags[name]) == 8
    assert tags["StudyInstanceUID"].startswith("1.2.276.0.7230010.3.1.2.")
    assert "SOPClassUID" not in tags


async def test_create_images_and_pdf(http: aiohttp.ClientSession) -> None:
    expected = {"L": ("MONOCHROME2", "1", "8"), "RGB": ("RGB", "3", "8"), "RGBA": ("RGB", "3", "8"),
                "I;16": ("MONOCHROME2", "1", "16")}
    for mode, (photometric, samples, bits) in expected.items():
        answer = await _create(http, {"Tags": {"PatientName": "Img"}, "Content": png(mode)})
        tags = await _tags(http, answer["ID"])
        assert (tags["PhotometricInterpretation"], tags["SamplesPerPixel"], tags["BitsAllocated"]) == \
            (photometric, samples, bits)
        assert (tags["Rows"], tags["Columns"]) == ("3", "5")
        async with http.get(f"/instances/{answer['ID']}/frames/0/raw") as resp:
            if resp.status == 200:
                assert len(await resp.read()) >= 15
    pdf = await _create(http, {"Tags": {"PatientName": "Pdf"},
                               "Content": "data:application/pdf;base64," + base64.b64encode(PDF).decode()})
    tags = await _tags(http, pdf["ID"])
    assert tags["SOPClassUID"] == "1.2.840.10008.5.1.4.1.1.104.1" and tags["Modality"] == "OT"
    async with http.get(f"/instances/{pdf['ID']}/pdf") as resp:
        assert resp.status == 200 and await resp.read() == PDF


async def test_create_series_from_an_array(http: aiohttp.ClientSession) -> None:
    answer = await _create(http, {"Tags": {"PatientName": "Series"},
                                  "Content": [png("L"), {"Content": png("L"), "Tags": {"ImageComments": "two"}}]})
    assert answer["Path"] == f"/series/{answer['ID']}"
    async with http.get(f"/series/{answer['ID']}") as resp:
        series = await resp.json()
    assert len(series["Instances"]) == 2
    numbers = sorted([(await _tags(http, i))["InstanceNumber"] for i in series["Instances"]])
    assert numbers == ["1", "2"]
    assert (await _tags(http, series["Instances"][0]))["ImagesInAcquisition"] == "2"


async def test_create_with_parent_copies_module_tags(http: aiohttp.ClientSession) -> None:
    stored = await upload(http, testdata("PrivateTags.dcm"))
    answer = await _create(http, {"Tags": {"SeriesDescription": "child"}, "Parent": stored["ParentStudy"]})
    assert answer["ParentStudy"] == stored["ParentStudy"]
    assert answer["ParentSeries"] != stored["ParentSeries"]
    error = await _create(http, {"Tags": {"StudyInstanceUID": "1.2"}, "Parent": stored["ParentStudy"]}, 400)
    assert error["OrthancStatus"] == 2020 and error["Details"] == "StudyInstanceUID"
    error = await _create(http, {"Tags": {}, "Parent": stored["ID"]}, 400)
    assert error["OrthancStatus"] == 2025
    error = await _create(http, {"Tags": {}, "Parent": "nope"}, 400)
    assert error["OrthancStatus"] == 2024


async def test_create_errors(http: aiohttp.ClientSession) -> None:
    assert (await _create(http, {"PatientName": 1}, 400))["OrthancStatus"] == 2019
    assert (await _create(http, {"Tags": {"PixelData": "x"}}, 400))["OrthancStatus"] == 2021
    assert (await _create(http, {"Tags": {}, "Content": "nodata"}, 400))["OrthancStatus"] == 15
    assert (await _create(http, {"Tags": {"NoSuchTag": "x"}}, 500))["OrthancStatus"] == 27
    forced = await _create(http, {"Tags": {"StudyInstanceUID": "1.2.3", "SOPInstanceUID": "1.2.3.4"}, "Force": True})
    assert (await _tags(http, forced["ID"]))["SOPInstanceUID"] == "1.2.3.4"
    legacy = await _create(http, {"PatientName": "Legacy"})
    assert (await _tags(http, legacy["ID"]))["PatientName"] == "Legacy"
