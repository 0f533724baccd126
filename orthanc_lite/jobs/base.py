"""The Job interface (Orthanc's IJob): stepwise, cancellable, serializable. Concrete jobs register their
job_type with @register_job so that a saved job can be rebuilt after a restart (SaveJobs)."""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from ..errors import ErrorCode, OrthancError

if TYPE_CHECKING:
    from ..services.context import ServerContext


class StepResult(enum.Enum):
    """What one step() tells the engine: run me again, or I am done."""

    CONTINUE = "Continue"
    SUCCESS = "Success"


@dataclass(frozen=True, slots=True)
class JobOutput:
    """One output of a finished job (GET /jobs/{id}/{key}): a file on disk or bytes in memory."""

    content_type: str
    path: str | None = None
    data: bytes | None = None
    filename: str | None = None


class Job(abc.ABC):
    """One unit of background work. step() does a bounded piece of it (e.g. one instance) and is cancelled
    (asyncio.CancelledError) on cancel or pause: it cleans up and re-raises; a paused job re-runs the
    interrupted step when resumed. Raise OrthancError to fail the job."""

    job_type: ClassVar[str] = ""

    @abc.abstractmethod
    async def step(self, ctx: ServerContext) -> StepResult:
        """Do one bounded unit of work."""

    @abc.abstractmethod
    def progress(self) -> float:
        """Between 0 and 1."""

    @abc.abstractmethod
    def content(self) -> dict[str, Any]:
        """Orthanc's public "Content" of the job (also the answer of a synchronous call)."""

    @abc.abstractmethod
    def reset(self) -> None:
        """Forget the progress: a resubmitted (or restarted) job starts over."""

    def serialize(self) -> dict[str, Any]:
        """What deserialize() needs to rebuild the job after a restart. Jobs that cannot be saved raise
        NotImplementedError (the engine then keeps them in memory only, as Orthanc does)."""
        raise NotImplementedError

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> Job:
        """Rebuild a job from serialize()'s output."""
        raise NotImplementedError

    def outputs(self) -> dict[str, JobOutput]:
        """The downloadable outputs of a successful job, by key."""
        return {}

    def delete_output(self, key: str) -> bool:
        """Release one output (DELETE /jobs/{id}/{key}); False if there is no such output."""
        return False

    def delete_outputs(self) -> None:
        """Release the outputs (the job leaves the history or is deleted). May block briefly (file unlink)."""

    async def on_finished(self, ctx: ServerContext, success: bool) -> None:
        """Called once the job reaches Success or Failure (e.g. to log exports, remove temporary files)."""


_JOB_TYPES: dict[str, type[Job]] = {}

J = TypeVar("J", bound=type[Job])


def register_job(cls: J) -> J:
    """Class decorator: make the class rebuildable from its saved job_type."""
    if not cls.job_type:
        raise TypeError(f"{cls.__name__} has no job_type")
    _JOB_TYPES[cls.job_type] = cls
    return cls


def job_class(job_type: str) -> type[Job]:
    found = _JOB_TYPES.get(job_type)
    if found is None:
        raise OrthancError(ErrorCode.BadFileFormat, f"Cannot unserialize a job of type: {job_type}")
    return found
