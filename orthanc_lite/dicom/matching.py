"""DICOM matching, once for /tools/find, C-FIND and QIDO-RS: a query -> constraints -> an IndexQuery.

Pure (no I/O, no asyncio; pydicom's dictionary is imported lazily so that index/ may import this module).

API
---
Building a query (each builder returns None for a universal match, i.e. an empty value)::

    tag = parse_tag("PatientName")                      # or "0010,0010"; OrthancError 400 if unknown
    c = rest_constraint(tag, "DOE*", case_sensitive=False)      # /tools/find: CaseSensitive applies to all VRs
    c = dicom_constraint(tag, "DOE*", case_sensitive_pn=False)  # C-FIND / QIDO: only PN is case-insensitive
    q = IndexQuery(level=ResourceLevel.STUDY, constraints=(c,), limit=100)

Matching rules (DICOM PS3.4 C.2.2.2, as Orthanc's DatabaseLookup::AddDicomConstraintInternal applies them, in order):
  1. DA/DT/TM and the value has "-": a range "a-b", "a-" or "-b" (bounds inclusive, string order); a
     wildcard in a bound is an error (as in Orthanc 1.10.1).
  2. The tag is ModalitiesInStudy, or the value has "\\": a list (OR of exact values; no wildcards inside).
  3. The value has "*" or "?": wildcard matching if the VR is AE/CS/LO/LT/PN/SH/ST/UC/UR/UT; for any other
     VR it is an error (Orthanc 1.10.1: 400 "Wildcards are not allowed on tag gggg,eeee").
  4. Otherwise: single value matching.
  An empty value is universal (no constraint). A constraint requires the tag to be present (Orthanc's
  "mandatory" constraints). Case-insensitive matching compares upper-cased values.
  "?" matches one character; Orthanc 1.10.1 matches one *byte* in memory (boost::regex on UTF-8), so there
  "?" never matches a non-ASCII character: a deliberate difference.

Which tags can be matched where (FEATURES.md §5.9): main DICOM tags are matched in SQL at the level that
stores them (patient tags are also stored on studies); a main tag of a level *below* the query level matches
nothing, except ModalitiesInStudy at study level (any series Modality matches). Computed tags (§6.2) and
other tags are "post" constraints, checked on values computed in SQL or read from the files; use
`TagConstraint.matches(value)` for them (and for unit tests of the rules).

SQL fragments (index/find.py assembles them; every value is a bound parameter, never spliced):
  - `sql_exact(c, column)`: the exact Orthanc semantics on a raw-value column. Case-sensitive: BINARY
    `=`, `IN`, `>=`/`<=`, and GLOB for wildcards (GLOB's own `[` is escaped; `%`, `_`, `\\`, `'` are plain
    characters there). Case-insensitive: LIKE ... ESCAPE '\\' with `%`, `_`, `\\` escaped (SQLite LIKE folds
    ASCII case, as Orthanc's `lower()` comparisons do), or the `ol_upper()` function for non-ASCII
    values of identifier tags (register it with `register_functions(conn)`).
  - `sql_prefilter(c, column)`: a superset filter on Orthanc's normalized identifier column
    (upper case, accents stripped), usable by the (tag, value) index: `=`, `IN`, GLOB with a literal
    prefix turned into a `>=`/`<` range.
  Each returns a `SqlFragment(sql, params)`.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from ..errors import ErrorCode, OrthancError
from ..index.normalize import normalize_identifier  # what the identifier columns hold
from ..model import ResourceLevel
from .tags import IDENTIFIER_TAGS, MAIN_TAGS, PATIENT_TAGS, tag_key

WILDCARD_VRS: Final = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"})
RANGE_VRS: Final = frozenset({"DA", "DT", "TM"})

MODALITIES_IN_STUDY: Final = 0x00080061
SOP_CLASSES_IN_STUDY: Final = 0x00080062
INSTANCE_AVAILABILITY: Final = 0x00080056
NUMBER_OF_PATIENT_RELATED_STUDIES: Final = 0x00201200
NUMBER_OF_PATIENT_RELATED_SERIES: Final = 0x00201202
NUMBER_OF_PATIENT_RELATED_INSTANCES: Final = 0x00201204
NUMBER_OF_STUDY_RELATED_SERIES: Final = 0x00201206
NUMBER_OF_STUDY_RELATED_INSTANCES: Final = 0x00201208
NUMBER_OF_SERIES_RELATED_INSTANCES: Final = 0x00201209
MODALITY: Final = 0x00080060
SOP_CLASS_UID: Final = 0x00080016

# Computed tags (FEATURES.md §6.2): tag -> (VR, levels where they are computed).
COMPUTED_TAGS: Final[dict[int, tuple[str, frozenset[ResourceLevel]]]] = {
    NUMBER_OF_PATIENT_RELATED_STUDIES: ("IS", frozenset({ResourceLevel.PATIENT})),
    NUMBER_OF_PATIENT_RELATED_SERIES: ("IS", frozenset({ResourceLevel.PATIENT})),
    NUMBER_OF_PATIENT_RELATED_INSTANCES: ("IS", frozenset({ResourceLevel.PATIENT})),
    NUMBER_OF_STUDY_RELATED_SERIES: ("IS", frozenset({ResourceLevel.STUDY})),
    NUMBER_OF_STUDY_RELATED_INSTANCES: ("IS", frozenset({ResourceLevel.STUDY})),
    NUMBER_OF_SERIES_RELATED_INSTANCES: ("IS", frozenset({ResourceLevel.SERIES})),
    MODALITIES_IN_STUDY: ("CS", frozenset({ResourceLevel.STUDY})),
    SOP_CLASSES_IN_STUDY: ("UI", frozenset({ResourceLevel.STUDY})),
    INSTANCE_AVAILABILITY: ("CS", frozenset({ResourceLevel.STUDY, ResourceLevel.SERIES, ResourceLevel.INSTANCE})),
}

_PATIENT_TAG_SET: Final = frozenset(t for t, _ in PATIENT_TAGS)
_MAIN_LEVELS: Final[dict[int, tuple[ResourceLevel, ...]]] = {}
for _level, _tags in MAIN_TAGS.items():
    for _tag, _name in _tags:
        _MAIN_LEVELS.setdefault(_tag, ())
        _MAIN_LEVELS[_tag] = (*_MAIN_LEVELS[_tag], _level)


class MatchKind(enum.Enum):
    EQUAL = "Equal"        # single value matching
    WILDCARD = "Wildcard"  # "*" (any run) and "?" (one character)
    RANGE = "Range"        # values = (lower, upper); "" = open bound
    LIST = "List"          # values = the alternatives


class LabelsConstraint(enum.Enum):
    ALL = "All"
    ANY = "Any"
    NONE = "None"


class OrderCast(enum.Enum):
    STRING = "String"
    INT = "Int"
    FLOAT = "Float"


@dataclass(frozen=True, slots=True)
class TagConstraint:
    """One constraint on a DICOM tag (or, with `tag` = a metadata number, on a metadata: see MetadataConstraint)."""

    tag: int
    kind: MatchKind
    values: tuple[str, ...]
    case_sensitive: bool
    vr: str = "UN"

    def matches(self, value: str | None) -> bool:
        """Orthanc's in-memory DicomTagConstraint::IsMatch (a missing value never matches)."""
        if value is None:
            return False
        fold = _identity if self.case_sensitive else _upper
        v = fold(value)
        if self.kind is MatchKind.EQUAL:
            return v == fold(self.values[0])
        if self.kind is MatchKind.LIST:
            return any(v == fold(x) for x in self.values)
        if self.kind is MatchKind.RANGE:
            low, high = self.values
            return (not low or v >= fold(low)) and (not high or v <= fold(high))
        return wildcard_regex(fold(self.values[0])).fullmatch(v) is not None


