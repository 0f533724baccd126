"""/modalities and /peers: the configured remote nodes (~ OrthancRestModalities.cpp). The DICOM and HTTP
operations on them (echo, store, query, move) are added by the networking issues."""

from __future__ import annotations

from aiohttp import web

from ..services.modalities import Registry, public_peer
from .helpers import bool_arg, ctx_of, json_body, json_response, text_response

routes = web.RouteTableDef()

MODALITY_OPERATIONS = ["configuration", "echo", "find", "find-instance", "find-patient", "find-series", "find-study",
                       "find-worklist", "get", "move", "query", "storage-commitment", "store", "store-straight"]
PEER_OPERATIONS = ["configuration", "store", "store-straight", "system"]


def registry(request: web.Request) -> Registry:
    return ctx_of(request).registry


@routes.get("/modalities")
async def list_modalities(request: web.Request) -> web.Response:
    """The symbolic names of the known modalities (?expand: their configuration)."""
    reg = registry(request)
    if bool_arg(request, "expand"):
        return json_response({k: m.to_json() for k, m in reg.modalities.items()})
    return json_response(sorted(reg.modalities))


@routes.get("/modalities/{name}")
async def modality_operations(request: web.Request) -> web.Response:
    """The operations available on one modality."""
    registry(request).modality(request.match_info["name"])
    return json_response(MODALITY_OPERATIONS)


@routes.get("/modalities/{name}/configuration")
async def modality_configuration(request: web.Request) -> web.Response:
    """The long-form configuration of one modality."""
    return json_response(registry(request).modality(request.match_info["name"]).to_json())


@routes.put("/modalities/{name}")
async def put_modality(request: web.Request) -> web.Response:
    """Create or replace a modality (short or long form)."""
    await registry(request).put_modality(request.match_info["name"], await json_body(request))
    return text_response("")  # Orthanc answers an empty text/plain body


@routes.delete("/modalities/{name}")
async def delete_modality(request: web.Request) -> web.Response:
    """Forget a modality."""
    await registry(request).delete_modality(request.match_info["name"])
    return text_response("")  # Orthanc answers an empty text/plain body


@routes.get("/peers")
async def list_peers(request: web.Request) -> web.Response:
    """The symbolic names of the known Orthanc peers (?expand: their public configuration)."""
    reg = registry(request)
    if bool_arg(request, "expand"):
        return json_response({k: public_peer(p) for k, p in reg.peers.items()})
    return json_response(sorted(reg.peers))


@routes.get("/peers/{name}")
async def peer_operations(request: web.Request) -> web.Response:
    """The operations available on one peer."""
    registry(request).peer(request.match_info["name"])
    return json_response(PEER_OPERATIONS)


@routes.get("/peers/{name}/configuration")
async def peer_configuration(request: web.Request) -> web.Response:
    """The public configuration of one peer (no password)."""
    return json_response(public_peer(registry(request).peer(request.match_info["name"])))


@routes.put("/peers/{name}")
async def put_peer(request: web.Request) -> web.Response:
    """Create or replace a peer."""
    await registry(request).put_peer(request.match_info["name"], await json_body(request))
    return text_response("")  # Orthanc answers an empty text/plain body


@routes.delete("/peers/{name}")
async def delete_peer(request: web.Request) -> web.Response:
    """Forget a peer."""
    await registry(request).delete_peer(request.match_info["name"])
    return text_response("")  # Orthanc answers an empty text/plain body
