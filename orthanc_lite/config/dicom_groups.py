"""Option groups: DICOM server, DICOM TLS, modalities and the DICOM client."""

from __future__ import annotations

from typing import Final

from .kinds import AET, BOOL, PORT, STR, STR_LIST, UINT, _choice, _int_kind, _optional
from .remotes import MODALITIES, PEERS
from .option import Option, _ENCODINGS, _ts_group


DICOM_GROUPS: Final[tuple[tuple[str, tuple[Option, ...]], ...]] = (
    (
        "DICOM server (SCP)",
        (
            Option(
                "DicomServerEnabled",
                True,
                BOOL,
                "Run the DICOM server (C-ECHO, C-STORE, C-FIND, C-MOVE, C-GET, storage commitment); false = REST only.",
            ),
            Option("DicomAet", "ORTHANC", AET, "AET of this server (at most 16 characters)."),
            Option("DicomPort", 4242, PORT, "TCP port of the DICOM server."),
            Option(
                "DicomCheckCalledAet",
                False,
                BOOL,
                "Refuse associations whose called AET is not DicomAet.",
            ),
            Option(
                "DicomCheckModalityHost",
                False,
                BOOL,
                "Also require the IP address of a calling modality to match its Host in DicomModalities.",
            ),
            Option(
                "StrictAetComparison",
                False,
                BOOL,
                "Compare AETs case-sensitively (by default, case is ignored).",
            ),
            Option(
                "DicomAlwaysAllowEcho",
                True,
                BOOL,
                "Answer C-ECHO from any AET, even one not in DicomModalities.",
            ),
            Option(
                "DicomAlwaysAllowStore",
                True,
                BOOL,
                "Accept C-STORE from any AET, even one not in DicomModalities.",
            ),
            Option(
                "DicomAlwaysAllowFind",
                False,
                BOOL,
                "Answer C-FIND (patients to instances) from any AET. A security risk.",
            ),
            Option(
                "DicomAlwaysAllowFindWorklist",
                False,
                BOOL,
                "Answer worklist C-FIND from any AET. A security risk.",
            ),
            Option("DicomAlwaysAllowGet", False, BOOL, "Answer C-GET from any AET. A security risk."),
            Option("DicomAlwaysAllowMove", False, BOOL, "Answer C-MOVE from any AET. A security risk."),
            Option(
                "DicomScpTimeout",
                30,
                UINT,
                "Seconds without a DIMSE command after which the server closes an association; 0 = never.",
            ),
            Option(
                "DicomThreadsCount",
                4,
                UINT,
                "Number of DICOM operations processed at the same time by the server.",
            ),
            Option(
                "MaximumPduLength",
                16384,
                _int_kind(4096, 131072),
                "Maximum PDU length in bytes, for the server and the client, in [4096, 131072].",
            ),
            Option(
                "UnknownSopClassAccepted",
                False,
                BOOL,
                "Accept C-STORE of SOP classes that are not known storage classes.",
            ),
            Option(
                "AcceptedSopClasses",
                None,
                _optional(STR_LIST),
                'SOP class UIDs accepted by C-STORE ("*" and "?" wildcards). Unset: every known storage class.',
                example=["1.2.840.10008.5.1.4.1.1.*"],
                default_doc="every storage class",
            ),
            Option(
                "RejectedSopClasses",
                [],
                STR_LIST,
                "SOP class UIDs refused by C-STORE, applied after AcceptedSopClasses (wildcards).",
            ),
            Option(
                "AcceptedTransferSyntaxes",
                ["1.2.840.10008.1.*"],
                STR_LIST,
                'Transfer syntax UIDs accepted by the server ("*" and "?" wildcards).',
            ),
            _ts_group("DeflatedTransferSyntaxAccepted", "deflated"),
            _ts_group("JpegTransferSyntaxAccepted", "JPEG"),
            _ts_group("Jpeg2000TransferSyntaxAccepted", "JPEG 2000"),
            _ts_group("JpegLosslessTransferSyntaxAccepted", "JPEG lossless"),
            _ts_group("JpipTransferSyntaxAccepted", "JPIP"),
            _ts_group("Mpeg2TransferSyntaxAccepted", "MPEG-2"),
            _ts_group("Mpeg4TransferSyntaxAccepted", "MPEG-4"),
            _ts_group("H265TransferSyntaxAccepted", "H.265"),
            _ts_group("RleTransferSyntaxAccepted", "RLE"),
            Option(
                "DefaultEncoding",
                "Latin1",
                _choice(*_ENCODINGS),
                "Character set assumed for files without SpecificCharacterSet, and used in C-FIND and QIDO-RS answers.",
            ),
            Option(
                "CaseSensitivePN",
                False,
                BOOL,
                "Match person names (PN) case-sensitively in C-FIND, as the DICOM standard says.",
            ),
            Option(
                "SynchronousCMove",
                True,
                BOOL,
                "Run incoming C-MOVE inside the association; false = as a background job.",
            ),
        ),
    ),
    (
        "DICOM TLS",
        (
            Option("DicomTlsEnabled", False, BOOL, "Use DICOM TLS for the DICOM server."),
            Option(
                "DicomTlsCertificate",
                None,
                _optional(STR),
                "PEM certificate of this server, for DICOM TLS as server and as client.",
                example="orthanc.crt",
            ),
            Option(
                "DicomTlsPrivateKey",
                None,
                _optional(STR),
                "PEM private key matching DicomTlsCertificate.",
                example="orthanc.key",
            ),
            Option(
                "DicomTlsTrustedCertificates",
                None,
                _optional(STR),
                "PEM file of the certificates of the remote modalities that are trusted.",
                example="trusted.crt",
            ),
            Option(
                "DicomTlsRemoteCertificateRequired",
                True,
                BOOL,
                "Refuse DICOM TLS peers that present no certificate.",
            ),
            Option(
                "DicomTlsMinimumProtocolVersion",
                0,
                _int_kind(0, 5),
                "Oldest TLS version accepted: 0 = the BCP 195 profile, 1 = SSL3, 2 = TLS 1.0, "
                "3 = TLS 1.1, 4 = TLS 1.2, 5 = TLS 1.3.",
            ),
            Option(
                "DicomTlsCiphersAccepted",
                None,
                _optional(STR_LIST),
                "OpenSSL names of the ciphers accepted for DICOM TLS. Unset: the BCP 195 ciphers.",
                example=["ECDHE-RSA-AES128-GCM-SHA256"],
            ),
        ),
    ),
    (
        "DICOM network: modalities and client (SCU)",
        (
            Option(
                "DicomModalities",
                {},
                MODALITIES,
                "Known DICOM modalities: name -> [AET, Host, Port] or [AET, Host, Port, "
                "Manufacturer], or an object with AET, Host, Port, Manufacturer, AllowEcho, "
                "AllowFind, AllowFindWorklist, AllowGet, AllowMove, AllowStore, "
                "AllowStorageCommitment, AllowTranscoding, UseDicomTls, LocalAet, Timeout, "
                'RetrieveMethod. Names use letters, digits, "_" and "-".',
            ),
            Option(
                "DicomModalitiesInDatabase",
                False,
                BOOL,
                "Keep the modalities in the database (edited through the REST API); DicomModalities is then ignored.",
            ),
            Option(
                "DicomScuTimeout",
                10,
                UINT,
                "Seconds the client waits for a remote modality; 0 = no limit. A modality's Timeout overrides it.",
            ),
            Option(
                "DicomAssociationCloseDelay",
                5,
                UINT,
                "Seconds an association opened by a Lua script is kept open while idle.",
            ),
            Option(
                "DicomEchoChecksFind",
                False,
                BOOL,
                "After a C-ECHO to a modality, also check that it answers a C-FIND.",
            ),
            Option(
                "DicomDefaultRetrieveMethod",
                "C-MOVE",
                _choice("C-MOVE", "C-GET"),
                'How "/queries/.../retrieve" fetches from a modality whose RetrieveMethod is SystemDefault.',
            ),
            Option(
                "DicomScuPreferredTransferSyntax",
                "1.2.840.10008.1.2.1",
                STR,
                "Transfer syntax to convert to when a remote modality refuses an instance's own "
                "transfer syntax in C-STORE.",
            ),
            Option(
                "OrthancPeers",
                {},
                PEERS,
                "Known Orthanc peers: name -> [Url] or [Url, Username, Password], or an object "
                "with Url, Username, Password, HttpHeaders, CertificateFile, CertificateKeyFile, "
                "CertificateKeyPassword, Pkcs11, Timeout.",
            ),
            Option(
                "OrthancPeersInDatabase",
                False,
                BOOL,
                "Keep the peers in the database (edited through the REST API); OrthancPeers is then ignored.",
            ),
        ),
    ),
)
