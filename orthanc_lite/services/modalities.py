"""The known DICOM modalities and Orthanc peers: from the configuration, editable over REST, persisted in the
index's global properties when DicomModalitiesInDatabase / OrthancPeersInDatabase (as Orthanc does)."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

import orjson

from ..config import ConfigError, Modality, Peer, Settings
from ..errors import ErrorCode, OrthancError

if TYPE_CHECKING:
    from ..index.sqlite import SqliteIndex

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
MODALITIES_PROPERTY = 20  # Orthanc's GlobalProperty_Modalities
PEERS_PROPERTY = 21       # Orthanc's GlobalProperty_Peers


class Registry:
    """Runtime view of DicomModalities and OrthancPeers (the DICOM server reads modalities from here)."""

    def __init__(self, settings: Settings, index: SqliteIndex) -> None:
        self._settings = settings
        self._index = index
        self.modalities: dict[str, Modality] = dict(settings.modalities)
        self.peers: dict[str, Peer] = dict(settings.peers)

    async def load(self) -> None:
        s = self._settings
        if s.DicomModalitiesInDatabase:
            raw = await self._index.global_property(MODALITIES_PROPERTY)
            self.modalities = {k: Modality.from_json(v, f"modality {k}") for k, v in orjson.loads(raw or "{}").items()}
        if s.OrthancPeersInDatabase:
            raw = await self._index.global_property(PEERS_PROPERTY)
            self.peers = {k: Peer.from_json(v, f"peer {k}") for k, v in orjson.loads(raw or "{}").items()}

    def modality(self, name: str) -> Modality:
        found = self.modalities.get(name)
        if found is None:
            raise OrthancError(ErrorCode.InexistentItem, f"Unknown DICOM modality with symbolic name: {name}")
        return found

    def peer(self, name: str) -> Peer:
        found = self.peers.get(name)
        if found is None:
            raise OrthancError(ErrorCode.InexistentItem, f"Unknown Orthanc peer: {name}")
        return found

    async def put_modality(self, name: str, body: Any) -> None:
        _check_name(name)
        try:
            self.modalities[name] = Modality.from_json(body, f"modality {name}")
        except ConfigError as exc:
            raise OrthancError(ErrorCode.BadFileFormat, str(exc)) from None
        await self._persist_modalities()

    async def delete_modality(self, name: str) -> None:
        self.modality(name)
        del self.modalities[name]
        await self._persist_modalities()

    async def put_peer(self, name: str, body: Any) -> None:
        _check_name(name)
        if isinstance(body, dict) and "URL" in body and "Url" not in body:
            body = {**body, "Url": body.pop("URL")}
        try:
            self.peers[name] = Peer.from_json(body, f"peer {name}")
        except ConfigError as exc:
            raise OrthancError(ErrorCode.BadFileFormat, str(exc)) from None
        await self._persist_peers()

    async def delete_peer(self, name: str) -> None:
        self.peer(name)
        del self.peers[name]
        await self._persist_peers()

    async def _persist_modalities(self) -> None:
        if self._settings.DicomModalitiesInDatabase:
            data = {k: m.to_json() for k, m in self.modalities.items()}
            await self._index.set_global_property(MODALITIES_PROPERTY, orjson.dumps(data).decode())

    async def _persist_peers(self) -> None:
        if self._settings.OrthancPeersInDatabase:
            data = {k: p.to_json() for k, p in self.peers.items()}
            await self._index.set_global_property(PEERS_PROPERTY, orjson.dumps(data).decode())


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise OrthancError(ErrorCode.ParameterOutOfRange, f"Bad symbolic name: {name} (only [A-Za-z0-9_-] allowed)")


def public_peer(peer: Peer) -> dict[str, Any]:
    """Orthanc's FormatPublic: no password, only the names of the HTTP headers."""
    out = peer.to_json()
    out["Password"] = None
    out["HttpHeaders"] = sorted(peer.HttpHeaders)
    out.setdefault("Pkcs11", False)
    out.setdefault("Timeout", 0)
    return out
