"""Loading: JSON with comments, ${ENV} substitution, folders of files, defaults, validation."""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from .kinds import ConfigError, PathArg, _json_type
from .options import OPTIONS, _BY_NAME, _did_you_mean
from .settings import Settings

logger = logging.getLogger("orthanc_lite.config")


# Orthanc's four forms (Toolbox::SubstituteVariables): ${VAR}, ${VAR:-default}, ${VAR:-"default"}
# and ${VAR:-'default'}. A quoted default may hold characters the plain form cannot, such as "}".
_PLACEHOLDER: Final = re.compile(
    r"""\$\{(?P<plain>[^:{}]+)\}"""
    r"""|\$\{(?P<dq_name>[^:{}]+):-"(?P<dq>[^"]*)"\}"""
    r"""|\$\{(?P<sq_name>[^:{}]+):-'(?P<sq>[^']*)'\}"""
    r"""|\$\{(?P<def_name>[^:{}]+):-(?P<default>[^'"}]*)\}"""
)
_NEXT_SPECIAL_OUTSIDE_STRING: Final = re.compile(r'["/$]')
_NEXT_SPECIAL_IN_STRING: Final = re.compile(r'["\\$]')
_STRING_OR_TRAILING_COMMA: Final = re.compile(r'"(?:[^"\\]|\\.)*"|,(?=\s*[}\]])', re.DOTALL)


def _substitute(match: re.Match[str], env: Mapping[str, str], where: str) -> str:
    if match.group("plain") is not None:
        name = match.group("plain")
        if name not in env:
            # Orthanc silently substitutes "" here; say so, since it is usually a deployment bug.
            logger.warning("%s: environment variable %s is not set, replaced by an empty string", where, name)
        return env.get(name, "")
    for name_group, default_group in (("dq_name", "dq"), ("sq_name", "sq"), ("def_name", "default")):
        name = match.group(name_group)
        if name is not None:
            # As in Orthanc, the default applies only when the variable is absent (not when empty).
            return env.get(name, match.group(default_group))
    raise AssertionError("unreachable")


def _preprocess(text: str, env: Mapping[str, str], where: str) -> str:
    """Substitute ${VAR} and drop // and /* */ comments, in one pass that knows JSON strings.

    Placeholders are read as one token, so a default such as ${URL:-"http://x"} inside a string
    neither ends the string nor starts a comment; placeholders inside comments are dropped with
    the comment. Comments become newlines so that JSON error positions keep their line numbers.
    """
    out: list[str] = []
    pos, end, in_string = 0, len(text), False
    while pos < end:
        special = (_NEXT_SPECIAL_IN_STRING if in_string else _NEXT_SPECIAL_OUTSIDE_STRING).search(text, pos)
        if special is None:
            out.append(text[pos:])
            break
        at = special.start()
        out.append(text[pos:at])
        char = text[at]
        if char == "$":
            placeholder = _PLACEHOLDER.match(text, at)
            if placeholder is not None:
                out.append(_substitute(placeholder, env, where))
                pos = placeholder.end()
            else:
                out.append(char)
                pos = at + 1
        elif char == '"':
            in_string = not in_string
            out.append(char)
            pos = at + 1
        elif char == "\\":  # only in strings: keep the escaped character, whatever it is
            out.append(text[at : at + 2])
            pos = at + 2
        elif text.startswith("//", at):
            newline = text.find("\n", at)
            pos = end if newline < 0 else newline
        elif text.startswith("/*", at):
            close = text.find("*/", at + 2)
            if close < 0:
                line = text.count("\n", 0, at) + 1
                raise ConfigError(f"{where}: the /* comment opened at line {line} is never closed")
            out.append("\n" * text.count("\n", at, close))
            pos = close + 2
        else:  # a lone "/": invalid JSON, left for the parser to report
            out.append(char)
            pos = at + 1
    return "".join(out)


def _drop_trailing_commas(text: str) -> str:
    # Hand-edited Orthanc files often end an object with a comma; accept it as jsoncpp tolerates.
    return _STRING_OR_TRAILING_COMMA.sub(lambda m: m.group(0) if m.group(0) != "," else "", text)


