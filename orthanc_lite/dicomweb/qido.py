"""QIDO-RS: searches for studies, series and instances (the DICOMweb plugin's QidoRs.cpp), answered through the
same find service and matching engine as /tools/find (services/find.py, dicom/matching.py).
"""

from __future__ import annotations

import re
from typing import Any, Final

import orjson
from aiohttp import web

from ..dicom import dicomweb_encode as dicomweb_json
from ..dicom.matching import COMPUTED_TAGS, IndexQuery, TagConstraint, rest_constraint, tag_vr
from ..dicom.tags import MAIN_TAGS
from ..model import ResourceLevel
from ..services.find import FindRequest, FindCursor
from .common import MultipartWriter, bad_request, base_url, ctx_of, dicom_json_response, option, wants_xml

STUDY_UID: Final = 0x0020000D
SERIES_UID: Final = 0x0020000E
SOP_UID: Final = 0x00080018
RETRIEVE_URL: Final = 0x00081190

# The attributes answered at each level (PS3.18 table 6.7.1-2, 2a, 2b; QidoRs.cpp::AddResultAttributesForLevel).
LEVEL_ATTRIBUTES: Final[dict[ResourceLevel, tuple[int, ...]]] = {
    ResourceLevel.STUDY: (0x00080020, 0x00080030, 0x00080050, 0x00080056, 0x00080061, 0x00080090, 0x00080201,
                          0x00100010, 0x00100020, 0x00100030, 0x00100040, 0x0020000D, 0x00200010, 0x00201206,
                          0x00201208),
    ResourceLevel.SERIES: (0x00080060, 0x00080201, 0x0008103E, 0x0020000E, 0x00200011, 0x00201209, 0x00400244,
                           0x00400245, 0x00400275),
    ResourceLevel.INSTANCE: (0x00080016, 0x00080018, 0x00080056, 0x00080201, 0x00081190, 0x00200013, 0x00280010,
                             0x00280011, 0x00280100, 0x00280008),
}
_HEX_TAG: Final = re.compile(r"^([0-9A-Fa-f]{4}),?([0-9A-Fa-f]{4})$")


def parse_qido_tag(text: str) -> int | None:
    """OrthancPluginLookupDictionary: "00100010", "0010,0010" or a keyword; None when unknown."""
    match = _HEX_TAG.match(text.strip())
    if match:
        return int(match.group(1) + match.group(2), 16)
    from pydicom.datadict import tag_for_keyword

    found = tag_for_keyword(text.strip())
    return int(found) if found is not None else None


class QidoRequest:
    """The arguments of one QIDO-RS request (ModuleMatcher)."""

    def __init__(self, request: web.Request) -> None:
        self.limit = 0
        self.offset = 0
        self.include: list[int] = []
        self.include_all = False
        self.filters: dict[int, str] = {}
        self.filtered_study = False
        self.filtered_series = False
        for name, value in request.query.items():
            if name == "limit":
                self.limit = _unsigned(name, value)
            elif name == "offset":
                self.offset = _unsigned(name, value)
            elif name == "fuzzymatching":
                if value not in ("true", "false"):
                    raise bad_request(f"Not a proper value for fuzzy matching (true or false): {value}")
            elif name == "includefield":
                if value == "all":
                    self.include_all = True
                else:
                    for part in value.split(","):
                        tag = parse_qido_tag(part)
                        if tag is not None:
                            self.include.append(tag)
            else:
                tag = parse_qido_tag(name)
                if tag is not None:
                    # A "," separates the values of a list (DICOMweb > 1.0); a backslash is dropped
                    self.add_filter(tag, value.replace("\\", "").replace(",", "\\"), from_path=False)

    def add_filter(self, tag: int, value: str, from_path: bool) -> None:
        self.filters[tag] = value
        if not from_path:
            self.filtered_study = self.filtered_study or tag == STUDY_UID
            self.filtered_series = self.filtered_series or tag == SERIES_UID

    def result_fields(self, level: ResourceLevel) -> list[int]:
        fields = set(self.include)
        fields.update(LEVEL_ATTRIBUTES[level])
        fields.update(self.filters)
        if not self.filtered_study and level in (ResourceLevel.SERIES, ResourceLevel.INSTANCE):
            fields.update(LEVEL_ATTRIBUTES[ResourceLevel.STUDY])
        if not self.filtered_series and level is ResourceLevel.INSTANCE:
            fields.update(LEVEL_ATTRIBUTES[ResourceLevel.SERIES])
        if self.include_all:
            for lvl in ResourceLevel:
                if lvl <= level:
                    fields.update(tag for tag, _ in MAIN_TAGS[lvl])
        fields.discard(RETRIEVE_URL)  # computed below, never looked up
        # A computed tag of another level (NumberOfStudyRelatedSeries of an instance...) is not answered
        return sorted(t for t in fields if t not in COMPUTED_TAGS or level in COMPUTED_TAGS[t][1])