@dataclass(frozen=True, slots=True)
class MetadataConstraint:
    """MetadataQuery (≥1.12.5): exact, wildcard ("*", "?") or "\\"-separated list on one metadata."""

    metadata: int
    kind: MatchKind
    values: tuple[str, ...]
    case_sensitive: bool

    def as_tag_constraint(self) -> TagConstraint:
        return TagConstraint(self.metadata, self.kind, self.values, self.case_sensitive, "LO")


@dataclass(frozen=True, slots=True)
class OrderBy:
    """OrderBy item: a DICOM tag (its stored main-tag value) or a metadata, cast as string, int or float."""

    tag: int | None = None        # DicomTag*
    metadata: int | None = None   # Metadata*
    cast: OrderCast = OrderCast.STRING
    descending: bool = False


@dataclass(frozen=True, slots=True)
class IndexQuery:
    """Everything the index needs to select resources of one level (pure value; see module docstring)."""

    level: ResourceLevel
    constraints: tuple[TagConstraint, ...] = ()
    metadata: tuple[MetadataConstraint, ...] = ()
    labels: tuple[str, ...] = ()
    labels_constraint: LabelsConstraint = LabelsConstraint.ALL
    parents: tuple[tuple[ResourceLevel, str], ...] = ()   # (level, public id) of required ancestors (or self)
    order_by: tuple[OrderBy, ...] = ()
    since: int = 0
    limit: int = 0            # 0 = no limit
    max_candidates: int = 0   # LimitFindResults/LimitFindInstances + 1 (Orthanc's database limit); 0 = none
    plan: QueryPlan = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "plan", plan_query(self.level, self.constraints))

    @property
    def needs_post_filter(self) -> bool:
        """Some constraints are checked after SQL (computed tags, or tags read from the files)."""
        return bool(self.plan.computed or self.plan.files)

    @property
    def needs_files(self) -> bool:
        return bool(self.plan.files)


