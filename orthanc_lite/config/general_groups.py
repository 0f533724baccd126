"""Option groups: general, HTTP server, HTTP security."""

from __future__ import annotations

from typing import Final

from .kinds import (
    BOOL,
    Kind,
    PORT,
    STR,
    STR_LIST,
    UINT,
    _choice,
    _int_kind,
    _mapping_of,
    _optional,
    _to_extra_main_dicom_tags,
    _to_overwrite,
    _user_numbers,
)
from .option import Option


GENERAL_GROUPS: Final[tuple[tuple[str, tuple[Option, ...]], ...]] = (
    (
        "General",
        (
            Option("Name", "MyOrthanc", STR, 'Name of this server, shown by "/system" and the web UI.'),
            Option(
                "StorageDirectory",
                "OrthancStorage",
                STR,
                "Folder of the stored files (<dir>/<2 hex>/<2 hex>/<uuid>). Relative paths are "
                'relative to the working directory; on Windows write "/" or "\\\\".',
            ),
            Option(
                "IndexDirectory",
                None,
                _optional(STR),
                'Folder of the SQLite index ("index" file). Unset: StorageDirectory.',
                example="OrthancStorage",
                default_doc="= StorageDirectory",
            ),
            Option(
                "TemporaryDirectory",
                None,
                _optional(STR),
                "Folder for large temporary files. Unset: the system's temporary folder.",
                example="/tmp/Orthanc/",
                ignored=True,
            ),
            Option(
                "StorageCompression",
                False,
                BOOL,
                "Compress the stored files (zlib), transparently for clients.",
            ),
            Option(
                "MaximumStorageSize",
                0,
                UINT,
                "Maximum size of the storage in MB; 0 = no limit. See MaximumStorageMode.",
            ),
            Option(
                "MaximumPatientCount",
                0,
                UINT,
                "Maximum number of patients stored; 0 = no limit. See MaximumStorageMode.",
            ),
            Option(
                "MaximumStorageMode",
                "Recycle",
                _choice("Recycle", "Reject"),
                "When a limit above is reached: delete the oldest unprotected patient (Recycle), or "
                "refuse new instances (Reject: HTTP 507, C-STORE status 0xA700).",
            ),
            Option(
                "MaximumStorageCacheSize",
                128,
                UINT,
                "Size in MB of the in-memory cache of recently used files; 0 = no cache.",
            ),
            Option(
                "StoreDicom",
                True,
                BOOL,
                "false = index-only mode: the main DICOM tags are indexed, the files are not kept.",
            ),
            Option(
                "SyncStorageArea",
                True,
                BOOL,
                "Call fsync() after each write to the storage, so that a stored instance survives a "
                "crash of the machine (slower).",
            ),
            Option(
                "StoreMD5ForAttachments",
                True,
                BOOL,
                "Compute and keep the MD5 of each stored file, to detect disk corruption.",
            ),
            Option(
                "OverwriteInstances",
                False,
                Kind('true, false, "Never", "Always" or "IfChanged"', _to_overwrite),
                "What to do with an instance whose SOPInstanceUID is already stored: keep the old "
                'one (false or "Never"), replace it (true or "Always"), or replace it only if the '
                'file differs ("IfChanged", Orthanc 1.13).',
            ),
            Option(
                "StableAge",
                60,
                UINT,
                "Seconds without a new instance after which a patient, study or series is stable.",
            ),
            Option(
                "ConcurrentJobs",
                2,
                UINT,
                "Number of jobs running at the same time; 0 = the number of CPU cores.",
            ),
            Option(
                "JobsHistorySize",
                10,
                UINT,
                "Number of finished jobs kept in memory. 0 breaks synchronous REST calls that run as jobs.",
            ),
            Option("SaveJobs", True, BOOL, "Save the jobs in the database and reload them at startup."),
            Option(
                "JobsEngineThreadsCount",
                {"ResourceModification": 1},
                _mapping_of(UINT, "an object of integers >= 0"),
                "Threads used inside one job, per job type (ResourceModification: /modify, "
                "/anonymize); 0 = the number of CPU cores.",
            ),
            Option(
                "MediaArchiveSize",
                1,
                UINT,
                "Number of archives (ZIP, DICOMDIR media) created by asynchronous jobs kept for download.",
            ),
            Option(
                "SynchronousZipStream",
                True,
                BOOL,
                "Stream synchronous ZIP archives as they are built instead of writing a temporary file first.",
            ),
            Option("ZipUseUtf8", False, BOOL, "Mark the file names inside ZIP archives as UTF-8."),
            Option(
                "LogExportedResources",
                False,
                BOOL,
                'Record the resources sent to modalities and peers, as listed by "/exports".',
            ),
            Option(
                "CheckRevisions",
                False,
                BOOL,
                "Protect metadata and attachments with revisions (ETag, If-Match, If-None-Match).",
            ),
            Option(
                "ReadOnly",
                False,
                BOOL,
                "Read-only mode: the REST routes that write are not available.",
            ),
            Option(
                "PatientLevelEnabled",
                True,
                BOOL,
                'false removes every "/patients" route and the patient-level consistency checks.',
            ),
            Option(
                "ExtraMainDicomTags",
                None,
                _optional(
                    Kind(
                        'an object {"Patient"|"Study"|"Series"|"Instance": [tag, ...]}',
                        _to_extra_main_dicom_tags,
                    )
                ),
                "Tags stored in the index in addition to the main DICOM tags, per level.",
                example={"Instance": ["Rows", "Columns"], "Series": [], "Study": [], "Patient": []},
            ),
            Option(
                "UserMetadata",
                {},
                _user_numbers(accept_mime=False),
                "Names of user-defined metadata: name -> number in [1024, 65535], each number used once.",
            ),
            Option(
                "UserContentType",
                {},
                _user_numbers(accept_mime=True),
                "Names of user-defined attachment types: name -> number in [1024, 65535], or [number, MIME type].",
            ),
            Option(
                "StorageAccessOnFind",
                "Always",
                _choice("Always", "Answers", "Never"),
                "Whether C-FIND, /tools/find and QIDO-RS may read files: to filter and answer "
                "(Always), only to answer (Answers), or never (Never, the database only).",
            ),
            Option(
                "LimitFindResults",
                0,
                UINT,
                "Maximum number of patients, studies or series in one C-FIND or /tools/find answer; 0 = no limit.",
            ),
            Option(
                "LimitFindInstances",
                0,
                UINT,
                "Maximum number of instances in one C-FIND or /tools/find answer; 0 = no limit.",
            ),
            Option(
                "QueryRetrieveSize",
                100,
                UINT,
                'Number of query/retrieve requests ("/queries") kept; the least recently used go first.',
            ),
            Option(
                "StorageCommitmentReportsSize",
                100,
                UINT,
                "Number of storage commitment reports received from modalities kept in memory.",
            ),
            Option("MetricsEnabled", True, BOOL, 'Collect metrics for "/tools/metrics-prometheus".'),
            Option("ExecuteLuaEnabled", False, BOOL, 'Enable "/tools/execute-script".'),
            Option(
                "RestApiWriteToFileSystemEnabled",
                False,
                BOOL,
                'Let the REST API write files on the server ("/instances/{id}/export").',
            ),
            Option(
                "DeidentifyLogs",
                True,
                BOOL,
                "Remove patient data from the logged C-FIND, C-GET and C-MOVE queries.",
            ),
            Option(
                "DeidentifyLogsDicomVersion",
                "2023b",
                _choice("2008", "2017c", "2021b", "2023b"),
                "Edition of the DICOM de-identification profile used by DeidentifyLogs.",
            ),
        ),
    ),
    (
        "HTTP server",
        (
            Option(
                "HttpServerEnabled",
                True,
                BOOL,
                "Run the HTTP server (REST API, DICOMweb, web UI); false = DICOM only.",
            ),
            Option("HttpPort", 8042, PORT, "TCP port of the HTTP server."),
            Option(
                "HttpBindAddresses",
                None,
                _optional(STR_LIST),
                "IP addresses the HTTP server listens on. Unset: every interface.",
                example=["127.0.0.1"],
                default_doc="every interface",
            ),
            Option("OrthancExplorerEnabled", True, BOOL, 'Serve the web user interface under "/app/".'),
            Option(
                "HttpDescribeErrors",
                True,
                BOOL,
                "Put a JSON description of the error in the body of failed REST calls.",
            ),
            Option(
                "HttpCompressionEnabled",
                False,
                BOOL,
                "Compress HTTP answers (gzip, deflate) for clients that accept it.",
            ),
            Option("HttpThreadsCount", 50, UINT, "Number of HTTP requests served at the same time."),
            Option("KeepAlive", True, BOOL, "Keep HTTP connections open between requests."),
            Option("KeepAliveTimeout", 1, UINT, "Seconds an idle HTTP connection is kept open."),
            Option("TcpNoDelay", True, BOOL, "Disable Nagle's algorithm on HTTP connections."),
            Option(
                "HttpRequestTimeout",
                30,
                UINT,
                "Seconds allowed to receive a request or send an answer on an HTTP connection.",
            ),
            Option(
                "MaximumRequestBodySizeMB",
                8192,
                UINT,
                "Maximum size in MB of an HTTP request body (larger ones get 413); 0 = no limit.",
            ),
            Option(
                "MaximumFileSizeInArchiveMB",
                4096,
                UINT,
                "Maximum size in MB of one uncompressed file taken from an uploaded ZIP or gzip "
                "archive (guards against archive bombs); 0 = no limit.",
            ),
            Option("WebDavEnabled", True, BOOL, 'Publish the stored resources as a WebDAV share ("/webdav/").'),
            Option("WebDavDeleteAllowed", False, BOOL, "Allow deleting through the WebDAV share."),
            Option("WebDavUploadAllowed", True, BOOL, "Allow uploading through the WebDAV share."),
        ),
    ),
    (
        "HTTP security",
        (
            Option(
                "RemoteAccessAllowed",
                False,
                BOOL,
                "Accept HTTP clients other than localhost (the others get 401).",
            ),
            Option(
                "AuthenticationEnabled",
                None,
                _optional(BOOL),
                "Require HTTP Basic authentication against RegisteredUsers. Unset: enabled exactly "
                "when RemoteAccessAllowed is true. With remote access and authentication but no "
                "RegisteredUsers, the server refuses to start (as Orthanc 1.13).",
                example=False,
                default_doc="= RemoteAccessAllowed",
            ),
            Option(
                "RegisteredUsers",
                {},
                _mapping_of(STR, "an object of user name -> password"),
                "Users of HTTP Basic authentication: user name -> password, in plain text.",
            ),
            Option("SslEnabled", False, BOOL, "Serve HTTPS instead of HTTP, on the same port."),
            Option(
                "SslCertificate",
                "certificate.pem",
                STR,
                "PEM file holding both the certificate and the private key of the HTTPS server.",
            ),
            Option(
                "SslMinimumProtocolVersion",
                4,
                _int_kind(0, 5),
                "Oldest protocol accepted by the HTTPS server: 0 = SSL2, 1 = SSL3, 2 = TLS 1.0, "
                "3 = TLS 1.1, 4 = TLS 1.2, 5 = TLS 1.3.",
            ),
            Option(
                "SslCiphersAccepted",
                None,
                _optional(STR_LIST),
                "OpenSSL names of the ciphers the HTTPS server accepts. Unset: the library's defaults.",
                example=["AES128-GCM-SHA256"],
            ),
            Option(
                "SslVerifyPeers",
                False,
                BOOL,
                "Require HTTPS clients to present a certificate found in SslTrustedClientCertificates.",
            ),
            Option(
                "SslTrustedClientCertificates",
                "trustedClientCertificates.pem",
                STR,
                "PEM file of the client certificates trusted when SslVerifyPeers is true.",
            ),
        ),
    ),
)
