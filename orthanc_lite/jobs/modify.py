"""The ResourceModification, SplitStudy and MergeStudy jobs: thin wrappers stepping a services/modify.py
ModificationRun (a few instances per step), serializable so that SaveJobs brings them back after a restart."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..services.modify import ModificationRun
from .base import Job, StepResult, register_job

if TYPE_CHECKING:
    from ..services.context import ServerContext


class _RunJob(Job):
    def __init__(self, run: ModificationRun) -> None:
        self.run = run

    async def step(self, ctx: ServerContext) -> StepResult:
        return StepResult.SUCCESS if await self.run.step(ctx) else StepResult.CONTINUE

    def progress(self) -> float:
        return self.run.progress()

    def content(self) -> dict[str, Any]:
        return self.run.content()

    def reset(self) -> None:
        self.run.reset()

    def serialize(self) -> dict[str, Any]:
        return self.run.serialize()

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> Job:
        return cls(ModificationRun.deserialize(data))


@register_job
class ResourceModificationJob(_RunJob):
    job_type = "ResourceModification"


@register_job
class SplitStudyJob(_RunJob):
    job_type = "SplitStudy"


@register_job
class MergeStudyJob(_RunJob):
    job_type = "MergeStudy"


def job_for(run: ModificationRun) -> Job:
    """The job type that Orthanc reports for this kind of run."""
    if run.kind == "split":
        return SplitStudyJob(run)
    if run.kind == "merge":
        return MergeStudyJob(run)
    return ResourceModificationJob(run)