def _unsigned(name: str, value: str) -> int:
    if not value.isdigit():
        raise bad_request(f"Bad value for argument \"{name}\" of QIDO-RS: {value}")
    return int(value)


async def search(request: web.Request, level: ResourceLevel) -> web.StreamResponse:
    """Run a QIDO-RS search at `level`, the UIDs of the path becoming filters."""
    ctx = ctx_of(request)
    qido = QidoRequest(request)
    if "study" in request.match_info:
        qido.add_filter(STUDY_UID, request.match_info["study"], from_path=True)
    if "series" in request.match_info:
        qido.add_filter(SERIES_UID, request.match_info["series"], from_path=True)
    case_sensitive = bool(option(ctx, "QidoCaseSensitive", True))
    constraints: list[TagConstraint] = []
    for tag, value in qido.filters.items():
        c = rest_constraint(tag, value, case_sensitive)
        if c is not None:
            constraints.append(c)
    fields = qido.result_fields(level)
    query = IndexQuery(level, tuple(constraints), since=qido.offset, limit=qido.limit)
    cursor = FindCursor(ctx, FindRequest(query, requested_tags=tuple(fields)))
    base = base_url(request)
    encoding = ctx.default_encoding
    answers: list[dict[str, Any]] = []
    vrs = [(tag, tag_vr(tag)) for tag in fields]  # once per request, not per answer
    async for batch in cursor:
        for answer in batch:
            values: dict[int, tuple[str, str | None]] = {}
            for tag, vr in vrs:
                values[tag] = (vr, _text(answer.tags.get(tag)))
            values[RETRIEVE_URL] = ("UR", _retrieve_url(base, level, answer.tags))
            item = dicomweb_json.values_to_dicomweb(values, encoding)
            for tag, _vr in vrs:
                node = answer.tags.get(tag)
                if node is not None and node.get("Type") == "Sequence":
                    items = [dicomweb_json.full_to_dicomweb(child) for child in node.get("Value") or []]
                    item[dicomweb_json.key(tag)] = {"vr": "SQ", "Value": items} if items else {"vr": "SQ"}
            answers.append(item)
    if wants_xml(request):
        writer = MultipartWriter(request, "application/dicom+xml")
        for item in answers:
            await writer.write(dicomweb_json.to_xml(item).encode("utf-8"))
        return await writer.finish()
    return dicom_json_response([orjson.dumps(a) for a in answers])


def _text(node: dict[str, Any] | None) -> str | None:
    if node is None or node.get("Type") != "String":
        return None
    return str(node["Value"])


def _retrieve_url(base: str, level: ResourceLevel, tags: dict[int, Any]) -> str:
    url = f"{base}studies/{_text(tags.get(STUDY_UID)) or ''}"
    if level >= ResourceLevel.SERIES:
        url += f"/series/{_text(tags.get(SERIES_UID)) or ''}"
    if level is ResourceLevel.INSTANCE:
        url += f"/instances/{_text(tags.get(SOP_UID)) or ''}"
    return url
