"""The jobs engine and /jobs, driven with a small test-only job type over a real server."""

from __future__ import annotations

import asyncio
import pathlib
from typing import Any, ClassVar

import aiohttp
import pytest

import orthanc_lite
from orthanc_lite.config import Settings
from orthanc_lite.errors import ErrorCode, OrthancError
from orthanc_lite.jobs.base import Job, JobOutput, StepResult, register_job
from orthanc_lite.jobs.engine import JobEngine, JobState
from orthanc_lite.rest.jobs_submit import is_synchronous, job_priority

INFO_KEYS = {"ID", "Type", "State", "Progress", "Priority", "CreationTime", "EffectiveRuntime", "ErrorCode",
             "ErrorDescription", "ErrorDetails", "Timestamp", "Content"}


@register_job
class CountingJob(Job):
    """Counts to `total`, one step each. Optional: block inside a step until released (gates shared by
    name), fail at a step (once or always), remember the cancellations it saw, record run order."""

    job_type = "TestCounting"
    gates: ClassVar[dict[str, asyncio.Event]] = {}
    started: ClassVar[dict[str, asyncio.Event]] = {}
    order: ClassVar[list[str]] = []
    cancelled: ClassVar[list[str]] = []

    def __init__(self, name: str, total: int = 3, block_at: int = -1, fail_at: int = -1,
                 fail_once: bool = False, done: int = 0, resets: int = 0) -> None:
        self.name, self.total, self.block_at, self.fail_at = name, total, block_at, fail_at
        self.fail_once, self.done, self.resets = fail_once, done, resets

    async def step(self, ctx: Any) -> StepResult:
        if self.done == 0:
            CountingJob.order.append(self.name)
        if self.done == self.block_at:
            CountingJob.started.setdefault(self.name, asyncio.Event()).set()
            try:
                await CountingJob.gates.setdefault(self.name, asyncio.Event()).wait()
            except asyncio.CancelledError:
                CountingJob.cancelled.append(self.name)
                raise
        if self.done == self.fail_at:
            if self.fail_once:
                self.fail_at = -1
            raise OrthancError(ErrorCode.NetworkProtocol, f"{self.name} failed at {self.done}")
        self.done += 1
        return StepResult.SUCCESS if self.done >= self.total else StepResult.CONTINUE

    def progress(self) -> float:
        return self.done / self.total

    def content(self) -> dict[str, Any]:
        return {"Name": self.name, "Done": self.done, "Total": self.total, "Resets": self.resets}

    def reset(self) -> None:
        self.done = 0
        self.resets += 1

    def serialize(self) -> dict[str, Any]:
        return {"Name": self.name, "Total": self.total, "BlockAt": self.block_at, "FailAt": self.fail_at,
                "Done": self.done, "Resets": self.resets}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> Job:
        return cls(data["Name"], data["Total"], data["BlockAt"], data["FailAt"], done=data["Done"],
                   resets=data["Resets"])

    def outputs(self) -> dict[str, JobOutput]:
        return {"report": JobOutput("text/plain", data=f"{self.name}:{self.done}".encode(), filename="r.txt")}


class MemoryOnlyJob(CountingJob):
    job_type = "TestMemoryOnly"

    def serialize(self) -> dict[str, Any]:
        raise NotImplementedError


@pytest.fixture(autouse=True)
def _clean_counting_state() -> None:
    CountingJob.gates.clear()
    CountingJob.started.clear()
    CountingJob.order.clear()
    CountingJob.cancelled.clear()


def engine(server: orthanc_lite.Server) -> JobEngine:
    return server.jobs


async def started(name: str) -> None:
    await asyncio.wait_for(CountingJob.started.setdefault(name, asyncio.Event()).wait(), 5)


async def get_json(http: aiohttp.ClientSession, path: str) -> Any:
    async with http.get(path) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def post_status(http: aiohttp.ClientSession, path: str) -> int:
    async with http.post(path) as resp:
        if resp.status == 200:
            assert await resp.json() == {}
        return resp.status


async def test_successful_job_in_orthanc_shape(server: orthanc_lite.Server, http: aiohttp.ClientSession) -> None:
    job_id = engine(server).submit(CountingJob("a", total=3), priority=4)
    await engine(server).join()
    assert await get_json(http, "/jobs") == [job_id]
    info = await get_json(http, f"/jobs/{job_id}")
    assert INFO_KEYS | {"CompletionTime"} == set(info)
    assert info["ID"] == job_id and info["Type"] == "TestCounting" and info["State"] == "Success"
    assert info["Progress"] == 100 and info["Priority"] == 4
    assert (info["ErrorCode"], info["ErrorDescription"], info["ErrorDetails"]) == (0, "Success", "")
    assert info["Content"] == {"Name": "a", "Done": 3, "Total": 3, "Resets": 0}
    assert info["CreationTime"] <= info["CompletionTime"] <= info["Timestamp"]
    assert len(info["CreationTime"]) == len("20201227T161842.520129")
    assert isinstance(info["EffectiveRuntime"], float)
    expanded = await get_json(http, "/jobs?expand")
    assert [j["ID"] for j in expanded] == [job_id] and expanded[0]["State"] == "Success"