def _parse_file(path: Path, env: Mapping[str, str]) -> dict[str, Any]:
    where = str(path)
    try:
        raw = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read the configuration file ({exc.strerror})") from None
    text = _drop_trailing_commas(_preprocess(raw, env, where))

    def object_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                logger.warning('%s: key "%s" appears twice in one object; the last one is used', where, key)
            result[key] = value
        return result

    def reject_constant(name: str) -> Any:
        raise ConfigError(f"{where}: {name} is not valid JSON")

    try:
        document = json.loads(text, object_pairs_hook=object_hook, parse_constant=reject_constant)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{where}: not valid JSON (once comments are removed): {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None
    if not isinstance(document, dict):
        raise ConfigError(f"{where}: the configuration must be a JSON object, got {_json_type(document)}")
    return document


def _expand(paths: PathArg | Sequence[PathArg]) -> list[Path]:
    """The files named by the arguments: a file, or every *.json of a directory (sorted)."""
    items: Sequence[PathArg] = [paths] if isinstance(paths, (str, os.PathLike)) else paths
    files: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() == ".json" and p.is_file())
            if not found:
                logger.warning("No *.json configuration file in directory %s", path)
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise ConfigError(f"Inexistent path to configuration: {path}")
    return files


def _build(document: Mapping[str, Any], origin: Mapping[str, str]) -> Settings:
    values: dict[str, Any] = {}
    for option in OPTIONS:
        present = option.name in document
        raw = document[option.name] if present else option.default
        try:
            values[option.name] = option.kind(raw, option.name)
        except ConfigError as exc:
            suffix = f" (in {origin[option.name]})" if present and option.name in origin else ""
            raise ConfigError(f"{exc}{suffix}") from None
        if present and option.ignored:
            logger.info('Configuration option "%s" is accepted but ignored by orthanc_lite', option.name)
    for key in document:
        if key not in _BY_NAME:
            logger.warning(
                'Unknown configuration option "%s" in %s (ignored)%s',
                key,
                origin.get(key, "the configuration"),
                _did_you_mean(key),
            )
    settings = Settings(**values)
    _warn_about_combinations(settings)
    return settings


def startup_refusal(settings: Settings) -> str | None:
    """Why Orthanc 1.13 refuses to start with these settings, or None: remote access with authentication
    (explicit, or implied by an unset AuthenticationEnabled) but no user to authenticate."""
    if settings.RemoteAccessAllowed and settings.authentication_enabled and not settings.RegisteredUsers:
        return ('"RemoteAccessAllowed" and "AuthenticationEnabled" are true but "RegisteredUsers" is empty: '
                'no client could ever log in. Declare a user in "RegisteredUsers", or set '
                '"AuthenticationEnabled" to false explicitly if another layer authenticates')
    return None


def check_startup_security(settings: Settings) -> None:
    """Raise ConfigError in the configurations that Orthanc 1.13 refuses to start with."""
    reason = startup_refusal(settings)
    if reason is not None:
        raise ConfigError(reason)


def _warn_about_combinations(settings: Settings) -> None:
    if settings.RemoteAccessAllowed and not settings.authentication_enabled:
        logger.warning(
            "Remote access is allowed while authentication is disabled: the HTTP server is POSSIBLY INSECURE"
        )
    if settings.JobsHistorySize == 0:
        logger.warning("JobsHistorySize is 0: synchronous REST calls that run as jobs will fail")
    if settings.DicomModalitiesInDatabase and settings.DicomModalities:
        logger.warning("DicomModalitiesInDatabase is true: the DicomModalities option is ignored")
    if settings.OrthancPeersInDatabase and settings.OrthancPeers:
        logger.warning("OrthancPeersInDatabase is true: the OrthancPeers option is ignored")


_DEFAULTS: Final[Settings] = _build({}, {})


def load(
    paths: PathArg | Sequence[PathArg] | None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Read Orthanc configuration files into Settings; raise ConfigError when they are unusable.

    `paths`: one file, one directory (each *.json in it, sorted by name), several of those, or None
    for the built-in defaults. `${VAR}` placeholders are taken from `environ` (os.environ by
    default). A top-level option defined in two files is an error, as in Orthanc.
    """
    if paths is None:
        return _DEFAULTS
    env: Mapping[str, str] = os.environ if environ is None else environ
    document: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for path in _expand(paths):
        for key, value in _parse_file(path, env).items():
            if key in origin:
                raise ConfigError(f'Configuration option "{key}" is defined in two files: {origin[key]} and {path}')
            document[key] = value
            origin[key] = str(path)
    return _build(document, origin)
