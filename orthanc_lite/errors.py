"""Orthanc's error codes and their HTTP / DIMSE renderings.

Raise `OrthancError(ErrorCode.X, details)` anywhere; only rest/middleware.py and dimse/status.py render it.
"""

from __future__ import annotations

import enum
from typing import Final


class ErrorCode(enum.Enum):
    """Orthanc's `ErrorCode` values (OrthancFramework/Sources/Enumerations.h) with their descriptions."""

    InternalError = (-1, "Internal error")
    Success = (0, "Success")
    Plugin = (1, "Error encountered within the plugin engine")
    NotImplemented = (2, "Not implemented yet")
    ParameterOutOfRange = (3, "Parameter out of range")
    NotEnoughMemory = (4, "The server hosting Orthanc is running out of memory")
    BadParameterType = (5, "Bad type for a parameter")
    BadSequenceOfCalls = (6, "Bad sequence of calls")
    InexistentItem = (7, "Accessing an inexistent item")
    BadRequest = (8, "Bad request")
    NetworkProtocol = (9, "Error in the network protocol")
    SystemCommand = (10, "Error while calling a system command")
    Database = (11, "Error with the database engine")
    UriSyntax = (12, "Badly formatted URI")
    InexistentFile = (13, "Inexistent file")
    CannotWriteFile = (14, "Cannot write to file")
    BadFileFormat = (15, "Bad file format")
    Timeout = (16, "Timeout")
    UnknownResource = (17, "Unknown resource")
    IncompatibleDatabaseVersion = (18, "Incompatible version of the database")
    FullStorage = (19, "The file storage is full")
    CorruptedFile = (20, "Corrupted file (e.g. inconsistent MD5 hash)")
    InexistentTag = (21, "Inexistent tag")
    ReadOnly = (22, "Cannot modify a read-only data structure")
    IncompatibleImageFormat = (23, "Incompatible format of the images")
    IncompatibleImageSize = (24, "Incompatible size of the images")
    SharedLibrary = (25, "Error while using a shared library (plugin)")
    UnknownPluginService = (26, "Plugin invoking an unknown service")
    UnknownDicomTag = (27, "Unknown DICOM tag")
    BadJson = (28, "Cannot parse a JSON document")
    Unauthorized = (29, "Bad credentials were provided to an HTTP request")
    BadFont = (30, "Badly formatted font file")
    DatabasePlugin = (31, "The plugin implementing a custom database back-end does not fulfill the proper interface")
    StorageAreaPlugin = (32, "Error in the plugin implementing a custom storage area")
    EmptyRequest = (33, "The request is empty")
    NotAcceptable = (34, "Cannot send a response which is acceptable according to the Accept HTTP header")
    NullPointer = (35, "Cannot handle a NULL pointer")
    DatabaseUnavailable = (36, "The database is currently not available (probably a transient situation)")
    CanceledJob = (37, "This job was canceled")
    BadGeometry = (38, "Geometry error encountered in Stone")
    SslInitialization = (39, "Cannot initialize SSL encryption, check out your certificates")
    DiscontinuedAbi = (40, "Calling a function that has been removed from the Orthanc Framework")
    BadRange = (41, "Incorrect range request")
    DatabaseCannotSerialize = (42, "Database could not serialize access due to concurrent update, the transaction should be retried")
    Revision = (43, "A bad revision number was provided, which might indicate conflict between multiple writers")
    MainDicomTagsMultiplyDefined = (44, "A main DICOM Tag has been defined multiple times for the same resource level")
    ForbiddenAccess = (45, "Access to a resource is forbidden")
    DuplicateResource = (46, "Duplicate resource")
    UnsupportedMediaType = (3000, "Unsupported media type")  # not an Orthanc code: aiohttp-level 415
    CreateDicomNotString = (2019, "Only string values are supported when creating DICOM instances")
    CreateDicomOverrideTag = (2020, "Trying to override a value inherited from a parent module")
    CreateDicomUseContent = (2021, "Use \"Content\" to inject an image into a new DICOM instance")
    CreateDicomNoPayload = (2022, "No payload is present for one instance in the series")
    CreateDicomUseDataUriScheme = (2023, "The payload of the DICOM instance must be specified according to Data URI "
                                         "scheme")
    CreateDicomBadParent = (2024, "Trying to attach a new DICOM instance to an inexistent resource")
    CreateDicomParentIsInstance = (2025, "Trying to attach a new DICOM instance to an instance (must be a series, "
                                         "study or patient)")
    NoCFindHandler = (2010, "No request handler factory for DICOM C-FIND SCP")
    NoCMoveHandler = (2011, "No request handler factory for DICOM C-MOVE SCP")
    NoCStoreHandler = (2012, "No request handler factory for DICOM C-STORE SCP")
    UnknownModality = (2027, "Unknown modality")
    BadJobOrdering = (2028, "Bad ordering of filters in a job")
    JsonToLuaTable = (2029, "Cannot convert the given JSON object to a Lua table")
    CannotCreateLua = (2030, "Cannot create the Lua context")
    CannotExecuteLua = (2031, "Cannot execute a Lua command")
    NoCGetHandler = (2044, "No request handler factory for DICOM C-GET SCP")
    NoPresentationContext = (2015, "DicomUserConnection: No acceptable presentation context for modality")
    DicomFindUnavailable = (2016, "DicomUserConnection: The C-FIND command is not supported by the remote SCP")
    DicomMoveUnavailable = (2017, "DicomUserConnection: The C-MOVE command is not supported by the remote SCP")
    DicomGetUnavailable = (2045, "DicomUserConnection: The C-GET command is not supported by the remote SCP")
    SQLiteExecute = (1004, "SQLite: Cannot execute a command")
    DirectoryOverFile = (2000, "The directory to be created is already occupied by a regular file")
    FileStorageCannotWrite = (2001, "Unable to create a subdirectory or a file in the file storage")
    DirectoryExpected = (2002, "The specified path does not point to a directory")
    HttpPortInUse = (2003, "The TCP port of the HTTP server is privileged or already in use")
    DicomPortInUse = (2004, "The TCP port of the DICOM server is privileged or already in use")
    BadHttpStatusInRest = (2005, "This HTTP status is not allowed in a REST API")
    RegularFileExpected = (2006, "The specified path does not point to a regular file")
    PathToExecutable = (2007, "Unable to get the path to the executable")
    MakeDirectory = (2008, "Cannot create a directory")
    BadApplicationEntityTitle = (2009, "An application entity title (AET) cannot be empty or be longer than 16 characters")
    NoCFindHandlerWorklist = (2041, "No request handler factory for DICOM C-Find Modality SCP")

    @property
    def code(self) -> int:
        return self.value[0]

    @property
    def description(self) -> str:
        return self.value[1]


