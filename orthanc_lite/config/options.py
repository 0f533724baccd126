"""The table of every option: `OPTION_GROUPS` (as the docs list them) and `OPTIONS`."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from .option import Option
from .general_groups import GENERAL_GROUPS
from .dicom_groups import DICOM_GROUPS
from .other_groups import OTHER_GROUPS


OPTION_GROUPS: Final[tuple[tuple[str, tuple[Option, ...]], ...]] = GENERAL_GROUPS + DICOM_GROUPS + OTHER_GROUPS
OPTIONS: Final[tuple[Option, ...]] = tuple(option for _, group in OPTION_GROUPS for option in group)
_BY_NAME: Final[Mapping[str, Option]] = MappingProxyType({option.name: option for option in OPTIONS})


def _did_you_mean(name: str) -> str:
    close = difflib.get_close_matches(name, list(_BY_NAME), n=1, cutoff=0.8)
    return f' (did you mean "{close[0]}"?)' if close else ""