@dataclass(frozen=True, slots=True)
class PlacedConstraint:
    """A constraint on a main tag, located at the level whose main_dicom_tags row holds it."""

    constraint: TagConstraint
    level: ResourceLevel      # the level of the row (patient tags of studies: STUDY)
    identifier: bool          # the tag is in the normalized dicom_identifiers table at that level
    children: bool = False    # ModalitiesInStudy: match any child series' Modality


@dataclass(frozen=True, slots=True)
class QueryPlan:
    sql: tuple[PlacedConstraint, ...] = ()
    computed: tuple[TagConstraint, ...] = ()   # computed tags, checked after SQL
    files: tuple[TagConstraint, ...] = ()      # other tags: read from one instance file
    impossible: bool = False                   # a constraint on a lower-level main tag: no match at all


def plan_query(level: ResourceLevel, constraints: Iterable[TagConstraint]) -> QueryPlan:
    """Split constraints into SQL (main tags), computed and file constraints (Orthanc's NormalizeLookup)."""
    sql: list[PlacedConstraint] = []
    computed: list[TagConstraint] = []
    files: list[TagConstraint] = []
    impossible = False
    for c in constraints:
        if c.tag == MODALITIES_IN_STUDY:
            if level is ResourceLevel.STUDY:
                sql.append(PlacedConstraint(TagConstraint(MODALITY, c.kind, c.values, c.case_sensitive, "CS"),
                                            ResourceLevel.SERIES, False, children=True))
            else:
                impossible = True  # Orthanc 1.10.1: no match at the other levels
            continue
        placed = main_tag_level(c.tag, level)
        if placed is not None:
            sql.append(PlacedConstraint(c, placed, c.tag in IDENTIFIER_TAGS[placed]))
        elif c.tag in _MAIN_LEVELS:
            impossible = True  # main tag of a lower level: "this will return no result"
        elif c.tag in COMPUTED_TAGS and level in COMPUTED_TAGS[c.tag][1]:
            computed.append(c)
        else:
            files.append(c)
    return QueryPlan(tuple(sql), tuple(computed), tuple(files), impossible)


