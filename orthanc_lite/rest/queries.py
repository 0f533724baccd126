"""Query/retrieve towards remote modalities (~ the C-FIND / C-MOVE / C-GET / storage commitment parts of
OrthancRestModalities.cpp): /modalities/{id}/query and /queries/..., /modalities/{id}/move and /get,
the deprecated /modalities/{id}/find*, storage commitment SCU and its reports."""

from __future__ import annotations

import logging
from typing import Any, Final

from aiohttp import web

from ..config import Modality
from ..dicom.query_map import (
    ACCESSION_NUMBER,
    PATIENT_ID,
    QUERY_RETRIEVE_LEVEL,
    SERIES_UID,
    SOP_UID,
    STUDY_UID,
    DICOM_LEVEL,
    DicomMap,
    map_from_json,
    map_to_json,
)
from ..dicom.tags import MAIN_TAGS
from ..dimse import qr_scu
from ..dimse.queries import (
    QueryHandler,
    RetrieveCommand,
    RetrieveWork,
    archive,
    remote_for,
    reports,
    request_storage_commitment,
)
from ..errors import ErrorCode, OrthancError
from ..model import ResourceLevel
from ..services import delete as delete_svc
from . import retrieve_jobs  # also registers the DicomMoveScu / DicomGetScu job types (SaveJobs reload)
from .helpers import bool_arg, ctx_of, json_body, json_response, text_response
from .tags import dicom_format

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()

QUERY_OPERATIONS: Final = ["answers", "level", "modality", "query", "retrieve"]


def _modality(request: web.Request) -> tuple[str, Modality]:
    name = request.match_info["name"]
    return name, ctx_of(request).registry.modality(name)


def _level(value: Any) -> ResourceLevel:
    if not isinstance(value, str):
        raise OrthancError(ErrorCode.BadFileFormat, "The JSON body must contain field Level")
    try:
        return ResourceLevel.parse(value)
    except ValueError:
        raise OrthancError(ErrorCode.ParameterOutOfRange, f"Unknown resource type: {value}") from None


def _tags_map(value: Any, what: str) -> DicomMap:
    try:
        return map_from_json(value, strict=True)
    except ValueError as exc:
        raise OrthancError(ErrorCode.BadFileFormat, f"{what}: {exc}") from None


def _timeout(body: dict[str, Any]) -> int | None:
    if "Timeout" not in body:
        return None
    value = body["Timeout"]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise OrthancError(ErrorCode.BadFileFormat, "The field Timeout must contain an unsigned integer")
    return value


def _body_format(body: dict[str, Any], default: str) -> str:
    """OrthancRestApi::GetDicomFormat(body): "Simplify", then "Short", then "Full" (Booleans)."""
    if body.get("Simplify") is True:
        return "human"
    if body.get("Short") is True:
        return "short"
    if body.get("Full") is True:
        return "full"
    return default


async def _object_body(request: web.Request, message: str = "Must provide a JSON object") -> dict[str, Any]:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise OrthancError(ErrorCode.BadFileFormat, message)
    return body


def _id_answer(query_id: str, prefix: str = "/queries/") -> web.Response:
    return json_response({"ID": query_id, "Path": prefix + query_id})


# -- /modalities/{id}/query and /queries ------------------------------------------------------------


@routes.post("/modalities/{name}/query")
async def modality_query(request: web.Request) -> web.Response:
    """Trigger C-FIND SCU; answers {ID, Path} of the query kept under /queries."""
    ctx = ctx_of(request)
    name, modality = _modality(request)
    body = await _object_body(request)
    if not isinstance(body.get("Level"), str):
        raise OrthancError(ErrorCode.BadFileFormat, "The JSON body must contain field Level")
    if "Normalize" in body and not isinstance(body["Normalize"], bool):
        raise OrthancError(ErrorCode.BadFileFormat, "The field Normalize must contain a Boolean")
    if "Query" in body and not isinstance(body["Query"], dict):
        raise OrthancError(ErrorCode.BadFileFormat, "The field Query must contain a JSON object")
    if "LocalAet" in body and not isinstance(body["LocalAet"], str):
        raise OrthancError(ErrorCode.BadFileFormat, "The field LocalAet must contain a string")
    handler = QueryHandler(
        modality_name=name, modality=modality, level=_level(body["Level"]),
        query=_tags_map(body.get("Query", {}), "Query"),
        local_aet=body.get("LocalAet") or modality.LocalAet or ctx.settings.DicomAet,
        normalize=bool(body.get("Normalize", True)), timeout=_timeout(body))
    await handler.run(ctx)
    return _id_answer(archive(ctx).add(handler))


