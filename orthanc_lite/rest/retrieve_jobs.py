"""Running a C-MOVE / C-GET retrieve as Orthanc does: a DicomMoveScu / DicomGetScu job, synchronous by
default (the answer is the job's Content) or asynchronous ({ID, Path})."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from ..dimse.queries import RetrieveWork
from ..errors import ErrorCode, OrthancError
from .helpers import ctx_of, json_response

logger = logging.getLogger(__name__)


def is_synchronous(body: dict[str, Any]) -> bool:
    """OrthancRestApi::IsSynchronousJobRequest: "Synchronous", else not "Asynchronous", else true."""
    for key, negate in (("Synchronous", False), ("Asynchronous", True)):
        if key in body:
            if not isinstance(body[key], bool):
                raise OrthancError(ErrorCode.BadFileFormat, f'Field "{key}" must be a Boolean')
            return body[key] != negate
    return True


async def submit(request: web.Request, work: RetrieveWork, body: dict[str, Any]) -> web.Response:
    """Through the job engine when the server has one; else the work runs within the request."""
    ctx = ctx_of(request)
    if ctx.jobs is not None:
        from ..jobs.retrieve import RetrieveJob
        from .jobs_submit import submit_job

        return await submit_job(request, RetrieveJob(work), body)
    if not is_synchronous(body):
        raise OrthancError(ErrorCode.NotImplemented, "Asynchronous retrieve needs the job engine")
    await work.run_all(ctx)
    return json_response(work.content())
