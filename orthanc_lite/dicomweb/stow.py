"""STOW-RS (the plugin's StowRs.cpp): a multipart/related body of application/dicom parts, each part streamed to
memory or a spooled file, then stored through the store service. The answer lists ReferencedSOPSequence and
FailedSOPSequence; 200, 202 (some failed), 409 (another study than the URL's), 400 (bad syntax or all failed).
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

import orjson
from aiohttp import web

from ..dicom import dicomweb_encode as dicomweb_json
from ..dicom.values import ENCODINGS
from ..errors import ErrorCode, OrthancError
from ..rest.helpers import SpooledBody, max_body_bytes, receive_body
from ..services import dicomweb as service
from .common import base_url, ctx_of, wants_xml


WINDOW: Final = 8   # parts being stored at once


def _check_content_type(request: web.Request) -> None:
    header = request.headers.get("Content-Type", "")
    parts = [p.strip() for p in header.split(";")]
    if not header or not parts[0].lower().startswith("multipart/"):
        raise OrthancError(ErrorCode.UnsupportedMediaType, "The STOW-RS server expects a multipart body in its request")
    if parts[0].lower() != "multipart/related":
        raise OrthancError(ErrorCode.UnsupportedMediaType,
                           'The Content-Type of a STOW-RS request must be "multipart/related"')
    params = {}
    for p in parts[1:]:
        name, _, value = p.partition("=")
        params[name.strip().lower()] = value.strip().strip('"')
    if params.get("type", "").lower() != "application/dicom":
        raise OrthancError(ErrorCode.UnsupportedMediaType,
                           'The STOW-RS plugin currently only supports "application/dicom" subtype')
    if not params.get("boundary"):
        raise OrthancError(ErrorCode.UnsupportedMediaType, "The STOW-RS server expects a multipart body in its request")


def _uid(vr: str, value: str) -> dict[str, Any]:
    return {"vr": vr, "Value": [value]}


async def store(request: web.Request) -> web.StreamResponse:
    """Store the parts of a STOW-RS request (restricted to one study when the URL names it)."""
    _check_content_type(request)
    ctx = ctx_of(request)
    expected = request.match_info.get("study", "")
    base = base_url(request)
    reader = await request.multipart()
    success: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    retrieve_url: str | None = None
    bad_syntax = conflict = False
    limit = max_body_bytes(ctx)
    # Parts are read one after the other, but stored WINDOW at a time: their index commits group together
    pending: list[asyncio.Future[service.StowOutcome]] = []
    outcomes: list[service.StowOutcome] = []
    try:
        while True:
            part = await reader.next()
            if part is None:
                break
            content_type = (part.headers.get("Content-Type", "") or "").split(";")[0].strip().lower()
            if content_type != "application/dicom":
                raise OrthancError(ErrorCode.UnsupportedMediaType,
                                   f'The STOW-RS request contains a part that is not "application/dicom" '
                                   f'(it is: "{content_type}")')
            body = await receive_body(ctx, part, limit)
            if isinstance(body, SpooledBody):
                job = service.stow_part(ctx, body.path, expected, body.md5)
            else:
                job = service.stow_part(ctx, body, expected)
            pending.append(asyncio.ensure_future(job))
            if len(pending) >= WINDOW:
                outcomes.append(await pending.pop(0))
        while pending:
            outcomes.append(await pending.pop(0))
    finally:
        if pending:  # an error: let the stores already started finish (they are not undone)
            await asyncio.gather(*pending, return_exceptions=True)
    for outcome in outcomes:
        bad_syntax = bad_syntax or outcome.bad_syntax
        conflict = conflict or outcome.conflict
        if outcome.uids is None:
            continue
        study, series, sop, sop_class = outcome.uids
        item: dict[str, Any] = {"00081150": _uid("UI", sop_class), "00081155": _uid("UI", sop)}
        if not outcome.bad_syntax and not outcome.conflict and retrieve_url is None:
            retrieve_url = f"{base}studies/{study}"
        if outcome.failure is None:
            item["00081190"] = _uid("UR", f"{base}studies/{study}/series/{series}/instances/{sop}")
            success.append(item)
        else:
            item["00081197"] = {"vr": "US", "Value": [outcome.failure]}
            failed.append(item)
    answer: dict[str, Any] = {}
    charset = ENCODINGS.get(ctx.default_encoding, "")
    answer["00080005"] = {"vr": "CS", "Value": [charset]} if charset else {"vr": "CS"}
    if retrieve_url is not None:
        answer["00081190"] = _uid("UR", retrieve_url)
    answer["00081198"] = {"vr": "SQ", "Value": failed} if failed else {"vr": "SQ"}
    answer["00081199"] = {"vr": "SQ", "Value": success} if success else {"vr": "SQ"}
    status = 200
    if bad_syntax:
        status = 400
    elif conflict:
        status = 409
    elif failed and not success:
        status = 400
    elif failed:
        status = 202
    if wants_xml(request):
        return web.Response(body=dicomweb_json.to_xml(answer).encode("utf-8"), status=status,
                            headers={"Content-Type": "application/dicom+xml"})
    return web.Response(body=orjson.dumps(answer), status=status, headers={"Content-Type": "application/dicom+json"})
