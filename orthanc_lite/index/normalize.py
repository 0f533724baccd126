"""Identifier normalization, as Orthanc's ServerToolbox::NormalizeIdentifier: trim, strip accents, upper case."""

from __future__ import annotations

import unicodedata


def normalize_identifier(value: str) -> str:
    text = unicodedata.normalize("NFKD", value.strip())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return text.upper()
