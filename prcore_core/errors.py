"""One hierarchy of user-facing errors.

Every error carries the message a user sees (``detail``) and the HTTP status an adapter answers with. The
messages are PrCore's own (reference section 1.4) so that PrCore clients comparing strings keep working; adapters
render them and never invent their own wording.
"""

from __future__ import annotations

# PrCore's message catalogue (reference 1.4), kept verbatim, typos included.
EVENT_LOG_BAD_ZIP = "ZIP file is corrupted"
EVENT_LOG_INVALID = "No valid event log provided"
EVENT_LOG_NOT_FOUND = "Event log not found"
EVENT_LOG_DEFINITION_NOT_FOUND = "Event log definition not found"
EVENT_LOG_COLUMNS_MISMATCH = "Event log columns mismatch with previous definition"
FAST_MODE_ENFORCED = "Fast mode enforced"
INVALID_STREAMING_TYPE = "Invalid streaming type"
INVALID_DATASET_TYPE = "Invalid dataset type"
PLUGIN_NOT_FOUND = "Plugin not found"
PLUGIN_NOT_READY = "Plugin not ready"
PLUGIN_TRIGGER_TYPE_NOT_VALID = "Plugin trigger type not valid"
PLUGIN_ALREADY_DISABLED = "Plugin already disabled"
PLUGIN_ALREADY_ENABLED = "Plugin already enabled"
PROCESS_DATASET_ERROR = "There was an error processing the dataset"
PROJECT_NOT_FOUND = "Project not found"
PROJECT_DEFINITION_CONFLICT = "Project definition conflict"
PROJECT_ERROR = "Project is in error status"
PROJECT_EXISTED = "Project already existed for this event log"
PROJECT_NOT_READY = "Project not ready"
PROJECT_NOT_PREPROCESSED = "Project not preprocessed"
PROJECT_NOT_TRAINED = "Project not trained"
PROJECT_NOT_STREAMING = "Project not streaming"
PROJECT_ALREADY_READING = "Project streaming result already be reading"
RESULT_NOT_FOUND = "Result not found"
SIMULATION_STARTED = "Simulation already started"
STREAMING_STARTED = "Streaming already started"
STREAMING_NOT_STARTED = "Streaming not started"
ZIP_MULTIPLE_FILES = "Zip file should contain only one file"
ZIP_WRONG_TYPE = "Zip file should contain only xes or csv file"
INVALID_COLUMN_DEFINITION = "Invalid column definition"
INVALID_CASE_ATTRIBUTES = "Invalid case attributes"
INVALID_DEFINITION = "Invalid definition"


#: Characters of a bad value quoted back in an error (the rest is elided).
QUOTED_LENGTH = 100


def quoted(value) -> str:
    """``repr(value)``, cut to :data:`QUOTED_LENGTH` characters: an error names the value without echoing it whole.

    >>> quoted("x" * 500)[-20:]
    'xx… (502 characters)'
    >>> quoted("2024")
    "'2024'"
    """
    text = repr(value)
    return text if len(text) <= QUOTED_LENGTH else f"{text[:QUOTED_LENGTH]}… ({len(text):,} characters)"


class PrCoreError(Exception):
    """Base of every error a user can cause; ``detail`` is the message, ``status_code`` the HTTP status."""

    status_code = 400

    def __init__(self, detail: str, status_code: int | None = None):
        super().__init__(detail)
        self.detail = detail
        if status_code is not None:
            self.status_code = status_code

    def to_dict(self) -> dict:
        """The ``{"detail": ...}`` body every adapter sends."""
        return {"detail": self.detail}


class NotFoundError(PrCoreError):
    """A referenced event log, project, plugin or result does not exist."""

    status_code = 404


class InvalidEventLogError(PrCoreError):
    """An uploaded file could not be read as an event log."""


class InvalidColumnsDefinitionError(PrCoreError):
    """A columns definition does not describe a usable event log (reference 5.3)."""


class InvalidConditionError(PrCoreError):
    """An outcome or treatment definition is malformed or does not fit the columns (reference 6.2)."""


class InvalidParameterError(PrCoreError):
    """A plugin parameter or additional info value is unusable."""


class InvalidEventError(PrCoreError):
    """A streamed event or ongoing dataset does not fit the project's definition."""


class StateError(PrCoreError):
    """The project or plugin is not in a status that allows the requested operation."""


class ProjectFailedError(PrCoreError):
    """A project ended in an error status while someone was waiting for it."""


class UploadTooLargeError(InvalidEventLogError):
    """An upload breaches one of the configured size limits (the detail names it)."""

    status_code = 413


class StorageError(PrCoreError):
    """The database could not store what was sent: the client may send it again (a 5xx, so it retries)."""

    status_code = 503


class AuthenticationError(PrCoreError):
    """Missing or wrong credentials."""

    status_code = 401