@routes.get("/queries")
async def list_queries(request: web.Request) -> web.Response:
    """List the identifiers of the kept query/retrieve operations (at most QueryRetrieveSize)."""
    return json_response(archive(ctx_of(request)).ids())


def _query(request: web.Request) -> QueryHandler:
    return archive(ctx_of(request)).get(request.match_info["id"])


def _index(request: web.Request) -> int:
    try:
        return int(request.match_info["index"])
    except ValueError:
        raise OrthancError(ErrorCode.ParameterOutOfRange, "Bad answer index") from None


@routes.get("/queries/{id}")
async def query_operations(request: web.Request) -> web.Response:
    """List the operations on a query."""
    _query(request)
    return json_response(QUERY_OPERATIONS)


@routes.delete("/queries/{id}")
async def delete_query(request: web.Request) -> web.Response:
    """Forget a query and its answers."""
    archive(ctx_of(request)).remove(request.match_info["id"])
    return text_response("")


@routes.get("/queries/{id}/answers")
async def query_answers(request: web.Request) -> web.Response:
    """The indices of the answers (?expand: their tags; ?simplify / ?short as for /tags)."""
    handler = _query(request)
    if bool_arg(request, "expand"):
        fmt = dicom_format(request, "full")
        return json_response([map_to_json(a, fmt) for a in handler.answers])
    return json_response([str(i) for i in range(len(handler.answers))])


@routes.get("/queries/{id}/answers/{index}")
async def answer_operations(request: web.Request) -> web.Response:
    """List the operations on one answer (its content, retrieve, and sub-queries below its level)."""
    handler = _query(request)
    handler.answer(_index(request))
    operations = ["content", "retrieve"]
    # Orthanc's list says "query-study" (the route is query-studies): copied as is.
    below = {ResourceLevel.PATIENT: ["query-study", "query-series", "query-instances"],
             ResourceLevel.STUDY: ["query-series", "query-instances"],
             ResourceLevel.SERIES: ["query-instances"]}
    return json_response(operations + below.get(handler.level, []))


@routes.get("/queries/{id}/answers/{index}/content")
async def answer_content(request: web.Request) -> web.Response:
    """The tags of one answer (Full format by default; ?simplify, ?short)."""
    answer = _query(request).answer(_index(request))
    return json_response(map_to_json(answer, dicom_format(request, "full")))


@routes.get("/queries/{id}/level")
async def query_level(request: web.Request) -> web.Response:
    """The level of the original query (Patient, Study, Series or Instance)."""
    return text_response(_query(request).level.type_name)


@routes.get("/queries/{id}/modality")
async def query_modality(request: web.Request) -> web.Response:
    """The symbolic name of the queried modality."""
    return text_response(_query(request).modality_name)


@routes.get("/queries/{id}/query")
async def query_arguments(request: web.Request) -> web.Response:
    """The original query (Full format by default; ?simplify, ?short)."""
    return json_response(map_to_json(_query(request).query, dicom_format(request, "full")))


_CHILD_LEVELS: Final = {"query-studies": ResourceLevel.STUDY, "query-series": ResourceLevel.SERIES,
                        "query-instances": ResourceLevel.INSTANCE}
_PARENT_KEYS: Final = {
    ResourceLevel.PATIENT: (PATIENT_ID,),
    ResourceLevel.STUDY: (STUDY_UID,),
    ResourceLevel.SERIES: (STUDY_UID, SERIES_UID),
    ResourceLevel.INSTANCE: (STUDY_UID, SERIES_UID, SOP_UID),
}


