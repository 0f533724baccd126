"""The loop guard of conftest.py really catches orthanc_lite parsing on the event loop thread."""

from __future__ import annotations

import asyncio

import pytest

from orthanc_lite.dicom.values import read_dataset
from tests.conftest import BlockingCallOnLoop
from tests.data.make_samples import make_instance


async def test_parsing_on_the_loop_is_refused() -> None:
    with pytest.raises(BlockingCallOnLoop):
        read_dataset(make_instance())


async def test_parsing_in_a_worker_thread_is_fine() -> None:
    ds = await asyncio.to_thread(read_dataset, make_instance("GUARD"))
    assert ds.PatientID == "GUARD"
