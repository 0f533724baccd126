"""The DICOMweb client's exchanges with a remote server (as the plugin's DicomWebClient.cpp): a proxied GET,
STOW-RS of stored instances (streamed, one multipart part per file) and WADO-RS retrieval into the store."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass

import aiohttp

from ..config import DicomWebServer
from ..errors import ErrorCode, OrthancError
from ..model import Origin, StoreStatus
from ..rest.helpers import SpooledBody, receive_body
from ..services import store
from ..services.context import ServerContext
from ..webclient.session import check_status, join_url, network_error, open_session, proxy_of

logger = logging.getLogger(__name__)

PLUGIN_ORIGIN = Origin("Plugins")  # what Orthanc records for instances a plugin stores through its REST API
_UNIVERSAL_ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'
_NOT_FORWARDED = frozenset({"transfer-encoding", "content-length", "connection", "content-encoding"})


@dataclass(frozen=True, slots=True)
class ProxiedAnswer:
    status: int
    content_type: str
    headers: dict[str, str]
    body: bytes


async def proxy_get(ctx: ServerContext, name: str, server: DicomWebServer, uri: str,
                    arguments: Mapping[str, str], headers: Mapping[str, str]) -> ProxiedAnswer:
    """GET {server}{uri}?{arguments}: the remote's body, content type and headers (hop-by-hop ones dropped)."""
    url = join_url(server.Url, uri, arguments)
    try:
        async with open_session(server, ctx.settings, headers) as session, \
                session.get(url, proxy=proxy_of(ctx.settings)) as response:
            await check_status(response, name)
            body = await response.read()
            forwarded = {k: v for k, v in response.headers.items()
                         if k.lower() not in _NOT_FORWARDED and k.lower() != "content-type"}
            return ProxiedAnswer(response.status, response.headers.get("Content-Type", "application/octet-stream"),
                                 forwarded, body)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise network_error(name, exc) from None


async def delete_remote(ctx: ServerContext, name: str, server: DicomWebServer, uri: str,
                        headers: Mapping[str, str]) -> None:
    """HTTP DELETE on the remote (servers/{name}/delete)."""
    try:
        async with open_session(server, ctx.settings, headers) as session, \
                session.delete(join_url(server.Url, uri), proxy=proxy_of(ctx.settings)) as response:
            await check_status(response, name)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise network_error(name, exc) from None


# ------------------------------------------------------------------------------------------------ STOW-RS

async def _read_instance(ctx: ServerContext, instance_id: str) -> bytes | None:
    found = await ctx.index.find_internal(instance_id)
    if found is None:
        return None  # deleted since the job was created: skipped, as the plugin does
    attachment = (await ctx.index.attachments_of(found[0])).get(1)
    if attachment is None:
        return None
    return await ctx.storage.read(attachment.uuid, attachment.compression != 1)


