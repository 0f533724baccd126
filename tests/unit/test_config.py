"""orthanc_lite.config: parsing, defaults, validation and the generated configuration.json / docs."""

from __future__ import annotations

import dataclasses
import json
import logging
import pathlib

import pytest

from orthanc_lite import config
from orthanc_lite.config import ConfigError, Modality, Peer, Settings, check_startup_security, load

ROOT = pathlib.Path(__file__).resolve().parents[2]


def write(directory: pathlib.Path, name: str, text: str) -> pathlib.Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def load_text(tmp_path: pathlib.Path, text: str, **env: str) -> Settings:
    return load(write(tmp_path, "configuration.json", text), environ=env)


@pytest.fixture
def warnings(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.WARNING, logger="orthanc_lite.config")
    return caplog


# ---------------------------------------------------------------- defaults and the table


def test_defaults_are_orthancs() -> None:
    s = load(None)
    assert (s.Name, s.HttpPort, s.DicomPort, s.DicomAet) == ("MyOrthanc", 8042, 4242, "ORTHANC")
    assert s.StorageDirectory == "OrthancStorage" and s.IndexDirectory is None
    assert s.index_directory == "OrthancStorage"
    assert s.RemoteAccessAllowed is False and s.AuthenticationEnabled is None
    assert s.DicomAlwaysAllowEcho and s.DicomAlwaysAllowStore and not s.DicomAlwaysAllowFind
    assert s.StableAge == 60 and s.JobsHistorySize == 10 and s.ConcurrentJobs == 2
    assert s.MaximumPduLength == 16384 and s.DicomScuTimeout == 10 and s.HttpTimeout == 60
    assert s.AcceptedTransferSyntaxes == ("1.2.840.10008.1.*",)
    assert s.OverwriteInstances is False and s.overwrite_mode == "Never"
    assert s.LogExportedResources is False and s.MaximumStorageMode == "Recycle"
    assert s.DefaultEncoding == "Latin1" and s.HttpDescribeErrors is True
    assert s.modalities == {} and s.peers == {} and s.user_metadata == {}
    assert s.DicomWeb["Root"] == "/dicom-web/" and s.DicomWeb["PublicRoot"] == "/dicom-web/"
    assert s.Worklists["Enable"] is False
    assert load(None) is s  # computed once


def test_every_option_is_a_typed_attribute_and_documented() -> None:
    s = load(None)
    names = [option.name for option in config.OPTIONS]
    assert len(names) == len(set(names))
    assert names == [f.name for f in dataclasses.fields(Settings)]
    for option in config.OPTIONS:
        assert option.help.strip(), option.name
        assert s[option.name] == getattr(s, option.name)
        if option.default is None:  # shown commented out with an example
            assert option.example is not None, option.name
    with pytest.raises(KeyError):
        s["NoSuchOption"]


