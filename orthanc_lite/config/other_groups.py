"""Option groups: outgoing HTTP, transcoding, dictionary, plugins, ignored options."""

from __future__ import annotations

from typing import Final

from .kinds import (
    ANY,
    BOOL,
    Kind,
    OBJECT,
    STR,
    STR_LIST,
    UINT,
    _DICTIONARY_LABEL,
    _choice,
    _int_kind,
    _optional,
    _to_dictionary,
)
from .option import DICOMWEB_OPTIONS, Option, WORKLISTS_OPTIONS, _finish_dicomweb, _section


OTHER_GROUPS: Final[tuple[tuple[str, tuple[Option, ...]], ...]] = (
    (
        "Outgoing HTTP (peers, DICOMweb client)",
        (
            Option("HttpTimeout", 60, UINT, "Seconds allowed for an outgoing HTTP request; 0 = no limit."),
            Option(
                "HttpProxy",
                "",
                STR,
                'Proxy for outgoing HTTP, as "host:port" or "user:password@host:port"; empty = none.',
            ),
            Option("HttpVerbose", False, BOOL, "Log the details of outgoing HTTP requests."),
            Option(
                "HttpsVerifyPeers",
                True,
                BOOL,
                "Check the certificates of HTTPS servers (false is a security risk).",
            ),
            Option(
                "HttpsCACertificates",
                "",
                STR,
                "PEM file of the CA certificates used to check HTTPS servers; empty = the system store.",
            ),
            Option(
                "Pkcs11",
                None,
                _optional(OBJECT),
                "PKCS#11 module for client certificates on smart cards or HSMs.",
                example={"Module": "/usr/local/lib/libbeidpkcs11.so", "Pin": "1234", "Verbose": True},
            ),
        ),
    ),
    (
        "Transcoding",
        (
            Option(
                "TranscodeDicomProtocol",
                True,
                BOOL,
                "Convert instances to a transfer syntax the remote side accepts in C-STORE and C-GET.",
            ),
            Option(
                "BuiltinDecoderTranscoderOrder",
                "After",
                _choice("After", "Before", "Disabled"),
                "Whether the built-in decoder and transcoder are tried after the plugins' ones, "
                "before them, or not at all (Disabled).",
            ),
            Option(
                "DicomLossyTranscodingQuality",
                90,
                _int_kind(1, 100),
                "Quality (1 to 100) when converting to a lossy (JPEG) transfer syntax.",
            ),
            Option(
                "IngestTranscoding",
                None,
                _optional(STR),
                "Transfer syntax UID every received instance is converted to before storage. A "
                "lossy target changes the SOPInstanceUID, hence the Orthanc IDs. Unset: no "
                "conversion.",
                example="1.2.840.10008.1.2",
            ),
            Option(
                "IngestTranscodingOfUncompressed",
                True,
                BOOL,
                "Apply IngestTranscoding to instances received uncompressed.",
            ),
            Option(
                "IngestTranscodingOfCompressed",
                True,
                BOOL,
                "Apply IngestTranscoding to instances received compressed.",
            ),
        ),
    ),
    (
        "DICOM dictionary",
        (
            Option(
                "Dictionary",
                {},
                Kind(_DICTIONARY_LABEL, _to_dictionary),
                'Extra tags: "gggg,eeee" -> [VR, name, min multiplicity, max multiplicity (0 = '
                'any), private creator]. For private tags write only the low byte ("gggg,ee").',
            ),
            Option(
                "LoadPrivateDictionary",
                True,
                BOOL,
                "Load the built-in dictionary of private tags.",
            ),
            Option(
                "DefaultPrivateCreator",
                "",
                STR,
                "Private creator assumed for private tags when none is given.",
            ),
            Option(
                "ExternalDictionaries",
                None,
                _optional(STR_LIST),
                "DCMTK-format dictionary files that replace the default dictionary, in order.",
                example=["/usr/share/libdcmtk/dicom.dic"],
            ),
        ),
    ),
    (
        "Plugins (built in)",
        (
            _section(
                "DicomWeb",
                "The DICOMweb server and client (Orthanc's DICOMweb plugin options).",
                DICOMWEB_OPTIONS,
                _finish_dicomweb,
            ),
            _section(
                "Worklists",
                "Modality Worklist C-FIND answered from a folder of files (Orthanc's sample worklists plugin options).",
                WORKLISTS_OPTIONS,
            ),
        ),
    ),
    (
        "Accepted for compatibility with Orthanc, ignored",
        (
            Option("Plugins", [], ANY, "Native plugins to load.", ignored=True),
            Option("LuaScripts", [], ANY, "Lua scripts to load.", ignored=True),
            Option("LuaHeartBeatPeriod", 0, ANY, "Seconds between two OnHeartBeat Lua calls.", ignored=True),
            Option(
                "LimitJobs",
                None,
                ANY,
                "Removed in Orthanc 1.4 (pending jobs limit).",
                example=10,
                ignored=True,
            ),
            Option(
                "DatabaseServerIdentifier",
                None,
                ANY,
                "Identifier of this server in a shared database.",
                example="Orthanc1",
                ignored=True,
            ),
            Option(
                "Locale",
                None,
                ANY,
                "Locale used for case-insensitive comparisons.",
                example="en_US.UTF-8",
                ignored=True,
            ),
            Option("MallocArenaMax", 5, ANY, "glibc malloc arenas.", ignored=True),
            Option(
                "Warnings",
                {
                    "W001_TagsBeingReadFromStorage": True,
                    "W002_InconsistentDicomTagsInDb": True,
                    "W003_DecoderFailure": True,
                    "W004_NoMainDicomTagsSignature": True,
                    "W005_RequestingTagFromLowerResourceLevel": True,
                    "W006_RequestingTagFromMetaHeader": True,
                    "W007_MissingRequestedTagsNotReadFromDisk": True,
                },
                ANY,
                "Switches for some warnings of Orthanc's logs.",
                ignored=True,
                default_doc="every warning true",
            ),
            Option("ZipLoaderThreads", 0, ANY, "Threads reading files for ZIP archives.", ignored=True),
            Option("LoaderThreads", 1, ANY, "Threads reading files in jobs.", ignored=True),
            Option("MaximumConcurrentDcmtkTranscoders", 0, ANY, "Transcoders running at once.", ignored=True),
            Option(
                "StorageLoaderThreads",
                None,
                ANY,
                "Threads reading the storage (1.13).",
                example=4,
                ignored=True,
            ),
            Option(
                "StorageLoaderThreadsCount",
                None,
                ANY,
                "Threads reading the storage (1.13).",
                example=4,
                ignored=True,
            ),
            Option("DicomParserThreads", 2, ANY, "DICOM parser threads (1.13).", ignored=True),
            Option("DicomParserMemoryCapacity", 256, ANY, "DICOM parser memory in MB (1.13).", ignored=True),
            Option("DicomParserCacheSize", 128, ANY, "DICOM parser cache in MB (1.13).", ignored=True),
            Option("TranscoderThreads", 4, ANY, "Transcoder threads (1.13).", ignored=True),
            Option("TranscoderMemoryCapacity", 256, ANY, "Transcoder memory in MB (1.13).", ignored=True),
            Option("TranscoderCacheSize", 128, ANY, "Transcoder cache in MB (1.13).", ignored=True),
            Option(
                "SequentialDicomReaderThreads",
                None,
                ANY,
                "Sequential reader threads (1.13).",
                example=4,
                ignored=True,
            ),
            Option(
                "SequentialDicomReaderWindowSize",
                None,
                ANY,
                "Files read ahead by a sequential reader (1.13).",
                example=4,
                ignored=True,
            ),
            Option(
                "SequentialDicomReaderWindowCapacity",
                64,
                ANY,
                "Memory in MB of a sequential reader (1.13).",
                ignored=True,
            ),
        ),
    ),
)
