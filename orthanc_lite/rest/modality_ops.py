"""C-ECHO and C-STORE SCU over REST: /modalities/{id}/echo|store|store-straight, /tools/dicom-echo
(~ the "C-Echo SCU" and "C-Store SCU" parts of OrthancRestModalities.cpp)."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from aiohttp import web

from ..config import ConfigError, Modality
from ..dimse import store_scu
from ..errors import ErrorCode, OrthancError
from ..jobs.dicom_store import DicomModalityStoreJob, endpoint_for, scu_timeout
from ..services import sending
from .helpers import ctx_of, json_response, max_body_bytes, receive_body
from .jobs_submit import submit_job

logger = logging.getLogger(__name__)

routes = web.RouteTableDef()


def unsigned_field(body: Any, key: str) -> int | None:
    """An optional unsigned integer field (SerializationToolbox::ReadUnsignedInteger)."""
    if not isinstance(body, dict) or key not in body:
        return None
    value = body[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise OrthancError(ErrorCode.BadFileFormat, f'The field "{key}" must be an unsigned integer')
    return value


def string_field(body: dict[str, Any], key: str) -> str | None:
    if key not in body:
        return None
    if not isinstance(body[key], str):
        raise OrthancError(ErrorCode.BadFileFormat, f'The field "{key}" must be a string')
    return str(body[key])


def bool_field(body: dict[str, Any], key: str, default: bool = False) -> bool:
    if key not in body:
        return default
    if not isinstance(body[key], bool):
        raise OrthancError(ErrorCode.BadFileFormat, f'The field "{key}" must be a Boolean')
    return bool(body[key])


def known_modality(request: web.Request) -> Modality:
    """The modality named in the URL (the operations word the 404 as Orthanc's MyGetModalityUsingSymbolicName)."""
    name = request.match_info["name"]
    found = ctx_of(request).registry.modalities.get(name)
    if found is None:
        raise OrthancError(ErrorCode.InexistentItem, f"No modality with symbolic name: {name}")
    return found


async def _json_or_empty(request: web.Request) -> Any:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise OrthancError(ErrorCode.BadFileFormat, "Cannot parse the JSON body") from None


async def _echo(request: web.Request, modality: Modality, body: Any) -> web.Response:
    ctx = ctx_of(request)
    endpoint = endpoint_for(ctx, modality, None, scu_timeout(ctx, modality, unsigned_field(body, "Timeout")))
    if await ctx.executors.run_dimse(store_scu.echo, endpoint):
        return json_response({})
    # The association worked but the remote answered a failure status: Orthanc answers a bare 500.
    return web.Response(status=500)


@routes.post("/modalities/{name}/echo")
async def modality_echo(request: web.Request) -> web.Response:
    """C-ECHO SCU against a known modality ("Timeout" in seconds; 0 = none)."""
    modality = known_modality(request)
    return await _echo(request, modality, await _json_or_empty(request))


@routes.post("/tools/dicom-echo")
async def tools_dicom_echo(request: web.Request) -> web.Response:
    """C-ECHO SCU against the modality described in the body."""
    body = await _json_or_empty(request)
    if not body:
        raise OrthancError(ErrorCode.BadFileFormat, "Cannot parse the JSON body")
    try:
        modality = Modality.from_json(body, "modality")
    except ConfigError as exc:
        raise OrthancError(ErrorCode.BadFileFormat, str(exc)) from None
    return await _echo(request, modality, body)


@routes.post("/modalities/{name}/store")
async def modality_store(request: web.Request) -> web.Response:
    """C-STORE SCU of resources (any level) to a modality, as a DicomModalityStore job."""
    ctx = ctx_of(request)
    name = request.match_info["name"]
    ids, options = sending.parse_export_request(await request.read())
    resources, instances = await sending.resolve(ctx, ids)
    modality = known_modality(request)
    local_aet = string_field(options, "LocalAet") or str(ctx.settings.DicomAet)
    originator_id = options.get("MoveOriginatorID", 0)
    if isinstance(originator_id, bool) or not isinstance(originator_id, int) or not 0 <= originator_id < 65536:
        raise OrthancError(ErrorCode.ParameterOutOfRange, 'The field "MoveOriginatorID" must be in [0, 65535]')
    originator_aet = string_field(options, "MoveOriginatorAet") or str(ctx.settings.DicomAet)
    job = DicomModalityStoreJob(
        name, modality, local_aet, [i.public_id for i in instances], [r.public_id for r in resources],
        scu_timeout(ctx, modality, unsigned_field(options, "Timeout")), bool_field(options, "Permissive"),
        originator_aet if originator_id else None, originator_id or None)
    job.storage_commitment = bool_field(options, "StorageCommitment")  # New in Orthanc 1.6.0
    await sending.log_exports(ctx, resources, name)
    return await submit_job(request, job, options)


@routes.post("/modalities/{name}/store-straight")
async def modality_store_straight(request: web.Request) -> web.Response:
    """C-STORE SCU of the DICOM file in the body, without storing it locally."""
    ctx = ctx_of(request)
    modality = known_modality(request)
    body = await receive_body(ctx, request.content, max_body_bytes(ctx), memory_limit=1 << 62)
    assert isinstance(body, bytes)
    endpoint = endpoint_for(ctx, modality, None, scu_timeout(ctx, modality))
    sop_class, sop_instance = await ctx.executors.run_dimse(store_scu.store_once, endpoint, body)
    return json_response({"SOPClassUID": sop_class, "SOPInstanceUID": sop_instance})
