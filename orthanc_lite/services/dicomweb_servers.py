"""The remote DICOMweb servers (DicomWeb.Servers): from the configuration, editable over REST, persisted in a
global property when DicomWeb.ServersInDatabase is true (as the DICOMweb plugin keeps them)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import orjson

from ..config import ConfigError, DicomWebServer
from ..errors import ErrorCode, OrthancError

if TYPE_CHECKING:
    from .context import ServerContext

SERVERS_PROPERTY = 5468  # a plugin-range global property (>= 1024) of our own
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_EXTRA_KEY = "dicomweb_servers"


class DicomWebServers:
    """Name -> DicomWebServer, in the long form."""

    def __init__(self, ctx: ServerContext) -> None:
        self._ctx = ctx
        self.servers: dict[str, DicomWebServer] = dict(ctx.settings.dicomweb_servers)
        self._in_database = bool(ctx.settings.DicomWeb.get("ServersInDatabase", False))

    async def load(self) -> None:
        if self._in_database:
            raw = await self._ctx.index.global_property(SERVERS_PROPERTY)
            if raw is not None:
                self.servers = {k: DicomWebServer.from_json(v, k) for k, v in orjson.loads(raw).items()}

    def get(self, name: str) -> DicomWebServer:
        found = self.servers.get(name)
        if found is None:
            raise OrthancError(ErrorCode.InexistentItem, f"Inexistent DICOMweb server: {name}")
        return found

    async def put(self, name: str, body: Any) -> None:
        if not _NAME.match(name):
            raise OrthancError(ErrorCode.ParameterOutOfRange, f"Bad name for a DICOMweb server: {name}")
        if isinstance(body, dict) and "URL" in body and "Url" not in body:
            body = {**body, "Url": body.pop("URL")}
        try:
            self.servers[name] = DicomWebServer.from_json(body, f"DICOMweb server {name}")
        except ConfigError as exc:
            raise OrthancError(ErrorCode.BadFileFormat, str(exc)) from None
        await self._persist()

    async def delete(self, name: str) -> None:
        self.get(name)
        del self.servers[name]
        await self._persist()

    async def _persist(self) -> None:
        if self._in_database:
            data = {k: s.to_json() for k, s in self.servers.items()}
            await self._ctx.index.set_global_property(SERVERS_PROPERTY, orjson.dumps(data).decode())


async def dicomweb_servers(ctx: ServerContext) -> DicomWebServers:
    """The context's registry, created (and loaded from the index) on first use."""
    found = ctx.extra.get(_EXTRA_KEY)
    if found is None:
        found = DicomWebServers(ctx)
        await found.load()
        ctx.extra.setdefault(_EXTRA_KEY, found)
        found = ctx.extra[_EXTRA_KEY]
    return found  # type: ignore[no-any-return]


def public_server(server: DicomWebServer) -> dict[str, Any]:
    """The plugin's ?expand entry: FormatPublic (no password, header names only) plus the user properties."""
    out: dict[str, Any] = {"Url": server.Url, "HttpHeaders": sorted(server.HttpHeaders), "Pkcs11": server.Pkcs11,
                           "Timeout": server.Timeout}
    if server.Username:
        out["Username"] = server.Username
        out["Password"] = None
    out["HasDelete"] = "1" if server.HasDelete else "0"
    if not server.ChunkedTransfers:
        out["ChunkedTransfers"] = "0"
    if not server.HasWadoRsUniversalTransferSyntax:
        out["HasWadoRsUniversalTransferSyntax"] = "0"
    return out