async def stow(ctx: ServerContext, name: str, server: DicomWebServer, instance_ids: Sequence[str],
               headers: Mapping[str, str], on_sent: Callable[[int], None]) -> None:
    """POST {server}studies with the instances as one multipart/related body, streamed file by file.
    `on_sent(bytes)` is called after each part; a STOW answer that does not account for every instance
    is an error, as in the plugin's CheckStowAnswer."""
    boundary = f"{uuid.uuid4()}-{uuid.uuid4()}"
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        for instance_id in instance_ids:
            data = await _read_instance(ctx, instance_id)
            if data is None:
                continue
            yield (f"--{boundary}\r\nContent-Type: application/dicom\r\nContent-Length: {len(data)}\r\n\r\n"
                   ).encode()
            yield data
            yield b"\r\n"
            sent += 1
            on_sent(len(data))
        yield f"--{boundary}--\r\n".encode()

    request_headers = {**headers, "Accept": "application/dicom+json",
                       "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}'}
    payload: AsyncIterator[bytes] | bytes = body()
    if not server.ChunkedTransfers:  # the remote needs a Content-Length: build the body first
        payload = b"".join([chunk async for chunk in body()])
    try:
        async with open_session(server, ctx.settings, request_headers) as session, \
                session.post(join_url(server.Url, "studies"), data=payload,
                             proxy=proxy_of(ctx.settings)) as response:
            if response.status == 411:
                logger.error('The remote DICOMweb server "%s" does not support chunked transfers: set its '
                             '"ChunkedTransfers" option to false', name)
            await check_status(response, name)
            try:
                answer = await response.json(content_type=None)
            except ValueError:
                answer = None
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise network_error(name, exc) from None
    check_stow_answer(answer, name, sent)


def _sequence_size(answer: dict[str, object], tag: str, mandatory: bool, name: str) -> int | None:
    value = answer.get(tag.upper(), answer.get(tag.lower()))
    if value is None:
        if mandatory:
            raise OrthancError(ErrorCode.NetworkProtocol, f"The STOW-RS JSON response from DICOMweb server {name} "
                                                          f"does not contain the mandatory tag {tag.upper()}")
        return None
    items = value.get("Value", []) if isinstance(value, dict) else None
    if not isinstance(items, list):
        raise OrthancError(ErrorCode.NetworkProtocol, f"Unable to parse STOW-RS JSON response from DICOMweb server "
                                                      f"{name}")
    return len(items)


def check_stow_answer(answer: object, name: str, count: int) -> None:
    if not isinstance(answer, dict):
        raise OrthancError(ErrorCode.NetworkProtocol, f"Unable to parse STOW-RS JSON response from DICOMweb server "
                                                      f"{name}")
    received = _sequence_size(answer, "00081199", count > 0, name) or 0
    if received != count:
        raise OrthancError(ErrorCode.NetworkProtocol,
                           f"The STOW-RS server was only able to receive {received} instances out of {count}")
    for tag, label in (("00081198", "Failed SOP Sequence (0008,1198)"), ("0008119A", "Other Failures Sequence "
                                                                                     "(0008,119A)")):
        failed = _sequence_size(answer, tag, False, name)
        if failed:
            raise OrthancError(ErrorCode.NetworkProtocol,
                               f"The response from the STOW-RS server contains {failed} items in its {label} tag")


# ------------------------------------------------------------------------------------------------ WADO-RS

async def wado_retrieve(ctx: ServerContext, name: str, server: DicomWebServer, uri: str,
                        arguments: Mapping[str, str], headers: Mapping[str, str],
                        on_received: Callable[[int], None]) -> list[str]:
    """GET a WADO-RS multipart/related answer and store each application/dicom part as it arrives (parts are
    spooled to the storage area's incoming folder, never held whole in memory). Returns the instance IDs."""
    request_headers = dict(headers)
    if server.HasWadoRsUniversalTransferSyntax:
        request_headers.setdefault("Accept", _UNIVERSAL_ACCEPT)
    stored: list[str] = []
    try:
        async with open_session(server, ctx.settings, request_headers) as session, \
                session.get(join_url(server.Url, uri, arguments), proxy=proxy_of(ctx.settings)) as response:
            await check_status(response, name)
            content_type = response.headers.get("Content-Type", "")
            if not content_type.lower().startswith("multipart/related"):
                raise OrthancError(ErrorCode.NetworkProtocol,
                                   f'The remote WADO-RS server answers with a "{content_type.split(";")[0]}" '
                                   'Content-Type, but "multipart/related" is expected')
            reader = aiohttp.MultipartReader.from_response(response)
            while True:
                part = await reader.next()
                if part is None:
                    break
                if not isinstance(part, aiohttp.BodyPartReader):
                    raise OrthancError(ErrorCode.NetworkProtocol, "Nested multipart in a WADO-RS answer")
                part_type = part.headers.get("Content-Type", "").split(";")[0].strip().lower()
                if part_type != "application/dicom":
                    raise OrthancError(ErrorCode.NetworkProtocol, 'Parts of a WADO-RS retrieve should have '
                                       f'"application/dicom" type, but received: {part_type}')
                received = await receive_body(ctx, part, 0)
                on_received(received.size if isinstance(received, SpooledBody) else len(received))
                stored.append(await _store_part(ctx, received))
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise network_error(name, exc) from None
    return stored


async def _store_part(ctx: ServerContext, received: bytes | SpooledBody) -> str:
    if isinstance(received, SpooledBody):
        result = await store.store_file(ctx, received.path, PLUGIN_ORIGIN, received.md5)
    else:
        result = await store.store_bytes(ctx, received, PLUGIN_ORIGIN)
    if result.status is StoreStatus.Failure or result.instance_id is None:
        raise OrthancError(ErrorCode.BadFileFormat, "A part of the WADO-RS answer could not be stored")
    return result.instance_id
