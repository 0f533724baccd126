"""JobEngine: Orthanc's jobs registry and engine on the event loop.

A priority queue served by ConcurrentJobs worker tasks; states Pending, Running, Success, Failure, Paused,
Retry; cancel and pause cancel the running step (asyncio.CancelledError inside the job); the JobsHistorySize
most recent finished jobs are kept. With SaveJobs, every job that can serialize itself is written to the
index's `jobs` table (batched by a flusher task) and comes back at start-up: pending and paused ones as they
were, running ones from scratch (reset), finished ones listed.
"""

from __future__ import annotations

import asyncio
import collections
import datetime
import enum
import heapq
import itertools
import logging
import os
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Final

import orjson

from ..errors import ErrorCode, OrthancError
from .base import Job, StepResult, job_class

if TYPE_CHECKING:
    from ..services.context import ServerContext

logger = logging.getLogger(__name__)

STOP_WAIT_S: Final = 10.0  # how long cancel/pause/close wait for a step to honour its cancellation


class JobState(enum.Enum):
    Pending = "Pending"
    Running = "Running"
    Success = "Success"
    Failure = "Failure"
    Paused = "Paused"
    Retry = "Retry"


FINISHED: Final = frozenset({JobState.Success, JobState.Failure})
ACTIVE: Final = frozenset({JobState.Pending, JobState.Running, JobState.Retry})


_NO_USER_DATA: Any = object()  # a job submitted without a "UserData" field (distinct from "UserData": null)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def iso(moment: datetime.datetime) -> str:
    """boost's to_iso_string, as Orthanc prints job times: 20201227T161842.520129."""
    return moment.strftime("%Y%m%dT%H%M%S.%f")


def _parse_iso(text: str) -> datetime.datetime:
    fmt = "%Y%m%dT%H%M%S.%f" if "." in text else "%Y%m%dT%H%M%S"
    return datetime.datetime.strptime(text, fmt).replace(tzinfo=datetime.timezone.utc)


@dataclass(eq=False)
class JobRecord:
    """A job and its registry state (Orthanc's JobHandler)."""

    id: str
    job: Job
    priority: int
    seq: int
    state: JobState = JobState.Pending
    creation_time: datetime.datetime = field(default_factory=_now)
    last_change_time: datetime.datetime = field(default_factory=_now)
    runtime: float = 0.0  # seconds spent Running before the last state change
    error: ErrorCode = ErrorCode.Success
    error_details: str = ""
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    stop_request: JobState | None = None  # Paused or Failure (cancel), asked while Running
    step_task: asyncio.Task[StepResult] | None = None
    # the "UserData" of the submission (Orthanc >= 1.12.9), shown as such in GET /jobs/{id}; "UserData": null is
    # kept too, _NO_USER_DATA is none given
    user_data: Any = _NO_USER_DATA

    @property
    def job_type(self) -> str:
        return self.job.job_type

    def effective_runtime(self) -> float:
        if self.state is JobState.Running:
            return self.runtime + (_now() - self.last_change_time).total_seconds()
        return self.runtime

    def set_state(self, state: JobState) -> None:
        now = _now()
        if self.state is JobState.Running:
            self.runtime += (now - self.last_change_time).total_seconds()
        self.state = state
        self.last_change_time = now
        self.stop_request = None

    def progress_percent(self) -> int:
        if self.state is JobState.Success:
            return 100
        try:
            value = float(self.job.progress())
        except Exception:  # noqa: BLE001 - a job's bookkeeping bug must not break GET /jobs
            logger.exception("Job %s: progress() failed", self.id)
            value = 0.0
        return int(round(min(max(value, 0.0), 1.0) * 100))

    def info(self) -> dict[str, Any]:
        """Orthanc's JobInfo::Format: the answer of GET /jobs/{id}."""
        now = _now()
        runtime = self.effective_runtime()
        out: dict[str, Any] = {
            "ID": self.id,
            "Type": self.job_type,
            "Priority": self.priority,
            "State": self.state.value,
            "ErrorCode": self.error.code,
            "ErrorDescription": self.error.description,
            "ErrorDetails": self.error_details,
            "Timestamp": iso(now),
            "CreationTime": iso(self.creation_time),
            "EffectiveRuntime": round(runtime, 3),
            "Progress": self.progress_percent(),
            "Content": self.content(),
        }
        if self.user_data is not _NO_USER_DATA:
            out["UserData"] = self.user_data
        if self.state is JobState.Running:
            progress = self.progress_percent() / 100
            if progress > 0.01 and runtime > 0:
                out["EstimatedTimeOfArrival"] = iso(now + datetime.timedelta(seconds=runtime / progress * (1 - progress)))
        if self.state in FINISHED:
            out["CompletionTime"] = iso(self.last_change_time)
        return out

    def content(self) -> dict[str, Any]:
        try:
            return self.job.content()
        except Exception:  # noqa: BLE001 - see progress_percent
            logger.exception("Job %s: content() failed", self.id)
            return {}