HTTP_STATUS: Final[dict[ErrorCode, int]] = {
    ErrorCode.Success: 200,
    ErrorCode.ParameterOutOfRange: 400,
    ErrorCode.BadParameterType: 400,
    ErrorCode.InexistentItem: 404,
    ErrorCode.BadRequest: 400,
    ErrorCode.UriSyntax: 400,
    ErrorCode.InexistentFile: 404,
    ErrorCode.BadFileFormat: 400,
    ErrorCode.UnknownResource: 404,
    ErrorCode.FullStorage: 507,
    ErrorCode.InexistentTag: 404,
    ErrorCode.BadJson: 400,
    ErrorCode.Unauthorized: 401,
    ErrorCode.NotAcceptable: 406,
    ErrorCode.DatabaseUnavailable: 503,
    ErrorCode.DatabaseCannotSerialize: 503,
    ErrorCode.BadRange: 416,
    ErrorCode.Revision: 409,
    ErrorCode.ForbiddenAccess: 403,
    ErrorCode.DuplicateResource: 409,
    ErrorCode.UnsupportedMediaType: 415,
    ErrorCode.UnknownModality: 404,
    ErrorCode.CreateDicomNotString: 400,
    ErrorCode.CreateDicomOverrideTag: 400,
    ErrorCode.CreateDicomUseContent: 400,
    ErrorCode.CreateDicomNoPayload: 400,
    ErrorCode.CreateDicomUseDataUriScheme: 400,
    ErrorCode.CreateDicomBadParent: 400,
    ErrorCode.CreateDicomParentIsInstance: 400,
    ErrorCode.EmptyRequest: 400,
}

HTTP_REASONS: Final[dict[int, str]] = {
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    406: "Not Acceptable", 409: "Conflict", 413: "Request Entity Too Large", 415: "Unsupported Media Type",
    416: "Requested Range Not Satisfiable", 500: "Internal Server Error", 503: "Service Unavailable",
    507: "Insufficient Storage",
}


class OrthancError(Exception):
    """An error with an Orthanc error code; `details` ends up in the JSON "Details" field."""

    def __init__(self, code: ErrorCode, details: str | None = None, http_status: int | None = None) -> None:
        super().__init__(details or code.description)
        self.code = code
        self.details = details
        self._http_status = http_status

    @property
    def http_status(self) -> int:
        if self._http_status is not None:
            return self._http_status
        return HTTP_STATUS.get(self.code, 500)


def bad_request(details: str) -> OrthancError:
    return OrthancError(ErrorCode.BadRequest, details)


def unknown_resource(public_id: str) -> OrthancError:
    return OrthancError(ErrorCode.UnknownResource, f"Unknown resource: {public_id}")
