"""dicom/matching.py: the matching rules per VR, and its SQL fragments run on a real SQLite table."""

from __future__ import annotations

import sqlite3

import pytest

from orthanc_lite.dicom import matching as m
from orthanc_lite.dicom.matching import MatchKind, TagConstraint
from orthanc_lite.errors import OrthancError
from orthanc_lite.model import ResourceLevel

PATIENT_NAME, PATIENT_ID, STUDY_DATE, STUDY_UID = 0x00100010, 0x00100020, 0x00080020, 0x0020000D
STUDY_TIME, SERIES_NUMBER, MODALITY, INSTITUTION = 0x00080030, 0x00200011, 0x00080060, 0x00080080


# --- parsing a query value into a constraint --------------------------------------------------


def test_empty_value_is_universal() -> None:
    assert m.rest_constraint(PATIENT_NAME, "") is None
    assert m.dicom_constraint(PATIENT_NAME, "") is None
    assert m.rest_constraint(STUDY_DATE, "-") is None  # a range with no bound


@pytest.mark.parametrize("value, kind, values", [
    ("20200101-20201231", MatchKind.RANGE, ("20200101", "20201231")),
    ("20200101-", MatchKind.RANGE, ("20200101", "")),
    ("-20201231", MatchKind.RANGE, ("", "20201231")),
    ("20200101", MatchKind.EQUAL, ("20200101",)),
    ("20200101\\20210101", MatchKind.LIST, ("20200101", "20210101")),
    # the range test comes first: the "\\" is then part of the upper bound (as Orthanc)
    ("20200101-20201231\\20240102", MatchKind.RANGE, ("20200101", "20201231\\20240102")),
])
def test_date_values(value: str, kind: MatchKind, values: tuple[str, ...]) -> None:
    c = m.rest_constraint(STUDY_DATE, value)
    assert c is not None and c.kind is kind and c.values == values


def test_ranges_only_for_da_dt_tm() -> None:
    c = m.rest_constraint(SERIES_NUMBER, "1-2")  # IS: a plain value
    assert c is not None and c.kind is MatchKind.EQUAL
    c = m.rest_constraint(PATIENT_ID, "A-B")     # LO
    assert c is not None and c.kind is MatchKind.EQUAL
    c = m.rest_constraint(STUDY_TIME, "1000-1200")  # TM
    assert c is not None and c.kind is MatchKind.RANGE


@pytest.mark.parametrize("tag", [PATIENT_NAME, PATIENT_ID, MODALITY, INSTITUTION, 0x00080050, 0x00081030])
def test_wildcards_on_string_vrs(tag: int) -> None:
    c = m.rest_constraint(tag, "A*B?")
    assert c is not None and c.kind is MatchKind.WILDCARD


@pytest.mark.parametrize("tag", [STUDY_DATE, STUDY_UID, STUDY_TIME, SERIES_NUMBER])
def test_wildcards_refused_on_other_vrs(tag: int) -> None:
    with pytest.raises(OrthancError) as info:
        m.rest_constraint(tag, "1*")
    assert info.value.http_status == 400
    assert "Wildcards are not allowed on tag" in str(info.value)


def test_no_wildcards_in_range_bounds() -> None:
    with pytest.raises(OrthancError):
        m.rest_constraint(STUDY_DATE, "2020*-")


def test_lists_take_no_wildcards() -> None:
    c = m.rest_constraint(STUDY_UID, "1.2*\\1.3")  # a list of exact values: no error on UI
    assert c is not None and c.kind is MatchKind.LIST and c.values == ("1.2*", "1.3")
    assert not c.matches("1.2.3") and c.matches("1.3")