def test_settings_are_immutable() -> None:
    s = load(None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.HttpPort = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        s.RegisteredUsers["eve"] = "x"  # type: ignore[index]
    with pytest.raises(TypeError):
        s.DicomWeb["Root"] = "/x/"  # type: ignore[index]


def test_replace_validates_and_accepts_paths(tmp_path: pathlib.Path) -> None:
    base = load(None)
    s = base.replace(StorageDirectory=tmp_path, HttpPort=0, DicomPort=0)
    assert s.StorageDirectory == str(tmp_path) and s.index_directory == str(tmp_path)
    assert (s.HttpPort, s.DicomPort) == (0, 0)
    assert base.HttpPort == 8042
    s = base.replace(DicomModalities={"pacs": ["PACS", "127.0.0.1", 104]}, DicomWeb={"Root": "/dw/"})
    assert s.modalities["pacs"] == Modality("PACS", "127.0.0.1", 104)
    assert s.DicomWeb["Root"] == "/dw/" and s.DicomWeb["Enable"] is True
    with pytest.raises(ConfigError, match='"HttpPort" must be an integer'):
        base.replace(HttpPort="80")
    with pytest.raises(ConfigError, match='did you mean "HttpPort"'):
        base.replace(HttpPorts=80)


# ---------------------------------------------------------------- JSON with comments


def test_comments_are_removed_but_not_inside_strings(tmp_path: pathlib.Path) -> None:
    s = load_text(
        tmp_path,
        """
        // a line comment
        {
          /* a block
             comment */ "Name" : "a // b /* c */ d",   // trailing comment
          "HttpProxy" : "http://proxy:3128", /* "HttpPort" : 1, */
          "DefaultPrivateCreator" : "quote \\" // still a string",
          "RegisteredUsers" : { "alice" : "pw", },   // trailing commas are tolerated
          "LuaScripts" : [ "a.lua", ],
        }
        """,
    )
    assert s.Name == "a // b /* c */ d"
    assert s.HttpProxy == "http://proxy:3128"
    assert s.HttpPort == 8042
    assert s.DefaultPrivateCreator == 'quote " // still a string'
    assert dict(s.RegisteredUsers) == {"alice": "pw"}


def test_syntax_errors_name_the_file_and_line(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ConfigError, match=r"configuration\.json: not valid JSON .* line 3"):
        load_text(tmp_path, '{\n  // ok\n  "Name" : ]\n}')
    with pytest.raises(ConfigError, match="never closed"):
        load_text(tmp_path, '{ /* "Name" : "x" }')
    with pytest.raises(ConfigError, match="must be a JSON object"):
        load_text(tmp_path, "[1, 2]")
    with pytest.raises(ConfigError, match="Inexistent path"):
        load(tmp_path / "missing.json")


# ---------------------------------------------------------------- ${ENV} substitution


def test_environment_substitution_all_forms(
    tmp_path: pathlib.Path, warnings: pytest.LogCaptureFixture
) -> None:
    text = """{
      "Name" : "${NAME}",
      "HttpPort" : ${PORT:-8043},
      "DicomPort" : ${DICOM_PORT:-4243},
      "DicomAet" : "${AET:-"FROM_DQ"}",
      "HttpProxy" : "${PROXY:-"http://proxy:3128/{x}"}",
      "DefaultPrivateCreator" : "${CREATOR:-'single quoted'}",
      "HttpsCACertificates" : "${EMPTY:-not used}",
      // "IndexDirectory" : "${IN_A_COMMENT}",
      "SslCertificate" : "${UNSET}"
    }"""
    s = load_text(tmp_path, text, NAME="From env", DICOM_PORT="104", EMPTY="")
    assert s.Name == "From env"
    assert s.HttpPort == 8043  # default, unquoted: a number
    assert s.DicomPort == 104
    assert s.DicomAet == "FROM_DQ"
    assert s.HttpProxy == "http://proxy:3128/{x}"  # "//" and "}" inside a quoted default
    assert s.DefaultPrivateCreator == "single quoted"
    assert s.HttpsCACertificates == ""  # set but empty: the default does not apply
    assert s.SslCertificate == ""
    messages = [r.getMessage() for r in warnings.records]
    assert any("UNSET is not set" in m for m in messages)
    assert not any("IN_A_COMMENT" in m for m in messages)


def test_environment_defaults_to_os_environ(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORTHANC_LITE_TEST_NAME", "from os.environ")
    path = write(tmp_path, "c.json", '{ "Name" : "${ORTHANC_LITE_TEST_NAME}" }')
    assert load(path).Name == "from os.environ"


# ---------------------------------------------------------------- files and directories


def test_directory_merge_and_several_paths(tmp_path: pathlib.Path) -> None:
    folder = tmp_path / "conf.d"
    folder.mkdir()
    write(folder, "10-core.json", '{ "Name" : "merged", "HttpPort" : 8050 }')
    write(folder, "20-dicom.JSON", '{ "DicomAet" : "MERGED" }')
    write(folder, "notes.txt", "not json at all")
    s = load(folder)
    assert (s.Name, s.HttpPort, s.DicomAet) == ("merged", 8050, "MERGED")
    extra = write(tmp_path, "extra.json", '{ "DicomPort" : 11112 }')
    s = load([folder, extra])
    assert (s.Name, s.DicomPort) == ("merged", 11112)


def test_option_in_two_files_is_an_error(tmp_path: pathlib.Path) -> None:
    a = write(tmp_path, "a.json", '{ "Name" : "a", "HttpPort" : 1 }')
    b = write(tmp_path, "b.json", '{ "HttpPort" : 2 }')
    with pytest.raises(ConfigError) as raised:
        load(tmp_path)
    message = str(raised.value)
    assert '"HttpPort"' in message and str(a) in message and str(b) in message


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('"HttpPort" : "8042"', r'"HttpPort" must be an integer in \[0, 65535\], got "8042" \(string\)'),
        ('"HttpPort" : true', r'"HttpPort" must be an integer .* got true \(boolean\)'),
        ('"StableAge" : 1.5', r'"StableAge" must be an integer >= 0, got 1.5 \(number\)'),
        ('"RemoteAccessAllowed" : "true"', r'"RemoteAccessAllowed" must be a boolean'),
        ('"MaximumPduLength" : 1024', r'"MaximumPduLength" must be an integer in \[4096, 131072\]'),
        ('"DicomAet" : "MUCH_TOO_LONG_AET_X"', r'"DicomAet" must be an AET'),
        ('"MaximumStorageMode" : "recycle"', r'"MaximumStorageMode" must be one of "Recycle", "Reject"'),
        ('"AcceptedTransferSyntaxes" : "1.2.*"', r'"AcceptedTransferSyntaxes" must be an array of strings'),
        ('"DicomWeb" : { "Root" : 1 }', r'"DicomWeb.Root" must be a string, got 1'),
        (
            '"UserMetadata" : { "Sample" : 1023 }',
            r'"UserMetadata.Sample" must be an integer in \[1024, 65535\]',
        ),
    ],
)
def test_wrong_types_name_option_expectation_value_and_file(
    tmp_path: pathlib.Path, text: str, expected: str
) -> None:
    with pytest.raises(ConfigError, match=expected) as raised:
        load_text(tmp_path, "{ " + text + " }")
    assert "configuration.json" in str(raised.value)


