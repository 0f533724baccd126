"""/jobs: list, inspect, control and download the outputs of jobs (~ the jobs part of OrthancRestSystem.cpp)."""

from __future__ import annotations

import os

from aiohttp import web

from ..errors import ErrorCode, OrthancError
from ..app_keys import JOBS
from ..jobs.engine import JobEngine, JobState
from .helpers import ctx_of, json_response

routes = web.RouteTableDef()


def engine_of(request: web.Request) -> JobEngine:
    return request.app[JOBS]


@routes.get("/jobs")
async def list_jobs(request: web.Request) -> web.Response:
    """List the jobs (?expand: their details)."""
    # Orthanc keeps the IDs in a std::set: the list is sorted by ID.
    records = sorted(engine_of(request).records(), key=lambda r: r.id)
    if "expand" in request.query:
        return json_response([r.info() for r in records])
    return json_response([r.id for r in records])


@routes.get("/jobs/{id}")
async def get_job(request: web.Request) -> web.Response:
    """Details of one job: state, progress, error and content."""
    record = engine_of(request).get(request.match_info["id"])
    if record is None:
        raise web.HTTPNotFound()
    return json_response(record.info())


@routes.delete("/jobs/{id}")
async def delete_job(request: web.Request) -> web.Response:
    """Remove a finished job from the history, with its outputs."""
    job_id = request.match_info["id"]
    if not await engine_of(request).delete(job_id):
        raise OrthancError(ErrorCode.InexistentItem, f"No finished job found with this id: {job_id}")
    return web.Response(text="", content_type="text/plain")


async def _action(request: web.Request, ok: bool) -> web.Response:
    if not ok:  # Orthanc answers nothing: 404
        raise web.HTTPNotFound()
    return json_response({})


@routes.post("/jobs/{id}/cancel")
async def cancel_job(request: web.Request) -> web.Response:
    """Cancel a job (a running one stops within its current step)."""
    return await _action(request, await engine_of(request).cancel(request.match_info["id"]))


@routes.post("/jobs/{id}/pause")
async def pause_job(request: web.Request) -> web.Response:
    """Pause a job."""
    return await _action(request, await engine_of(request).pause(request.match_info["id"]))


@routes.post("/jobs/{id}/resume")
async def resume_job(request: web.Request) -> web.Response:
    """Resume a paused job."""
    return await _action(request, await engine_of(request).resume(request.match_info["id"]))


@routes.post("/jobs/{id}/resubmit")
async def resubmit_job(request: web.Request) -> web.Response:
    """Resubmit a failed job (it starts over)."""
    return await _action(request, await engine_of(request).resubmit(request.match_info["id"]))


@routes.get("/jobs/{id}/{key}")
async def get_job_output(request: web.Request) -> web.StreamResponse:
    """Download an output of a successful job (e.g. "archive")."""
    key = request.match_info["key"]
    record = engine_of(request).get(request.match_info["id"])
    output = None
    if record is not None and record.state is JobState.Success:
        output = record.job.outputs().get(key)
    if output is not None and output.path is not None \
            and not await ctx_of(request).executors.run_io(os.path.exists, output.path):
        output = None  # the file is gone (e.g. removed behind our back): no such output
    if output is None:
        raise OrthancError(ErrorCode.InexistentItem, f"Job has no such output: {key}")
    headers = {"Content-Type": output.content_type}
    if output.filename:
        headers["Content-Disposition"] = f'filename="{os.path.basename(output.filename)}"'
    if output.path is not None:
        return web.FileResponse(output.path, headers=headers)
    return web.Response(body=output.data or b"", headers=headers)


@routes.delete("/jobs/{id}/{key}")
async def delete_job_output(request: web.Request) -> web.Response:
    """Delete an output of a successful job."""
    key = request.match_info["key"]
    record = engine_of(request).get(request.match_info["id"])
    deleted = False
    if record is not None and record.state is JobState.Success:
        deleted = await ctx_of(request).executors.run_io(record.job.delete_output, key)
    if not deleted:
        raise OrthancError(ErrorCode.InexistentItem, f"Job has no such output: {key}")
    return web.Response(text="", content_type="text/plain")