def test_modalities_in_study() -> None:
    c = m.rest_constraint(m.MODALITIES_IN_STUDY, "CT")
    assert c is not None and c.kind is MatchKind.LIST
    c = m.rest_constraint(m.MODALITIES_IN_STUDY, "C?")  # Orthanc 1.10.1 accepts one wildcard value
    assert c is not None and c.kind is MatchKind.WILDCARD
    c = m.rest_constraint(m.MODALITIES_IN_STUDY, "CT\\M*")
    assert c is not None and c.kind is MatchKind.LIST and not c.matches("MR")


def test_case_sensitivity_rules() -> None:
    rest = m.rest_constraint(PATIENT_ID, "abc", case_sensitive=False)
    assert rest is not None and not rest.case_sensitive  # REST: every VR follows CaseSensitive
    dicom = m.dicom_constraint(PATIENT_ID, "abc", case_sensitive_pn=False)
    assert dicom is not None and dicom.case_sensitive  # C-FIND: LO is always case-sensitive
    pn = m.dicom_constraint(PATIENT_NAME, "abc", case_sensitive_pn=False)
    assert pn is not None and not pn.case_sensitive
    pn = m.dicom_constraint(PATIENT_NAME, "abc", case_sensitive_pn=True)
    assert pn is not None and pn.case_sensitive


def test_dicom_sequence_keys_refused() -> None:
    with pytest.raises(OrthancError):
        m.dicom_constraint(0x00081140, "x")  # ReferencedImageSequence


def test_parse_tag() -> None:
    assert m.parse_tag("PatientName") == PATIENT_NAME
    assert m.parse_tag("0010,0010") == PATIENT_NAME
    assert m.parse_tag("ModalitiesInStudy") == m.MODALITIES_IN_STUDY
    with pytest.raises(OrthancError) as info:
        m.parse_tag("NoSuchTag")
    assert info.value.http_status == 400


# --- in-memory matching (tags read from files, computed tags) -----------------------------------


@pytest.mark.parametrize("kind, values, cs, value, expected", [
    (MatchKind.EQUAL, ("Doe",), True, "Doe", True),
    (MatchKind.EQUAL, ("Doe",), True, "DOE", False),
    (MatchKind.EQUAL, ("doe",), False, "DOE", True),
    (MatchKind.EQUAL, ("élodie",), False, "ÉLODIE", True),   # Unicode upper case
    (MatchKind.EQUAL, ("elodie",), False, "ÉLODIE", False),  # accents matter
    (MatchKind.LIST, ("A", "B"), True, "B", True),
    (MatchKind.LIST, ("A", "B"), True, "A\\B", False),       # the whole value is compared
    (MatchKind.WILDCARD, ("D*E?",), True, "DOXEY", True),
    (MatchKind.WILDCARD, ("D*E?",), True, "DOXE", False),
    (MatchKind.WILDCARD, ("d*",), False, "DOE", True),
    (MatchKind.WILDCARD, ("*",), True, "", True),
    (MatchKind.WILDCARD, ("a.c",), True, "abc", False),      # regex characters are literal
    (MatchKind.WILDCARD, ("%_\\*",), True, "%_\\anything", True),
    (MatchKind.RANGE, ("20200101", "20201231"), True, "20200615", True),
    (MatchKind.RANGE, ("20200101", "20201231"), True, "20201231", True),
    (MatchKind.RANGE, ("20200101", ""), True, "20190101", False),
    (MatchKind.RANGE, ("", "20200101"), True, "20190101", True),
])
def test_matches(kind: MatchKind, values: tuple[str, ...], cs: bool, value: str, expected: bool) -> None:
    assert TagConstraint(PATIENT_NAME, kind, values, cs).matches(value) is expected


def test_missing_value_never_matches() -> None:
    c = TagConstraint(PATIENT_NAME, MatchKind.WILDCARD, ("*",), True)
    assert not c.matches(None)


# --- where constraints run ----------------------------------------------------------------------