@routes.post("/queries/{id}/answers/{index}/{child:query-studies|query-series|query-instances}")
async def query_children(request: web.Request) -> web.Response:
    """Issue a C-FIND one level (or more) below an answer, restricted to that answer; answers {ID, Path}."""
    ctx = ctx_of(request)
    parent = _query(request)
    index = _index(request)
    level = _CHILD_LEVELS[request.match_info["child"]]
    if index >= len(parent.answers) or index < 0:
        raise OrthancError(ErrorCode.ParameterOutOfRange)
    if parent.level >= level:
        raise OrthancError(ErrorCode.UnknownResource)
    body = await _object_body(request)
    query: DicomMap = _tags_map(body.get("Query", {}), "Query") if "Query" in body else {}
    answer = parent.answers[index]
    for tag in _PARENT_KEYS[parent.level]:
        value = answer.get(tag)
        if value is None:
            raise OrthancError(ErrorCode.InexistentTag)
        query[tag] = value
    timeout = _timeout(body)
    handler = QueryHandler(
        modality_name=parent.modality_name, modality=parent.modality, level=level, query=query,
        local_aet=parent.local_aet, normalize=parent.normalize,
        timeout=timeout if timeout is not None else parent.timeout)
    await handler.run(ctx)
    return _id_answer(archive(ctx).add(handler))


async def _retrieve(request: web.Request, handler: QueryHandler, answers: list[DicomMap]) -> web.Response:
    """SubmitRetrieveJob: C-MOVE to TargetAet (or to the bare-text body) or C-GET, as a job."""
    ctx = ctx_of(request)
    raw = (await request.read()).strip()
    body: dict[str, Any] = {}
    target_aet = handler.modality.LocalAet or ctx.settings.DicomAet
    timeout = handler.timeout
    method = handler.modality.RetrieveMethod
    parsed: Any = None
    is_json = False
    if raw:
        try:
            parsed, is_json = await json_body(request), True
        except OrthancError:
            parsed = None
    if isinstance(parsed, dict):
        body = parsed
        if isinstance(body.get("TargetAet"), str):
            target_aet = body["TargetAet"]
        if isinstance(body.get("Timeout"), int) and not isinstance(body.get("Timeout"), bool) \
                and body["Timeout"] >= 0:
            timeout = body["Timeout"]
        if "RetrieveMethod" in body:
            if body["RetrieveMethod"] not in ("C-MOVE", "C-GET", "SystemDefault"):
                raise OrthancError(ErrorCode.ParameterOutOfRange,
                                   f"Unknown retrieve method: {body['RetrieveMethod']}")
            method = body["RetrieveMethod"]
    elif raw and not is_json:
        target_aet = raw.decode("utf-8", "replace")  # a bare AET (any other JSON value keeps the defaults)
    if method == "SystemDefault":
        method = ctx.settings.DicomDefaultRetrieveMethod
    remote = remote_for(ctx, handler.modality, handler.local_aet, timeout)
    work = RetrieveWork(method, remote, [RetrieveCommand(a, from_answer=True) for a in answers],
                        target_aet if method == "C-MOVE" else "", _body_format(body, "short"))
    if method == "C-MOVE":
        logger.warning("Driving C-Move SCU on remote modality %s to target modality %s", handler.modality.AET,
                       target_aet)
    else:
        logger.warning("Driving C-Get SCU on remote modality %s", handler.modality.AET)
    return await submit_retrieve(request, work, body)


@routes.post("/queries/{id}/answers/{index}/retrieve")
async def retrieve_answer(request: web.Request) -> web.Response:
    """Retrieve one answer with a C-MOVE or a C-GET SCU (a job, synchronous by default)."""
    handler = _query(request)
    return await _retrieve(request, handler, [handler.answer(_index(request))])


@routes.post("/queries/{id}/retrieve")
async def retrieve_all(request: web.Request) -> web.Response:
    """Retrieve all the answers with C-MOVE or C-GET SCU (a job, synchronous by default)."""
    handler = _query(request)
    return await _retrieve(request, handler, list(handler.answers))


async def submit_retrieve(request: web.Request, work: RetrieveWork, body: dict[str, Any]) -> web.Response:
    """Run the retrieve as a DicomMoveScu / DicomGetScu job (Synchronous, Asynchronous, Priority, Permissive)."""
    if "Permissive" in body:
        if not isinstance(body["Permissive"], bool):
            raise OrthancError(ErrorCode.BadFileFormat, 'The field "Permissive" must be a Boolean')
        work.permissive = body["Permissive"]

    return await retrieve_jobs.submit(request, work, body)


# -- /modalities/{id}/move and /get -----------------------------------------------------------------