def test_unknown_options_only_warn(tmp_path: pathlib.Path, warnings: pytest.LogCaptureFixture) -> None:
    s = load_text(
        tmp_path, '{ "HttpPrt" : 1, "PostgreSQL" : { "EnableIndex" : true }, "DicomWeb" : { "Foo" : 1 } }'
    )
    assert s.HttpPort == 8042
    messages = " | ".join(r.getMessage() for r in warnings.records if r.levelno == logging.WARNING)
    assert 'Unknown configuration option "HttpPrt"' in messages and 'did you mean "HttpPort"' in messages
    assert '"PostgreSQL"' in messages
    assert '"DicomWeb.Foo"' in messages


def test_ignored_options_are_accepted_whatever_their_value(tmp_path: pathlib.Path) -> None:
    s = load_text(
        tmp_path, '{ "Plugins" : ["/usr/share/orthanc/plugins"], "LimitJobs" : 10, "Warnings" : 3 }'
    )
    assert s.Plugins == ("/usr/share/orthanc/plugins",) and s.LimitJobs == 10


def test_user_metadata_and_content_types(tmp_path: pathlib.Path) -> None:
    s = load_text(
        tmp_path,
        '{ "UserMetadata" : { "Sample" : 1024, "Other" : 65535 },'
        '  "UserContentType" : { "pdf" : [ 1025, "application/pdf" ], "raw" : 1026 } }',
    )
    assert s.user_metadata == {"Sample": 1024, "Other": 65535}
    assert s.user_content_types == {"pdf": (1025, "application/pdf"), "raw": (1026, "")}
    with pytest.raises(ConfigError, match='"A" and "B" both use the number 2000'):
        load_text(tmp_path, '{ "UserMetadata" : { "A" : 2000, "B" : 2000 } }')


# ---------------------------------------------------------------- modalities and peers


