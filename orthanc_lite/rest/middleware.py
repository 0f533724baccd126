"""HTTP rules of every route: Orthanc's error JSON, authentication, RemoteAccessAllowed, method faking,
trailing slashes. The only place that renders OrthancError for HTTP.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import ipaddress
import logging
import re
from typing import Any, Awaitable, Callable, Final, Mapping

import orjson
from aiohttp import web
from aiohttp.web_urldispatcher import MatchInfoError, UrlDispatcher

from ..app_keys import CONTEXT, USERNAME
from ..errors import HTTP_REASONS, ErrorCode, OrthancError
from .helpers import json_response
from .http_compat import auto_directory, json_to_xml, wants_xml

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_REPEATED_SLASHES: Final = re.compile("/{2,}")


class OrthancRouter(UrlDispatcher):
    """Resolves a path with or without its trailing slash, and honours method faking
    (X-HTTP-Method-Override, or GET ...?_method=delete|put).

    Resolution tries only the resources whose shape fits the path (same number of segments, same last segment
    when it is a literal), in aiohttp's own order (longest index key first, then registration order), so the
    answer is aiohttp's. aiohttp tries every resource under the path's prefix: /instances/{id}/preview went
    through 13 regular expressions and /{level}/{id}/metadata through 61, a tenth of a small request's time."""

    _shapes: _Shapes | None = None

    async def resolve(self, request: web.Request) -> Any:
        method = _faked_method(request)
        if method is not None:
            request = request.clone(method=method)
        if "//" in request.path:
            # Clients joining a base URL that ends with "/" send "//instances": Orthanc ignores empty segments.
            request = request.clone(rel_url=request.rel_url.with_path(_REPEATED_SLASHES.sub("/", request.path)))
        match = await self._resolve_by_shape(request)
        if isinstance(match, MatchInfoError) and request.path != "/" and request.path.endswith("/"):
            stripped = request.clone(rel_url=request.rel_url.with_path(request.path.rstrip("/") or "/"))
            retry = await self._resolve_by_shape(stripped)
            if not isinstance(retry, MatchInfoError):
                return retry
        return match

    async def _resolve_by_shape(self, request: web.Request) -> Any:
        if self._matched_sub_app_resources:
            return await super().resolve(request)
        shapes = self._shapes
        if shapes is None or shapes.count != len(self._resources):
            shapes = self._shapes = _Shapes(self._resources, self._get_resource_index_key)
        allowed_methods: set[str] = set()
        for resource in shapes.candidates(request.rel_url.path_safe):
            match_dict, allowed = await resource.resolve(request)
            if match_dict is not None:
                return match_dict
            allowed_methods |= allowed
        if allowed_methods:
            return MatchInfoError(web.HTTPMethodNotAllowed(request.method, allowed_methods))
        return MatchInfoError(web.HTTPNotFound())


_GROUP: Final = re.compile(r"\(\?P<\w+>")
# A variable's regular expression that cannot match "/": aiohttp's own [^{}/]+, or made only of word characters,
# classes, alternations and repetitions ([0-9a-f-]+, patients|studies): no ".", escapes, groups or negations.
_ONE_SEGMENT: Final = re.compile(r"\[\^\{\}/\]\+|[\w|\[\]+*?-]+")


