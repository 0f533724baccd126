"""The DICOMweb client routes under DicomWeb.Root (as the plugin's DicomWebClient.cpp / DicomWebServers.cpp):
{root}servers, {root}servers/{name} and its get, qido, stow, retrieve, wado and delete operations."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from pydicom.datadict import keyword_for_tag

from ..app_keys import JOBS
from ..config import DicomWebServer
from ..errors import ErrorCode, OrthancError
from ..model import ResourceLevel
from ..rest.helpers import bool_arg, ctx_of, json_body, json_object_body, json_response
from ..rest.jobs_submit import job_priority
from ..services.context import ServerContext
from ..services.dicomweb_servers import dicomweb_servers, public_server
from ..services.tags import child_instances, resource_level
from . import client_ops
from .client_jobs import StowClientJob, WadoRetrieveJob

_LEVEL_KEYS = {ResourceLevel.PATIENT: "Patients", ResourceLevel.STUDY: "Studies", ResourceLevel.SERIES: "Series",
               ResourceLevel.INSTANCE: "Instances"}


def client_routes(root: str) -> list[web.RouteDef]:
    """The routes, for a root that starts and ends with "/"."""
    servers = f"{root}servers"
    one = servers + "/{name}"
    return [
        web.get(servers, list_servers),
        web.get(one, server_operations),
        web.put(one, put_server),
        web.delete(one, delete_server),
        web.post(one + "/get", get_from_server),
        web.post(one + "/qido", qido_on_server),
        web.post(one + "/stow", stow_to_server),
        web.post(one + "/retrieve", retrieve_from_server),
        web.post(one + "/wado", wado_from_server),
        web.post(one + "/delete", delete_on_server),
    ]


async def list_servers(request: web.Request) -> web.Response:
    """The names of the remote DICOMweb servers (?expand: their public configuration)."""
    registry = await dicomweb_servers(ctx_of(request))
    if bool_arg(request, "expand"):
        return json_response({name: public_server(s) for name, s in registry.servers.items()})
    return json_response(sorted(registry.servers))


async def server_operations(request: web.Request) -> web.Response:
    """The operations available on one remote DICOMweb server."""
    server = (await dicomweb_servers(ctx_of(request))).get(request.match_info["name"])
    return json_response(["get", "retrieve", "stow", "wado", "qido"] + (["delete"] if server.HasDelete else []))


async def put_server(request: web.Request) -> web.Response:
    """Create or replace a remote DICOMweb server (the OrthancPeers syntax plus the DICOMweb flags)."""
    await (await dicomweb_servers(ctx_of(request))).put(request.match_info["name"], await json_body(request))
    return json_response({})


async def delete_server(request: web.Request) -> web.Response:
    """Forget a remote DICOMweb server."""
    await (await dicomweb_servers(ctx_of(request))).delete(request.match_info["name"])
    return json_response({})


def _string_map(body: dict[str, Any], key: str) -> dict[str, str]:
    value = body.get(key, {})
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise OrthancError(ErrorCode.BadFileFormat, f'The field "{key}" must be a JSON object of strings')
    return {str(k): v for k, v in value.items()}


def _uri_request(body: dict[str, Any]) -> tuple[str, dict[str, str], dict[str, str]]:
    uri = body.get("Uri")
    if not isinstance(uri, str):
        raise OrthancError(ErrorCode.BadFileFormat, 'A request to the DICOMweb client must provide a JSON object '
                                                    'with the field "Uri" containing the URI of interest')
    return uri, _string_map(body, "Arguments"), _string_map(body, "HttpHeaders")


async def _server_call(request: web.Request) -> tuple[ServerContext, str, DicomWebServer, dict[str, Any]]:
    """The context, the server named in the path (404 if unknown) and the JSON object body."""
    ctx = ctx_of(request)
    name = request.match_info["name"]
    server = (await dicomweb_servers(ctx)).get(name)
    return ctx, name, server, await json_object_body(request)


async def get_from_server(request: web.Request) -> web.Response:
    """Proxy a GET to the remote server: {"Uri", "Arguments", "HttpHeaders"}; its answer is passed through."""
    ctx, name, server, body = await _server_call(request)
    uri, arguments, headers = _uri_request(body)
    answer = await client_ops.proxy_get(ctx, name, server, uri, arguments, headers)
    response = web.Response(body=answer.body, headers=answer.headers)
    response.headers["Content-Type"] = answer.content_type
    return response


async def qido_on_server(request: web.Request) -> web.Response:
    """A QIDO-RS request on the remote server, its DICOM JSON answer simplified as the plugin does for
    Orthanc Explorer 2: {tag: {Group, Element, Name, vr, Value (the first value)}}."""
    ctx, name, server, body = await _server_call(request)
    uri, arguments, headers = _uri_request(body)
    answer = await client_ops.proxy_get(ctx, name, server, uri, arguments, {"Accept": "application/dicom+json",
                                                                            **headers})
    try:
        items = orjson.loads(answer.body) if answer.body.strip() else []
    except ValueError:
        raise OrthancError(ErrorCode.NetworkProtocol, f"The remote DICOMweb server {name} did not answer JSON") \
            from None
    if not isinstance(items, list):
        raise OrthancError(ErrorCode.NetworkProtocol, f"The remote DICOMweb server {name} did not answer an array")
    return json_response([_simplified_qido(item) for item in items if isinstance(item, dict)])


def _simplified_qido(item: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, attribute in item.items():
        try:
            tag = int(key, 16)
        except ValueError:
            continue
        entry: dict[str, Any] = {"Group": tag >> 16, "Element": tag & 0xFFFF, "Name": keyword_for_tag(tag) or "",
                                 "vr": attribute.get("vr", "UN") if isinstance(attribute, dict) else "UN"}
        values = attribute.get("Value") if isinstance(attribute, dict) else None
        if isinstance(values, list) and values:
            first = values[0]
            if isinstance(first, dict) and "Alphabetic" in first:
                first = first["Alphabetic"]
            if not isinstance(first, dict):
                entry["Value"] = first
        out[key] = entry
    return out


async def _submit(request: web.Request, job: Any, body: dict[str, Any], synchronous_default: bool) -> web.Response:
    """The plugin's SubmitJob: Synchronous, else !Asynchronous, else the route's default; Priority."""
    if isinstance(body.get("Synchronous"), bool):
        synchronous = body["Synchronous"]
    elif isinstance(body.get("Asynchronous"), bool):
        synchronous = not body["Asynchronous"]
    else:
        synchronous = synchronous_default
    priority = job_priority(body)
    jobs = request.app[JOBS]
    if synchronous:
        return json_response(await jobs.run_sync(job, priority))
    job_id = jobs.submit(job, priority)
    # The plugin answers a path relative to {root}servers/{name}/...
    return json_response({"ID": job_id, "Path": f".././../jobs/{job_id}"})


async def stow_to_server(request: web.Request) -> web.Response:
    """Send stored resources of any level with STOW-RS: {"Resources": [IDs], "HttpHeaders", "Synchronous",
    "Priority"}; a DicomWebStowClient job (synchronous by default)."""
    ctx, name, server, body = await _server_call(request)
    resources = body.get("Resources")
    if not isinstance(resources, list):
        raise OrthancError(ErrorCode.BadFileFormat, 'A request to the DICOMweb STOW-RS client must provide a JSON '
                                                    'object with the field "Resources" containing an array of '
                                                    'resources to be sent')
    by_level: dict[str, list[str]] = {key: [] for key in _LEVEL_KEYS.values()}
    instances: list[str] = []
    for resource in resources:
        if not isinstance(resource, str):
            raise OrthancError(ErrorCode.BadFileFormat, "The resources to send must be Orthanc identifiers")
        _, level = await resource_level(ctx, resource)
        by_level[_LEVEL_KEYS[level]].append(resource)
        instances += [instance for instance, _ in await child_instances(ctx, resource)]
    job = StowClientJob(name, list(dict.fromkeys(instances)), by_level, _string_map(body, "HttpHeaders"))
    return await _submit(request, job, body, synchronous_default=True)


def _retrieve_uri(resource: Any) -> str:
    if not isinstance(resource, dict):
        raise OrthancError(ErrorCode.BadFileFormat, "Resources of interest for the DICOMweb WADO-RS Retrieve "
                                                    "client must be provided as a JSON object")
    study, series, instance = (resource.get(k, "") for k in ("Study", "Series", "Instance"))
    if not all(isinstance(v, str) for v in (study, series, instance)):
        raise OrthancError(ErrorCode.BadFileFormat, "Study, Series and Instance must be strings")
    if not study:
        raise OrthancError(ErrorCode.BadFileFormat, 'A non-empty "Study" field is mandatory for the DICOMweb '
                                                    'WADO-RS Retrieve client')
    if instance and not series:
        raise OrthancError(ErrorCode.BadFileFormat, 'When specifying a "Instance" field in a call to DICOMweb '
                                                    'WADO-RS Retrieve client, the "Series" field is mandatory')
    uri = f"studies/{study}"
    if series:
        uri += f"/series/{series}"
        if instance:
            uri += f"/instances/{instance}"
    return uri


async def retrieve_from_server(request: web.Request) -> web.Response:
    """WADO-RS retrieve of studies, series or instances into this server: {"Resources": [{Study, Series?,
    Instance?}], "HttpHeaders", "GetArguments"}; a DicomWebWadoRetrieveClient job (synchronous by default)."""
    ctx, name, server, body = await _server_call(request)
    resources = body.get("Resources")
    if not isinstance(resources, list):
        raise OrthancError(ErrorCode.BadFileFormat, 'The field "Resources" must be an array')
    headers, arguments = _string_map(body, "HttpHeaders"), _string_map(body, "GetArguments")
    job = WadoRetrieveJob(name, [(_retrieve_uri(r), arguments, headers) for r in resources])
    return await _submit(request, job, body, synchronous_default=True)


async def wado_from_server(request: web.Request) -> web.Response:
    """WADO-RS retrieve of one URI into this server: {"Uri", "Arguments", "HttpHeaders"}; asynchronous by
    default."""
    ctx, name, server, body = await _server_call(request)
    uri, arguments, headers = _uri_request(body)
    job = WadoRetrieveJob(name, [(uri, arguments, headers)])
    return await _submit(request, job, body, synchronous_default=False)


async def delete_on_server(request: web.Request) -> web.Response:
    """Delete a study, series or instance on a remote server that has "HasDelete": {Level,
    StudyInstanceUID, SeriesInstanceUID?, SOPInstanceUID?}."""
    ctx, name, server, body = await _server_call(request)
    if not server.HasDelete:
        raise OrthancError(ErrorCode.BadRequest, f'The DICOMweb server "{name}" does not support DELETE: set its '
                                                 '"HasDelete" option to true')
    level = str(body.get("Level", "")).lower()
    keys = {"study": ["StudyInstanceUID"], "series": ["StudyInstanceUID", "SeriesInstanceUID"],
            "instance": ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"]}.get(level)
    if keys is None:
        raise OrthancError(ErrorCode.BadFileFormat, 'The field "Level" must be "Study", "Series" or "Instance"')
    uids = [body.get(key) for key in keys]
    if not all(isinstance(uid, str) and uid for uid in uids):
        raise OrthancError(ErrorCode.BadFileFormat, f"Missing field among: {', '.join(keys)}")
    uri = "/".join(f"{part}/{uid}" for part, uid in zip(("studies", "series", "instances"), uids))
    await client_ops.delete_remote(ctx, name, server, uri, _string_map(body, "HttpHeaders"))
    return json_response({})
