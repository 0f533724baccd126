"""Metadata (/{level}/{id}/metadata...) and labels (/{level}/{id}/labels..., /tools/labels) over real HTTP.

Expected answers were recorded from Orthanc 1.10.1 (metadata, revisions) and from orthanc-tests' test_labels /
test_numeric_metadata (1.12 behaviour).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import aiohttp
import pytest

import orthanc_lite
from orthanc_lite.config import Settings
from tests.data.make_samples import make_instance

USER_METADATA = {"Sample": 1024, "Other": 2000}


def _etag(revision: int, value: str) -> str:
    return f'"{revision}-{hashlib.md5(value.encode()).hexdigest()}"'


@pytest.fixture
def settings(settings: Settings) -> Settings:  # type: ignore[override]
    return settings.replace(UserMetadata=USER_METADATA)


@pytest.fixture
async def checked(settings: Settings) -> AsyncIterator[aiohttp.ClientSession]:
    """A server with CheckRevisions: If-Match is mandatory to replace or delete."""
    async with orthanc_lite.serve(settings.replace(CheckRevisions=True), host="127.0.0.1") as srv, \
            aiohttp.ClientSession(base_url=srv.url) as session:
        yield session


async def _upload(http: aiohttp.ClientSession, patient: str = "P1") -> dict:
    async with http.post("/instances", data=make_instance(patient)) as resp:
        assert resp.status == 200
        return await resp.json()


async def _changes(http: aiohttp.ClientSession, change_type: str) -> list[dict]:
    async with http.get("/changes?limit=1000") as resp:
        return [c for c in (await resp.json())["Changes"] if c["ChangeType"] == change_type]


async def _status_body(resp: aiohttp.ClientResponse) -> tuple[int, bytes]:
    return resp.status, await resp.read()


# --- listing ----------------------------------------------------------------------------------------------

async def test_list_instance_metadata(http: aiohttp.ClientSession) -> None:
    i = (await _upload(http))["ID"]
    async with http.get(f"/instances/{i}/metadata") as resp:
        assert resp.status == 200
        names = await resp.json()
    for name in ("IndexInSeries", "ReceptionDate", "Origin", "TransferSyntax", "SopClassUid", "RemoteIP"):
        assert name in names
    # Ordered by metadata number, as Orthanc's std::map.
    from orthanc_lite.model import MetadataType
    assert [MetadataType[n] for n in names] == sorted(MetadataType[n] for n in names)

    async with http.get(f"/instances/{i}/metadata?expand") as resp:
        expanded = await resp.json()
    assert set(expanded) == set(names)
    assert expanded["Origin"] == "RestApi"
    assert expanded["SopClassUid"] == "1.2.840.10008.5.1.4.1.1.2"
    assert expanded["IndexInSeries"] == "1"


async def test_numeric_metadata_like_orthanc_tests(http: aiohttp.ClientSession) -> None:
    study = (await _upload(http))["ParentStudy"]
    async with http.get(f"/studies/{study}/metadata") as resp:
        assert sorted(await resp.json()) == ["LastUpdate", "MainDicomTagsSignature"]
    last_update = await (await http.get(f"/studies/{study}/metadata/LastUpdate")).text()
    signature = await (await http.get(f"/studies/{study}/metadata/MainDicomTagsSignature")).text()

    async with http.get(f"/studies/{study}/metadata?numeric") as resp:
        assert await resp.json() == [7, 15]  # numbers, not strings
    assert await (await http.get(f"/studies/{study}/metadata/7")).text() == last_update
    assert await (await http.get(f"/studies/{study}/metadata/15")).text() == signature

    async with http.get(f"/studies/{study}/metadata?expand") as resp:
        assert await resp.json() == {"LastUpdate": last_update, "MainDicomTagsSignature": signature}
    async with http.get(f"/studies/{study}/metadata?expand&numeric") as resp:
        assert await resp.json() == {"7": last_update, "15": signature}


async def test_expand_is_a_boolean_argument(http: aiohttp.ClientSession) -> None:
    study = (await _upload(http))["ParentStudy"]
    async with http.get(f"/studies/{study}/metadata?expand=false") as resp:
        assert isinstance(await resp.json(), list)
    async with http.get(f"/studies/{study}/metadata?expand=true") as resp:
        assert isinstance(await resp.json(), dict)
    async with http.get(f"/studies/{study}/metadata?expand=maybe") as resp:
        assert resp.status == 400


async def test_metadata_of_unknown_or_wrong_level_resource(http: aiohttp.ClientSession) -> None:
    up = await _upload(http)
    async with http.get("/instances/0000/metadata") as resp:
        assert resp.status == 404
        assert (await resp.json())["OrthancStatus"] == 17  # UnknownResource
    async with http.get(f"/patients/{up['ID']}/metadata") as resp:
        assert resp.status == 404
    async with http.get(f"/patients/{up['ID']}/metadata/Origin") as resp:
        assert resp.status == 404
        assert (await resp.json())["OrthancStatus"] == 17


# --- one metadata -----------------------------------------------------------------------------------------

async def test_get_by_name_number_and_etag(http: aiohttp.ClientSession) -> None:
    i = (await _upload(http))["ID"]
    async with http.get(f"/instances/{i}/metadata/Origin") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/plain"
        assert await resp.text() == "RestApi"
        assert resp.headers["ETag"] == _etag(0, "RestApi")
    async with http.get(f"/instances/{i}/metadata/8") as resp:
        assert await resp.text() == "RestApi"
    # Names are case-sensitive: an unknown name is InexistentItem (404, OrthancStatus 7).
    for name in ("origin", "Nope", "abc1"):
        async with http.get(f"/instances/{i}/metadata/{name}") as resp:
            assert resp.status == 404
            assert (await resp.json())["OrthancStatus"] == 7
    # A known name or number that the resource does not have: an empty 404.
    for name in ("Sample", "1024", "99999", "-1", "AnonymizedFrom"):
        async with http.get(f"/instances/{i}/metadata/{name}") as resp:
            assert (resp.status, await resp.read()) == (404, b"")
    # The name is checked before the resource.
    async with http.get("/instances/0000/metadata/Nope") as resp:
        assert (await resp.json())["OrthancStatus"] == 7


async def test_builtin_metadata_are_read_only(http: aiohttp.ClientSession) -> None:
    i = (await _upload(http))["ID"]
    for name in ("Origin", "8", "500", "1023", "65536", "70000"):
        async with http.put(f"/instances/{i}/metadata/{name}", data="x") as resp:
            assert await _status_body(resp) == (403, b"")
        async with http.delete(f"/instances/{i}/metadata/{name}") as resp:
            assert await _status_body(resp) == (403, b"")
    async with http.get(f"/instances/{i}/metadata/Origin") as resp:
        assert await resp.text() == "RestApi"
    async with http.put(f"/instances/{i}/metadata/Nope", data="x") as resp:
        assert resp.status == 404
        assert (await resp.json())["OrthancStatus"] == 7


async def test_put_get_delete_user_metadata(http: aiohttp.ClientSession) -> None:
    up = await _upload(http)
    i = up["ID"]
    async with http.put(f"/instances/{i}/metadata/Sample", data="hello") as resp:
        assert resp.status == 200
        assert await resp.read() == b""
        assert resp.headers["ETag"] == _etag(0, "hello")
    async with http.get(f"/instances/{i}/metadata/1024") as resp:
        assert await resp.text() == "hello"
        assert resp.headers["ETag"] == _etag(0, "hello")
    # Without CheckRevisions a write needs no If-Match; the revision goes up.
    async with http.put(f"/instances/{i}/metadata/1024", data="again") as resp:
        assert resp.headers["ETag"] == _etag(1, "again")
    async with http.get(f"/instances/{i}/metadata/Sample") as resp:
        assert resp.headers["ETag"] == _etag(1, "again")
    # Numbers in the user range without a UserMetadata name, and names that map to them.
    async with http.put(f"/instances/{i}/metadata/65535", data="top") as resp:
        assert resp.status == 200
    async with http.put(f"/instances/{i}/metadata/Other", data="") as resp:
        assert resp.headers["ETag"] == _etag(0, "")
    async with http.get(f"/instances/{i}/metadata?expand") as resp:
        expanded = await resp.json()
    assert expanded["Sample"] == "again" and expanded["Other"] == "" and expanded["65535"] == "top"
    async with http.get(f"/instances/{i}/metadata") as resp:
        assert (await resp.json())[-3:] == ["Sample", "Other", "65535"]
    async with http.get(f"/instances/{i}/metadata?numeric") as resp:
        assert (await resp.json())[-3:] == [1024, 2000, 65535]

    async with http.delete(f"/instances/{i}/metadata/Sample") as resp:
        assert (resp.status, await resp.read()) == (200, b"")
    async with http.get(f"/instances/{i}/metadata/Sample") as resp:
        assert resp.status == 404
    async with http.delete(f"/instances/{i}/metadata/Sample") as resp:
        assert resp.status == 404
        assert (await resp.json())["OrthancStatus"] == 17


async def test_utf8_value_round_trip(http: aiohttp.ClientSession) -> None:
    i = (await _upload(http))["ID"]
    value = "Sébastien ✓ 日本"
    async with http.put(f"/instances/{i}/metadata/Sample", data=value.encode()) as resp:
        assert resp.headers["ETag"] == _etag(0, value)
    async with http.get(f"/instances/{i}/metadata/Sample") as resp:
        assert (await resp.read()).decode() == value


async def test_user_metadata_on_every_level(http: aiohttp.ClientSession) -> None:
    up = await _upload(http)
    for path in (f"/patients/{up['ParentPatient']}", f"/studies/{up['ParentStudy']}",
                 f"/series/{up['ParentSeries']}", f"/instances/{up['ID']}"):
        async with http.put(f"{path}/metadata/Sample", data=path) as resp:
            assert resp.status == 200
        async with http.get(f"{path}/metadata/Sample") as resp:
            assert await resp.text() == path
        async with http.get(f"{path}/metadata?expand") as resp:
            assert (await resp.json())["Sample"] == path


async def test_put_finds_the_resource_by_id_alone(http: aiohttp.ClientSession) -> None:
    """Orthanc's SetMetadata/DeleteMetadata ignore the level of the URI (observed on 1.10.1)."""
    i = (await _upload(http))["ID"]
    async with http.put(f"/patients/{i}/metadata/Sample", data="q") as resp:
        assert resp.status == 200
    async with http.get(f"/instances/{i}/metadata/Sample") as resp:
        assert await resp.text() == "q"
    async with http.put("/instances/0000/metadata/Sample", data="q") as resp:
        assert resp.status == 404
        assert (await resp.json())["OrthancStatus"] == 17