class _Shapes:
    """The resources by (segment count, last segment): a literal last segment, or "*" when it is a variable.
    Resources whose variables may span segments ({tail:.*}) or of other kinds are candidates for every path."""

    def __init__(self, resources: list[Any], index_key: Callable[[Any], str]) -> None:
        self.count = len(resources)
        ranked: list[tuple[tuple[int, int], tuple[int, str] | None, Any]] = []
        for order, resource in enumerate(resources):
            rank = (-len(index_key(resource)), order)  # aiohttp's walk: longest prefix first, then registration
            ranked.append((rank, _shape(resource), resource))
        ranked.sort(key=lambda item: item[0])
        anywhere = [item for item in ranked if item[1] is None]
        counts = {shape[0] for _, shape, _ in ranked if shape is not None}
        self._by_count: dict[int, tuple[Any, ...]] = {}
        self._by_literal: dict[tuple[int, str], tuple[Any, ...]] = {}
        for n in counts:
            variable = [item for item in ranked if item[1] == (n, "*")]
            self._by_count[n] = _merged(variable, anywhere)
            for literal in {shape[1] for _, shape, _ in ranked if shape is not None and shape[0] == n} - {"*"}:
                exact = [item for item in ranked if item[1] == (n, literal)]
                self._by_literal[(n, literal)] = _merged(exact + variable, anywhere)
        self._anywhere = _merged([], anywhere)

    def candidates(self, path: str) -> tuple[Any, ...]:
        n = path.count("/") + 1
        last = path.rpartition("/")[2]
        found = self._by_literal.get((n, last))
        if found is None:
            found = self._by_count.get(n, self._anywhere)
        return found


def _shape(resource: Any) -> tuple[int, str] | None:
    from aiohttp.web_urldispatcher import DynamicResource, PlainResource

    if isinstance(resource, DynamicResource):
        if not all(_ONE_SEGMENT.fullmatch(variable) for variable in _variables(resource._pattern.pattern)):
            return None  # a variable whose regular expression may match several segments ({tail:.*})
    elif not isinstance(resource, PlainResource):
        return None
    segments = resource.canonical.split("/")
    last = segments[-1]
    return len(segments), "*" if "{" in last else last


def _variables(pattern: str) -> list[str]:
    """The regular expressions of the named groups of an aiohttp route pattern."""
    out = []
    for match in _GROUP.finditer(pattern):
        depth, end = 1, match.end()
        while end < len(pattern) and depth:
            if pattern[end] == "\\":
                end += 1
            elif pattern[end] == "(":
                depth += 1
            elif pattern[end] == ")":
                depth -= 1
            end += 1
        out.append(pattern[match.end():end - 1])
    return out


def _merged(*groups: list[tuple[tuple[int, int], Any, Any]]) -> tuple[Any, ...]:
    items = sorted((item for group in groups for item in group), key=lambda item: item[0])
    return tuple(resource for _, _, resource in items)


def _faked_method(request: web.Request) -> str | None:
    override = request.headers.get("X-HTTP-Method-Override", "").upper()
    if override in ("PUT", "DELETE") and request.method == "POST":
        return override
    if request.method == "GET":
        faked = request.query.get("_method", "").upper()
        if faked in ("PUT", "DELETE"):
            return faked
    return None


def error_body(request: web.Request, status: int, code: ErrorCode, details: str | None) -> bytes:
    body: dict[str, Any] = {
        "HttpError": HTTP_REASONS.get(status, "Internal Server Error"),
        "HttpStatus": status,
        "Message": code.description,
        "Method": request.method,
        "OrthancError": code.description,
        "OrthancStatus": code.code,
        "Uri": request.path,
    }
    if details:
        body["Details"] = details
    return orjson.dumps(body, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)


def error_response(request: web.Request, status: int, code: ErrorCode, details: str | None,
                   headers: dict[str, str] | None = None) -> web.Response:
    describe = request.app[CONTEXT].settings.HttpDescribeErrors
    if not describe:
        return web.Response(status=status, headers=headers)
    return web.Response(status=status, body=error_body(request, status, code, details), headers=headers,
                        content_type="application/json", charset="utf-8")


