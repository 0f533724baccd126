"""DIMSE status codes, and the one place that renders StoreResult / OrthancError as a DIMSE status.

Values follow PS3.4 Annex B/C and the statuses Orthanc 1.10.1 answers (DCMTK's STATUS_* constants).
"""

from __future__ import annotations

from typing import Final

from ..dicom.parse import UnreadableDicom
from ..errors import OrthancError
from ..model import StoreResult, StoreStatus

SUCCESS: Final = 0x0000
PENDING: Final = 0xFF00
CANCEL: Final = 0xFE00                   # also Orthanc's "too many C-FIND results" final status
OUT_OF_RESOURCES: Final = 0xA700         # C-STORE refused by the store (storage full, missing UID...)
CANNOT_UNDERSTAND: Final = 0xC000        # C-STORE "cannot understand"; C-FIND/MOVE/GET "unable to process"
PROCESSING_FAILURE: Final = 0x0110       # N-ACTION / N-EVENT-REPORT processing failure
NO_SUCH_SOP_CLASS: Final = 0x0118

# Storage commitment FailureReason (0008,1197) values (PS3.4 J.3.2.1.3)
COMMITMENT_NO_SUCH_OBJECT: Final = 0x0112
COMMITMENT_CLASS_INSTANCE_CONFLICT: Final = 0x0119


def store_status(result: StoreResult) -> int:
    """Orthanc's StoreResult::GetCStoreStatusCode: Success, AlreadyStored and FilteredOut are all 0x0000."""
    if result.status in (StoreStatus.Success, StoreStatus.AlreadyStored, StoreStatus.FilteredOut):
        return SUCCESS
    return CANNOT_UNDERSTAND


def store_error_status(exc: BaseException) -> int:
    """The C-STORE status of a failed store, as Orthanc's StoreScp: 0xC000 when the dataset cannot be read
    at all, 0xA700 ("refused: out of resources") for any error of the store itself, such as a full storage
    in Reject mode or a missing StudyInstanceUID (checked against Orthanc 1.10.1)."""
    if isinstance(exc, OrthancError) and not isinstance(exc, UnreadableDicom):
        return OUT_OF_RESOURCES
    return CANNOT_UNDERSTAND
