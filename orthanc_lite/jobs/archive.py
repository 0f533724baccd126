"""Asynchronous archives and media (Orthanc's ArchiveJob, types "Archive" and "Media"): the ZIP is written to a
temporary file one chunk per step, then offered as the job's "archive" output (GET /jobs/{id}/archive).

As Orthanc's media archive, only the last MediaArchiveSize outputs are kept: a newer one evicts the oldest.
Not saved across restarts (Orthanc's ArchiveJob does not serialize either); a paused or cancelled job drops
its partial file and starts over when resumed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import uuid
from typing import Any, Awaitable, BinaryIO, TypeVar

from ..errors import ErrorCode, OrthancError
from ..services import archive as archive_service
from ..services.context import ServerContext
from ..storage.base import unlink_quietly
from .base import Job, JobOutput, StepResult, register_job

logger = logging.getLogger(__name__)

T = TypeVar("T")
_KEPT_KEY = "media_archive"  # ctx.extra: the finished archive jobs whose file is still kept, oldest first


async def _settled(work: Awaitable[T]) -> T:
    """Await a file operation running in a pool; if the step is cancelled meanwhile, let the operation end
    first, so that the cleanup that follows sees the file it created or wrote."""
    future = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await future
        raise


class _ArchiveJobBase(Job):
    def __init__(self, plan: archive_service.ArchivePlan, transcoder: archive_service.Transcoder | None = None,
                 filename: str | None = None) -> None:
        self.plan = plan
        self.transcoder = transcoder
        self.filename = filename or "archive.zip"
        self._producer: archive_service.ArchiveProducer | None = None
        self._file: BinaryIO | None = None
        self._path: str | None = None
        self._done = False

    async def step(self, ctx: ServerContext) -> StepResult:
        try:
            if self._producer is None:
                self._path = os.path.join(archive_service.archives_dir(ctx), f"job-archive-{uuid.uuid4().hex}.zip")
                self._file = await _settled(ctx.executors.run_io(open, self._path, "wb"))
                self._producer = archive_service.ArchiveProducer(ctx, self.plan, transcoder=self.transcoder)
                return StepResult.CONTINUE
            chunk = await self._producer.next_chunk()
            if chunk:
                assert self._file is not None
                await _settled(ctx.executors.run_io(self._file.write, chunk))
            if chunk is not None:
                return StepResult.CONTINUE
            assert self._file is not None
            await _settled(ctx.executors.run_io(self._file.close))
            self._file = None
            self._done = True
            return StepResult.SUCCESS
        except asyncio.CancelledError:
            self._discard()  # paused or cancelled mid-step: the next run starts over
            raise

    def progress(self) -> float:
        if self._done:
            return 1.0
        return self._producer.progress() if self._producer is not None else 0.0

    def content(self) -> dict[str, Any]:
        return archive_service.public_content(self.plan, self._producer)

    def reset(self) -> None:
        self._discard()

    def outputs(self) -> dict[str, JobOutput]:
        if self._done and self._path is not None:  # no I/O here: GET /jobs/{id}/{key} checks the file is there
            return {"archive": JobOutput("application/zip", path=self._path, filename=self.filename)}
        return {}

    def delete_output(self, key: str) -> bool:
        if key != "archive" or not self._done or self._path is None:
            return False
        self.delete_outputs()
        return True

    def delete_outputs(self) -> None:
        if self._path is not None:
            unlink_quietly(self._path)
        self._path = None
        self._done = False

    async def on_finished(self, ctx: ServerContext, success: bool) -> None:
        if not success:
            await ctx.executors.run_io(self._discard)
            return
        kept: collections.deque[_ArchiveJobBase] = ctx.extra.setdefault(_KEPT_KEY, collections.deque())
        kept.append(self)
        limit = max(1, int(ctx.settings.MediaArchiveSize))
        while len(kept) > limit:
            oldest = kept.popleft()
            logger.info("Dropping the oldest asynchronous archive (MediaArchiveSize is %d)", limit)
            await ctx.executors.run_io(oldest.delete_outputs)

    def _discard(self) -> None:
        """Blocking but brief (close and unlink one file); called on cancel, reset and failure."""
        if self._producer is not None:
            self._producer.close()
        self._producer = None
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._path is not None:
            unlink_quietly(self._path)
            self._path = None
        self._done = False


@register_job
class ArchiveJob(_ArchiveJobBase):
    job_type = "Archive"


@register_job
class MediaJob(_ArchiveJobBase):
    job_type = "Media"


class SynchronousArchiveJob(Job):
    """A synchronous archive as Orthanc (>= 1.9.4) shows it in /jobs: registered with JobEngine.track() while
    the HTTP request produces and sends the ZIP itself; only its Content and progress live here."""

    job_type = "Archive"

    def __init__(self, plan: archive_service.ArchivePlan, producer: archive_service.ArchiveProducer) -> None:
        self.plan = plan
        self.producer = producer

    async def step(self, ctx: ServerContext) -> StepResult:
        raise OrthancError(ErrorCode.BadSequenceOfCalls, "A synchronous archive cannot be resubmitted")

    def progress(self) -> float:
        return self.producer.progress()

    def content(self) -> dict[str, Any]:
        return archive_service.public_content(self.plan, self.producer)

    def reset(self) -> None:
        """Nothing to forget: the HTTP request that produced the archive is over."""


class SynchronousMediaJob(SynchronousArchiveJob):
    job_type = "Media"