@web.middleware
async def orthanc_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every request: RemoteAccessAllowed and authentication, then the handler, its JSON as XML on request, and
    any error as Orthanc's error answer. One middleware rather than three: aiohttp wraps each in a layer of its
    own, a few percent of a small request's time."""
    refusal = _security_refusal(request)
    if refusal is not None:
        return refusal
    try:
        return _as_xml_if_asked(request, await handler(request))
    except OrthancError as exc:
        status = exc.http_status
        level = logging.ERROR if status >= 500 else logging.INFO
        logger.log(level, "%s %s: %s (%s)", request.method, request.path, exc.code.description, exc.details or "")
        return error_response(request, status, exc.code, exc.details)
    except web.HTTPMethodNotAllowed as exc:
        # aiohttp adds HEAD beside every GET; Orthanc lists only the methods it registered.
        allowed = sorted(m for m in exc.allowed_methods if m != "HEAD")
        return web.Response(status=405, headers={"Allow": ",".join(allowed)})
    except web.HTTPNotFound:
        if isinstance(request.match_info, MatchInfoError):
            return _unknown_route(request)
        return web.Response(status=404)
    except web.HTTPRequestEntityTooLarge as exc:
        logger.warning("%s %s: request body too large", request.method, request.path)
        return error_response(request, 413, ErrorCode.BadRequest, exc.text or "Request body too large")
    except web.HTTPException:
        raise
    except ValueError as exc:  # bad arguments that slipped through (e.g. a level name)
        logger.info("%s %s: %s", request.method, request.path, exc)
        return error_response(request, 400, ErrorCode.BadRequest, str(exc))
    except Exception as exc:
        logger.exception("Internal error on %s %s", request.method, request.path)
        return error_response(request, 500, ErrorCode.InternalError, str(exc))


def _unknown_route(request: web.Request) -> web.Response:
    """No handler for this path: a GET on an intermediate path lists its children (Orthanc's auto directory),
    anything else is a 404 whose error description is sent as text/plain (Orthanc >= 1.12.2)."""
    if request.method == "GET":
        children = auto_directory(request.app.router.routes(), _REPEATED_SLASHES.sub("/", request.path))
        if children is not None:
            return json_response(children)
    if not request.app[CONTEXT].settings.HttpDescribeErrors:
        return web.Response(status=404)
    body = error_body(request, 404, ErrorCode.UnknownResource, None)
    return web.Response(status=404, body=body, headers={"Content-Type": "text/plain"})


def _as_xml_if_asked(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    """Accept: application/xml turns a JSON answer into Orthanc's XML rendering of it."""
    if (wants_xml(request) and isinstance(response, web.Response) and response.status == 200
            and response.content_type == "application/json" and isinstance(response.body, bytes)):
        xml = json_to_xml(orjson.loads(response.body))
        converted = web.Response(body=xml, status=200, content_type="application/xml", charset="utf-8")
        for name, value in response.headers.items():
            if name.lower() not in ("content-type", "content-length"):
                converted.headers[name] = value
        return converted
    return response


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """X-Content-Type-Options: nosniff on every answer, as Orthanc >= 1.12.2 sends it."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")


def _security_refusal(request: web.Request) -> web.Response | None:
    """RemoteAccessAllowed (loopback only when false) and HTTP Basic against RegisteredUsers: the 401 answer,
    or None to go on."""
    settings = request.app[CONTEXT].settings
    if not settings.RemoteAccessAllowed and not _is_loopback(request.remote):
        return error_response(request, 401, ErrorCode.Unauthorized, "Remote access is disabled")
    if settings.authentication_enabled:
        user = _basic_user(request.headers.get("Authorization", ""), settings.RegisteredUsers)
        if user is None:
            # As Orthanc: no body, hence no Content-Type (only the challenge header)
            return web.Response(status=401,
                                headers={"WWW-Authenticate": 'Basic realm="Orthanc Secure Area"'})
        request[USERNAME] = user
    return None


def _is_loopback(remote: str | None) -> bool:
    if not remote:
        return True  # unix sockets / in-process test transports
    return _is_loopback_address(remote)


@functools.lru_cache(maxsize=1024)  # parsing the address was 5% of a small request's loop time
def _is_loopback_address(remote: str) -> bool:
    try:
        return ipaddress.ip_address(remote.split("%")[0]).is_loopback
    except ValueError:
        return False


def _basic_user(header: str, users: Mapping[str, str]) -> str | None:
    if not header.startswith("Basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    name, sep, password = decoded.partition(":")
    if not sep or name not in users:
        return None
    return name if hmac.compare_digest(str(users[name]).encode(), password.encode()) else None
