"""Storage commitment SCP: N-ACTION answered, then an N-EVENT-REPORT on a new association to the requester."""

from __future__ import annotations

import asyncio
import io
import threading

import aiohttp
import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE, evt
from pynetdicom.sop_class import CTImageStorage, StorageCommitmentPushModel

import orthanc_lite
from orthanc_lite.config import Settings
from tests.data.make_samples import make_instance
from tests.dimse.dimse_helpers import in_thread

COMMITMENT_INSTANCE = "1.2.840.10008.1.20.1.1"


class Requester:
    """A modality that asks for storage commitment and listens for the report."""

    def __init__(self) -> None:
        self.reports: list[tuple[int, Dataset]] = []
        self.got_report = threading.Event()
        self.ae = AE(ae_title="REQUESTER")
        self.ae.add_supported_context(StorageCommitmentPushModel, scu_role=True, scp_role=True)
        self.ae.add_requested_context(StorageCommitmentPushModel)
        self.server = self.ae.start_server(("127.0.0.1", 0), block=False,
                                           evt_handlers=[(evt.EVT_N_EVENT_REPORT, self._on_report)])
        self.port = int(self.server.server_address[1])

    def _on_report(self, event: evt.Event) -> tuple[int, None]:
        self.reports.append((int(event.request.EventTypeID), event.event_information))
        self.got_report.set()
        return 0x0000, None

    def request(self, port: int, transaction: str, refs: list[tuple[str, str]]) -> int:
        assoc = self.ae.associate("127.0.0.1", port, ae_title="ORTHANC")
        assert assoc.is_established
        ds = Dataset()
        ds.TransactionUID = transaction
        items = []
        for cls, inst in refs:
            item = Dataset()
            item.ReferencedSOPClassUID = cls
            item.ReferencedSOPInstanceUID = inst
            items.append(item)
        ds.ReferencedSOPSequence = items
        try:
            status, _ = assoc.send_n_action(ds, 1, StorageCommitmentPushModel, COMMITMENT_INSTANCE)
            return int(status.Status) if "Status" in status else -1  # -1: aborted, as Orthanc does
        finally:
            assoc.release()

    def stop(self) -> None:
        self.ae.shutdown()


async def test_storage_commitment_report(settings: Settings) -> None:
    requester = await in_thread(Requester)
    try:
        s = settings.replace(DicomModalities={"req": ["REQUESTER", "127.0.0.1", requester.port]})
        async with orthanc_lite.serve(s, host="127.0.0.1") as srv, \
                aiohttp.ClientSession(base_url=srv.url) as http:
            data = make_instance("COMMIT")
            async with http.post("/instances", data=data) as r:
                assert r.status == 200
            stored = str(pydicom.dcmread(io.BytesIO(data)).SOPInstanceUID)
            missing = generate_uid()
            wrong_class = "1.2.840.10008.5.1.4.1.1.4"  # MR for a CT instance
            transaction = generate_uid()
            refs = [(str(CTImageStorage), stored), (str(CTImageStorage), missing), (wrong_class, stored)]
            status = await in_thread(requester.request, srv.dicom_port, transaction, refs)
            assert status == 0x0000
            assert await in_thread(requester.got_report.wait, 20)
            event_type, report = requester.reports[0]
            assert event_type == 2  # some failures
            assert str(report.TransactionUID) == transaction
            assert [str(i.ReferencedSOPInstanceUID) for i in report.ReferencedSOPSequence] == [stored]
            failed = {(str(i.ReferencedSOPClassUID), str(i.ReferencedSOPInstanceUID)): int(i.FailureReason)
                      for i in report.FailedSOPSequence}
            assert failed == {(str(CTImageStorage), missing): 0x0112, (wrong_class, stored): 0x0119}
    finally:
        await in_thread(requester.stop)


async def test_storage_commitment_from_unknown_aet_is_refused(settings: Settings) -> None:
    requester = await in_thread(Requester)
    try:
        async with orthanc_lite.serve(settings, host="127.0.0.1") as srv:
            status = await asyncio.wait_for(
                in_thread(requester.request, srv.dicom_port, generate_uid(), [(str(CTImageStorage), "1.2.3")]), 30)
            assert status != 0x0000
            assert not requester.got_report.is_set()
    finally:
        await in_thread(requester.stop)