async def test_if_none_match(http: aiohttp.ClientSession) -> None:
    i = (await _upload(http))["ID"]
    await http.put(f"/instances/{i}/metadata/Sample", data="v")
    async with http.get(f"/instances/{i}/metadata/Sample", headers={"If-None-Match": _etag(0, "v")}) as resp:
        assert resp.status == 304
        assert resp.headers["ETag"] == _etag(0, "v")
    async with http.get(f"/instances/{i}/metadata/Sample", headers={"If-None-Match": _etag(0, "w")}) as resp:
        assert resp.status == 200
    async with http.get(f"/instances/{i}/metadata/Sample", headers={"If-None-Match": _etag(1, "v")}) as resp:
        assert resp.status == 200
    async with http.get(f"/instances/{i}/metadata/Sample", headers={"If-None-Match": "bad"}) as resp:
        assert resp.status == 400
        assert (await resp.json())["OrthancStatus"] == 3  # ParameterOutOfRange
        assert resp.headers["ETag"] == _etag(0, "v")  # Orthanc sets it before parsing the header


async def test_stale_if_match_without_check_revisions(http: aiohttp.ClientSession) -> None:
    i = (await _upload(http))["ID"]
    await http.put(f"/instances/{i}/metadata/Sample", data="a")
    async with http.put(f"/instances/{i}/metadata/Sample", data="b", headers={"If-Match": _etag(0, "zz")}) as resp:
        assert resp.status == 409
    async with http.put(f"/instances/{i}/metadata/Sample", data="b", headers={"If-Match": _etag(0, "a")}) as resp:
        assert resp.status == 200
    async with http.delete(f"/instances/{i}/metadata/Sample", headers={"If-Match": _etag(0, "b")}) as resp:
        assert resp.status == 409
    async with http.delete(f"/instances/{i}/metadata/Sample", headers={"If-Match": _etag(1, "b")}) as resp:
        assert resp.status == 200


