"""Record the fixtures of this folder from a real Orthanc (run by hand, not by pytest).

Usage: python record_orthanc.py http://localhost:18042
Uploads the test files (and the synthetic ones of tests/unit/test_dicom_json.py) and saves
what Orthanc answers. Recorded with Orthanc 1.10.1 (Debian 12 package, DCMTK 3.6.7).
"""

from __future__ import annotations

import base64
import hashlib
import json
import pathlib
import sys
import urllib.request

HERE = pathlib.Path(__file__).parent
DATA = HERE.parents[2].parent / "shared" / "testdata" / "dicom"
TAGS_FILES = [
    "SignedCT.dcm", "Implicit-vr-us-palette.dcm", "sample-pdf.dcm",
    "TransferSyntaxes/1.2.840.10008.1.2.2.dcm", "ColorTestImageJ.dcm", "PrivateTags.dcm",
    "MarekLatin2.dcm", "Encodings/Lena-utf8.dcm", "Issue16.dcm",
]
HEADER_FILES = ["SignedCT.dcm", "TransferSyntaxes/1.2.840.10008.1.2.4.50.dcm"]
CONTENT = {
    "SignedCT.dcm": [[], ["0008-0018"], ["0028-0010"], ["0028-1052"], ["0008-0008"],
                     ["PatientName"], ["0008,1140"], ["0008-1140", "0"],
                     ["0008-1140", "0", "0008-1155"], ["7fe0-0010"]],
    "sample-pdf.dcm": [[], ["0042-0011"]],
    "LenaTwiceWithFragments.dcm": [["7fe0-0010", "0"], ["7fe0-0010", "1"]],
    "TransferSyntaxes/1.2.840.10008.1.2.2.dcm": [["0028-0010"], ["0028-0100"], ["0008-0060"]],
    "ColorTestMalaterre.dcm": [["0008-0008"]],
    "TransferSyntaxes/1.2.840.10008.1.2.dcm": [["0008-1030"]],
    "PrivateTags.dcm": [[], ["6003-1010"], ["6003-1010", "0"]],
}


def call(base: str, uri: str, body: bytes | None = None) -> bytes:
    return call_typed(base, uri, body)[1]


def call_typed(base: str, uri: str, body: bytes | None = None) -> tuple[str, bytes]:
    request = urllib.request.Request(base + uri, data=body, method="POST" if body else "GET")
    with urllib.request.urlopen(request) as answer:
        return answer.headers.get("Content-Type", ""), answer.read()


def upload(base: str, data: bytes) -> str:
    return json.loads(call(base, "/instances", data))["ID"]


def name(path: str) -> str:
    return path.replace("/", "_")


def main(base: str) -> None:
    sys.path.insert(0, str(HERE.parents[1] / "unit"))
    from test_dicom_json import SYNTHETIC, synthetic_file  # noqa: E402

    tags: dict[str, dict[str, object]] = {}
    for path in TAGS_FILES:
        oid = upload(base, (DATA / path).read_bytes())
        tags[path] = {fmt: json.loads(call(base, f"/instances/{oid}/tags{arg}"))
                      for fmt, arg in (("full", ""), ("short", "?short"), ("human", "?simplify"))}
    for path in HEADER_FILES:
        oid = upload(base, (DATA / path).read_bytes())
        tags.setdefault(path, {})["header"] = json.loads(call(base, f"/instances/{oid}/header"))
    names = {}
    for path in sorted((DATA / "Encodings").rglob("*")):
        if path.is_file() and path.suffix != ".png" and path.name != "DICOMDIR":
            oid = upload(base, path.read_bytes())
            names[str(path.relative_to(DATA))] = json.loads(
                call(base, f"/instances/{oid}/tags?simplify")).get("PatientName")
    synthetic = {}
    for key in SYNTHETIC:
        oid = upload(base, synthetic_file(key))
        synthetic[key] = json.loads(call(base, f"/instances/{oid}/tags"))
    content: dict[str, dict[str, object]] = {}
    for path, queries in CONTENT.items():
        oid = upload(base, (DATA / path).read_bytes())
        for query in queries:
            kind, body = call_typed(base, f"/instances/{oid}/content/"
                                    + "/".join(query).replace(",", "%2C"))
            value: object
            if kind.startswith("application/json"):
                value = json.loads(body)
            elif len(body) <= 2048:
                value = {"base64": base64.b64encode(body).decode()}
            else:
                value = {"sha1": hashlib.sha1(body).hexdigest(), "size": len(body)}
            content.setdefault(path, {})["/".join(query)] = value
    for file, obj in (("tags.json", tags), ("patient_names.json", names),
                      ("synthetic.json", synthetic), ("content.json", content)):
        (HERE / file).write_text(json.dumps(obj, ensure_ascii=False, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "http://localhost:18042")
