"""The SQLite index: one method = one transaction, on top of engine.py (group-commit writer, reader pool)."""

from __future__ import annotations

import functools
from concurrent.futures import Future
import os
import threading
from typing import Any

from ..model import AttachmentInfo, Change, ChangeType, ResourceLevel
from . import archive, jobs, reads, sending, writes
from .engine import SqliteEngine
from .reads import ResourceInfo
from .writes import DeleteOutcome, NewInstance, StoreOutcome


class SqliteIndex:
    def __init__(self, directory: str, readers: int = 2, commit_turn: threading.Lock | None = None) -> None:
        os.makedirs(directory, exist_ok=True)
        self.engine = SqliteEngine(os.path.join(directory, "index"), readers=readers, commit_turn=commit_turn)

    async def open(self) -> None:
        await self.engine.open()

    async def close(self) -> None:
        await self.engine.close()

    # --- writes -----------------------------------------------------------------------------
    def store_sync(self, new: NewInstance, file_durable: Future[Any]) -> StoreOutcome:
        """Store one instance, from a worker thread: the ingest pipeline indexes in the same hop as it parses. The
        rows are written while `file_durable` (the attachment's fsync) runs, and committed only after it."""
        return self.engine.write_sync(functools.partial(writes.store_instance, new=new), file_durable)

    async def delete(self, public_id: str, level: ResourceLevel, now: str) -> DeleteOutcome:
        return await self.engine.write(functools.partial(writes.delete_resource, public_id=public_id, level=level, now=now))

    async def log_change(self, change: ChangeType, public_id: str, now: str) -> tuple[int, ChangeType, ResourceLevel, str] | None:
        return await self.engine.write(functools.partial(writes.log_change, change=change, public_id=public_id, now=now))

    async def set_protected(self, internal_id: int, protected: bool) -> None:
        await self.engine.write(functools.partial(writes.set_protected, patient_internal=internal_id, protected=protected))

    async def clear_changes(self) -> None:
        await self.engine.write(writes.clear_changes)

    async def clear_exports(self) -> None:
        await self.engine.write(writes.clear_exports)

    async def log_export(self, level: ResourceLevel, public_id: str, modality: str,
                         uids: tuple[str, str, str, str], now: str) -> None:
        await self.engine.write(functools.partial(writes.log_export, level=level, public_id=public_id,
                                                  modality=modality, uids=uids, now=now))

    async def remove_orphan_rows(self, instance_ids: list[int], attachments: list[tuple[int, int]]) -> None:
        await self.engine.write(functools.partial(writes.remove_orphan_rows, instance_ids=instance_ids,
                                                  attachments=attachments))

    async def update_main_tags(self, rows: list[tuple[str, int, dict[str, str]]]) -> int:
        return int(await self.engine.write(functools.partial(writes.update_main_tags, rows=rows)))

    async def set_global_property(self, prop: int, value: str) -> None:
        await self.engine.write(functools.partial(writes.set_global_property, prop=prop, value=value))

    # --- reads ------------------------------------------------------------------------------
    async def archive_content(self, public_ids: list[str]) -> archive.ArchiveContent:
        """Every instance below these resources, for ZIP archives and media (one read transaction)."""
        return await self.engine.read(functools.partial(archive.archive_content, public_ids=public_ids))

    async def missing_resources(self, public_ids: list[str]) -> list[str]:
        """The public IDs (any level) that do not exist: an existence check that reads nothing else."""
        return await self.engine.read(functools.partial(archive.missing_resources, public_ids=public_ids))

    async def find_internal(self, public_id: str, level: ResourceLevel | None = None) -> tuple[int, ResourceLevel] | None:
        return await self.engine.read(functools.partial(reads.find_internal, public_id=public_id, level=level))

    async def list_public_ids(self, level: ResourceLevel, since: int = 0, limit: int = 0) -> list[str]:
        return await self.engine.read(functools.partial(reads.list_public_ids, level=level, since=since, limit=limit))

    async def expand(self, level: ResourceLevel, internal_ids: list[int] | None = None, since: int = 0,
                     limit: int = 0) -> list[ResourceInfo]:
        return await self.engine.read(functools.partial(reads.expand, level=level, internal_ids=internal_ids,
                                                        since=since, limit=limit))

    async def expand_one(self, public_id: str, level: ResourceLevel) -> ResourceInfo | None:
        """Lookup and expansion of one resource in a single read transaction."""
        def tx(conn: Any) -> ResourceInfo | None:
            found = reads.find_internal(conn, public_id, level)
            if found is None:
                return None
            infos = reads.expand(conn, level, [found[0]])
            return infos[0] if infos else None
        return await self.engine.read(tx)

    async def expand_children(self, internal_id: int, parent_level: ResourceLevel,
                              target: ResourceLevel) -> list[ResourceInfo]:
        def tx(conn: Any) -> list[ResourceInfo]:
            ids = reads.children_internal(conn, internal_id, target, parent_level)
            return reads.expand(conn, target, ids)
        return await self.engine.read(tx)

    async def children_public_ids(self, internal_id: int, parent_level: ResourceLevel, target: ResourceLevel) -> list[str]:
        def tx(conn: Any) -> list[str]:
            ids = reads.children_internal(conn, internal_id, target, parent_level)
            return [r[0] for r in conn.execute(
                "SELECT public_id FROM resources WHERE internal_id IN (SELECT value FROM json_each(?)) ORDER BY internal_id",
                (str(ids),))]
        return await self.engine.read(tx)

    async def expand_ancestor(self, internal_id: int, levels_up: int, target: ResourceLevel) -> ResourceInfo | None:
        def tx(conn: Any) -> ResourceInfo | None:
            anc = reads.ancestor_internal(conn, internal_id, levels_up)
            if anc is None:
                return None
            found = reads.expand(conn, target, [anc])
            return found[0] if found else None
        return await self.engine.read(tx)

    async def descendant_attachments(self, internal_id: int) -> list[tuple[str, str, AttachmentInfo]]:
        return await self.engine.read(functools.partial(reads.descendant_attachments, internal_id=internal_id))

    async def attachments_of(self, internal_id: int) -> dict[int, AttachmentInfo]:
        return await self.engine.read(functools.partial(reads.attachments_of, internal_id=internal_id))

    async def all_labels(self) -> list[str]:
        return await self.engine.read(reads.all_labels)

    async def is_protected(self, internal_id: int) -> bool:
        return await self.engine.read(functools.partial(reads.is_protected, internal_id=internal_id))

    async def lookup_identifier(self, value: str) -> list[tuple[ResourceLevel, str]]:
        return await self.engine.read(functools.partial(reads.lookup_identifier, value=value))

    async def changes(self, since: int, limit: int, to: int | None = None,
                      types: tuple[ChangeType, ...] = ()) -> tuple[list[Change], bool, int]:
        return await self.engine.read(functools.partial(reads.get_changes, since=since, limit=limit, to=to,
                                                        types=types))

    async def last_change(self) -> tuple[list[Change], int]:
        def tx(conn: Any) -> tuple[list[Change], int]:
            return reads.last_change(conn), reads.last_change_seq(conn)
        return await self.engine.read(tx)

    async def exports(self, since: int, limit: int) -> tuple[list[dict[str, object]], bool, int]:
        return await self.engine.read(functools.partial(reads.get_exports, since=since, limit=limit))

    async def statistics(self) -> dict[str, int]:
        return await self.engine.read(reads.statistics)

    async def resource_statistics(self, internal_id: int) -> dict[str, int]:
        return await self.engine.read(functools.partial(reads.resource_statistics, internal_id=internal_id))

    async def all_attachment_uuids(self) -> dict[str, tuple[int, int]]:
        return await self.engine.read(reads.all_attachment_uuids)

    async def global_property(self, prop: int) -> str | None:
        return await self.engine.read(functools.partial(reads.global_property, prop=prop))

    # --- metadata, attachments and labels of one resource (services/metadata.py) ---------------
    async def set_user_metadata(self, public_id: str, level: ResourceLevel | None, mtype: int, value: str,
                                expected: tuple[int, str] | None, now: str) -> tuple[int, writes.RawChange]:
        return await self.engine.write(functools.partial(
            writes.set_user_metadata, public_id=public_id, level=level, mtype=mtype, value=value,
            expected=expected, now=now))

    async def delete_user_metadata(self, public_id: str, level: ResourceLevel | None, mtype: int,
                                   expected: tuple[int, str] | None, now: str) -> writes.RawChange:
        return await self.engine.write(functools.partial(
            writes.delete_user_metadata, public_id=public_id, level=level, mtype=mtype, expected=expected, now=now))

    async def set_attachment(self, public_id: str, level: ResourceLevel | None, att: AttachmentInfo,
                             expected: tuple[int, str] | None,
                             now: str) -> tuple[int, list[tuple[str, bool]], writes.RawChange]:
        return await self.engine.write(functools.partial(
            writes.set_attachment, public_id=public_id, level=level, att=att, expected=expected, now=now))

    async def delete_attachment(self, public_id: str, level: ResourceLevel | None, file_type: int,
                                expected: tuple[int, str] | None,
                                now: str) -> tuple[list[tuple[str, bool]], writes.RawChange]:
        return await self.engine.write(functools.partial(
            writes.delete_attachment, public_id=public_id, level=level, file_type=file_type, expected=expected,
            now=now))

    async def replace_attachment_file(self, public_id: str, old_uuid: str, att: AttachmentInfo,
                                      now: str) -> writes.RawChange:
        return await self.engine.write(functools.partial(
            writes.replace_attachment_file, public_id=public_id, old_uuid=old_uuid, att=att, now=now))

    async def modify_label(self, public_id: str, level: ResourceLevel, label: str, add: bool) -> None:
        await self.engine.write(functools.partial(
            writes.modify_label, public_id=public_id, level=level, label=label, add=add))

    async def resource_metadata(self, public_id: str, level: ResourceLevel | None) -> dict[int, tuple[str, int]] | None:
        return await self.engine.read(functools.partial(reads.resource_metadata, public_id=public_id, level=level))

    async def resource_attachments(self, public_id: str, level: ResourceLevel | None) -> dict[int, AttachmentInfo] | None:
        return await self.engine.read(functools.partial(reads.resource_attachments, public_id=public_id, level=level))

    def instance_dicom_file_sync(self, public_id: str) -> tuple[bool, AttachmentInfo | None]:
        """From a worker thread (see SqliteEngine.read_sync): whether the instance exists, and its DICOM file."""
        return self.engine.read_sync(functools.partial(reads.instance_dicom_file, public_id=public_id),
                                     single_statement=True)

    async def resource_labels(self, public_id: str, level: ResourceLevel | None) -> list[str] | None:
        return await self.engine.read(functools.partial(reads.resource_labels, public_id=public_id, level=level))

    # --- saved jobs (jobs/engine.py, SaveJobs) ------------------------------------------------
    async def save_jobs(self, rows: list[tuple[str, int, str]]) -> None:
        await self.engine.write(functools.partial(jobs.save_jobs, rows=rows))

    async def delete_jobs(self, ids: list[str]) -> None:
        await self.engine.write(functools.partial(jobs.delete_jobs, ids=ids))

    async def load_jobs(self) -> list[tuple[str, int, str]]:
        return await self.engine.read(jobs.load_jobs)

    # --- outgoing transfers (C-STORE SCU, peers) -------------------------------------------------
    async def resolve_for_sending(self, public_ids: list[str]) -> tuple[list[sending.ExportedResource],
                                                                        list[sending.OutgoingInstance], list[str]]:
        return await self.engine.read(functools.partial(sending.resolve, public_ids=public_ids))

    async def instances_by_id(self, public_ids: list[str]) -> dict[str, sending.OutgoingInstance]:
        return await self.engine.read(functools.partial(sending.instances_by_id, public_ids=public_ids))
