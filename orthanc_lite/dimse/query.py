"""C-FIND / C-MOVE / C-GET identifiers <-> the search service (services/find.py), as Orthanc's
OrthancFindRequestHandler and OrthancMoveRequestHandler read them.

Sync and pure except `FindStream` and `lookup_instances`, which the association thread runs on the loop
through the bridge.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from pydicom import config
from pydicom.datadict import dictionary_VM
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from ..dicom.matching import (
    IndexQuery,
    MatchKind,
    TagConstraint,
    dicom_constraint,
    tag_vr,
)
from ..dicom.values import ENCODINGS, dataset_codecs, element_vr, encoding_codec, tag_string
from ..errors import ErrorCode, OrthancError
from ..model import AttachmentInfo, MetadataType, ResourceLevel
from ..services.context import ServerContext
from ..services.find import FindAnswer, FindCursor, FindRequest, with_database_limit

if TYPE_CHECKING:
    from ..storage.filesystem import FilesystemStorage

logger = logging.getLogger(__name__)

QUERY_RETRIEVE_LEVEL: Final = 0x00080052
SPECIFIC_CHARACTER_SET: Final = 0x00080005
RETRIEVE_AE_TITLE: Final = 0x00080054
PATIENT_ID: Final = 0x00100020
STUDY_INSTANCE_UID: Final = 0x0020000D
SERIES_INSTANCE_UID: Final = 0x0020000E
SOP_INSTANCE_UID: Final = 0x00080018
ACCESSION_NUMBER: Final = 0x00080050

_NUMBER_VRS: Final = {"US": int, "SS": int, "UL": int, "SL": int, "UV": int, "SV": int, "FL": float, "FD": float}
_BINARY_VRS: Final = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN", "AT"})
FIND_BATCH: Final = 100
_IGNORE: Final = config.IGNORE


@dataclass(frozen=True, slots=True)
class FindQuery:
    """A parsed C-FIND identifier: what to match, and which keys to answer (in the query's order)."""

    level: ResourceLevel
    level_text: str
    index_query: IndexQuery
    keys: tuple[tuple[int, str], ...]   # (tag, VR) of every key to return
    sequences: tuple[int, ...]          # sequence keys: answered empty (no sequence matching in Orthanc)


def _keys(identifier: Dataset) -> list[tuple[int, str]]:
    """Orthanc's FixFindQuery: groups >= 0008, no group lengths; QueryRetrieveLevel/SpecificCharacterSet aside."""
    out: list[tuple[int, str]] = []
    for elem in identifier:
        tag = int(elem.tag)
        if tag >> 16 < 0x0008 or tag & 0xFFFF == 0 or tag in (QUERY_RETRIEVE_LEVEL, SPECIFIC_CHARACTER_SET):
            continue
        raw = identifier.get_item(elem.tag)
        vr = element_vr(raw, identifier) if raw is not None else "UN"
        if vr in ("xs", "ox", "UN") or len(vr) != 2:
            dict_vr = tag_vr(tag)
            vr = dict_vr if dict_vr != "UN" else vr if len(vr) == 2 else "UN"
        out.append((tag, vr))
    return out


def identifier_value(identifier: Dataset, tag: int) -> str | None:
    """A key's value as Orthanc's DicomMap holds it (decoded with the query's charset or DefaultEncoding)."""
    return tag_string(identifier, tag, dataset_codecs(identifier))


def prepare_identifier(identifier: Dataset, default_encoding: str) -> Dataset:
    """Remember DefaultEncoding for identifiers without SpecificCharacterSet (see dicom/values.read_dataset)."""
    identifier._orthanc_default_encoding = default_encoding
    return identifier


def parse_level(identifier: Dataset) -> tuple[ResourceLevel, str]:
    text = identifier_value(identifier, QUERY_RETRIEVE_LEVEL)
    if text is None or text.strip() == "":
        raise OrthancError(ErrorCode.BadRequest, "C-FIND request without the tag 0008,0052 (QueryRetrieveLevel)")
    text = text.strip().upper()
    try:
        level = ResourceLevel.parse(text)
    except ValueError:
        raise OrthancError(ErrorCode.ParameterOutOfRange, f"Unknown query retrieve level: {text}") from None
    if text not in ("PATIENT", "STUDY", "SERIES", "IMAGE", "IMAGES", "INSTANCE"):
        raise OrthancError(ErrorCode.NotImplemented, f"Unsupported query retrieve level: {text}")
    return level, text


def parse_find(identifier: Dataset, case_sensitive_pn: bool) -> FindQuery:
    """The C-FIND identifier -> constraints (only PN honours CaseSensitivePN) and keys to answer."""
    level, level_text = parse_level(identifier)
    constraints: list[TagConstraint] = []
    keys: list[tuple[int, str]] = []
    sequences: list[int] = []
    for tag, vr in _keys(identifier):
        if vr == "SQ":
            sequences.append(tag)
            continue
        keys.append((tag, vr))
        value = identifier_value(identifier, tag)
        if not value:
            continue
        constraint = dicom_constraint(tag, value, case_sensitive_pn, vr=vr if vr not in _BINARY_VRS else None)
        if constraint is not None:
            constraints.append(constraint)
    return FindQuery(level, level_text, IndexQuery(level=level, constraints=tuple(constraints)),
                     tuple(keys), tuple(sequences))


class FindStream:
    """The answers of a C-FIND, pulled in chunks from the association thread (each `next_chunk` is one bridge
    call). It reads one batch ahead, so the chunk that ends the stream says so and carries the final
    `complete` flag: a small answer costs a single loop hop."""

    def __init__(self, ctx: ServerContext, query: FindQuery) -> None:
        request = FindRequest(with_database_limit(ctx, query.index_query),
                              requested_tags=tuple(tag for tag, _ in query.keys))
        self._cursor = FindCursor(ctx, request, batch_size=FIND_BATCH)
        self._iterator = self._cursor.__aiter__()
        self._limit = _limit(ctx, query.level)
        self._sent = 0
        self._ahead: list[FindAnswer] | None = None
        self.finished = False

    async def _pull(self) -> list[FindAnswer] | None:
        try:
            return await self._iterator.__anext__()
        except StopAsyncIteration:
            return None

    async def next_chunk(self) -> tuple[list[FindAnswer], bool, bool]:
        """(answers, complete, finished); `complete` is False once LimitFindResults/Instances cut."""
        batch = self._ahead if self._ahead is not None else await self._pull()
        self._ahead = None
        if batch is None:
            self.finished = True
            return [], self._cursor.complete, True
        if self._limit and self._sent + len(batch) > self._limit:
            batch = batch[: self._limit - self._sent]
            await self.close()
            self.finished = True
            return batch, False, True
        self._sent += len(batch)
        self._ahead = await self._pull()
        if self._ahead is None:
            self.finished = True
            return batch, self._cursor.complete, True
        return batch, True, False

    async def close(self) -> None:
        """Release the cursor of a stream abandoned before its end (C-CANCEL, failure)."""
        aclose = getattr(self._iterator, "aclose", None)
        if aclose is not None:
            await aclose()


def _limit(ctx: ServerContext, level: ResourceLevel) -> int:
    s = ctx.settings
    return int(s.LimitFindInstances if level is ResourceLevel.INSTANCE else s.LimitFindResults)


def answer_dataset(query: FindQuery, answer: FindAnswer, retrieve_aet: str, encoding: str) -> Dataset:
    """Orthanc's AddAnswer: RetrieveAETitle, the level, then every requested key (empty when unknown)."""
    ds = Dataset()
    term = ENCODINGS.get(encoding, "")
    if term:
        ds.SpecificCharacterSet = term
    codec = encoding_codec(encoding)
    ds.add(DataElement(QUERY_RETRIEVE_LEVEL, "CS", query.level_text, validation_mode=_IGNORE))
    ds.add(DataElement(RETRIEVE_AE_TITLE, "AE", retrieve_aet, validation_mode=_IGNORE))
    for tag, vr in query.keys:
        if tag == RETRIEVE_AE_TITLE:
            continue
        value = answer.value(tag)
        if value and codec and vr in _CHARSET_VRS:
            # Orthanc converts the UTF-8 value to DefaultEncoding itself: characters the target cannot hold
            # are dropped (not "?"), and ISO_IR 13 means the whole Shift-JIS (pydicom would restrict it to
            # JIS X 0201), hence bytes, written as they are.
            ds.add(DataElement(tag, vr, value.encode(codec, "ignore"), validation_mode=_IGNORE))
            continue
        if value and vr in _NUMBER_VRS and _exceeds_dictionary_vm(tag, value):
            continue  # e.g. a 3-byte Rows read as "8\\0": Orthanc leaves such a value out of the answer
        ds.add(make_element(tag, vr, value))
    for tag in query.sequences:
        ds.add(DataElement(tag, "SQ", DicomSequence([])))
    return ds


def _exceeds_dictionary_vm(tag: int, value: str) -> bool:
    try:
        vm = dictionary_VM(tag)
    except KeyError:
        return False
    return vm.isdigit() and value.count("\\") + 1 > int(vm)


# Value representations whose bytes depend on SpecificCharacterSet.
_CHARSET_VRS: Final = frozenset({"PN", "LO", "SH", "ST", "LT", "UT", "UC"})


def make_element(tag: int, vr: str, value: str | None) -> DataElement:
    """A DataElement from Orthanc's string form of a value ("\\"-separated); empty when None.

    Values come from stored instances: they are answered as they are, without pydicom's validation
    (Orthanc does not validate them either, and the regexes cost more than the rest of the answer).
    """
    if value is None or value == "" or vr in _BINARY_VRS:
        return DataElement(tag, vr, None if vr in _NUMBER_VRS or vr in _BINARY_VRS else "", validation_mode=_IGNORE)
    convert = _NUMBER_VRS.get(vr)
    if convert is not None:
        try:
            numbers = [convert(v) for v in value.split("\\")]
        except ValueError:
            return DataElement(tag, vr, None, validation_mode=_IGNORE)
        return DataElement(tag, vr, numbers if len(numbers) > 1 else numbers[0], validation_mode=_IGNORE)
    parts = value.split("\\")
    return DataElement(tag, vr, parts if len(parts) > 1 else value, validation_mode=_IGNORE)


# -- C-MOVE / C-GET -------------------------------------------------------------------------------

_MOVE_KEYS: Final = {ResourceLevel.PATIENT: PATIENT_ID, ResourceLevel.SERIES: SERIES_INSTANCE_UID,
                     ResourceLevel.INSTANCE: SOP_INSTANCE_UID}


@dataclass(frozen=True, slots=True)
class Retrieve:
    """What a C-MOVE / C-GET asks for: resources of one level whose key is one of `values`."""

    level: ResourceLevel
    tag: int
    values: tuple[str, ...]


def _non_empty(identifier: Dataset, tag: int) -> str | None:
    value = identifier_value(identifier, tag)
    return value if value else None


def _retrieve_at(identifier: Dataset, level: ResourceLevel) -> Retrieve | None:
    if level is ResourceLevel.STUDY:
        # An AccessionNumber wins over StudyInstanceUID when present (Orthanc, for Ambra's SCU).
        tag = ACCESSION_NUMBER if _non_empty(identifier, ACCESSION_NUMBER) else STUDY_INSTANCE_UID
    else:
        tag = _MOVE_KEYS[level]
    raw = identifier_value(identifier, tag)
    if raw is None:
        return None
    # Issue 154: a "\\"-separated list of UIDs is a list of resources.
    values = tuple(v.strip() for v in raw.split("\\") if v.strip())
    return Retrieve(level, tag, values)


def parse_retrieve(identifier: Dataset) -> Retrieve:
    """OrthancMoveRequestHandler::Handle: the level's key; without QueryRetrieveLevel, the deepest key present."""
    text = identifier_value(identifier, QUERY_RETRIEVE_LEVEL)
    if text is None or text.strip() == "":
        for level in (ResourceLevel.INSTANCE, ResourceLevel.SERIES, ResourceLevel.STUDY, ResourceLevel.PATIENT):
            found = _retrieve_at(identifier, level)
            if found is not None:
                return found
        raise OrthancError(ErrorCode.BadRequest, "Invalid fields in a C-MOVE request")
    try:
        level = ResourceLevel.parse(text.strip())
    except ValueError:
        raise OrthancError(ErrorCode.ParameterOutOfRange, f"Unknown query retrieve level: {text}") from None
    found = _retrieve_at(identifier, level)
    if found is None:
        raise OrthancError(ErrorCode.BadRequest,
                           "No DICOM identifier provided in the C-MOVE request for this query retrieve level")
    return found


@dataclass(frozen=True, slots=True)
class InstanceToSend:
    public_id: str
    attachment: AttachmentInfo
    sop_class: str
    transfer_syntax: str

    def read_sync(self, storage: FilesystemStorage) -> bytes:
        """The stored DICOM file (blocking: an association thread or the dimse pool)."""
        return storage.read_sync(self.attachment.uuid, compressed=self.attachment.compression == 2)


async def lookup_instances(ctx: ServerContext, retrieve: Retrieve) -> list[InstanceToSend]:
    """Every instance under the resources whose key matches exactly (LookupIdentifierExact), batched per level."""
    if not retrieve.values:
        return []
    kind = MatchKind.LIST if len(retrieve.values) > 1 else MatchKind.EQUAL
    constraint = TagConstraint(retrieve.tag, kind, retrieve.values, True, tag_vr(retrieve.tag))
    parents: list[str] = []
    async for batch in FindCursor(ctx, FindRequest(IndexQuery(level=retrieve.level, constraints=(constraint,)),
                                                   storage_access="Never")):
        parents.extend(answer.public_id for answer in batch)
    out: list[InstanceToSend] = []
    seen: set[str] = set()
    for parent in parents:
        query = IndexQuery(level=ResourceLevel.INSTANCE, parents=((retrieve.level, parent),))
        async for batch in FindCursor(ctx, FindRequest(query, expand=True, storage_access="Never")):
            for answer in batch:
                info = answer.resource
                if answer.public_id in seen or info is None or info.dicom_attachment is None:
                    continue
                seen.add(answer.public_id)
                out.append(InstanceToSend(answer.public_id, info.dicom_attachment,
                                          info.metadata.get(int(MetadataType.SopClassUid), ""),
                                          info.metadata.get(int(MetadataType.TransferSyntax), "")))
    return out
