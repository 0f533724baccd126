"""HTTP details Orthanc applies to every route: the XML rendering of JSON answers (Accept: application/xml) and
the "auto directory" (GET on an intermediate path lists its children). Pure functions over requests and routes.
"""

from __future__ import annotations

import re
from typing import Any, Final, Iterable
from xml.sax.saxutils import escape

from aiohttp import web

XML_MIME: Final = "application/xml"
_INDENT: Final = "  "
_VARIABLE: Final = re.compile(r"^\{.*\}$")


def wants_xml(request: web.Request) -> bool:
    """Orthanc converts a JSON answer to XML when the first media range of Accept is exactly application/xml
    (a list such as "application/xml, text/plain" keeps JSON, as Orthanc 1.10-1.13 do)."""
    accept = request.headers.get("Accept", "")
    return accept.split(";", 1)[0] == XML_MIME


def json_to_xml(value: Any) -> bytes:
    """Orthanc's XML rendering of a JSON value: <root>, arrays as <item> children, objects as one element per
    key, two-space indentation, empty containers as self-closing elements (pugixml's layout)."""
    lines = ['<?xml version="1.0" encoding="utf-8"?>']
    _element(lines, "root", value, 0)
    return ("\n".join(lines) + "\n").encode("utf-8")


def _element(lines: list[str], name: str, value: Any, depth: int) -> None:
    pad = _INDENT * depth
    children: list[tuple[str, Any]]
    if isinstance(value, dict):
        children = [(str(key), child) for key, child in value.items()]
    elif isinstance(value, list):
        children = [("item", child) for child in value]
    else:
        lines.append(f"{pad}<{name}>{escape(_scalar(value))}</{name}>")
        return
    if not children:
        lines.append(f"{pad}<{name} />")
        return
    lines.append(f"{pad}<{name}>")
    for child_name, child in children:
        _element(lines, child_name, child, depth + 1)
    lines.append(f"{pad}</{name}>")


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def auto_directory(routes: Iterable[web.AbstractRoute], path: str) -> list[str] | None:
    """The children of an intermediate path that has no handler of its own, as Orthanc lists them on GET
    (literal next segments of the registered routes below it), or None when no route lies below the path."""
    segments = [s for s in path.split("/") if s]
    children: set[str] = set()
    found = False
    for route in routes:
        resource = route.resource
        if resource is None:
            continue
        # The route as written (with its {var:regex} constraints), not the canonical form that drops them.
        pattern = [s for s in str(getattr(resource, "_orig_path", resource.canonical)).split("/") if s]
        if len(pattern) <= len(segments) or not _prefix_matches(pattern, segments):
            continue
        found = True
        following = pattern[len(segments)]
        if not _VARIABLE.match(following):
            children.add(following)
    return sorted(children) if found else None


def _prefix_matches(pattern: list[str], segments: list[str]) -> bool:
    return all(_segment_matches(p, s) for p, s in zip(pattern, segments))


def _segment_matches(pattern: str, value: str) -> bool:
    if not _VARIABLE.match(pattern):
        return pattern == value
    _, colon, regex = pattern[1:-1].partition(":")
    return re.fullmatch(regex if colon else r"[^{}/]+", value) is not None
