"""services/find.py as the C-FIND SCP and QIDO-RS will call it: DICOM matching rules, requested keys, streaming."""

from __future__ import annotations

from dataclasses import replace

import orthanc_lite
from orthanc_lite.dicom import matching as m
from orthanc_lite.model import ResourceLevel
from orthanc_lite.services import find as fs
from tests.find.conftest import Store

PATIENT_NAME, PATIENT_ID, STUDY_DATE, MODALITY, ROWS = 0x00100010, 0x00100020, 0x00080020, 0x00080060, 0x00280010


def _query(level: ResourceLevel, keys: dict[int, str], case_sensitive_pn: bool = False, **kw: object) -> m.IndexQuery:
    constraints = tuple(c for c in (m.dicom_constraint(t, v, case_sensitive_pn) for t, v in keys.items()) if c)
    return m.IndexQuery(level=level, constraints=constraints, **kw)  # type: ignore[arg-type]


async def _pids(server: orthanc_lite.Server, store: Store, query: m.IndexQuery) -> set[str]:
    result = await fs.find(server.context, fs.FindRequest(query))
    return {store.owner(a.public_id) for a in result.answers}


async def test_dicom_case_rules(server: orthanc_lite.Server, store: Store) -> None:
    study = ResourceLevel.STUDY
    assert await _pids(server, store, _query(study, {PATIENT_NAME: "doe*"})) == {"P1", "P2"}   # PN: insensitive
    assert await _pids(server, store, _query(study, {PATIENT_NAME: "doe*"}, True)) == {"P2"}   # CaseSensitivePN
    assert await _pids(server, store, _query(study, {PATIENT_ID: "p*"})) == {"p7"}             # LO: sensitive
    assert await _pids(server, store, _query(study, {0x00080080: "hôpital"})) == {"p7"}       # LO: sensitive
    assert await _pids(server, store, _query(ResourceLevel.SERIES, {MODALITY: "ct"})) == set()  # CS: sensitive
    assert await _pids(server, store, _query(study, {m.MODALITIES_IN_STUDY: "MR\\US"})) == {"P1", "P2", "P3", "P11"}
    assert await _pids(server, store, _query(study, {STUDY_DATE: "20220101-20231231"})) == {"P2", "P3"}


async def test_requested_keys(server: orthanc_lite.Server, store: Store) -> None:
    ctx = server.context
    keys = (PATIENT_NAME, PATIENT_ID, STUDY_DATE, m.MODALITIES_IN_STUDY, m.NUMBER_OF_STUDY_RELATED_INSTANCES,
            m.NUMBER_OF_STUDY_RELATED_SERIES, m.SOP_CLASSES_IN_STUDY, m.INSTANCE_AVAILABILITY, ROWS, 0x00081030,
            0x00101010)
    result = await fs.find(ctx, fs.FindRequest(_query(ResourceLevel.STUDY, {PATIENT_ID: "P1"}), requested_tags=keys))
    (answer,) = result.answers
    assert answer.resource is None  # not expanded unless asked
    assert [answer.value(t) for t in keys] == [
        "Doe^John", "P1", "20240102", "CT\\MR", "3", "2", "1.2.840.10008.5.1.4.1.1.2", "ONLINE", "4", "Study of P1", None]
    assert answer.tags[0x00101010] == {"Name": "PatientAge", "Type": "Null", "Value": None}
    image = await fs.find(ctx, fs.FindRequest(_query(ResourceLevel.INSTANCE, {PATIENT_ID: "P2"}),
                                              requested_tags=(0x00080016, 0x00080018, MODALITY, 0x00200013, ROWS)))
    assert [image.answers[0].value(t) for t in (0x00080016, 0x00080018, MODALITY, 0x00200013, ROWS)] == [
        "1.2.840.10008.5.1.4.1.1.2", "1.2.826.0.1.3680043.10.543.2.1.1", "MR", "1", "4"]