async def test_check_revisions(checked: aiohttp.ClientSession) -> None:
    http = checked
    i = (await _upload(http))["ID"]
    url = f"/instances/{i}/metadata/Sample"
    # DELETE always needs If-Match, even when the metadata does not exist.
    async with http.delete(url) as resp:
        assert resp.status == 409
        body = await resp.json()
        assert body["OrthancStatus"] == 43
        assert body["Details"] == 'HTTP header "If-Match" is missing, as "CheckRevisions" is "true"'
    # Creating needs none.
    async with http.put(url, data="hello") as resp:
        assert resp.status == 200
        assert resp.headers["ETag"] == _etag(0, "hello")
    # Replacing does.
    async with http.put(url, data="again") as resp:
        assert resp.status == 409
    # If-Match must be "<revision>-<md5>".
    async with http.put(url, data="again", headers={"If-Match": "0"}) as resp:
        assert resp.status == 400
        body = await resp.json()
        assert body["OrthancStatus"] == 3
        assert body["Details"] == ('The "if-match" HTTP header should contain the ETag (revision followed by MD5 hash), '
                                   "but found: 0")
    async with http.put(url, data="again", headers={"If-Match": _etag(0, "wrong")}) as resp:
        assert resp.status == 409
    async with http.put(url, data="again", headers={"If-Match": _etag(0, "hello")}) as resp:
        assert resp.status == 200
        assert resp.headers["ETag"] == _etag(1, "again")
    # The quotes are optional.
    async with http.put(url, data="third", headers={"If-Match": _etag(1, "again").strip('"')}) as resp:
        assert resp.headers["ETag"] == _etag(2, "third")
    async with http.get(url) as resp:
        assert await resp.text() == "third"
    async with http.delete(url, headers={"If-Match": _etag(1, "again")}) as resp:
        assert resp.status == 409
    async with http.delete(url, headers={"If-Match": _etag(2, "third")}) as resp:
        assert resp.status == 200
    async with http.delete(url, headers={"If-Match": _etag(2, "third")}) as resp:
        assert resp.status == 404