class JobEngine:
    """The job engine. Created by app.build() (app[JOBS]), started and closed by its cleanup context."""

    def __init__(self, ctx: ServerContext) -> None:
        settings = ctx.settings
        self._ctx = ctx
        self.concurrency = int(settings.ConcurrentJobs) or (os.cpu_count() or 1)
        self.history_size = int(settings.JobsHistorySize)
        self.save = bool(settings.SaveJobs)
        self._records: dict[str, JobRecord] = {}
        self._completed: collections.deque[str] = collections.deque()
        self._queue: list[tuple[int, int, str]] = []  # (-priority, seq, id): higher priority first, then FIFO
        self._seq = itertools.count(1)
        self._changed = asyncio.Event()  # replaced at every change; waiters hold the old one
        self._workers: list[asyncio.Task[None]] = []
        self._dirty: set[str] = set()
        self._dirty_event = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._flusher: asyncio.Task[None] | None = None
        self._started = False
        self._closing = False

    # --- lifecycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        if self.save:
            await self._load()
            self._flusher = asyncio.create_task(self._flush_loop(), name="jobs-flusher")
        self._workers = [asyncio.create_task(self._worker(), name=f"jobs-worker-{i}") for i in range(self.concurrency)]
        logger.info("Jobs engine started with %d workers", self.concurrency)

    async def close(self) -> None:
        """Idempotent. Stop the workers (a running job stays Running in the saved registry, so that it
        restarts from scratch next time), then write what is left to write."""
        if self._closing:
            return
        self._closing = True
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers.clear()
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
            self._flusher = None
            for record in self._records.values():
                if record.state is JobState.Running:
                    self._dirty.add(record.id)
            await self.flush()

    # --- the contract --------------------------------------------------------------------------
    def submit(self, job: Job, priority: int = 0, user_data: Any = _NO_USER_DATA) -> str:
        """Queue a job; returns its ID."""
        record = self._new_record(job, priority, user_data)
        self._records[record.id] = record
        self._enqueue(record)
        logger.info("New %s job submitted with priority %d: %s", job.job_type, record.priority, record.id)
        self._changed_record(record)
        return record.id

    def _new_record(self, job: Job, priority: int, user_data: Any) -> JobRecord:
        """The record of a job being submitted or tracked (refused once the engine is stopping)."""
        if self._closing:
            raise OrthancError(ErrorCode.BadSequenceOfCalls, "The jobs engine is stopping")
        return JobRecord(str(uuid.uuid4()), job, int(priority), next(self._seq), user_data=user_data)

    def get(self, job_id: str) -> JobRecord | None:
        return self._records.get(job_id)

    def records(self) -> list[JobRecord]:
        """Every known job, in submission order."""
        return sorted(self._records.values(), key=lambda r: r.seq)

    async def wait(self, job_id: str) -> JobRecord:
        """Wait until the job reaches Success or Failure."""
        record = self._records.get(job_id)
        if record is None:
            raise OrthancError(ErrorCode.InexistentItem, f"Unknown job: {job_id}")
        while record.state not in FINISHED:
            await record.finished.wait()
        return record

    async def run_sync(self, job: Job, priority: int = 0, user_data: Any = _NO_USER_DATA) -> dict[str, Any]:
        """Submit, wait, and answer the job's Content (or raise the job's error), as SubmitAndWait."""
        record = await self.wait(self.submit(job, priority, user_data))
        if self.history_size == 0:
            raise OrthancError(ErrorCode.InexistentItem,
                               'Cannot retrieve the status of the job, make sure that "JobsHistorySize" is not 0')
        if record.state is JobState.Failure:
            raise OrthancError(record.error, record.error_details or None)
        return record.content()

    def track(self, job: Job, priority: int = 0, user_data: Any = _NO_USER_DATA) -> JobRecord:
        """Register a job that the caller runs itself (a synchronous archive streamed by its HTTP request, as
        Orthanc registers it): Running at once, never queued; the caller ends it with settle()."""
        record = self._new_record(job, priority, user_data)
        record.set_state(JobState.Running)
        self._records[record.id] = record
        self._changed_record(record)
        return record

    async def settle(self, record: JobRecord, error: OrthancError | None = None) -> None:
        """End a tracked job: Success, or Failure with the error (a cancel asked meanwhile wins)."""
        if record.state is not JobState.Running:
            return
        if record.stop_request is not None:
            self._fail(record, ErrorCode.CanceledJob, "")
        elif error is not None:
            self._fail(record, error.code, error.details or "")
        else:
            record.set_state(JobState.Success)
        await self._finish(record, success=record.state is JobState.Success)

    async def cancel(self, job_id: str) -> bool:
        """Cancel a job (a running one within its current step). False if the job is unknown."""
        record = self._records.get(job_id)
        if record is None:
            return False
        logger.info("Canceling job: %s", job_id)
        if record.state is JobState.Running:
            await self._stop_running(record, JobState.Failure)
        elif record.state in (JobState.Pending, JobState.Retry, JobState.Paused):
            record.set_state(JobState.Failure)
            record.error, record.error_details = ErrorCode.CanceledJob, ""
            await self._finish(record, success=False)
        return True

    async def pause(self, job_id: str) -> bool:
        record = self._records.get(job_id)
        if record is None:
            return False
        logger.info("Pausing job: %s", job_id)
        if record.state is JobState.Running:
            await self._stop_running(record, JobState.Paused)
        elif record.state in (JobState.Pending, JobState.Retry):
            record.set_state(JobState.Paused)
            self._changed_record(record)
        return True

    async def resume(self, job_id: str) -> bool:
        """Only a paused job resumes (where it stopped)."""
        record = self._records.get(job_id)
        if record is None or record.state is not JobState.Paused:
            return False
        logger.info("Resuming job: %s", job_id)
        record.set_state(JobState.Pending)
        self._enqueue(record)
        self._changed_record(record)
        return True

    async def resubmit(self, job_id: str) -> bool:
        """Only a failed job is resubmitted, from scratch."""
        record = self._records.get(job_id)
        if record is None or record.state is not JobState.Failure:
            return False
        logger.info("Resubmitting failed job: %s", job_id)
        record.job.reset()
        if job_id in self._completed:
            self._completed.remove(job_id)
        record.runtime = 0.0
        record.finished.clear()
        record.set_state(JobState.Pending)
        self._enqueue(record)
        self._changed_record(record)
        return True

    async def delete(self, job_id: str) -> bool:
        """Forget a finished job and its outputs (DELETE /jobs/{id}); False if unknown or not finished."""
        record = self._records.get(job_id)
        if record is None or record.state not in FINISHED:
            return False
        await self._forget(record)
        self._signal()
        return True

    async def join(self) -> None:
        """Wait until no job is pending or running (tests; paused jobs do not count)."""
        await self._wait_until(lambda: not any(r.state in ACTIVE for r in self._records.values()))

    async def flush(self) -> None:
        """Write the changed jobs to the index now."""
        async with self._flush_lock:
            dirty, self._dirty = self._dirty, set()
            rows: list[tuple[str, int, str]] = []
            gone: list[str] = []
            for job_id in sorted(dirty):
                record = self._records.get(job_id)
                if record is None:
                    gone.append(job_id)
                    continue
                document = self._document(record)
                if document is not None:
                    rows.append((job_id, record.seq, document))
            try:
                if rows:
                    await self._ctx.index.save_jobs(rows)
                if gone:
                    await self._ctx.index.delete_jobs(gone)
            except OrthancError as exc:
                logger.error("Cannot save the jobs registry: %s", exc)

    # --- internals -----------------------------------------------------------------------------
    def _signal(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _wait_until(self, predicate: Callable[[], bool]) -> None:
        while True:
            changed = self._changed
            if predicate():
                return
            await changed.wait()

    def _changed_record(self, record: JobRecord) -> None:
        if self.save:
            self._dirty.add(record.id)
            self._dirty_event.set()
        self._signal()

    def _enqueue(self, record: JobRecord) -> None:
        heapq.heappush(self._queue, (-record.priority, record.seq, record.id))

    def _next_pending(self) -> JobRecord | None:
        while self._queue:
            _, _, job_id = heapq.heappop(self._queue)
            record = self._records.get(job_id)
            if record is not None and record.state is JobState.Pending:  # else: a stale entry
                return record
        return None

    async def _worker(self) -> None:
        while True:
            changed = self._changed
            record = self._next_pending()
            if record is None:
                await changed.wait()
                continue
            try:
                await self._run(record)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the engine's own bug: fail this job, keep the worker
                logger.exception("Job %s: engine error", record.id)
                if record.state is JobState.Running:
                    record.set_state(JobState.Failure)
                    record.error, record.error_details = ErrorCode.InternalError, "Internal error in the jobs engine"
                    await self._finish(record, success=False)

    async def _run(self, record: JobRecord) -> None:
        record.set_state(JobState.Running)
        record.error, record.error_details = ErrorCode.Success, ""
        logger.info("Job started: %s (%s)", record.id, record.job_type)
        self._changed_record(record)
        while True:
            task: asyncio.Task[StepResult] = asyncio.ensure_future(record.job.step(self._ctx))
            record.step_task = task
            try:
                await asyncio.wait({task})
            except asyncio.CancelledError:  # the engine is closing: stop the step, stay Running
                task.cancel()
                await asyncio.wait({task}, timeout=STOP_WAIT_S)
                raise
            finally:
                record.step_task = None
            if record.stop_request is not None:
                # Pause or cancel asked while the step ran (it was cancelled, or it had just finished).
                await self._apply_stop(record, record.stop_request)
                return
            if task.cancelled():
                self._fail(record, ErrorCode.InternalError, "The job step was cancelled")
                await self._finish(record, success=False)
                return
            exc = task.exception()
            if exc is not None:
                if isinstance(exc, OrthancError):
                    logger.error("Job %s (%s) failed: %s", record.id, record.job_type, exc)
                    self._fail(record, exc.code, exc.details or "")
                else:
                    logger.error("Job %s (%s) failed", record.id, record.job_type, exc_info=exc)
                    self._fail(record, ErrorCode.InternalError, str(exc))
                await self._finish(record, success=False)
                return
            if task.result() is StepResult.SUCCESS:
                record.set_state(JobState.Success)
                logger.info("Job has completed with success: %s", record.id)
                await self._finish(record, success=True)
                return
            await asyncio.sleep(0)  # let the loop breathe between steps

    def _fail(self, record: JobRecord, code: ErrorCode, details: str) -> None:
        record.set_state(JobState.Failure)
        record.error, record.error_details = code, details

    async def _apply_stop(self, record: JobRecord, target: JobState) -> None:
        if target is JobState.Paused:
            record.set_state(JobState.Paused)
            logger.info("Job paused: %s", record.id)
            self._changed_record(record)
        else:
            self._fail(record, ErrorCode.CanceledJob, "")
            logger.info("Job has completed with cancel: %s", record.id)
            await self._finish(record, success=False)

    async def _stop_running(self, record: JobRecord, target: JobState) -> None:
        """Ask the running step to stop, and wait (bounded) until the worker has applied the new state."""
        record.stop_request = target
        if record.step_task is not None:
            record.step_task.cancel()
        try:
            await asyncio.wait_for(self._wait_until(lambda: record.state is not JobState.Running), STOP_WAIT_S)
        except asyncio.TimeoutError:
            logger.warning("Job %s did not stop within %.0f s", record.id, STOP_WAIT_S)

    async def _finish(self, record: JobRecord, success: bool) -> None:
        try:
            await record.job.on_finished(self._ctx, success)
        except Exception:  # noqa: BLE001 - cleanup errors are logged, the job state stands
            logger.exception("Job %s: on_finished failed", record.id)
        self._completed.append(record.id)
        record.finished.set()
        self._changed_record(record)
        while len(self._completed) > self.history_size:
            oldest = self._records.get(self._completed[0])
            if oldest is None:
                self._completed.popleft()
                continue
            await self._forget(oldest)

    async def _forget(self, record: JobRecord) -> None:
        if record.id in self._completed:
            self._completed.remove(record.id)
        self._records.pop(record.id, None)
        try:
            await self._ctx.executors.run_io(record.job.delete_outputs)
        except Exception:  # noqa: BLE001 - leftover files are logged, not fatal
            logger.exception("Job %s: cannot delete its outputs", record.id)
        if self.save:
            self._dirty.add(record.id)
            self._dirty_event.set()

    # --- persistence -----------------------------------------------------------------------------
    def _document(self, record: JobRecord) -> str | None:
        try:
            serialized = record.job.serialize()
        except NotImplementedError:
            return None
        except Exception:  # noqa: BLE001 - a job that cannot serialize is kept in memory only
            logger.exception("Job %s: cannot serialize", record.id)
            return None
        document: dict[str, Any] = {
            "Type": record.job_type,
            "State": record.state.value,
            "Priority": record.priority,
            "CreationTime": iso(record.creation_time),
            "LastChangeTime": iso(record.last_change_time),
            "Runtime": record.effective_runtime(),
            "ErrorCode": record.error.code,
            "ErrorDetails": record.error_details,
            "Job": serialized,
        }
        if record.user_data is not _NO_USER_DATA:
            document["UserData"] = record.user_data
        return orjson.dumps(document).decode()

    async def _flush_loop(self) -> None:
        while True:
            await self._dirty_event.wait()
            self._dirty_event.clear()
            await self.flush()

    async def _load(self) -> None:
        codes = {code.code: code for code in ErrorCode}
        rows = await self._ctx.index.load_jobs()
        max_seq = 0
        for job_id, seq, document in rows:
            max_seq = max(max_seq, seq)
            try:
                data = orjson.loads(document)
                job = job_class(str(data["Type"])).deserialize(data["Job"])
                state = JobState(data["State"])
                record = JobRecord(job_id, job, int(data.get("Priority", 0)), seq, state=state,
                                   creation_time=_parse_iso(data["CreationTime"]),
                                   last_change_time=_parse_iso(data["LastChangeTime"]),
                                   runtime=float(data.get("Runtime", 0.0)),
                                   error=codes.get(int(data.get("ErrorCode", 0)), ErrorCode.InternalError),
                                   error_details=str(data.get("ErrorDetails", "")))
                if "UserData" in data:
                    record.user_data = data["UserData"]
            except Exception as exc:  # noqa: BLE001 - one unreadable job must not prevent the start-up
                logger.error("Cannot reload the saved job %s: %s", job_id, exc)
                continue
            if state in (JobState.Running, JobState.Retry):
                # Interrupted by the stop: start over.
                job.reset()
                record.state = JobState.Pending
                record.runtime = 0.0
            self._records[job_id] = record
            if record.state is JobState.Pending:
                self._enqueue(record)
            elif record.state in FINISHED:
                record.finished.set()
                self._completed.append(job_id)
        self._seq = itertools.count(max_seq + 1)
        while len(self._completed) > self.history_size:
            oldest = self._records.get(self._completed[0])
            if oldest is None:
                self._completed.popleft()
            else:
                await self._forget(oldest)
        if rows:
            logger.warning("Reloaded %d jobs from the index", len(self._records))