async def _move_or_get(request: web.Request, method: str) -> web.Response:
    """ParseMoveGetJob: Resources (a list of tag objects) and Level; LocalAet, Timeout, TargetAet."""
    ctx = ctx_of(request)
    _name, modality = _modality(request)
    body = await json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("Resources"), list) \
            or not isinstance(body.get("Level"), str):
        raise OrthancError(ErrorCode.BadFileFormat,
                           "Must provide a JSON body containing fields Resources and Level")
    level = _level(body["Level"])
    local_aet = body.get("LocalAet") if isinstance(body.get("LocalAet"), str) else None
    commands = []
    for item in body["Resources"]:
        fields = _tags_map(item, "Resources elements")
        fields[QUERY_RETRIEVE_LEVEL] = DICOM_LEVEL[level]
        commands.append(RetrieveCommand(fields))
    remote = remote_for(ctx, modality, local_aet, _timeout(body))
    target = str(body["TargetAet"]) if isinstance(body.get("TargetAet"), str) else str(ctx.settings.DicomAet)
    work = RetrieveWork(method, remote, commands, target if method == "C-MOVE" else "", "short")
    return await submit_retrieve(request, work, body)


@routes.post("/modalities/{name}/move")
async def modality_move(request: web.Request) -> web.Response:
    """Trigger C-MOVE SCU (job DicomMoveScu): the modality sends the Resources to TargetAet."""
    return await _move_or_get(request, "C-MOVE")


@routes.post("/modalities/{name}/get")
async def modality_get(request: web.Request) -> web.Response:
    """Trigger C-GET SCU (job DicomGetScu): the received instances are stored here."""
    return await _move_or_get(request, "C-GET")


# -- deprecated /modalities/{id}/find* --------------------------------------------------------------


def _template(level: ResourceLevel) -> DicomMap:
    """DicomMap::SetupFind*Template: the level's main tags, empty, plus the identifiers of the parents."""
    fields: DicomMap = {tag: "" for tag, _ in MAIN_TAGS[level]}
    extra = {ResourceLevel.PATIENT: (), ResourceLevel.STUDY: (ACCESSION_NUMBER, PATIENT_ID),
             ResourceLevel.SERIES: (ACCESSION_NUMBER, PATIENT_ID, STUDY_UID),
             ResourceLevel.INSTANCE: (ACCESSION_NUMBER, PATIENT_ID, STUDY_UID, SERIES_UID)}[level]
    for tag in extra:
        fields[tag] = ""
    # main tags that Orthanc leaves out of its templates: only indirectly related to the study, or
    # instance-related although stored with the series
    for tag in _NOT_IN_TEMPLATE.get(level, ()):
        fields.pop(tag, None)
    return fields


_NOT_IN_TEMPLATE: Final = {
    ResourceLevel.STUDY: (0x00080080, 0x00321032, 0x00321060),  # InstitutionName, RequestingPhysician, ...
    ResourceLevel.SERIES: (0x00200037,),  # ImageOrientationPatient
}


def _restrict(level: ResourceLevel, fields: DicomMap) -> DicomMap:
    """FindPatient / FindStudy / ...: the level's main tags plus the identifiers of the upper levels."""
    keep = {tag for tag, _ in MAIN_TAGS[level]}
    keep.update({ResourceLevel.PATIENT: (), ResourceLevel.STUDY: (PATIENT_ID, ACCESSION_NUMBER, 0x00080061),
                 ResourceLevel.SERIES: (PATIENT_ID, ACCESSION_NUMBER, STUDY_UID),
                 ResourceLevel.INSTANCE: (PATIENT_ID, ACCESSION_NUMBER, STUDY_UID, SERIES_UID)}[level])
    return {t: v for t, v in fields.items() if t in keep}


async def _merged(request: web.Request, level: ResourceLevel) -> DicomMap | None:
    """The template merged with the body; None when the body is not a JSON object (no answer)."""
    try:
        body = await json_body(request)
    except OrthancError:
        return None
    if not isinstance(body, dict):
        return None
    fields = _template(level)
    for key, value in body.items():
        fields.update(_tags_map({key: value if isinstance(value, str) else str(value)}, "query"))
    return fields


def _too_short(fields: DicomMap, *tags: int) -> bool:
    return any(len(fields.get(tag) or "") <= 2 for tag in tags)