async def test_streaming_in_bounded_batches(server: orthanc_lite.Server, store: Store) -> None:
    ctx = server.context
    everything = (await fs.find(ctx, fs.FindRequest(_query(ResourceLevel.INSTANCE, {})))).answers
    assert len(everything) == 13
    for query in (_query(ResourceLevel.INSTANCE, {}), _query(ResourceLevel.INSTANCE, {ROWS: "4"}),
                  _query(ResourceLevel.INSTANCE, {}, since=2, limit=7)):
        cursor = fs.FindCursor(ctx, fs.FindRequest(query, requested_tags=(PATIENT_ID,)), batch_size=3)
        batches = [batch async for batch in cursor]
        assert all(len(b) <= 3 for b in batches)
        streamed = [a.public_id for b in batches for a in b]
        expected = [a.public_id for a in everything if query.plan.files == () or a.public_id not in store.instances["P8"]]
        assert streamed == expected[query.since:][:query.limit or None]
        assert all(a.value(PATIENT_ID) for b in batches for a in b)
        assert cursor.complete


async def test_cancel_mid_stream(server: orthanc_lite.Server, store: Store) -> None:
    """A C-CANCEL stops the iteration; nothing is left running and the index keeps answering."""
    ctx = server.context
    cursor = fs.FindCursor(ctx, fs.FindRequest(_query(ResourceLevel.INSTANCE, {})), batch_size=2)
    async for batch in cursor:
        assert len(batch) == 2
        break
    assert len((await fs.find(ctx, fs.FindRequest(_query(ResourceLevel.STUDY, {})))).answers) == 11


async def test_database_limits(server: orthanc_lite.Server, store: Store) -> None:
    ctx = server.context
    capped = replace(_query(ResourceLevel.STUDY, {}), max_candidates=3)
    result = await fs.find(ctx, fs.FindRequest(capped))
    assert len(result.answers) == 3 and not result.complete
    enough = replace(_query(ResourceLevel.STUDY, {PATIENT_NAME: "doe*"}), max_candidates=3)
    result = await fs.find(ctx, fs.FindRequest(enough))
    assert len(result.answers) == 2 and result.complete
    filtered = replace(_query(ResourceLevel.STUDY, {ROWS: "4"}), max_candidates=5)
    result = await fs.find(ctx, fs.FindRequest(filtered))
    assert len(result.answers) == 5 and not result.complete
    assert fs.with_database_limit(ctx, capped).max_candidates == 3  # LimitFindResults = 0: unchanged


async def test_count(server: orthanc_lite.Server, store: Store) -> None:
    ctx = server.context
    assert await fs.count(ctx, _query(ResourceLevel.INSTANCE, {})) == 13
    assert await fs.count(ctx, _query(ResourceLevel.STUDY, {ROWS: "16"})) == 1
    assert await fs.count(ctx, _query(ResourceLevel.STUDY, {MODALITY: "CT"})) == 0  # lower-level key


async def test_sql_uses_indexes(server: orthanc_lite.Server, store: Store) -> None:
    """The searches are driven by the (tag, value) indexes: no scan of a table."""
    from orthanc_lite.index import find as index_find

    queries = [
        (_query(ResourceLevel.STUDY, {PATIENT_NAME: "DOE*"}), "dicom_identifiers_value"),
        (m.IndexQuery(ResourceLevel.STUDY, (m.rest_constraint(PATIENT_NAME, "doe*"),)), "dicom_identifiers_value"),
        (_query(ResourceLevel.STUDY, {STUDY_DATE: "20200101-20201231"}), "main_dicom_tags_value"),
        (m.IndexQuery(ResourceLevel.SERIES, (m.rest_constraint(MODALITY, "ct"),)), "main_dicom_tags_value"),
        (_query(ResourceLevel.INSTANCE, {0x00080018: "1.2.3"}), "main_dicom_tags_value"),
    ]
    for query, index in queries:
        plan = await server.context.index.engine.read(lambda conn, q=query: index_find.explain(conn, q))
        assert any(index in line for line in plan), plan
        assert not any(line.startswith("SCAN") and "json_each" not in line for line in plan), plan