def main_tag_level(tag: int, level: ResourceLevel) -> ResourceLevel | None:
    """The level whose stored main tags hold `tag` for a resource of `level` (or its ancestors); None if none.

    Patient tags are copied onto studies, so below the patient level they are read on the study.
    When a tag is main at several levels (ImageOrientationPatient...), the deepest one wins.
    """
    levels = _MAIN_LEVELS.get(tag)
    if not levels:
        return None
    best: ResourceLevel | None = None
    for candidate in levels:
        if candidate <= level and (best is None or candidate > best):
            best = candidate
    if best is ResourceLevel.PATIENT and level >= ResourceLevel.STUDY and tag in _PATIENT_TAG_SET:
        return ResourceLevel.STUDY
    return best


# --- building constraints -----------------------------------------------------------------------


def parse_tag(text: str) -> int:
    """A tag name or "gggg,eeee" -> int; OrthancError(UnknownDicomTag) answered as 400."""
    from .dicom_json import parse_tag as _parse  # lazy: pydicom's dictionary

    try:
        return _parse(text)
    except ValueError:
        raise OrthancError(ErrorCode.UnknownDicomTag, f"Unknown DICOM tag: \"{text}\"", http_status=400) from None


def tag_vr(tag: int) -> str:
    """The dictionary VR of a tag (computed tags included); "UN" when unknown or ambiguous."""
    computed = COMPUTED_TAGS.get(tag)
    if computed is not None:
        return computed[0]
    from pydicom.datadict import dictionary_VR  # lazy: keep index/ free of pydicom

    try:
        vr = str(dictionary_VR(tag))
    except KeyError:
        return "UN"
    return vr if len(vr) == 2 else "UN"


def rest_constraint(tag: int, value: str, case_sensitive: bool = False, vr: str | None = None) -> TagConstraint | None:
    """A /tools/find constraint: `CaseSensitive` applies to every VR (FEATURES.md §5.9)."""
    return _constraint(tag, value, case_sensitive, tag_vr(tag) if vr is None else vr)


def dicom_constraint(tag: int, value: str, case_sensitive_pn: bool = False, vr: str | None = None) -> TagConstraint | None:
    """A C-FIND / QIDO constraint: PN follows CaseSensitivePN, every other VR is case-sensitive (PS3.4 C.2.2.2.1).

    A sequence (SQ) key cannot be matched: OrthancError(ParameterOutOfRange).
    """
    vr = tag_vr(tag) if vr is None else vr
    if vr == "SQ":
        raise OrthancError(ErrorCode.ParameterOutOfRange, f"Cannot match on the sequence {tag_key(tag)}")
    return _constraint(tag, value, case_sensitive_pn if vr == "PN" else True, vr)


def _constraint(tag: int, value: str, case_sensitive: bool, vr: str) -> TagConstraint | None:
    if value == "":
        return None
    if vr in RANGE_VRS and "-" in value:
        if "*" in value or "?" in value:
            raise OrthancError(ErrorCode.ParameterOutOfRange, f"Wildcards are not allowed on tag {tag_key(tag)}")
        low, _, high = value.partition("-")
        if not low and not high:
            return None
        return TagConstraint(tag, MatchKind.RANGE, (low, high), case_sensitive, vr)
    if tag == MODALITIES_IN_STUDY and "\\" not in value and ("*" in value or "?" in value):
        return TagConstraint(tag, MatchKind.WILDCARD, (value,), case_sensitive, vr)
    if tag == MODALITIES_IN_STUDY or "\\" in value:
        return TagConstraint(tag, MatchKind.LIST, tuple(value.split("\\")), case_sensitive, vr)
    if "*" in value or "?" in value:
        if vr not in WILDCARD_VRS:
            raise OrthancError(ErrorCode.ParameterOutOfRange, f"Wildcards are not allowed on tag {tag_key(tag)}")
        return TagConstraint(tag, MatchKind.WILDCARD, (value,), case_sensitive, vr)
    return TagConstraint(tag, MatchKind.EQUAL, (value,), case_sensitive, vr)


