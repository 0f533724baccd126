"""The generated configuration.json and docs/configuration.md, and the developer entry point."""

from __future__ import annotations

import json
import logging
import sys
import textwrap
from collections.abc import Iterator, Sequence
from typing import Any, Final

from .kinds import ConfigError, thaw
from .option import Option
from .options import OPTIONS, OPTION_GROUPS
from .loader import check_startup_security, load


_IGNORED_NOTE: Final = "Accepted for compatibility, ignored by orthanc_lite."


def _help_text(option: Option) -> str:
    return f"{option.help} {_IGNORED_NOTE}" if option.ignored else option.help


def _json_inline(value: Any) -> str:
    return json.dumps(thaw(value), ensure_ascii=False, separators=(", ", ": "))


def _render_json_value(value: Any, indent: str) -> str:
    """Orthanc's layout: scalars and arrays of scalars inline, objects one member per line."""
    value = thaw(value)
    if isinstance(value, dict) and value:
        inner = indent + "  "
        members = [f'{inner}"{key}" : {_render_json_value(item, inner)}' for key, item in value.items()]
        return "{\n" + ",\n".join(members) + f"\n{indent}}}"
    if isinstance(value, list) and value:
        if all(not isinstance(item, (dict, list)) for item in value):
            return "[ " + ", ".join(_json_inline(item) for item in value) + " ]"
        inner = indent + "  "
        return "[\n" + ",\n".join(inner + _render_json_value(item, inner) for item in value) + f"\n{indent}]"
    return _json_inline(value)


def _last_written(options: tuple[Option, ...]) -> Option | None:
    """The last option written as a JSON member (not commented out): it takes no comma."""
    written = [option for option in options if option.default is not None]
    return written[-1] if written else None


def _render_options(options: tuple[Option, ...], indent: str, last: Option | None) -> list[str]:
    lines: list[str] = []
    for option in options:
        if lines:
            lines.append("")
        for line in textwrap.wrap(_help_text(option), width=76 - len(indent)):
            lines.append(f"{indent}// {line}")
        comma = "" if option is last else ","
        if option.default is None:
            # Unset by default: shown commented out, so that the file keeps the default.
            example = _render_json_value(option.example, indent).split("\n")
            lines.append(f'{indent}// "{option.name}" : {example[0]}')
            lines.extend(f"{indent}// {line[len(indent) :]}" for line in example[1:])
            lines[-1] += ","
        elif option.section:
            lines.append(f'{indent}"{option.name}" : {{')
            lines.extend(_render_options(option.section, indent + "  ", _last_written(option.section)))
            lines.append(f"{indent}}}{comma}")
        else:
            lines.append(f'{indent}"{option.name}" : {_render_json_value(option.default, indent)}{comma}')
    return lines


def render_documented_configuration() -> str:
    """The documented configuration.json: every option with its help and default, from OPTIONS."""
    lines = [
        "{",
        "  // orthanc_lite configuration: every option with its default value, in Orthanc's format",
        "  // (JSON with comments; ${VAR}, ${VAR:-default} read the environment). Options that are",
        "  // unset by default are shown commented out. This file is generated from OPTIONS in",
        "  // orthanc_lite/config/options.py by `python -m orthanc_lite.config json`: do not edit it by hand.",
    ]
    last = _last_written(OPTIONS)
    for title, group in OPTION_GROUPS:
        lines += ["", "", "  /**", f"   * {title}", "   **/", ""]
        lines += _render_options(group, "  ", last)
    lines += ["}", ""]
    return "\n".join(lines)


def _md_cell(text: str) -> str:
    # Pipes would split the table cell; "<uuid>" would be read as an HTML tag.
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")


def _md_default(option: Option) -> str:
    if option.default_doc:
        shown = option.default_doc
        return f"unset ({shown})" if option.default is None else shown
    if option.default is None:
        return "unset"
    if option.section:
        return "see below"
    return "`" + _md_cell(_json_inline(option.default)) + "`"