async def test_updated_metadata_changes(http: aiohttp.ClientSession) -> None:
    up = await _upload(http)
    await http.put(f"/instances/{up['ID']}/metadata/Sample", data="1")
    await http.put(f"/series/{up['ParentSeries']}/metadata/Sample", data="2")
    await http.delete(f"/instances/{up['ID']}/metadata/Sample")
    # A refused write logs nothing.
    await http.put(f"/instances/{up['ID']}/metadata/Origin", data="x")
    changes = await _changes(http, "UpdatedMetadata")
    assert [(c["ResourceType"], c["ID"]) for c in changes] == [
        ("Instance", up["ID"]), ("Series", up["ParentSeries"]), ("Instance", up["ID"])]
    assert changes[1]["Path"] == f"/series/{up['ParentSeries']}"
    assert changes[0]["Seq"] < changes[1]["Seq"] < changes[2]["Seq"]


async def test_method_faking(http: aiohttp.ClientSession) -> None:
    i = (await _upload(http))["ID"]
    async with http.post(f"/instances/{i}/metadata/Sample", data="faked",
                         headers={"X-HTTP-Method-Override": "PUT"}) as resp:
        assert resp.status == 200
    async with http.get(f"/instances/{i}/metadata/Sample?_method=delete") as resp:
        assert resp.status == 200
    async with http.get(f"/instances/{i}/metadata/Sample") as resp:
        assert resp.status == 404


async def test_metadata_go_away_with_the_resource(http: aiohttp.ClientSession) -> None:
    i = (await _upload(http))["ID"]
    await http.put(f"/instances/{i}/metadata/Sample", data="x")
    async with http.delete(f"/instances/{i}") as resp:
        assert resp.status == 200
    async with http.get(f"/instances/{i}/metadata/Sample") as resp:
        assert resp.status == 404
        assert (await resp.json())["OrthancStatus"] == 17


# --- labels -----------------------------------------------------------------------------------------------

async def _all_labels(http: aiohttp.ClientSession) -> list[str]:
    async with http.get("/tools/labels") as resp:
        assert resp.status == 200
        return await resp.json()


async def _labels_of(http: aiohttp.ClientSession, base: str) -> list[str]:
    async with http.get(base) as resp:
        return (await resp.json())["Labels"]