async def _deprecated_find(request: web.Request, level: ResourceLevel) -> web.Response:
    logger.warning("This URI is deprecated: %s", request.path)
    ctx = ctx_of(request)
    _name, modality = _modality(request)
    fields = await _merged(request, level)
    if fields is None:
        return web.Response(status=400)
    # Orthanc refuses (no answer: 400) the queries that would match too much.
    broad = _too_short(fields, ACCESSION_NUMBER) and _too_short(fields, PATIENT_ID)
    if level is ResourceLevel.STUDY and broad:
        return web.Response(status=400)
    if level is ResourceLevel.SERIES and (broad or _too_short(fields, STUDY_UID)):
        return web.Response(status=400)
    if level is ResourceLevel.INSTANCE and (broad or _too_short(fields, STUDY_UID, SERIES_UID)):
        return web.Response(status=400)
    remote = remote_for(ctx, modality)
    answers = await ctx.executors.run_dimse(qr_scu.find, remote, level, _restrict(level, fields), True)
    return json_response([map_to_json(a, "human") for a in answers])


@routes.post("/modalities/{name}/find-patient")
async def find_patient(request: web.Request) -> web.Response:
    """C-FIND SCU for patients (deprecated in favour of /modalities/{id}/query)."""
    return await _deprecated_find(request, ResourceLevel.PATIENT)


@routes.post("/modalities/{name}/find-study")
async def find_study(request: web.Request) -> web.Response:
    """C-FIND SCU for studies (deprecated; needs a PatientID or AccessionNumber of more than 2 characters)."""
    return await _deprecated_find(request, ResourceLevel.STUDY)


@routes.post("/modalities/{name}/find-series")
async def find_series(request: web.Request) -> web.Response:
    """C-FIND SCU for series (deprecated)."""
    return await _deprecated_find(request, ResourceLevel.SERIES)


@routes.post("/modalities/{name}/find-instance")
async def find_instance(request: web.Request) -> web.Response:
    """C-FIND SCU for instances (deprecated)."""
    return await _deprecated_find(request, ResourceLevel.INSTANCE)


@routes.post("/modalities/{name}/find")
async def find_hierarchy(request: web.Request) -> web.Response:
    """Hierarchical C-FIND SCU: patients, their "Studies", their "Series" (deprecated)."""
    logger.warning("This URI is deprecated: %s", request.path)
    ctx = ctx_of(request)
    _name, modality = _modality(request)
    fields = await _merged(request, ResourceLevel.PATIENT)
    if fields is None:
        return web.Response(status=400)
    user = {t: v for t, v in fields.items() if t not in _template(ResourceLevel.PATIENT) or v}
    remote = remote_for(ctx, modality)

    async def find(level: ResourceLevel, parent: DicomMap, keys: tuple[int, ...]) -> list[DicomMap]:
        query = {**_template(level), **user}
        for tag in keys:
            if parent.get(tag) is not None:
                query[tag] = parent[tag] or ""
        return await ctx.executors.run_dimse(qr_scu.find, remote, level, _restrict(level, query), True)

    result = []
    for patient in await find(ResourceLevel.PATIENT, {}, ()):
        patient_json = map_to_json(patient, "human")
        patient_json["Studies"] = []
        for study in await find(ResourceLevel.STUDY, patient, (PATIENT_ID,)):
            study_json = map_to_json(study, "human")
            series = await find(ResourceLevel.SERIES, study, (PATIENT_ID, STUDY_UID))
            study_json["Series"] = [map_to_json(s, "human") for s in series]
            patient_json["Studies"].append(study_json)
        result.append(patient_json)
    return json_response(result)


@routes.post("/modalities/{name}/find-worklist")
async def find_worklist(request: web.Request) -> web.Response:
    """C-FIND SCU for worklists ("Query" holds the tags, sequences allowed; Human format by default)."""
    ctx = ctx_of(request)
    _name, modality = _modality(request)
    body = await _object_body(request)
    if "Query" in body:
        query, fmt = body["Query"], _body_format(body, "human")
    else:
        query, fmt = body, "human"
    if not isinstance(query, dict):
        raise OrthancError(ErrorCode.BadFileFormat, "Must provide a JSON object")
    remote = remote_for(ctx, modality, None, _timeout(body))
    answers = await ctx.executors.run_dimse(qr_scu.find_worklist, remote, query)
    return json_response([await ctx.executors.run_cpu(qr_scu.dataset_json, a, fmt) for a in answers])


