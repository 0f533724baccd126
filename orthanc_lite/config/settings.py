"""`Settings`: every option under Orthanc's name, checked and normalized."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from .kinds import ConfigError, JsonValue, OverwriteMode, RetrieveMethod, StorageAccess, StorageMode, TranscoderOrder
from .remotes import DicomWebServer, Modality, Peer
from .options import OPTIONS, _BY_NAME, _did_you_mean

# Credentials published in Orthanc's samples and test configurations: a server whose registered users
# include one of them is reported as insecure by "/system" (Orthanc 1.13, CheckHttpServerSecurity.py).
SAMPLE_CREDENTIALS: Final = frozenset({("orthanc", "orthanc"), ("alice", "orthanctest")})


@dataclass(frozen=True, slots=True)
class Settings:
    """Every option, under Orthanc's own name, checked and normalized; built by `load()`.

    Attributes follow `OPTIONS` one to one (checked at import). Objects are read-only mappings and
    arrays are tuples. DicomModalities / OrthancPeers hold parsed `Modality` / `Peer` values.
    """

    # General
    Name: str
    StorageDirectory: str
    IndexDirectory: str | None
    TemporaryDirectory: str | None
    StorageCompression: bool
    MaximumStorageSize: int
    MaximumPatientCount: int
    MaximumStorageMode: StorageMode
    MaximumStorageCacheSize: int
    StoreDicom: bool
    SyncStorageArea: bool
    StoreMD5ForAttachments: bool
    OverwriteInstances: bool | str
    StableAge: int
    ConcurrentJobs: int
    JobsHistorySize: int
    SaveJobs: bool
    JobsEngineThreadsCount: Mapping[str, int]
    MediaArchiveSize: int
    SynchronousZipStream: bool
    ZipUseUtf8: bool
    LogExportedResources: bool
    CheckRevisions: bool
    ReadOnly: bool
    PatientLevelEnabled: bool
    ExtraMainDicomTags: Mapping[str, tuple[str, ...]] | None
    UserMetadata: Mapping[str, int]
    UserContentType: Mapping[str, tuple[int, str]]
    StorageAccessOnFind: StorageAccess
    LimitFindResults: int
    LimitFindInstances: int
    QueryRetrieveSize: int
    StorageCommitmentReportsSize: int
    MetricsEnabled: bool
    ExecuteLuaEnabled: bool
    RestApiWriteToFileSystemEnabled: bool
    DeidentifyLogs: bool
    DeidentifyLogsDicomVersion: str
    # HTTP server
    HttpServerEnabled: bool
    HttpPort: int
    HttpBindAddresses: tuple[str, ...] | None
    OrthancExplorerEnabled: bool
    HttpDescribeErrors: bool
    HttpCompressionEnabled: bool
    HttpThreadsCount: int
    KeepAlive: bool
    KeepAliveTimeout: int
    TcpNoDelay: bool
    HttpRequestTimeout: int
    MaximumRequestBodySizeMB: int
    MaximumFileSizeInArchiveMB: int
    WebDavEnabled: bool
    WebDavDeleteAllowed: bool
    WebDavUploadAllowed: bool
    # HTTP security
    RemoteAccessAllowed: bool
    AuthenticationEnabled: bool | None
    RegisteredUsers: Mapping[str, str]
    SslEnabled: bool
    SslCertificate: str
    SslMinimumProtocolVersion: int
    SslCiphersAccepted: tuple[str, ...] | None
    SslVerifyPeers: bool
    SslTrustedClientCertificates: str
    # DICOM server (SCP)
    DicomServerEnabled: bool
    DicomAet: str
    DicomPort: int
    DicomCheckCalledAet: bool
    DicomCheckModalityHost: bool
    StrictAetComparison: bool
    DicomAlwaysAllowEcho: bool
    DicomAlwaysAllowStore: bool
    DicomAlwaysAllowFind: bool
    DicomAlwaysAllowFindWorklist: bool
    DicomAlwaysAllowGet: bool
    DicomAlwaysAllowMove: bool
    DicomScpTimeout: int
    DicomThreadsCount: int
    MaximumPduLength: int
    UnknownSopClassAccepted: bool
    AcceptedSopClasses: tuple[str, ...] | None
    RejectedSopClasses: tuple[str, ...]
    AcceptedTransferSyntaxes: tuple[str, ...]
    DeflatedTransferSyntaxAccepted: bool | None
    JpegTransferSyntaxAccepted: bool | None
    Jpeg2000TransferSyntaxAccepted: bool | None
    JpegLosslessTransferSyntaxAccepted: bool | None
    JpipTransferSyntaxAccepted: bool | None
    Mpeg2TransferSyntaxAccepted: bool | None
    Mpeg4TransferSyntaxAccepted: bool | None
    H265TransferSyntaxAccepted: bool | None
    RleTransferSyntaxAccepted: bool | None
    DefaultEncoding: str
    CaseSensitivePN: bool
    SynchronousCMove: bool
    # DICOM TLS
    DicomTlsEnabled: bool
    DicomTlsCertificate: str | None
    DicomTlsPrivateKey: str | None
    DicomTlsTrustedCertificates: str | None
    DicomTlsRemoteCertificateRequired: bool
    DicomTlsMinimumProtocolVersion: int
    DicomTlsCiphersAccepted: tuple[str, ...] | None
    # DICOM network: modalities and client (SCU)
    DicomModalities: Mapping[str, Modality]
    DicomModalitiesInDatabase: bool
    DicomScuTimeout: int
    DicomAssociationCloseDelay: int
    DicomEchoChecksFind: bool
    DicomDefaultRetrieveMethod: RetrieveMethod
    DicomScuPreferredTransferSyntax: str
    OrthancPeers: Mapping[str, Peer]
    OrthancPeersInDatabase: bool
    # Outgoing HTTP
    HttpTimeout: int
    HttpProxy: str
    HttpVerbose: bool
    HttpsVerifyPeers: bool
    HttpsCACertificates: str
    Pkcs11: Mapping[str, JsonValue] | None
    # Transcoding
    TranscodeDicomProtocol: bool
    BuiltinDecoderTranscoderOrder: TranscoderOrder
    DicomLossyTranscodingQuality: int
    IngestTranscoding: str | None
    IngestTranscodingOfUncompressed: bool
    IngestTranscodingOfCompressed: bool
    # DICOM dictionary
    Dictionary: Mapping[str, tuple[JsonValue, ...]]
    LoadPrivateDictionary: bool
    DefaultPrivateCreator: str
    ExternalDictionaries: tuple[str, ...] | None
    # Plugins (built in): sections with every sub-option filled in (see DICOMWEB_OPTIONS)
    DicomWeb: Mapping[str, JsonValue]
    Worklists: Mapping[str, JsonValue]
    # Accepted for compatibility, ignored
    Plugins: JsonValue
    LuaScripts: JsonValue
    LuaHeartBeatPeriod: JsonValue
    LimitJobs: JsonValue
    DatabaseServerIdentifier: JsonValue
    Locale: JsonValue
    MallocArenaMax: JsonValue
    Warnings: JsonValue
    ZipLoaderThreads: JsonValue
    LoaderThreads: JsonValue
    MaximumConcurrentDcmtkTranscoders: JsonValue
    StorageLoaderThreads: JsonValue
    StorageLoaderThreadsCount: JsonValue
    DicomParserThreads: JsonValue
    DicomParserMemoryCapacity: JsonValue
    DicomParserCacheSize: JsonValue
    TranscoderThreads: JsonValue
    TranscoderMemoryCapacity: JsonValue
    TranscoderCacheSize: JsonValue
    SequentialDicomReaderThreads: JsonValue
    SequentialDicomReaderWindowSize: JsonValue
    SequentialDicomReaderWindowCapacity: JsonValue

    def __getitem__(self, name: str) -> Any:
        """`settings["HttpPort"]`: any option by its Orthanc name (KeyError if unknown)."""
        if name not in _BY_NAME:
            raise KeyError(name)
        return getattr(self, name)

    def replace(self, **overrides: Any) -> Settings:
        """A copy with some options changed, each checked as if read from a file.

        Accepts JSON-like values plus os.PathLike for strings and Modality/Peer objects, e.g.
        `settings.replace(StorageDirectory=tmp_path, HttpPort=0, DicomPort=0)`. A section such as
        DicomWeb is replaced whole, its missing sub-options taking their defaults.
        """
        changes: dict[str, Any] = {}
        for name, value in overrides.items():
            option = _BY_NAME.get(name)
            if option is None:
                raise ConfigError(f'Unknown configuration option "{name}"{_did_you_mean(name)}')
            changes[name] = option.kind(value, name)
        return dataclasses.replace(self, **changes)

    @property
    def authentication_enabled(self) -> bool:
        """AuthenticationEnabled, or RemoteAccessAllowed when unset (Orthanc >= 1.5.8)."""
        if self.AuthenticationEnabled is None:
            return self.RemoteAccessAllowed
        return self.AuthenticationEnabled

    @property
    def is_http_server_secure(self) -> bool:
        """False when remote clients are accepted without authentication, or when a registered user has
        well-known sample credentials (Orthanc 1.13's IsHttpServerSecure, shown by "/system")."""
        if self.RemoteAccessAllowed and not self.authentication_enabled:
            return False
        return not any((name, str(password)) in SAMPLE_CREDENTIALS for name, password in self.RegisteredUsers.items())

    @property
    def overwrite_mode(self) -> OverwriteMode:
        """OverwriteInstances as Orthanc 1.13 names it: "Never", "Always" or "IfChanged"."""
        value = self.OverwriteInstances
        if value is True or value == "Always":
            return "Always"
        if value == "IfChanged":
            return "IfChanged"
        return "Never"

    @property
    def index_directory(self) -> str:
        """Folder of the SQLite index: IndexDirectory, or StorageDirectory when unset."""
        return self.StorageDirectory if self.IndexDirectory is None else self.IndexDirectory

    @property
    def modalities(self) -> dict[str, Modality]:
        """DicomModalities, by name, in the long form."""
        return dict(self.DicomModalities)

    @property
    def peers(self) -> dict[str, Peer]:
        """OrthancPeers, by name, in the long form."""
        return dict(self.OrthancPeers)

    @property
    def dicomweb_servers(self) -> dict[str, DicomWebServer]:
        """DicomWeb.Servers, by name, in the long form."""
        servers = self.DicomWeb.get("Servers")
        if not isinstance(servers, Mapping):
            return {}
        return {name: DicomWebServer.from_json(value, name) for name, value in servers.items()}

    @property
    def user_metadata(self) -> dict[str, int]:
        """UserMetadata: name -> metadata number (1024..65535)."""
        return dict(self.UserMetadata)

    @property
    def user_content_types(self) -> dict[str, tuple[int, str]]:
        """UserContentType: name -> (attachment type number, MIME type or "")."""
        return dict(self.UserContentType)


def _check_table_matches_settings() -> None:
    # The table drives loading and the docs, the dataclass gives typed attributes; keep them equal.
    table = [option.name for option in OPTIONS]
    attributes = [f.name for f in dataclasses.fields(Settings)]
    if table != attributes:
        missing = sorted(set(table) ^ set(attributes))
        raise RuntimeError(f"OPTIONS and Settings differ: {missing or 'order'}")


_check_table_matches_settings()