async def test_labels_like_orthanc_tests(http: aiohttp.ClientSession) -> None:
    up = await _upload(http)
    valid = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
    for base in (f"/instances/{up['ID']}", f"/series/{up['ParentSeries']}", f"/studies/{up['ParentStudy']}",
                 f"/patients/{up['ParentPatient']}"):
        assert await _labels_of(http, base) == []
        assert await _all_labels(http) == []
        async with http.get(f"{base}/labels/hello") as resp:
            assert resp.status == 404
        async with http.delete(f"{base}/labels/hello") as resp:  # deleting an absent label is fine
            assert (resp.status, await resp.text()) == (200, "")
        async with http.put(f"{base}/labels/@") as resp:
            assert resp.status == 400
        async with http.put(f"{base}/labels/hello") as resp:
            assert (resp.status, await resp.text()) == (200, "")
        assert await _labels_of(http, base) == ["hello"]
        assert await _all_labels(http) == ["hello"]
        async with http.put(f"{base}/labels/hello") as resp:  # tagging twice is fine
            assert resp.status == 200
        async with http.get(f"{base}/labels/hello") as resp:
            assert (resp.status, await resp.text()) == (200, "")
        async with http.put(f"{base}/labels/world") as resp:
            assert resp.status == 200
        assert await _labels_of(http, base) == ["hello", "world"]
        async with http.get(f"{base}/labels") as resp:
            assert await resp.json() == ["hello", "world"]
        assert await _all_labels(http) == ["hello", "world"]
        await http.delete(f"{base}/labels/hello")
        assert await _labels_of(http, base) == ["world"]
        async with http.get(f"{base}/labels/hello") as resp:
            assert resp.status == 404
        assert await _all_labels(http) == ["world"]
        await http.delete(f"{base}/labels/world")
        assert await _all_labels(http) == []
        async with http.put(f"{base}/labels/{valid}") as resp:
            assert resp.status == 200
        assert await _all_labels(http) == [valid]
        await http.delete(f"{base}/labels/{valid}")
        assert await _all_labels(http) == []


async def test_label_syntax(http: aiohttp.ClientSession) -> None:
    i = (await _upload(http))["ID"]
    for bad in ("a.b", "a%20b", "%C3%A9", "x" * 65, "a+b", "a%40b"):
        async with http.put(f"/instances/{i}/labels/{bad}") as resp:
            assert resp.status == 400, bad
            assert (await resp.json())["HttpStatus"] == 400
        async with http.delete(f"/instances/{i}/labels/{bad}") as resp:
            assert resp.status == 400, bad
    async with http.put(f"/instances/{i}/labels/{'x' * 64}") as resp:
        assert resp.status == 200
    async with http.put(f"/instances/{i}/labels/-_-") as resp:
        assert resp.status == 200
    assert await _labels_of(http, f"/instances/{i}") == ["-_-", "x" * 64]


async def test_labels_of_unknown_or_wrong_level_resource(http: aiohttp.ClientSession) -> None:
    up = await _upload(http)
    for method in ("GET", "PUT", "DELETE"):
        async with http.request(method, f"/studies/{up['ID']}/labels/hello") as resp:
            assert resp.status == 404, method
        async with http.request(method, "/instances/0000/labels/hello") as resp:
            assert resp.status == 404, method
    async with http.get("/instances/0000/labels") as resp:
        assert resp.status == 404
        assert (await resp.json())["OrthancStatus"] == 17
    assert await _all_labels(http) == []


async def test_tools_labels_across_resources(http: aiohttp.ClientSession) -> None:
    a = await _upload(http, "A")
    b = await _upload(http, "B")
    await http.put(f"/instances/{a['ID']}/labels/zeta")
    await http.put(f"/studies/{b['ParentStudy']}/labels/alpha")
    await http.put(f"/patients/{b['ParentPatient']}/labels/zeta")
    assert await _all_labels(http) == ["alpha", "zeta"]
    async with http.get("/studies?expand") as resp:
        by_id = {s["ID"]: s["Labels"] for s in await resp.json()}
    assert by_id == {a["ParentStudy"]: [], b["ParentStudy"]: ["alpha"]}
    # Deleting a resource drops its labels.
    async with http.delete(f"/patients/{b['ParentPatient']}") as resp:
        assert resp.status == 200
    assert await _all_labels(http) == ["zeta"]
    async with http.delete(f"/patients/{a['ParentPatient']}") as resp:
        assert resp.status == 200
    assert await _all_labels(http) == []


async def test_labels_log_no_change(http: aiohttp.ClientSession) -> None:
    i = (await _upload(http))["ID"]
    async with http.get("/changes?limit=1000") as resp:
        before = (await resp.json())["Last"]
    await http.put(f"/instances/{i}/labels/x")
    await http.delete(f"/instances/{i}/labels/x")
    async with http.get("/changes?limit=1000") as resp:
        assert (await resp.json())["Last"] == before
