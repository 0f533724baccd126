"""Running a C-MOVE / C-GET retrieve as Orthanc does: a DicomMoveScu / DicomGetScu job, synchronous by
default (the answer is the job's Content) or asynchronous ({ID, Path})."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..dimse.queries import RetrieveWork
from ..jobs.retrieve import RetrieveJob
from .jobs_submit import submit_job


async def submit(request: web.Request, work: RetrieveWork, body: dict[str, Any]) -> web.Response:
    """SubmitCommandsJob: "Synchronous" / "Asynchronous" / "Priority" from the body."""
    return await submit_job(request, RetrieveJob(work), body)