def test_modality_short_and_long_forms(tmp_path: pathlib.Path) -> None:
    s = load_text(
        tmp_path,
        """{ "DicomModalities" : {
             "short" : [ "STORESCP", "127.0.0.1", 2000 ],
             "vitrea" : [ "VITREA", "192.168.1.1", "104", "Vitrea" ],
             "long-one_2" : { "AET" : "LONG", "Host" : "pacs.local", "Port" : "11112",
                              "AllowEcho" : false, "AllowStorageCommitment" : false,
                              "LocalAet" : "HELLO", "Timeout" : 60, "RetrieveMethod" : "C-GET" },
             "split" : { "AET" : "S", "Host" : "h", "Port" : 1,
                         "AllowStorageCommitment" : false, "AllowNAction" : true } } }""",
    )
    m = s.modalities
    assert m["short"] == Modality("STORESCP", "127.0.0.1", 2000, "Generic")
    assert m["vitrea"].Port == 104 and m["vitrea"].Manufacturer == "Vitrea"
    long = m["long-one_2"]
    assert (long.AET, long.Host, long.Port, long.LocalAet, long.Timeout) == (
        "LONG",
        "pacs.local",
        11112,
        "HELLO",
        60,
    )
    assert long.AllowEcho is False and long.AllowFind is True and long.RetrieveMethod == "C-GET"
    assert long.AllowNAction is False and long.AllowEventReport is False and not long.AllowStorageCommitment
    split = m["split"]
    assert split.AllowNAction is True and split.AllowEventReport is False  # explicit flag wins over alias
    assert Modality.from_json(long.to_json()) == long
    assert m["short"].to_json(force_advanced=False) == ["STORESCP", "127.0.0.1", 2000, "Generic"]
    assert isinstance(long.to_json(force_advanced=False), dict)


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ('"bad name" : [ "A", "h", 1 ]', 'bad name "bad name"'),
        ('"x" : [ "A", "h" ]', r'"DicomModalities.x" must be \[AET, host, port\]'),
        ('"x" : [ "A", "h", 0 ]', r'"DicomModalities.x\[2\]" must be a port number'),
        ('"x" : [ "A", "h", "abc" ]', r'"DicomModalities.x\[2\]" must be a port number'),
        ('"x" : { "AET" : "A", "Port" : 1 }', r'"DicomModalities.x" lacks "Host"'),
        ('"x" : [ "A", "h", 1, "Acme" ]', r'"DicomModalities.x\[3\]" must be one of "Generic"'),
        (
            '"x" : { "AET" : "A", "Host" : "h", "Port" : 1, "AllowFind" : 1 }',
            r'"DicomModalities.x.AllowFind"',
        ),
        ('"x" : [ "THIS_AET_IS_TOO_LONG", "h", 1 ]', r'"DicomModalities.x\[0\]" must be an AET'),
    ],
)
def test_bad_modalities(tmp_path: pathlib.Path, entry: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_text(tmp_path, '{ "DicomModalities" : { ' + entry + " } }")


def test_obsolete_manufacturer_warns(tmp_path: pathlib.Path, warnings: pytest.LogCaptureFixture) -> None:
    s = load_text(tmp_path, '{ "DicomModalities" : { "old" : [ "A", "h", 1, "ClearCanvas" ] } }')
    assert s.modalities["old"].Manufacturer == "Generic"
    assert any("obsolete" in r.getMessage() for r in warnings.records)


def test_peer_forms(tmp_path: pathlib.Path) -> None:
    s = load_text(
        tmp_path,
        """{ "OrthancPeers" : {
             "one" : [ "http://127.0.0.1:8043" ],
             "auth" : [ "https://peer/orthanc/", "alice", "secret" ],
             "long" : { "Url" : "http://h:1", "Username" : "u", "Password" : "p",
                        "HttpHeaders" : { "Token" : "t" }, "Timeout" : 5, "Pkcs11" : false } },
           "DicomWeb" : { "Servers" : { "remote" : [ "http://dw/dicom-web/" ],
                                        "full" : { "Url" : "http://x", "HasDelete" : true } } } }""",
    )
    peers = s.peers
    assert peers["one"] == Peer("http://127.0.0.1:8043/")
    assert (peers["auth"].Username, peers["auth"].Password) == ("alice", "secret")
    assert dict(peers["long"].HttpHeaders) == {"Token": "t"} and peers["long"].Timeout == 5
    assert Peer.from_json(peers["long"].to_json()) == peers["long"]
    servers = s.dicomweb_servers
    assert servers["remote"].Url == "http://dw/dicom-web/" and servers["remote"].HasDelete is False
    assert servers["full"].HasDelete is True and servers["full"].ChunkedTransfers is True
    with pytest.raises(ConfigError, match=r'"OrthancPeers.p\[0\]" must be an http:// or https:// URL'):
        load_text(tmp_path, '{ "OrthancPeers" : { "p" : [ "ftp://x" ] } }')
    with pytest.raises(ConfigError, match="bad name"):
        load_text(tmp_path, '{ "OrthancPeers" : { "p/1" : [ "http://x" ] } }')


# ---------------------------------------------------------------- resolved helpers


@pytest.mark.parametrize(
    ("value", "mode"),
    [
        ("false", "Never"),
        ("true", "Always"),
        ('"Never"', "Never"),
        ('"Always"', "Always"),
        ('"IfChanged"', "IfChanged"),
    ],
)
def test_overwrite_instances_forms(tmp_path: pathlib.Path, value: str, mode: str) -> None:
    assert load_text(tmp_path, '{ "OverwriteInstances" : ' + value + " }").overwrite_mode == mode


def test_overwrite_instances_rejects_other_values(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ConfigError, match='"OverwriteInstances" must be true, false, "Never"'):
        load_text(tmp_path, '{ "OverwriteInstances" : "Sometimes" }')


def test_authentication_follows_remote_access_when_unset(
    tmp_path: pathlib.Path, warnings: pytest.LogCaptureFixture
) -> None:
    assert load(None).authentication_enabled is False
    s = load_text(tmp_path, '{ "RemoteAccessAllowed" : true, "RegisteredUsers" : { "a" : "b" } }')
    assert s.AuthenticationEnabled is None and s.authentication_enabled is True and s.is_http_server_secure
    assert not warnings.records
    s = load_text(tmp_path, '{ "AuthenticationEnabled" : true }')
    assert s.authentication_enabled is True
    # Orthanc 1.13 refuses to start in the first case below, and starts with a warning in the second one.
    with pytest.raises(ConfigError, match="RegisteredUsers"):
        check_startup_security(load_text(tmp_path, '{ "RemoteAccessAllowed" : true }'))
    s = load_text(tmp_path, '{ "RemoteAccessAllowed" : true, "AuthenticationEnabled" : false }')
    assert s.authentication_enabled is False and not s.is_http_server_secure
    assert "POSSIBLY INSECURE" in warnings.text


def test_index_directory(tmp_path: pathlib.Path) -> None:
    s = load_text(tmp_path, '{ "StorageDirectory" : "/data/files", "IndexDirectory" : "/ssd/index" }')
    assert s.index_directory == "/ssd/index"
    assert load_text(tmp_path, '{ "StorageDirectory" : "/data/files" }').index_directory == "/data/files"


# ---------------------------------------------------------------- generated files


def test_committed_configuration_json_is_generated() -> None:
    committed = (ROOT / "configuration.json").read_text(encoding="utf-8")
    assert committed == config.render_documented_configuration(), (
        "configuration.json is out of date: python -m orthanc_lite.config json > configuration.json"
    )


def test_committed_docs_are_generated() -> None:
    committed = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert committed == config.render_markdown_documentation(), (
        "docs/configuration.md is out of date: python -m orthanc_lite.config markdown > docs/configuration.md"
    )
    for option in config.OPTIONS + config.DICOMWEB_OPTIONS + config.WORKLISTS_OPTIONS:
        assert f"| `{option.name}` |" in committed, option.name


def test_documented_configuration_loads_to_the_defaults(warnings: pytest.LogCaptureFixture) -> None:
    assert load(ROOT / "configuration.json", environ={}) == load(None)
    assert not warnings.records
    # Once comments are removed it is strict JSON (no trailing comma), so real Orthanc reads it too.
    text = config.loader._preprocess(config.render_documented_configuration(), {}, "configuration.json")
    assert set(json.loads(text)) <= {option.name for option in config.OPTIONS}


def test_check_command_in_process(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path, "good.json", '{ "Name" : "ok" }')
    bad = write(tmp_path, "bad.json", '{ "HttpPort" : "x" }')
    assert config.main(["check", str(good)]) == 0
    assert config.main(["check", str(bad)]) == 2
    assert '"HttpPort" must be an integer' in capsys.readouterr().err
    assert config.main(["json"]) == 0
    assert capsys.readouterr().out == config.render_documented_configuration()
    assert config.main([]) == 2
