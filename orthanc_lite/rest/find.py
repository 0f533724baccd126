"""POST /tools/find and POST /tools/count-resources (~ Find() in Orthanc's OrthancRestResources.cpp).

Parses and validates the JSON body (Orthanc's 400 errors), builds an IndexQuery with dicom/matching.py and
calls services/find.py; formats expanded answers (FEATURES.md §5.2, §5.9).
"""

from __future__ import annotations

from typing import Any, Final

import orjson
from aiohttp import web

from ..dicom.dicom_json import simplify_json
from ..dicom.matching import (
    COMPUTED_TAGS,
    IndexQuery,
    LabelsConstraint,
    MetadataConstraint,
    OrderBy,
    OrderCast,
    TagConstraint,
    metadata_constraint,
    parse_tag,
    rest_constraint,
)
from ..dicom.tags import IDENTIFIER_TAGS
from ..errors import ErrorCode, OrthancError
from ..model import ResourceLevel
from ..services import find as find_service
from ..services.context import ServerContext
from ..services.metadata import check_label, metadata_name, metadata_type
from ..services.resources import expand_resource
from .helpers import ctx_of, json_response

routes = web.RouteTableDef()

RESPONSE_CONTENT: Final = frozenset({"MainDicomTags", "Metadata", "Children", "Parent", "Labels", "Attachments",
                                     "Status", "IsStable", "IsProtected"})
_PARENT_KEYS: Final = (("ParentPatient", ResourceLevel.PATIENT), ("ParentStudy", ResourceLevel.STUDY),
                       ("ParentSeries", ResourceLevel.SERIES))
_IDENTIFIERS: Final = frozenset(tag for tags in IDENTIFIER_TAGS.values() for tag in tags)
_ORDER_TYPES: Final = {
    "DicomTag": (True, OrderCast.STRING), "DicomTagAsInt": (True, OrderCast.INT),
    "DicomTagAsFloat": (True, OrderCast.FLOAT), "Metadata": (False, OrderCast.STRING),
    "MetadataAsInt": (False, OrderCast.INT), "MetadataAsFloat": (False, OrderCast.FLOAT),
}


async def _body(request: web.Request) -> Any:
    raw = await request.read()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise _bad("The body must contain a JSON object") from None


def _bad(details: str) -> OrthancError:
    return OrthancError(ErrorCode.BadRequest, details)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _as_bool(body: dict[str, Any], key: str) -> bool:
    """jsoncpp's asBool(): booleans, numbers and null."""
    value = body.get(key)
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, (int, float)):
        return value != 0
    raise _bad(f"Field \"{key}\" should be a Boolean")


def _metadata_type(ctx: ServerContext, name: str) -> int:
    try:
        return metadata_type(ctx.settings, name)
    except OrthancError:
        raise OrthancError(ErrorCode.ParameterOutOfRange, f"Unknown metadata: {name}") from None


