"""/{patients,studies,series}/{id}/modify|anonymize, /instances/{id}/modify|anonymize, /tools/bulk-modify,
/tools/bulk-anonymize (~ OrthancRestAnonymizeModify.cpp)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..app_keys import USERNAME
from ..errors import ErrorCode, OrthancError
from ..model import Origin, ResourceLevel
from ..services import create as create_service
from ..services import modify as modify_service
from ..services import reconstruct as reconstruct_service
from ..services import split_merge
from ..services.context import ServerContext
from ..services.modify import ModificationRun
from ..jobs.modify import job_for
from .helpers import ctx_of, json_object_body, json_response, text_response
from .jobs_submit import submit_job

routes = web.RouteTableDef()

ID = "{id:[0-9a-f-]+}"
LEVELS3 = "{level:patients|studies|series}"


def _origin(request: web.Request) -> Origin:
    return Origin("RestApi", remote_ip=request.remote or "", remote_aet="", http_username=request.get(USERNAME, ""))


async def _body(request: web.Request, error: ErrorCode = ErrorCode.BadFileFormat) -> dict[str, Any]:
    """The JSON object body; an empty body is an error too (Orthanc's ParseJsonRequest fails on it)."""
    if not (await request.read()).strip():
        raise OrthancError(error)
    try:
        return await json_object_body(request)
    except OrthancError:
        raise OrthancError(error) from None


async def _run(request: web.Request, body: dict[str, Any], modification: modify_service.Modification,
               anonymization: bool, resources: list[str], output_level: ResourceLevel | None) -> web.Response:
    ctx = ctx_of(request)
    transcode = modify_service.check_transcode(body)
    sources = await modify_service.source_instances(ctx, resources)
    run = ModificationRun(modification, anonymization, list(sources), output_level,
                          keep_source=modify_service.read_bool(body, "KeepSource", True),
                          keep_labels=modify_service.read_bool(body, "KeepLabels", False),
                          transcode=transcode, origin=_origin(request), attachments=sources,
                          permissive=modify_service.read_bool(body, "Permissive", False),
                          lossy_quality=modify_service.lossy_quality(body))
    _check_in_place(ctx, run)
    return await run_modification(request, run, body)


async def run_modification(request: web.Request, run: ModificationRun, body: dict[str, Any]) -> web.Response:
    """As a job: synchronous by default (answers the job's content), or {"ID", "Path"} with Asynchronous."""
    return await submit_job(request, job_for(run), body)


def _check_in_place(ctx: ServerContext, run: ModificationRun) -> None:
    """ResourceModificationJob::PerformSanityChecks: keeping every UID rewrites the sources in place."""
    m = run.modification
    if (m.level in (ResourceLevel.STUDY, ResourceLevel.PATIENT) and not m.is_replaced(0x00100020)
            and m.keep_study_uid and m.keep_series_uid and m.keep_sop_uid):
        if not run.keep_source:
            raise OrthancError(ErrorCode.BadRequest, "When keeping StudyInstanceUID, SeriesInstanceUID and "
                               "SOPInstanceUID tag, you must set KeepSource to true to avoid deleting the modified "
                               "files at the end of the process")
        if ctx.settings.overwrite_mode == "Never":
            raise OrthancError(ErrorCode.BadRequest, "When keeping StudyInstanceUID, SeriesInstanceUID and "
                               "SOPInstanceUID tag, you must have the 'OverwriteInstances' Orthanc configuration set "
                               "to true in order to replace the modified resources")


async def _existing_resource(request: web.Request) -> tuple[ServerContext, ResourceLevel, str]:
    """The context, level and ID of the resource in the URL; 404 before the body is read when it is unknown."""
    ctx = ctx_of(request)
    level = ResourceLevel.parse(request.match_info["level"])
    public_id = request.match_info["id"]
    if await ctx.index.find_internal(public_id, level) is None:
        raise OrthancError(ErrorCode.UnknownResource, f"Unknown resource: {public_id}")
    return ctx, level, public_id


@routes.post(f"/{LEVELS3}/{ID}/modify")
async def modify_resource(request: web.Request) -> web.Response:
    """Modify a patient, study or series: the modified instances are stored as a new resource (a job)."""
    ctx, level, public_id = await _existing_resource(request)
    body = await _body(request)
    modification = modify_service.parse_modify_request(body, level, modify_service.default_private_creator(ctx))
    await modify_service.check_study_patient_tags(ctx, public_id, modification)
    return await _run(request, body, modification, False, [public_id], level)


@routes.post(f"/{LEVELS3}/{ID}/anonymize")
async def anonymize_resource(request: web.Request) -> web.Response:
    """Anonymize a patient, study or series into a new resource (a job)."""
    ctx, level, public_id = await _existing_resource(request)
    body = await _body(request)
    modification = await modify_service.build_anonymization(ctx, body)
    return await _run(request, body, modification, True, [public_id], level)


@routes.post("/tools/bulk-modify")
async def bulk_modify(request: web.Request) -> web.Response:
    """Modify a set of resources of any level (a job answering the list of created resources)."""
    ctx = ctx_of(request)
    body = await _body(request)
    level: ResourceLevel | None = None
    if "Level" in body:
        try:
            level = ResourceLevel.parse(str(body["Level"]))
        except ValueError:
            raise OrthancError(ErrorCode.ParameterOutOfRange, f"Unknown resource type: {body['Level']}") from None
    modification = modify_service.parse_modify_request(body, level, modify_service.default_private_creator(ctx))
    return await _run(request, body, modification, False, _resources(body), None)


@routes.post("/tools/bulk-anonymize")
async def bulk_anonymize(request: web.Request) -> web.Response:
    """Anonymize a set of resources of any level (a job answering the list of created resources)."""
    ctx = ctx_of(request)
    body = await _body(request)
    resources = _resources(body)
    modification = await modify_service.build_anonymization(ctx, body)
    return await _run(request, body, modification, True, resources, None)


def _resources(body: dict[str, Any]) -> list[str]:
    value = body.get("Resources")
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise OrthancError(ErrorCode.BadFileFormat, "The field \"Resources\" must be an array of strings")
    return sorted(set(value))


@routes.post(f"/instances/{ID}/modify")
async def modify_instance(request: web.Request) -> web.Response:
    """Download a modified copy of one instance (nothing is stored)."""
    ctx = ctx_of(request)
    public_id = request.match_info["id"]
    body = await _body(request)
    modification = modify_service.parse_modify_request(body, None, modify_service.default_private_creator(ctx))
    transcode = None
    if "Transcode" in body:
        transcode = body["Transcode"]
        if not isinstance(transcode, str) or transcode not in modify_service.KNOWN_TRANSFER_SYNTAXES:
            raise OrthancError(ErrorCode.ParameterOutOfRange, f"Unknown transfer syntax: {transcode}")
    data = await modify_service.modified_instance_file(ctx, public_id, modification, transcode,
                                                       modify_service.lossy_quality(body))
    return web.Response(body=data, content_type="application/dicom")


@routes.post(f"/instances/{ID}/anonymize")
async def anonymize_instance(request: web.Request) -> web.Response:
    """Download an anonymized copy of one instance (nothing is stored)."""
    ctx = ctx_of(request)
    body = await _body(request)
    modification = await modify_service.build_anonymization(ctx, body)
    data = await modify_service.modified_instance_file(ctx, request.match_info["id"], modification)
    return web.Response(body=data, content_type="application/dicom")


@routes.post("/tools/create-dicom")
async def create_dicom(request: web.Request) -> web.Response:
    """Create one DICOM instance (or a series, when Content is an array) from JSON tags and a data-URI payload."""
    body = await _body(request, ErrorCode.BadRequest)
    return json_response(await create_service.create_dicom(ctx_of(request), body, _origin(request)))


@routes.post(f"/studies/{ID}/split")
async def split_study(request: web.Request) -> web.Response:
    """Move some series or instances of a study into a brand new study (a job)."""
    body = await _body(request)
    run = await split_merge.build_split(ctx_of(request), request.match_info["id"], body, _origin(request))
    return await run_modification(request, run, body)


@routes.post(f"/studies/{ID}/merge")
async def merge_study(request: web.Request) -> web.Response:
    """Move studies, series or instances into this study (a job)."""
    body = await _body(request)
    run = await split_merge.build_merge(ctx_of(request), request.match_info["id"], body, _origin(request))
    return await run_modification(request, run, body)


@routes.post("/{level:patients|studies|series|instances}/" + ID + "/reconstruct")
async def reconstruct_resource(request: web.Request) -> web.Response:
    """Recompute the main DICOM tags of a resource and its children from the stored files."""
    ctx = ctx_of(request)
    files = await _reconstruct_files(request)
    await reconstruct_service.reconstruct(ctx, request.match_info["id"], ResourceLevel.parse(request.match_info["level"]),
                                          files)
    return text_response("")


@routes.post("/tools/reconstruct")
async def reconstruct_all(request: web.Request) -> web.Response:
    """Recompute the main DICOM tags of every resource from the stored files."""
    files = await _reconstruct_files(request)
    await reconstruct_service.reconstruct(ctx_of(request), None, None, files)
    return text_response("")


async def _reconstruct_files(request: web.Request) -> bool:
    """`ReconstructFiles`: also rewrite the attachments as the configuration now asks (default false)."""
    raw = await request.read()
    if not raw.strip():
        return False
    return modify_service.read_bool(await _body(request), "ReconstructFiles", False)
