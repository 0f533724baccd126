"""submit_job: the "Synchronous" / "Asynchronous" / "Priority" body fields of every REST call that runs a job
(as OrthancRestApi::SubmitGenericJob)."""

from __future__ import annotations

from typing import Any, Callable

from aiohttp import web

from ..app_keys import JOBS
from ..errors import ErrorCode, OrthancError
from ..jobs.base import Job
from .helpers import json_response


def is_synchronous(body: Any, default: bool = True) -> bool:
    """"Synchronous" wins over "Asynchronous"; neither: the route's default."""
    if not isinstance(body, dict):
        return default
    if "Synchronous" in body:
        return _boolean(body, "Synchronous")
    if "Asynchronous" in body:
        return not _boolean(body, "Asynchronous")
    return default


def job_priority(body: Any) -> int:
    if not isinstance(body, dict) or "Priority" not in body:
        return 0
    value = body["Priority"]
    if isinstance(value, bool) or not isinstance(value, int):
        raise OrthancError(ErrorCode.BadFileFormat, 'The field "Priority" must be an integer')
    return value


def user_data(body: Any) -> tuple[Any, ...]:
    """The "UserData" field (any JSON, Orthanc >= 1.12.9) as the extra argument of JobEngine.submit, if any."""
    if isinstance(body, dict) and "UserData" in body:
        return (body["UserData"],)
    return ()


def _boolean(body: dict[str, Any], key: str) -> bool:
    value = body[key]
    if not isinstance(value, bool):
        raise OrthancError(ErrorCode.BadFileFormat, f'The field "{key}" must be a Boolean')
    return value


async def submit_job(request: web.Request, job: Job, body: dict[str, Any],
                     sync_answer: Callable[[dict[str, Any]], Any] | None = None,
                     default_synchronous: bool = True) -> web.Response:
    """Run the job: synchronously (answer its Content, or sync_answer(content)) or asynchronously (answer
    {"ID", "Path"}). A failed synchronous job answers its error like any REST error."""
    synchronous = is_synchronous(body, default_synchronous)
    priority = job_priority(body)
    engine = request.app[JOBS]
    extra = user_data(body)
    if synchronous:
        content = await engine.run_sync(job, priority, *extra)
        return json_response(sync_answer(content) if sync_answer is not None else content)
    job_id = engine.submit(job, priority, *extra)
    return json_response({"ID": job_id, "Path": f"/jobs/{job_id}"})