# -- storage commitment SCU -------------------------------------------------------------------------


async def _instance_refs(request: web.Request, resources: Any) -> list[tuple[str, str]]:
    from ..services import commitment

    if not isinstance(resources, list):
        raise OrthancError(ErrorCode.BadFileFormat,
                           'The "Resources" field must provide an array of Orthanc resources')
    for item in resources:
        if not isinstance(item, str):
            raise OrthancError(ErrorCode.BadFileFormat,
                               f'The "Resources" field must provide an array of strings, found: {item}')
    return await commitment.sop_refs_of(ctx_of(request), resources)


def _dicom_refs(instances: Any) -> list[tuple[str, str]]:
    if not isinstance(instances, list):
        raise OrthancError(ErrorCode.BadFileFormat,
                           'The "DicomInstances" field must provide an array of DICOM instances')
    refs = []
    for item in instances:
        if isinstance(item, list):
            if len(item) != 2 or not all(isinstance(v, str) for v in item):
                raise OrthancError(ErrorCode.BadFileFormat, "An instance entry must provide an array with 2 "
                                   "strings: SOP Class UID and SOP Instance UID")
            refs.append((item[0], item[1]))
        elif isinstance(item, dict):
            cls, inst = item.get("SOPClassUID"), item.get("SOPInstanceUID")
            if not isinstance(cls, str) or not isinstance(inst, str):
                raise OrthancError(ErrorCode.BadFileFormat, "An instance entry must provide an object with 2 "
                                   'string fiels: "SOPClassUID" and "SOPInstanceUID')
            refs.append((cls, inst))
        else:
            raise OrthancError(ErrorCode.BadFileFormat,
                               f"JSON array or object is expected to specify one instance to be queried, found: "
                               f"{item}")
    return refs


@routes.post("/modalities/{name}/storage-commitment")
async def storage_commitment(request: web.Request) -> web.Response:
    """Trigger a storage commitment request (Resources and/or DicomInstances); answers {ID, Path}."""
    ctx = ctx_of(request)
    _name, modality = _modality(request)
    body = await _object_body(request, "Must provide a JSON object with a list of resources")
    if "Resources" not in body and "DicomInstances" not in body:
        raise OrthancError(ErrorCode.BadFileFormat, 'Empty storage commitment request, one of these fields is '
                           'mandatory: "Resources" or "DicomInstances"')
    refs: list[tuple[str, str]] = []
    if "Resources" in body:
        refs += await _instance_refs(request, body["Resources"])
    if "DicomInstances" in body:
        refs += _dicom_refs(body["DicomInstances"])
    uid = await request_storage_commitment(ctx, modality, refs, _timeout(body))
    return _id_answer(uid, "/storage-commitment/")


@routes.get("/storage-commitment/{id}")
async def storage_commitment_report(request: web.Request) -> web.Response:
    """Get a storage commitment report (Pending until the remote's N-EVENT-REPORT, then Success or Failure).

    Once complete it lists the acknowledged instances (Success) and the refused ones (Failures)."""
    uid = request.match_info["id"]
    report = reports(ctx_of(request)).get(uid)
    if report is None:
        raise OrthancError(ErrorCode.InexistentItem, f"No storage commitment transaction with UID: {uid}")
    return json_response(report.to_json())


@routes.post("/storage-commitment/{id}/remove")
async def storage_commitment_remove(request: web.Request) -> web.Response:
    """Delete the instances a successful storage commitment report acknowledged."""
    ctx = ctx_of(request)
    uid = request.match_info["id"]
    report = reports(ctx).get(uid)
    if report is None:
        raise OrthancError(ErrorCode.InexistentItem, f"No storage commitment transaction with UID: {uid}")
    if report.status != "Success":
        raise OrthancError(ErrorCode.BadSequenceOfCalls, "Cannot remove DICOM instances after failure in "
                           f"storage commitment transaction: {uid}", http_status=400)
    from ..services import commitment

    for public_id in await commitment.instances_with_sop_uids(ctx, [i for _, i in report.success]):
        await delete_svc.delete_resource(ctx, public_id, ResourceLevel.INSTANCE)
    return json_response({})
