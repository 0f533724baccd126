"""Orthanc peers over REST: /peers/{id}/store (OrthancPeerStore job), /peers/{id}/store-straight and
/peers/{id}/system (~ the "Orthanc Peers" part of OrthancRestModalities.cpp)."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from ..config import Peer
from ..errors import ErrorCode, OrthancError
from ..jobs.peer_store import OrthancPeerStoreJob
from ..services import sending
from ..webclient.session import join_url, network_error, open_session, proxy_of
from .helpers import ctx_of, max_body_bytes, receive_body
from .jobs_submit import submit_job
from .modality_ops import bool_field, string_field

routes = web.RouteTableDef()

# The syntaxes a peer transfer may be transcoded to (Orthanc's LookupTransferSyntax accepts any known UID).
_KNOWN_SYNTAX_PREFIX = "1.2.840.10008.1.2"


def _peer(request: web.Request) -> tuple[str, Peer]:
    name = request.match_info["name"]
    peer = ctx_of(request).registry.peers.get(name)
    if peer is None:
        raise OrthancError(ErrorCode.UnknownResource, f"No peer with symbolic name: {name}")
    return name, peer


@routes.post("/peers/{name}/store")
async def peer_store(request: web.Request) -> web.Response:
    """Send resources (any level) to an Orthanc peer, as an OrthancPeerStore job ("Compress", "Transcode")."""
    ctx = ctx_of(request)
    ids, options = sending.parse_export_request(await request.read())
    resources, instances = await sending.resolve(ctx, ids)
    name, peer = _peer(request)
    transcode = string_field(options, "Transcode")
    if transcode is not None and not transcode.startswith(_KNOWN_SYNTAX_PREFIX):
        raise OrthancError(ErrorCode.BadFileFormat, f"Unknown transfer syntax UID: {transcode}")
    job = OrthancPeerStoreJob(name, peer, [i.public_id for i in instances], [r.public_id for r in resources],
                              compress=bool_field(options, "Compress"), transcode=transcode,
                              permissive=bool_field(options, "Permissive"))
    await sending.log_exports(ctx, resources, name)
    return await submit_job(request, job, options)


@routes.post("/peers/{name}/store-straight")
async def peer_store_straight(request: web.Request) -> web.Response:
    """POST the DICOM file in the body to the peer's /instances, without storing it locally."""
    ctx = ctx_of(request)
    name, peer = _peer(request)
    body = await receive_body(ctx, request.content, max_body_bytes(ctx), memory_limit=1 << 62)
    assert isinstance(body, bytes)
    try:
        async with open_session(peer, ctx.settings) as session, \
                session.post(join_url(peer.Url, "instances"), data=body, proxy=proxy_of(ctx.settings),
                             headers={"Content-Type": "application/dicom"}) as response:
            answer = await response.read()
            if not 200 <= response.status < 300:
                raise OrthancError(ErrorCode.NetworkProtocol, f"Cannot send DICOM to remote peer: {name}")
    except (aiohttp.ClientError, TimeoutError):
        raise OrthancError(ErrorCode.NetworkProtocol, f"Cannot send DICOM to remote peer: {name}") from None
    return web.Response(body=answer, content_type="application/json")


@routes.get("/peers/{name}/system")
async def peer_system(request: web.Request) -> web.Response:
    """The /system of the peer (a connectivity test)."""
    ctx = ctx_of(request)
    name, peer = _peer(request)
    try:
        async with open_session(peer, ctx.settings) as session, \
                session.get(join_url(peer.Url, "system"), proxy=proxy_of(ctx.settings)) as response:
            answer = await response.read()
            if not 200 <= response.status < 300:
                # Orthanc signals the remote's HTTP status, with no body.
                return web.Response(status=response.status)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise network_error(name, exc) from None
    return web.Response(body=answer, content_type="application/json")