def test_plan_levels() -> None:
    name = m.rest_constraint(PATIENT_NAME, "X")
    modality = m.rest_constraint(MODALITY, "CT")
    assert name is not None and modality is not None
    plan = m.plan_query(ResourceLevel.STUDY, [name])
    assert plan.sql[0].level is ResourceLevel.STUDY and plan.sql[0].identifier  # copied onto studies
    assert m.plan_query(ResourceLevel.PATIENT, [name]).sql[0].level is ResourceLevel.PATIENT
    assert m.plan_query(ResourceLevel.INSTANCE, [name]).sql[0].level is ResourceLevel.STUDY
    assert m.plan_query(ResourceLevel.STUDY, [modality]).impossible  # a lower-level tag
    assert m.plan_query(ResourceLevel.INSTANCE, [modality]).sql[0].level is ResourceLevel.SERIES
    mis = m.rest_constraint(m.MODALITIES_IN_STUDY, "CT")
    assert mis is not None
    assert m.plan_query(ResourceLevel.STUDY, [mis]).sql[0].children
    assert m.plan_query(ResourceLevel.SERIES, [mis]).impossible
    rows = m.rest_constraint(0x00280010, "8")
    assert rows is not None and m.plan_query(ResourceLevel.STUDY, [rows]).files == (rows,)
    count = m.rest_constraint(m.NUMBER_OF_STUDY_RELATED_SERIES, "2")
    assert count is not None and m.plan_query(ResourceLevel.STUDY, [count]).computed == (count,)


# --- SQL fragments on a real SQLite table: parameters only, metacharacters matched literally ----

NASTY = ["O'Brien", "100%", "100x", "a_b", "axb", "back\\slash", "star*", "starry", "[x]", "x", "Robert'); DROP TABLE t;--",
         "Élodie", "élodie", "ELODIE", "hôpital", "Hôpital", "HÔPITAL", ""]


@pytest.fixture
def table() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t(value TEXT NOT NULL)")
    conn.execute("CREATE INDEX t_value ON t(value)")
    conn.executemany("INSERT INTO t VALUES (?)", [(v,) for v in NASTY])
    m.register_functions(conn)
    return conn


def _select(conn: sqlite3.Connection, frag: m.SqlFragment) -> set[str]:
    assert "'" not in frag.sql.replace("ESCAPE '\\'", "")  # nothing but parameters
    return {r[0] for r in conn.execute(f"SELECT value FROM t WHERE {frag.sql}", frag.params)}


@pytest.mark.parametrize("value", [v for v in NASTY if v and "\\" not in v and "*" not in v])
def test_exact_values_match_only_themselves(table: sqlite3.Connection, value: str) -> None:
    c = TagConstraint(PATIENT_NAME, MatchKind.EQUAL, (value,), True)
    assert _select(table, m.sql_exact(c, "value")) == {value}
    assert table.execute("SELECT COUNT(*) FROM t").fetchone()[0] == len(NASTY)  # still there


@pytest.mark.parametrize("pattern, expected", [
    ("100%", {"100%"}),
    ("a_b", {"a_b"}),
    ("O'Brien", {"O'Brien"}),
    ("star*", {"star*", "starry"}),
    ("*%*", {"100%"}),
    ("*_*", {"a_b"}),
    ("[x]", {"[x]"}),
    ("[*", {"[x]"}),
    ("?", {"x"}),
    ("*\\*", {"back\\slash"}),  # (the parser makes a list of it) GLOB treats "\\" literally
    ("*'*", {"O'Brien", "Robert'); DROP TABLE t;--"}),
])
def test_case_sensitive_wildcards(table: sqlite3.Connection, pattern: str, expected: set[str]) -> None:
    c = TagConstraint(PATIENT_NAME, MatchKind.WILDCARD, (pattern,), True)
    got = _select(table, m.sql_exact(c, "value"))
    assert got == {v for v in NASTY if c.matches(v)} == expected


