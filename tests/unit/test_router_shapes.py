"""OrthancRouter resolves by route shape: it must pick exactly what aiohttp's own resolver picks (the same
route, or the same 404/405 with the same allowed methods) for every registered route and some that aren't."""

from __future__ import annotations

import re

import pytest
from aiohttp.test_utils import make_mocked_request
from aiohttp.web_urldispatcher import MatchInfoError, UrlDispatcher

from orthanc_lite.app import build
from orthanc_lite.config import load

VALUES = {"level": "studies", "id": "0123abcd-0123abcd", "frame": "0", "name": "x", "index": "0", "key": "archive",
          "child": "query-series", "path": "0010-0010"}


def _paths(app) -> list[str]:
    out = set()
    for resource in app.router.resources():
        canonical = resource.canonical
        filled = re.sub(r"\{(\w+)\}", lambda m: VALUES.get(m.group(1), "1.2.3"), canonical)
        out.update({filled, filled + "/", filled + "/unknown", filled.rpartition("/")[0] + "/unknown"})
    out.update({"/", "/instances/abc/content/a/b", "/patients/x/y/z/w", "/dicom-web/studies/1/series/2/instances/3/bulk/4/5"})
    return sorted(p for p in out if p)


def _describe(match) -> object:
    if isinstance(match, MatchInfoError):
        http = match.http_exception
        return type(http).__name__, sorted(getattr(http, "allowed_methods", ()) or ())
    return match.route.handler, dict(match)


@pytest.mark.parametrize("read_only", [False, True])
async def test_shapes_resolve_as_aiohttp(read_only: bool) -> None:
    settings = load(None).replace(ReadOnly=read_only)
    app = build(settings)
    router = app.router
    checked = 0
    for path in _paths(app):
        for method in ("GET", "POST", "PUT", "DELETE"):
            ours = await router._resolve_by_shape(make_mocked_request(method, path, app=app))
            theirs = await UrlDispatcher.resolve(router, make_mocked_request(method, path, app=app))
            assert _describe(ours) == _describe(theirs), (method, path)
            checked += 1
    assert checked > 1000