async def test_failure_then_resubmit(server: orthanc_lite.Server, http: aiohttp.ClientSession) -> None:
    job_id = engine(server).submit(CountingJob("f", total=3, fail_at=1, fail_once=True))
    await engine(server).join()
    info = await get_json(http, f"/jobs/{job_id}")
    assert info["State"] == "Failure"
    assert (info["ErrorCode"], info["ErrorDescription"]) == (9, "Error in the network protocol")
    assert info["ErrorDetails"] == "f failed at 1"
    assert "CompletionTime" in info
    assert await post_status(http, f"/jobs/{job_id}/resume") == 404  # only paused jobs resume
    assert await post_status(http, f"/jobs/{job_id}/resubmit") == 200
    await engine(server).join()
    info = await get_json(http, f"/jobs/{job_id}")
    assert info["State"] == "Success" and info["ErrorCode"] == 0
    assert info["Content"]["Resets"] == 1  # reset() ran: it started over
    assert await post_status(http, f"/jobs/{job_id}/resubmit") == 404  # only failed jobs are resubmitted


async def test_cancel_running_job_stops_its_step(server: orthanc_lite.Server, http: aiohttp.ClientSession) -> None:
    job_id = engine(server).submit(CountingJob("c", total=3, block_at=1))
    await started("c")
    loop = asyncio.get_running_loop()
    begin = loop.time()
    assert await post_status(http, f"/jobs/{job_id}/cancel") == 200
    assert loop.time() - begin < 1.0
    assert CountingJob.cancelled == ["c"]
    info = await get_json(http, f"/jobs/{job_id}")
    assert info["State"] == "Failure"
    assert (info["ErrorCode"], info["ErrorDescription"]) == (37, "This job was canceled")
    assert info["Content"]["Done"] == 1
    assert await post_status(http, f"/jobs/{job_id}/cancel") == 200  # a finished job: nothing to do


async def test_cancel_pending_and_unknown(settings: Settings, http: aiohttp.ClientSession,
                                          server: orthanc_lite.Server) -> None:
    blocker = engine(server).submit(CountingJob("b1", total=1, block_at=0))
    blocker2 = engine(server).submit(CountingJob("b2", total=1, block_at=0))
    await started("b1")
    await started("b2")  # both workers busy (ConcurrentJobs = 2)
    pending = engine(server).submit(CountingJob("p", total=1))
    assert (await get_json(http, f"/jobs/{pending}"))["State"] == "Pending"
    assert await post_status(http, f"/jobs/{pending}/cancel") == 200
    assert (await get_json(http, f"/jobs/{pending}"))["ErrorCode"] == 37
    for name in ("b1", "b2"):
        CountingJob.gates.setdefault(name, asyncio.Event()).set()
    await engine(server).join()
    assert "p" not in CountingJob.order
    assert {(await get_json(http, f"/jobs/{j}"))["State"] for j in (blocker, blocker2)} == {"Success"}
    async with http.get("/jobs/nope") as resp:
        assert resp.status == 404
    for action in ("cancel", "pause", "resume", "resubmit"):
        assert await post_status(http, f"/jobs/nope/{action}") == 404


async def test_pause_and_resume(server: orthanc_lite.Server, http: aiohttp.ClientSession) -> None:
    job_id = engine(server).submit(CountingJob("pr", total=3, block_at=1))
    await started("pr")
    assert await post_status(http, f"/jobs/{job_id}/pause") == 200
    info = await get_json(http, f"/jobs/{job_id}")
    assert info["State"] == "Paused" and info["Content"]["Done"] == 1 and "CompletionTime" not in info
    await engine(server).join()  # paused jobs do not keep the engine busy
    CountingJob.gates["pr"].set()
    assert await post_status(http, f"/jobs/{job_id}/resume") == 200
    record = await engine(server).wait(job_id)
    assert record.state is JobState.Success
    assert record.job.content()["Done"] == 3 and record.job.content()["Resets"] == 0  # went on, no restart