def _md_table(options: tuple[Option, ...]) -> list[str]:
    lines = ["| Option | Default | Meaning |", "|---|---|---|"]
    for option in options:
        meaning = f"*{_IGNORED_NOTE}* {option.help}" if option.ignored else option.help
        lines.append(f"| `{option.name}` | {_md_default(option)} | {_md_cell(meaning)} |")
    return lines


_MD_INTRO: Final = """\
# Configuration

<!-- Generated from OPTIONS in orthanc_lite/config/options.py by `python -m orthanc_lite.config markdown`.
     Do not edit by hand: tests/unit/test_config.py fails when this file is out of date. -->

orthanc_lite reads Orthanc's `configuration.json` format, with Orthanc's option names and
defaults, so an existing Orthanc configuration works as it is. The top-level `configuration.json`
of the repository lists every option with its default value.

```
python -m orthanc_lite configuration.json           # one file
python -m orthanc_lite /etc/orthanc/                # every *.json in the folder
python -m orthanc_lite base.json local.json         # several paths
python -m orthanc_lite.config check /etc/orthanc/   # only check the configuration
```

How the files are read:

- The files are JSON with `//` and `/* */` comments (not inside strings: `"http://host"` is kept).
  A trailing comma before `}` or `]` is tolerated.
- Before parsing, `${VAR}` is replaced by the environment variable `VAR` (by an empty string,
  with a warning, when it is not set). `${VAR:-default}`, `${VAR:-"default"}` and
  `${VAR:-'default'}` give a default used when `VAR` is not set. Write `"HttpPort" : ${PORT:-8042}`
  for a number and `"Name" : "${NAME:-MyOrthanc}"` for a string.
- A directory stands for every `*.json` file in it, read in name order. An option defined at the
  top level of two files is an error that names the option and both files.
- A missing option takes its default. An unknown option is logged as a warning and ignored, as
  real configurations carry options of plugins that orthanc_lite does not have.
- A value of the wrong type or out of range stops the server at startup (exit code 2) with a
  message naming the option, the expected type and the value found.
- Without any configuration path, every option has its default value (HTTP on 8042, DICOM on 4242).

`DicomModalities` entries take Orthanc's short form `["AET", "host", port]` (with an optional
fourth item, the manufacturer) or the long form, an object with `AET`, `Host`, `Port` and the
optional `Manufacturer`, `AllowEcho`, `AllowFind`, `AllowFindWorklist`, `AllowGet`, `AllowMove`,
`AllowStore`, `AllowStorageCommitment` (an alias of `AllowNAction` plus `AllowEventReport`),
`AllowTranscoding`, `UseDicomTls`, `LocalAet`, `Timeout` and `RetrieveMethod`. Every `Allow*` is
true by default. `OrthancPeers` entries take `["url"]`, `["url", "user", "password"]` or an object.
Modality and peer names may only use letters, digits, `_` and `-`.
"""


def render_markdown_documentation() -> str:
    """docs/configuration.md: a table of every option (name, default, meaning), from OPTIONS."""
    lines = _MD_INTRO.rstrip("\n").split("\n")
    for title, group in OPTION_GROUPS:
        lines += ["", f"## {title}", ""] + _md_table(group)
        for option in group:
            if option.section:
                lines += ["", f"### `{option.name}` section", "", option.help, ""]
                lines += _md_table(option.section)
    return "\n".join(lines) + "\n"


def _iter_usage() -> Iterator[str]:
    yield "usage: python -m orthanc_lite.config json | markdown | check PATH...\n"
    yield "  json      print the documented configuration.json\n"
    yield "  markdown  print docs/configuration.md\n"
    yield "  check     load the given configuration paths and report errors\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Developer entry point: regenerate the generated files, or check a configuration."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["json"] and len(args) == 1:
        sys.stdout.write(render_documented_configuration())
        return 0
    if args[:1] == ["markdown"] and len(args) == 1:
        sys.stdout.write(render_markdown_documentation())
        return 0
    if args[:1] == ["check"] and len(args) > 1:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
        try:
            check_startup_security(load(args[1:]))
        except ConfigError as exc:
            sys.stderr.write(f"{exc}\n")
            return 2
        sys.stdout.write("configuration OK\n")
        return 0
    sys.stderr.write("".join(_iter_usage()))
    return 2