def metadata_constraint(metadata: int, value: str, case_sensitive: bool = False) -> MetadataConstraint | None:
    """MetadataQuery value: "\\" makes a list, "*"/"?" a wildcard, else exact; "" is universal."""
    if value == "":
        return None
    if "\\" in value:
        return MetadataConstraint(metadata, MatchKind.LIST, tuple(value.split("\\")), case_sensitive)
    if "*" in value or "?" in value:
        return MetadataConstraint(metadata, MatchKind.WILDCARD, (value,), case_sensitive)
    return MetadataConstraint(metadata, MatchKind.EQUAL, (value,), case_sensitive)


# --- values -------------------------------------------------------------------------------------


def _identity(text: str) -> str:
    return text


def _upper(text: str) -> str:
    return text.upper()


_REGEX_CACHE: dict[str, re.Pattern[str]] = {}


def wildcard_regex(pattern: str) -> re.Pattern[str]:
    """"*" -> any run, "?" -> one character; everything else literal (Orthanc's WildcardToRegularExpression)."""
    compiled = _REGEX_CACHE.get(pattern)
    if compiled is None:
        parts = [".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern]
        compiled = re.compile("".join(parts), re.DOTALL)
        if len(_REGEX_CACHE) < 1024:
            _REGEX_CACHE[pattern] = compiled
    return compiled


# --- SQL fragments ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SqlFragment:
    sql: str
    params: tuple[object, ...]
    indexed: bool = False   # a (tag, value) index can find the rows (=, IN, a range, a literal prefix)


MAX_CASE_VARIANTS: Final = 64


def case_variants(values: Iterable[str]) -> tuple[str, ...] | None:
    """Every ASCII-case spelling of the values (what LIKE folds), or None when there would be too many."""
    out: list[str] = []
    for value in values:
        letters = sum(1 for ch in value if ch.isascii() and ch.isalpha())
        if len(out) + (1 << letters) > MAX_CASE_VARIANTS:
            return None
        spellings = [""]
        for ch in value:
            if ch.isascii() and ch.isalpha():
                spellings = [p + c for p in spellings for c in (ch.lower(), ch.upper())]
            else:
                spellings = [p + ch for p in spellings]
        out.extend(spellings)
    return tuple(dict.fromkeys(out))


def escape_like(text: str) -> str:
    """A literal for LIKE ... ESCAPE '\\'."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def wildcard_to_like(pattern: str) -> str:
    return "".join("%" if ch == "*" else "_" if ch == "?" else escape_like(ch) for ch in pattern)


def wildcard_to_glob(pattern: str) -> str:
    """DICOM wildcards to GLOB; GLOB's "[" is escaped (its "]" is literal outside brackets)."""
    return pattern.replace("[", "[[]")


def literal_prefix(pattern: str) -> str:
    """The characters before the first wildcard."""
    for i, ch in enumerate(pattern):
        if ch in "*?":
            return pattern[:i]
    return pattern


def _prefix_range(column: str, prefix: str) -> tuple[str, tuple[object, ...]]:
    """`column` starts with `prefix`, as an index-friendly range (BINARY collation)."""
    if not prefix:
        return "", ()
    last = ord(prefix[-1])
    if last >= 0x10FFFF:
        return f"{column} >= ?", (prefix,)
    return f"{column} >= ? AND {column} < ?", (prefix, prefix[:-1] + chr(last + 1))


def _glob(column: str, pattern: str) -> SqlFragment:
    prefix = literal_prefix(pattern)
    if prefix == pattern:  # no wildcard at all
        return SqlFragment(f"{column} = ?", (pattern,), True)
    if pattern == "*":
        return SqlFragment("1", ())
    rng, params = _prefix_range(column, prefix)
    sql = f"{column} GLOB ?"
    if rng:
        return SqlFragment(f"{rng} AND {sql}", (*params, wildcard_to_glob(pattern)), True)
    return SqlFragment(sql, (wildcard_to_glob(pattern),))


def _in(column: str, values: Iterable[str]) -> SqlFragment:
    vals = tuple(dict.fromkeys(values))
    if len(vals) == 1:
        return SqlFragment(f"{column} = ?", vals, True)
    return SqlFragment(f"{column} IN ({','.join('?' * len(vals))})", vals, True)


def _ascii(values: Iterable[str]) -> bool:
    return all(v.isascii() for v in values)


def sql_exact(c: TagConstraint, column: str, *, unicode_upper: bool = False) -> SqlFragment:
    """The constraint on a column of raw values, with Orthanc's semantics (see module docstring).

    `unicode_upper`: case-insensitive matching must fold non-ASCII letters too (identifier tags, whose
    Orthanc check is in memory with a Unicode upper case); uses ol_upper() when a value is not ASCII.
    Without it, case-insensitive matching folds ASCII letters only (Orthanc's SQL `lower()`).
    """
    if c.kind is MatchKind.RANGE:
        low, high = c.values
        parts, params = [], []
        if low:
            parts.append(f"{column} >= ?")
            params.append(low)
        if high:
            parts.append(f"{column} <= ?")
            params.append(high)
        return SqlFragment(" AND ".join(parts) or "1", tuple(params), bool(parts))
    if c.case_sensitive:
        if c.kind is MatchKind.WILDCARD:
            return _glob(column, c.values[0])
        return _in(column, c.values)
    if unicode_upper and not _ascii(c.values):
        upper_col = f"ol_upper({column})"
        if c.kind is MatchKind.WILDCARD:
            pattern = c.values[0].upper()
            return SqlFragment(f"{upper_col} GLOB ?", (wildcard_to_glob(pattern),)) if pattern != "*" else SqlFragment("1", ())
        frag = _in(upper_col, (v.upper() for v in c.values))
        return SqlFragment(frag.sql, frag.params)  # a function of the column: no index
    if c.kind is MatchKind.WILDCARD:
        if c.values[0] == "*":
            return SqlFragment("1", ())
        return SqlFragment(f"{column} LIKE ? ESCAPE '\\'", (wildcard_to_like(c.values[0]),))
    variants = case_variants(c.values)
    if variants is not None:  # the same as LIKE (ASCII case folding), but the index can find them
        return _in(column, variants)
    likes = tuple(dict.fromkeys(escape_like(v) for v in c.values))
    return SqlFragment("(" + " OR ".join(f"{column} LIKE ? ESCAPE '\\'" for _ in likes) + ")", likes)


def sql_prefilter(c: TagConstraint, column: str) -> SqlFragment:
    """A superset of the constraint on Orthanc's normalized identifiers (index-friendly)."""
    if c.kind is MatchKind.RANGE:
        return sql_exact(c, column)  # DA/DT/TM are ASCII: normalizing keeps their order
    if c.kind is MatchKind.WILDCARD:
        return _glob(column, normalize_identifier(c.values[0]))
    return _in(column, (normalize_identifier(v) for v in c.values))


def sql_metadata(c: MetadataConstraint, column: str) -> SqlFragment:
    """MetadataQuery in SQL (Orthanc matches metadata in the database only: ASCII case folding)."""
    return sql_exact(c.as_tag_constraint(), column)


def register_functions(conn: object) -> None:
    """Define ol_upper() (Python's Unicode upper case) on a sqlite3 connection; idempotent."""
    conn.create_function("ol_upper", 1, _sql_upper, deterministic=True)  # type: ignore[attr-defined]


def _sql_upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value
