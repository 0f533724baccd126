"""HTTP plumbing shared by the DICOMweb routes: the DicomWeb options, the public base URL of answers, Accept
negotiation (Orthanc's HttpContentNegociation), and multipart/related answers streamed part by part.
"""

from __future__ import annotations

import uuid as uuidlib
from dataclasses import dataclass
from typing import Any, Final, Mapping

import orjson
from aiohttp import web

from ..app_keys import CONTEXT
from ..errors import ErrorCode, OrthancError
from ..services.context import ServerContext

DICOM_JSON: Final = "application/dicom+json"


def ctx_of(request: web.Request) -> ServerContext:
    return request.app[CONTEXT]


def option(ctx: ServerContext, name: str, default: Any = None) -> Any:
    return ctx.settings.DicomWeb.get(name, default)


def _slashed(path: str) -> str:
    if not path.startswith("/"):
        path = "/" + path
    return path if path.endswith("/") else path + "/"


def dicomweb_root(section: Mapping[str, Any]) -> str:
    """Root with a slash at both ends (GetDicomWebRoot)."""
    return _slashed(str(section.get("Root") or "/dicom-web/"))


def public_root(section: Mapping[str, Any]) -> str:
    return _slashed(str(section.get("PublicRoot") or dicomweb_root(section)))


def wado_root(section: Mapping[str, Any]) -> str:
    """WadoRoot with a leading slash and no trailing one (GetWadoRoot)."""
    root = str(section.get("WadoRoot") or "/wado/")
    if not root.startswith("/"):
        root = "/" + root
    return root[:-1] if root.endswith("/") and len(root) > 1 else root


def _https(proto: str, default: bool) -> bool:
    return {"http": False, "https": True}.get(proto, default)


def base_url(request: web.Request) -> str:
    """The public URL of the DICOMweb root in answers (GetBasePublicUrl): Host option, else X-Forwarded-Host with
    X-Forwarded-Proto, else the first Forwarded entry, else Host; https when Ssl or the proxy says so."""
    section = ctx_of(request).settings.DicomWeb
    host = str(section.get("Host") or "")
    https = bool(section.get("Ssl", False))
    headers = request.headers
    if not host and "X-Forwarded-Host" in headers and "X-Forwarded-Proto" in headers:
        host = headers["X-Forwarded-Host"].strip()
        https = _https(headers["X-Forwarded-Proto"].strip(), https)
    if not host and "Forwarded" in headers:
        first = headers["Forwarded"].split(",")[0]
        for token in first.split(";"):
            name, sep, value = token.partition("=")
            if not sep:
                continue
            name, value = name.strip().lower(), value.strip()
            if name == "host":
                host = value
            elif name == "proto":
                https = _https(value, https)
    if not host:
        host = headers.get("Host", "localhost:8042")
    return ("https://" if https else "http://") + host + public_root(section)


# --- Accept negotiation ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class MediaRange:
    type: str
    subtype: str
    params: dict[str, str]
    q: float

    @property
    def mime(self) -> str:
        return f"{self.type}/{self.subtype}"


def parse_accept(header: str) -> list[MediaRange]:
    """The media ranges of an Accept header, best first (q, then order). Parameter values lose their quotes;
    names are lower-cased."""
    ranges: list[tuple[float, int, MediaRange]] = []
    for index, item in enumerate(_split_outside_quotes(header, ",")):
        parts = _split_outside_quotes(item, ";")
        mime = parts[0].strip().lower()
        if not mime:
            continue
        main, _, sub = mime.partition("/")
        params: dict[str, str] = {}
        q = 1.0
        for p in parts[1:]:
            name, sep, value = p.partition("=")
            if not sep:
                continue
            name = name.strip().lower()
            value = value.strip().strip('"')
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
            else:
                params[name] = value
        ranges.append((-q, index, MediaRange(main, sub or "*", params, q)))
    return [r for _, _, r in sorted(ranges, key=lambda t: (t[0], t[1])) if r.q > 0]


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    out: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == sep and not quoted:
            out.append("".join(current))
            current = []
        else:
            current.append(ch)
    out.append("".join(current))
    return out


def negotiate(header: str | None, offers: tuple[str, ...]) -> tuple[str, MediaRange] | None:
    """The first offer (a "type/subtype") matched by the best media range of `header`, and that range;
    None when nothing matches. A missing header matches the first offer."""
    if header is None or not header.strip():
        kind, _, sub = offers[0].partition("/")
        return offers[0], MediaRange(kind, sub, {}, 1.0)
    for media in parse_accept(header):
        for offer in offers:
            main, sub = offer.split("/")
            if (media.type in (main, "*")) and (media.subtype in (sub, "*")):
                return offer, media
    return None


def wants_xml(request: web.Request) -> bool:
    """QIDO-RS and STOW-RS answer XML for these exact Accept values, JSON otherwise (IsXmlExpected)."""
    accept = request.headers.get("Accept", "").strip().lower()
    return accept in ("application/dicom+xml", "application/xml", "text/xml")


# --- answers ----------------------------------------------------------------------------------------------

def dicom_json_response(items: list[bytes] | bytes, status: int = 200) -> web.Response:
    """A JSON array made of already-serialized items (or a serialized object)."""
    body = items if isinstance(items, bytes) else b"[" + b",".join(items) + b"]"
    return web.Response(body=body, status=status, headers={"Content-Type": DICOM_JSON})


def json_bytes(data: Any) -> bytes:
    return orjson.dumps(data)


class MultipartWriter:
    """A multipart/related answer written part by part (chunked): nothing is held beyond the current part."""

    def __init__(self, request: web.Request, part_type: str, status: int = 200) -> None:
        self.request = request
        self.part_type = part_type
        self.boundary = uuidlib.uuid4().hex + uuidlib.uuid4().hex
        self.response = web.StreamResponse(status=status, headers={
            "Content-Type": f'multipart/related; type="{part_type}"; boundary={self.boundary}'})
        self.response.enable_chunked_encoding()
        self._started = False

    @property
    def started(self) -> bool:
        """Whether the status line and headers are sent (an error can no longer be answered)."""
        return self._started

    async def write(self, data: bytes, content_type: str | None = None,
                    extra_headers: dict[str, str] | None = None) -> None:
        if not self._started:
            await self.response.prepare(self.request)
            self._started = True
        head = (f"--{self.boundary}\r\nContent-Type: {content_type or self.part_type}\r\n"
                f"Content-Length: {len(data)}\r\n")
        for name, value in (extra_headers or {}).items():
            head += f"{name}: {value}\r\n"
        head += "MIME-Version: 1.0\r\n\r\n"
        await self.response.write(head.encode("latin_1") + data + b"\r\n")

    async def write_many(self, parts: list[bytes]) -> None:
        """Several parts of the main type in one write (fewer, larger chunks on the wire)."""
        if not self._started:
            await self.response.prepare(self.request)
            self._started = True
        chunks: list[bytes] = []
        for data in parts:
            chunks.append(f"--{self.boundary}\r\nContent-Type: {self.part_type}\r\nContent-Length: {len(data)}\r\n"
                          f"MIME-Version: 1.0\r\n\r\n".encode("latin_1"))
            chunks.append(data)
            chunks.append(b"\r\n")
        await self.response.write(b"".join(chunks))

    async def finish(self) -> web.StreamResponse:
        if not self._started:
            await self.response.prepare(self.request)
        await self.response.write(f"--{self.boundary}--\r\n".encode("ascii"))
        await self.response.write_eof()
        return self.response


def bad_request(details: str) -> OrthancError:
    return OrthancError(ErrorCode.BadRequest, details)