class ParsedFind:
    """A validated /tools/find body."""

    def __init__(self, ctx: ServerContext, body: Any, count: bool = False) -> None:
        if not isinstance(body, dict):
            raise _bad("The body must contain a JSON object")
        level_text = body.get("Level")
        if not isinstance(level_text, str):
            raise _bad("Field \"Level\" is missing, or should be a string")
        query = body.get("Query")
        if not isinstance(query, dict):
            raise _bad("Field \"Query\" is missing, or should be a JSON object")
        case_sensitive = body.get("CaseSensitive", False)
        if not isinstance(case_sensitive, bool):
            raise _bad("Field \"CaseSensitive\" should be a Boolean")
        for key in ("Limit", "Since"):
            if key in body and not _is_int(body[key]):
                raise _bad(f"Field \"{key}\" should be an integer")
        for key, expected, message in (("RequestedTags", list, "should be an array"),
                                   ("Labels", list, "must be an array of strings"),
                                   ("LabelsConstraint", str, "must be an array of strings"),
                                   ("OrderBy", list, "must be an array"),
                                   ("MetadataQuery", dict, "must be a JSON object"),
                                   ("ResponseContent", list, "must be an array")):
            if key in body and not isinstance(body[key], expected):
                raise _bad(f"Field \"{key}\" {message}")
        for key, _ in _PARENT_KEYS:
            if key in body and not isinstance(body[key], str):
                raise _bad(f"Field \"{key}\" must be a string")
        if count and case_sensitive:
            raise _bad("Case-sensitive searches are not supported by /tools/count-resources")

        try:
            level = ResourceLevel.parse(level_text)
        except ValueError:
            raise OrthancError(ErrorCode.ParameterOutOfRange) from None
        self.level = level
        self.expand = _as_bool(body, "Expand")
        self.format = "full" if _as_bool(body, "Full") else "short" if _as_bool(body, "Short") else "human"
        _as_bool(body, "Simplify")

        limit = body.get("Limit", 0)
        since = body.get("Since", 0)
        for key, value in (("Limit", limit), ("Since", since)):
            if value < 0:
                raise OrthancError(ErrorCode.ParameterOutOfRange, f"Field \"{key}\" should be a positive integer")

        constraints: list[TagConstraint] = []
        for name, value in query.items():
            if not isinstance(value, str):
                raise _bad(f"Tag \"{name}\" should be associated with a string")
            tag = parse_tag(name)
            constraint = rest_constraint(tag, value, case_sensitive)
            if constraint is not None:
                constraints.append(constraint)

        metadata: list[MetadataConstraint] = []
        for name, value in body.get("MetadataQuery", {}).items():
            if not isinstance(value, str):
                raise _bad(f"Tag \"{name}\" should be associated with a string")
            mc = metadata_constraint(_metadata_type(ctx, name), value, case_sensitive)
            if mc is not None:
                metadata.append(mc)

        self.requested: list[int] = []
        for item in body.get("RequestedTags", []):
            if not isinstance(item, str):
                raise _bad("Field \"RequestedTags\" must contain strings")
            self.requested.append(parse_tag(item))

        labels: list[str] = []
        for label in body.get("Labels", []):
            if not isinstance(label, str):
                raise _bad("Field \"Labels\" must contain strings")
            check_label(label)
            labels.append(label)
        constraint_text = body.get("LabelsConstraint", "All")
        try:
            labels_constraint = LabelsConstraint(constraint_text)
        except ValueError:
            raise _bad("Field \"LabelsConstraint\" must be \"All\", \"Any\", or \"None\"") from None

        parents: list[tuple[ResourceLevel, str]] = []
        for key, parent_level in _PARENT_KEYS:
            if key in body:
                if parent_level > level:
                    raise OrthancError(ErrorCode.BadParameterType,
                                       f"\"{key}\" cannot be used at the {level.type_name} level")
                parents.append((parent_level, body[key]))

        order_by: list[OrderBy] = []
        for item in body.get("OrderBy", []):
            if not isinstance(item, dict):
                raise _bad("Field \"OrderBy\" must contain objects")
            order_type, order_key, direction = item.get("Type"), item.get("Key"), item.get("Direction", "ASC")
            if order_type not in _ORDER_TYPES:
                raise _bad("Field \"Type\" must be \"DicomTag\", \"DicomTagAsInt\", \"DicomTagAsFloat\", "
                           "\"Metadata\", \"MetadataAsInt\" or \"MetadataAsFloat\"")
            if not isinstance(order_key, str):
                raise _bad("Field \"Key\" must be a string")
            if direction not in ("ASC", "DESC"):
                raise _bad("Field \"Direction\" must be \"ASC\" or \"DESC\"")
            is_tag, cast = _ORDER_TYPES[order_type]
            if is_tag:
                order_by.append(OrderBy(tag=parse_tag(order_key), cast=cast, descending=direction == "DESC"))
            else:
                order_by.append(OrderBy(metadata=_metadata_type(ctx, order_key), cast=cast,
                                        descending=direction == "DESC"))

        self.content: frozenset[str] | None = None
        if "ResponseContent" in body:
            items = body["ResponseContent"]
            for item in items:
                if item not in RESPONSE_CONTENT:
                    raise OrthancError(ErrorCode.ParameterOutOfRange,
                                       f"Unrecognized value for \"ResponseContent\": {item}")
            self.content = frozenset(items)

        self.query = IndexQuery(level=level, constraints=tuple(constraints), metadata=tuple(metadata),
                                labels=tuple(labels), labels_constraint=labels_constraint, parents=tuple(parents),
                                order_by=tuple(order_by), since=since, limit=limit)
        if since and self.query.needs_files:
            raise _bad("\"Since\" is not supported when the query involves tags that are not stored in the database")
        if since and case_sensitive and any(c.tag in _IDENTIFIERS for c in constraints):
            # Orthanc keeps identifiers upper-cased (DicomIdentifiers): a case-sensitive match on them is checked
            # after the database lookup, which paging cannot follow (test_rest_find).
            raise _bad("\"CaseSensitive\" cannot be combined with \"Since\" when filtering on identifier tags")

    @property
    def objects(self) -> bool:
        """Expanded objects rather than identifiers."""
        return self.expand or self.content is not None

    def request(self, ctx: ServerContext) -> find_service.FindRequest:
        content = self.content
        return find_service.FindRequest(
            query=find_service.with_database_limit(ctx, self.query),
            requested_tags=tuple(self.requested) if self.objects else (),
            expand=self.objects,
            attachments=content is not None and "Attachments" in content,
        )


