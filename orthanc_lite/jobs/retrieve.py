"""DicomMoveScu and DicomGetScu jobs (Orthanc's DicomRetrieveScuBaseJob): one step per resource, each one
C-MOVE or C-GET association driven by dimse/queries.py::RetrieveWork."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..dimse.queries import RetrieveWork
from .base import Job, StepResult, register_job

if TYPE_CHECKING:
    from ..services.context import ServerContext


class RetrieveJob(Job):
    """The common part; `RetrieveJob(work)` builds the concrete class for the work's method."""

    def __new__(cls, work: RetrieveWork) -> RetrieveJob:  # noqa: D102 - factory on the method
        target = MoveScuJob if work.method == "C-MOVE" else GetScuJob
        return super().__new__(target if cls is RetrieveJob else cls)

    def __init__(self, work: RetrieveWork) -> None:
        self.work = work

    async def step(self, ctx: ServerContext) -> StepResult:
        if not self.work.done():
            await self.work.run_next(ctx)
        return StepResult.SUCCESS if self.work.done() else StepResult.CONTINUE

    def progress(self) -> float:
        return self.work.fraction()

    def content(self) -> dict[str, Any]:
        return self.work.content()

    def reset(self) -> None:
        self.work.reset()

    def serialize(self) -> dict[str, Any]:
        return self.work.serialize()

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> Job:
        return RetrieveJob(RetrieveWork.deserialize(data))


@register_job
class MoveScuJob(RetrieveJob):
    job_type = "DicomMoveScu"


@register_job
class GetScuJob(RetrieveJob):
    job_type = "DicomGetScu"