@pytest.fixture
def one_worker(settings: Settings) -> Settings:
    return settings.replace(ConcurrentJobs=1, JobsHistorySize=3)


async def test_priority_order_and_history_size(one_worker: Settings) -> None:
    async with orthanc_lite.serve(one_worker, host="127.0.0.1") as server:
        jobs = engine(server)
        jobs.submit(CountingJob("first", total=1, block_at=0))
        await started("first")
        for name, priority in (("low", -5), ("mid", 0), ("high", 10), ("mid2", 0)):
            jobs.submit(CountingJob(name, total=1), priority=priority)
        CountingJob.gates["first"].set()
        await jobs.join()
        assert CountingJob.order == ["first", "high", "mid", "mid2", "low"]
        kept = [r.job.content()["Name"] for r in jobs.records()]
        assert sorted(kept) == ["low", "mid", "mid2"]  # the 3 most recently finished


async def test_run_sync_answers_content_or_raises(server: orthanc_lite.Server) -> None:
    jobs = engine(server)
    assert (await jobs.run_sync(CountingJob("s", total=2)))["Done"] == 2
    with pytest.raises(OrthancError) as caught:
        await jobs.run_sync(CountingJob("e", total=2, fail_at=0))
    assert caught.value.code is ErrorCode.NetworkProtocol and caught.value.details == "e failed at 0"
    with pytest.raises(OrthancError) as unknown:
        await jobs.wait("missing")
    assert unknown.value.code is ErrorCode.InexistentItem


async def test_outputs_and_delete(server: orthanc_lite.Server, http: aiohttp.ClientSession) -> None:
    job_id = engine(server).submit(CountingJob("o", total=2))
    await engine(server).join()
    async with http.get(f"/jobs/{job_id}/report") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        assert await resp.read() == b"o:2"
    async with http.get(f"/jobs/{job_id}/nothing") as resp:
        assert resp.status == 404
        assert (await resp.json())["Details"] == "Job has no such output: nothing"
    async with http.delete(f"/jobs/{job_id}") as resp:
        assert resp.status == 200
    async with http.get(f"/jobs/{job_id}") as resp:
        assert resp.status == 404
    async with http.delete(f"/jobs/{job_id}") as resp:
        assert resp.status == 404


async def test_jobs_survive_a_restart(settings: Settings, tmp_path: pathlib.Path) -> None:
    settings = settings.replace(ConcurrentJobs=1)
    async with orthanc_lite.serve(settings, host="127.0.0.1") as server:
        jobs = engine(server)
        done = jobs.submit(CountingJob("done", total=2))
        failed = jobs.submit(CountingJob("failed", total=2, fail_at=1))
        await jobs.join()
        running = jobs.submit(CountingJob("running", total=3, block_at=1))
        await started("running")
        pending = jobs.submit(CountingJob("pending", total=1), priority=1)
        paused = jobs.submit(CountingJob("paused", total=1))
        assert await jobs.pause(paused)
        memory = jobs.submit(MemoryOnlyJob("memory", total=1))
    CountingJob.started.clear()
    async with orthanc_lite.serve(settings, host="127.0.0.1") as server:
        jobs = engine(server)
        # The running one started over (after the higher-priority pending one), and blocks again at step 1.
        await started("running")
        states = {r.id: r for r in jobs.records()}
        assert memory not in states  # cannot serialize: not saved
        assert states[done].state is JobState.Success and states[done].job.content()["Done"] == 2
        assert states[failed].state is JobState.Failure
        assert states[failed].error is ErrorCode.NetworkProtocol and states[failed].error_details == "failed failed at 1"
        assert states[paused].state is JobState.Paused
        assert states[pending].state is JobState.Success
        assert states[running].job.content()["Resets"] == 1
        CountingJob.gates["running"].set()
        await jobs.join()
        assert states[running].state is JobState.Success
        assert await jobs.resume(paused)
        await jobs.join()
        assert states[paused].state is JobState.Success
    async with orthanc_lite.serve(settings.replace(SaveJobs=False), host="127.0.0.1") as server:
        assert engine(server).records() == []


def test_synchronous_and_priority_fields() -> None:
    assert is_synchronous({}) is True and is_synchronous({}, default=False) is False
    assert is_synchronous({"Asynchronous": True}) is False
    assert is_synchronous({"Synchronous": True, "Asynchronous": True}) is True
    assert job_priority({"Priority": 7}) == 7 and job_priority({}) == 0
    for bad in ({"Synchronous": "yes"}, {"Asynchronous": 1}):
        with pytest.raises(OrthancError):
            is_synchronous(bad)
    with pytest.raises(OrthancError):
        job_priority({"Priority": "high"})