# The fields each ResponseContent value keeps from an expanded resource (ID and Type are always kept).
_CONTENT_FIELDS: Final = {
    "MainDicomTags": ("MainDicomTags", "PatientMainDicomTags"),
    "Parent": ("ParentPatient", "ParentStudy", "ParentSeries"),
    "Children": ("Studies", "Series", "Instances"),
    "Labels": ("Labels",),
    "Status": ("Status", "ExpectedNumberOfInstances"),
    "IsStable": ("IsStable",),
    "IsProtected": ("IsProtected",),
}


def format_answer(ctx: ServerContext, answer: find_service.FindAnswer, parsed: ParsedFind) -> dict[str, Any]:
    """One expanded answer: Orthanc's expanded resource, or the fields that ResponseContent lists."""
    assert answer.resource is not None
    full = expand_resource(ctx, answer.resource, parsed.format)
    if parsed.content is None:
        out = full
    else:
        out = {"ID": full["ID"], "Type": full["Type"]}
        for item in parsed.content:
            for key in _CONTENT_FIELDS.get(item, ()):
                if key in full:
                    out[key] = full[key]
        if "Metadata" in parsed.content:
            out["Metadata"] = {metadata_name(ctx.settings, mtype): value
                               for mtype, value in sorted(answer.resource.metadata.items())}
        if "Attachments" in parsed.content:
            out["Attachments"] = [{"Uuid": a.uuid, "ContentType": a.content_type,
                                   "UncompressedSize": a.uncompressed_size, "CompressedSize": a.compressed_size,
                                   "UncompressedMD5": a.uncompressed_md5, "CompressedMD5": a.compressed_md5}
                                  for a in answer.attachments]
    if parsed.requested:
        # A computed tag of another level (NumberOfStudyRelatedInstances on a series...) is left out, as Orthanc
        # never computes it there (test_requested_tags); other absent tags are null.
        nodes = {find_service.key_of(tag): node for tag, node in answer.tags.items()
                 if node is not None and (tag not in COMPUTED_TAGS or parsed.level in COMPUTED_TAGS[tag][1])}
        out["RequestedTags"] = nodes if parsed.format == "full" else simplify_json(nodes, parsed.format)
    return out


@routes.post("/tools/find")
async def tools_find(request: web.Request) -> web.Response:
    """Look for local resources (Level, Query, Expand, Limit, Since, RequestedTags, Labels, OrderBy, ...)."""
    ctx = ctx_of(request)
    parsed = ParsedFind(ctx, await _body(request))
    if not parsed.objects:
        ids, _ = await find_service.find_public_ids(ctx, find_service.with_database_limit(ctx, parsed.query))
        return json_response(ids)
    result = await find_service.find(ctx, parsed.request(ctx))
    return json_response([format_answer(ctx, a, parsed) for a in result.answers])


@routes.post("/tools/count-resources")
async def count_resources(request: web.Request) -> web.Response:
    """Count the local resources that match a query (same filters as /tools/find)."""
    ctx = ctx_of(request)
    parsed = ParsedFind(ctx, await _body(request), count=True)
    return json_response({"Count": await find_service.count(ctx, parsed.query)})