@pytest.mark.parametrize("pattern", ["100%", "a_b", "*%*", "*_*", "STAR*", "o'b*", "*\\*", "h?pital", "[X]"])
def test_case_insensitive_wildcards_agree_with_memory(table: sqlite3.Connection, pattern: str) -> None:
    c = TagConstraint(PATIENT_NAME, MatchKind.WILDCARD, (pattern,), False)
    expected = {v for v in NASTY if c.matches(v)}
    assert _select(table, m.sql_exact(c, "value", unicode_upper=True)) == expected
    assert _select(table, m.sql_exact(c, "value")) == expected  # ASCII patterns: LIKE is enough


def test_case_insensitive_non_ascii(table: sqlite3.Connection) -> None:
    c = TagConstraint(PATIENT_NAME, MatchKind.EQUAL, ("ÉLODIE",), False)
    assert _select(table, m.sql_exact(c, "value", unicode_upper=True)) == {"Élodie", "élodie"}
    # Non-identifier tags: Orthanc compares with SQL lower(), which folds ASCII letters only.
    c = TagConstraint(INSTITUTION, MatchKind.EQUAL, ("HÔPITAL",), False)
    assert _select(table, m.sql_exact(c, "value")) == {"HÔPITAL"}
    c = TagConstraint(INSTITUTION, MatchKind.EQUAL, ("hôpital",), False)
    assert _select(table, m.sql_exact(c, "value")) == {"hôpital", "Hôpital"}


def test_lists_and_ranges(table: sqlite3.Connection) -> None:
    c = TagConstraint(PATIENT_NAME, MatchKind.LIST, ("x", "a_b", "nope"), True)
    assert _select(table, m.sql_exact(c, "value")) == {"x", "a_b"}
    c = TagConstraint(PATIENT_NAME, MatchKind.LIST, ("X", "A_B"), False)
    assert _select(table, m.sql_exact(c, "value")) == {"x", "a_b"}
    c = TagConstraint(PATIENT_NAME, MatchKind.RANGE, ("a", "b"), True)
    assert _select(table, m.sql_exact(c, "value")) == {v for v in NASTY if "a" <= v <= "b"}


def test_prefilter_on_normalized_values() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t(value TEXT NOT NULL)")
    names = ["Élodie^Martin", "elodie^x", "Doe^John", "DOE%", "d_e"]
    conn.executemany("INSERT INTO t VALUES (?)", [(m.normalize_identifier(v),) for v in names])
    for pattern, kind in (("élodie*", MatchKind.WILDCARD), ("DOE^JOHN", MatchKind.EQUAL), ("doe%", MatchKind.EQUAL),
                          ("d_e", MatchKind.EQUAL), ("D?E", MatchKind.WILDCARD)):
        c = TagConstraint(PATIENT_NAME, kind, (pattern,), False)
        got = {r[0] for r in conn.execute(f"SELECT value FROM t WHERE {m.sql_prefilter(c, 'value').sql}",
                                          m.sql_prefilter(c, "value").params)}
        for name in names:  # a superset of the exact matches
            if c.matches(name):
                assert m.normalize_identifier(name) in got


def test_prefix_wildcards_use_the_index(table: sqlite3.Connection) -> None:
    c = TagConstraint(PATIENT_NAME, MatchKind.WILDCARD, ("star*",), True)
    frag = m.sql_exact(c, "value")
    plan = " ".join(r[3] for r in table.execute(f"EXPLAIN QUERY PLAN SELECT value FROM t WHERE {frag.sql}", frag.params))
    assert "USING COVERING INDEX t_value (value>? AND value<?)" in plan


@pytest.mark.parametrize("value", ["Élodie^Martin", " doe ", "Müller", "ŁÓDŹ", "100%_sure", "Yamada^Tarou=山田^太郎",
                                   "ﬁnance", "straße", "O'Brien", "", "\tTab"])
def test_normalization_matches_the_index(value: str) -> None:
    """The prefilter normalizes queries exactly as index/ normalizes the stored identifiers."""
    from orthanc_lite.index.normalize import normalize_identifier

    assert m.normalize_identifier(value) == normalize_identifier(value)
