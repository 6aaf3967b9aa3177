"""PrCore's REST API and its SSE stream as Tornado handlers, served in the Panel server's process.

Handlers only translate HTTP to facade calls and back: every rule and message comes from ``prcore_core``. Facade
calls run in a thread pool, so the IOLoop never waits on the database or a model; streamed prescriptions arrive
from the core's broker and are handed to the loop with ``IOLoop.add_callback``.

Every route of PrCore 1.0.1 (reference section 2) is here, plus the legacy ``POST /event/{id}`` and
``/project/{id}/streaming/result``; :data:`ROUTES` lists them with their handlers, and each handler method declares
its OpenAPI operation (:mod:`workbench.openapi`), served at ``/openapi.json`` and browsable at ``/docs``. Errors are
always JSON: ``{"detail": "..."}`` (4xx with PrCore's messages, never an HTML page), and malformed requests get
FastAPI's ``422`` with a list of what is wrong where.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hmac
import json
import logging
import math
import mimetypes
import secrets
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
from tornado.ioloop import IOLoop
from tornado.iostream import StreamClosedError
from tornado.routing import Matcher, Rule
from tornado.web import HTTPError, RequestHandler, StaticFileHandler

from prcore_core import PrCore, errors, registry
from prcore_core.prescriptions import check_format, prcore_plugin_id, prcore_prescription, prcore_prescriptions
from prcore_core.status import LIVE, ProjectStatus
from workbench import openapi
from workbench.openapi import (
    BOOLEAN,
    DEFINITION,
    ERROR,
    INTEGER,
    OBJECT,
    PER_PLUGIN,
    STRING,
    Query,
    message_with,
    nullable,
    operation,
    ref,
)

log = logging.getLogger(__name__)

#: Seconds between keep-alive pings on an idle SSE connection.
PING_INTERVAL = 15.0
#: Seconds the SSE endpoint waits for a project that is still activating (PrCore waited 15, reference 2.25; the
#: first activation after a start, while the spare prescriber still imports, can take longer on a loaded machine).
ACTIVATION_WAIT = 60.0
#: Bytes of one posted event's JSON: beyond what the core's limits allow (200,000 characters of text, escaped).
MAX_EVENT_BODY = 2_000_000
#: Prescribed events an SSE reader's inbox holds; news beyond is dropped and read from the database when the
#: reader has caught up (the events are stored), so a slow reader costs bounded memory.
INBOX_EVENTS = 2_000
TOKEN_FILE = "api_token"
#: Largest page of ``GET /project/all`` (reference 2.13).
MAX_PAGE_SIZE = 100


def resolve_token(data_dir: Path, given: str | None = None) -> str:
    """The API token: given (``--token``/``PRCORE_API_TOKEN``), else the one stored in the data directory, else a
    new one stored there (readable by the owner only), as Jupyter does."""
    if given:
        return given
    path = Path(data_dir) / TOKEN_FILE
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(24)
    path.write_text(token + "\n")
    path.chmod(0o600)
    return token


@dataclass(frozen=True)
class ApiContext:
    """What every handler is given.

    Parameters
    ----------
    sse_format
        The default form of prescriptions on SSE and in dataset results (``list`` or ``prcore``); a request's
        ``?format=`` chooses for itself.
    credentials
        ``(user name, password)`` that ``POST /token`` exchanges for the token; ``None``: no login.
    """

    core: PrCore
    token: str
    pool: Executor
    sse_format: str = "list"
    credentials: tuple[str, str] | None = None
    ping_interval: float = PING_INTERVAL


class RequestValidationError(errors.PrCoreError):
    """A request that does not match its declaration: 422 listing each problem in FastAPI's shape
    (``{"detail": [{"loc": [...], "msg": ..., "type": ...}]}``), as PrCore's clients parse it."""

    status_code = 422

    def __init__(self, problems: list[dict[str, Any]]):
        super().__init__("; ".join(f"{' '.join(map(str, p['loc']))}: {p['msg']}" for p in problems))
        self.problems = problems

    def to_dict(self) -> dict:
        return {"detail": self.problems}


def invalid(location: str, name: str, message: str, kind: str) -> RequestValidationError:
    """A 422 naming what is wrong where."""
    return RequestValidationError([{"loc": [location, name], "msg": message, "type": kind}])


class JsonErrors:
    """Errors as ``{"detail": ...}`` JSON, never Tornado's HTML page (mixed into every API handler)."""

    def write_error(self, status_code: int, **kwargs) -> None:
        """Never a traceback: unexpected failures answer ``{"detail": "Internal server error"}``."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, HTTPError) and exc.log_message:
            detail = exc.log_message
        elif status_code >= 500:
            detail = "Internal server error"
        else:
            detail = self._reason
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"detail": detail}))


class ApiHandler(JsonErrors, RequestHandler):
    """JSON in and out, bearer-token auth, PrCore errors as ``{"detail": ...}``."""

    auth = True

    def initialize(self, context: ApiContext):
        self.context = context
        self.core = context.core
        self.pool = context.pool

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Access-Control-Allow-Origin", "*")

    def check_xsrf_cookie(self) -> None:  # token-authenticated API, no cookies
        pass

    def prepare(self) -> None:
        if not self.auth or self.request.method == "OPTIONS":  # a CORS preflight carries no credentials
            return
        header = self.request.headers.get("Authorization", "")
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() != "bearer" or not credentials:
            raise errors.AuthenticationError("Not authenticated")
        if not hmac.compare_digest(credentials.strip().encode(), self.context.token.encode()):
            raise errors.AuthenticationError("Invalid token")

    def options(self, *_args) -> None:
        """CORS preflight: PrCore allowed every origin, method and header."""
        self.set_header("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS")
        self.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type, Last-Event-ID")
        self.set_status(204)
        self.finish()

    def _handle_request_exception(self, exc: BaseException) -> None:
        if isinstance(exc, errors.PrCoreError):
            if self._finished:
                return
            self.clear()
            self.set_default_headers()
            self.set_status(exc.status_code)
            if exc.status_code == 401:
                self.set_header("WWW-Authenticate", "Bearer")
            elif exc.status_code == 503:  # nothing was stored: the client may send it again shortly
                self.set_header("Retry-After", "1")
            self.finish(json.dumps(exc.to_dict()))
            return
        super()._handle_request_exception(exc)

    async def call(self, function, *args, **kwargs):
        """Run a facade call in the thread pool (never on the IOLoop)."""
        return await IOLoop.current().run_in_executor(self.pool, lambda: function(*args, **kwargs))

    # -- reading requests ---------------------------------------------------------------------------------------
    def json_body(self) -> Any:
        if not self.request.body:
            raise errors.InvalidEventError("The request body is empty; send a JSON object")
        return _parsed_json(self.request.body)

    def checked_body(self, method: Callable) -> dict:
        """The JSON body, validated against the schema ``method`` declares (422 listing every problem)."""
        body = self.json_body()
        schema = method.operation.body
        problems = sorted(jsonschema.Draft202012Validator(schema).iter_errors(body), key=lambda e: list(e.path))
        if problems:
            raise RequestValidationError(
                [
                    {"loc": ["body", *e.absolute_path], "msg": e.message, "type": f"value_error.{e.validator}"}
                    for e in problems
                ]
            )
        return body

    def path_id(self, value: str, name: str) -> int:
        """An integer path parameter within the database's 64 bits (422 otherwise, as FastAPI answers)."""
        try:
            number = int(value) if len(value) <= 20 else None
        except ValueError:
            number = None
        if number is None:
            raise invalid("path", name, "value is not a valid integer", "type_error.integer")
        if not openapi.ID["minimum"] <= number <= openapi.ID["maximum"]:
            raise invalid("path", name, f"ensure this value is at most {openapi.ID['maximum']} in size", "value_error")
        return number

    def query_int(self, name: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
        raw = self.get_query_argument(name, None)
        if raw in (None, ""):
            return default
        try:
            value = int(raw)
        except ValueError:
            raise invalid("query", name, "value is not a valid integer", "type_error.integer") from None
        if value < minimum:
            raise invalid("query", name, f"ensure this value is greater than or equal to {minimum}", "value_error")
        if maximum is not None and value > maximum:
            raise invalid("query", name, f"ensure this value is less than or equal to {maximum}", "value_error")
        return value

    def upload(self, field: str, required: bool = True) -> tuple[bytes, str] | None:
        files = self.request.files.get(field)
        if not files:
            if required:
                raise invalid("body", field, "field required", "value_error.missing")
            return None
        return files[0]["body"], files[0]["filename"]

    def separator(self, *names: str) -> str | None:
        for name in names:
            value = self.get_body_argument(name, None)
            if value:
                return value
        return None

    def prescription_format(self) -> str:
        return check_format(self.get_query_argument("format", None) or self.context.sse_format)

    def send(self, document: dict) -> None:
        self.finish(json.dumps(document, default=str))


def paged(items: list, skip: int, limit: int) -> list:
    return items[skip : skip + limit]


SKIP = Query("skip", {"type": "integer", "minimum": 0, "default": 0}, "Items to skip")
LIMIT = Query("limit", {"type": "integer", "minimum": 0, "default": 100}, "Most items to return")
UPLOAD_FORM = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {"type": "string", "format": "binary", "description": "CSV, XES, zip or gzip"},
        "separator": {"type": "string", "default": ",", "description": "CSV delimiter (also `seperator`)"},
    },
}
OUTCOME_AND_TREATMENT = {
    "type": "object",
    "properties": {
        "positive_outcome": DEFINITION,
        "negative_outcome": DEFINITION,
        "treatment": DEFINITION,
        "parameters": PER_PLUGIN,
        "additional_info": PER_PLUGIN,
    },
}
PROJECT_ANSWER = message_with(project=ref("Project"))
PLUGIN_ANSWER = message_with(plugin=ref("Plugin"))
PROJECT_ID_ANSWER = message_with(project_id=INTEGER)
EXAMPLE_DEFINITION = [[{"column": "Activity", "operator": "EQUAL", "value": "A_APPROVED"}]]


# -- event logs ---------------------------------------------------------------------------------------------------
class EventLogUploadHandler(ApiHandler):
    @operation(
        "Upload an event log, with an optional dataset of ongoing cases",
        tags=("event log",),
        description="`test`, if sent, is prescribed by the project created on this log once it is trained; "
        "`POST /project` answers its `result_key` (reference 2.1).",
        multipart={
            **UPLOAD_FORM,
            "properties": {
                **UPLOAD_FORM["properties"],
                "test": {"type": "string", "format": "binary", "description": "ongoing cases (CSV, XES, zip)"},
            },
        },
        responses={
            200: message_with(
                event_log_id=INTEGER,
                columns_header={"type": "array", "items": STRING},
                columns_inferred_definition={"type": "array", "items": nullable(STRING)},
                columns_data={"type": "array", "items": {"type": "array"}},
            ),
            400: ERROR,
            413: ERROR,
        },
    )
    async def post(self) -> None:
        data, name = self.upload("file")
        test = self.upload("test", required=False)
        separator = self.separator("separator", "seperator")
        extra = {"test": test[0], "test_filename": test[1]} if test else {}
        event_log = await self.call(self.core.upload_event_log, data, name, separator, **extra)
        self.send(event_log.upload_response())


COLUMNS_BODY = {
    "type": "object",
    "required": ["columns_definition"],
    "properties": {
        "columns_definition": {"type": "object", "additionalProperties": nullable(STRING)},
        "case_attributes": nullable({"type": "array", "items": STRING}),
        "fast_mode": nullable(BOOLEAN),
        "start_transition": nullable(STRING),
        "complete_transition": nullable(STRING),
        "abort_transition": nullable(STRING),
    },
}


class EventLogHandler(ApiHandler):
    @operation(
        "One event log",
        tags=("event log",),
        responses={200: message_with(event_log=ref("EventLog")), 404: ERROR},
    )
    async def get(self, event_log_id: str) -> None:
        event_log = await self.call(self.core.get_event_log, self.path_id(event_log_id, "event_log_id"))
        self.send({"message": "Event log retrieved successfully", "event_log": event_log.to_dict()})

    @operation(
        "Define what each column means",
        tags=("event log",),
        description="Redefining the columns of a log that has a project sets it back to WAITING (reference 2.2).",
        body=COLUMNS_BODY,
        body_example={
            "columns_definition": {"Case ID": "CASE_ID", "Activity": "ACTIVITY", "end_time": "END_TIMESTAMP"},
            "case_attributes": ["AMOUNT_REQ"],
        },
        responses={200: ref("Analysis"), 400: ERROR, 404: ERROR},
    )
    async def put(self, event_log_id: str) -> None:
        event_log_id = self.path_id(event_log_id, "event_log_id")
        body = self.checked_body(type(self).put)
        allowed = {"case_attributes", "fast_mode", "start_transition", "complete_transition", "abort_transition"}
        options = {k: v for k, v in body.items() if k in allowed and v is not None}
        analysis = await self.call(
            self.core.set_columns_definition, event_log_id, body["columns_definition"], **options
        )
        self.send(analysis)


class EventLogReuploadHandler(ApiHandler):
    @operation(
        "Replace a project's event log with a new file and retrain",
        tags=("event log",),
        multipart=UPLOAD_FORM,
        responses={200: ref("Analysis"), 400: ERROR, 404: ERROR, 413: ERROR},
    )
    async def put(self, event_log_id: str) -> None:
        event_log_id = self.path_id(event_log_id, "event_log_id")
        data, name = self.upload("file")
        analysis = await self.call(
            self.core.reupload_event_log, event_log_id, data, name, self.separator("separator", "seperator")
        )
        self.send(analysis)


class EventLogListHandler(ApiHandler):
    @operation(
        "Every event log",
        tags=("event log",),
        query=(SKIP, LIMIT),
        responses={200: message_with(event_logs={"type": "array", "items": ref("EventLog")})},
    )
    async def get(self) -> None:
        skip, limit = self.query_int("skip", 0), self.query_int("limit", 100)
        logs = await self.call(self.core.list_event_logs)
        self.send(
            {
                "message": "Event logs retrieved successfully",
                "event_logs": [e.to_dict() for e in paged(logs, skip, limit)],
            }
        )


class EventLogDefinitionHandler(ApiHandler):
    @operation(
        "A log's columns definition beside its columns and first rows",
        tags=("event log",),
        responses={
            200: message_with(
                event_log_id=INTEGER,
                columns_header={"type": "array", "items": STRING},
                columns_old_definition={"type": "array", "items": nullable(STRING)},
                columns_data={"type": "array"},
            ),
            404: ERROR,
        },
    )
    async def get(self, event_log_id: str) -> None:
        self.send(await self.call(self.core.event_log_definition, self.path_id(event_log_id, "event_log_id")))


# -- plugins ------------------------------------------------------------------------------------------------------
def available_plugin(info: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    """PrCore's description of an available plugin (reference 2.8), with each parameter's declaration."""
    needed = [
        label for label, need in (("OUTCOME", info["needs_outcome"]), ("TREATMENT", info["needs_treatment"])) if need
    ]
    return {
        "prescription_type": info["prescription_type"],
        "name": info["name"],
        "description": info["description"],
        "parameters": info["parameters"],
        "parameter_declarations": parameters,
        "needed_columns": needed,
        "needed_info_for_training": [],
        "needed_info_for_prediction": [],
        "supported_encoding": [],
        "prcore_id": prcore_plugin_id(info["key"]),
        "online": dt.datetime.now().isoformat(),
    }


class PluginListHandler(ApiHandler):
    @operation(
        "The plugins of every project",
        tags=("plugin",),
        query=(SKIP, LIMIT),
        responses={200: message_with(plugins={"type": "array", "items": ref("Plugin")})},
    )
    async def get(self) -> None:
        skip, limit = self.query_int("skip", 0), self.query_int("limit", 100)
        plugins = await self.call(self.core.list_plugins)
        self.send(
            {"message": "Plugins retrieved successfully", "plugins": [p.to_dict() for p in paged(plugins, skip, limit)]}
        )


class PluginAvailableHandler(ApiHandler):
    @operation(
        "The plugins a new project can use, with their parameters and defaults",
        tags=("plugin",),
        responses={200: message_with(plugins={"type": "object", "additionalProperties": OBJECT})},
    )
    async def get(self) -> None:
        def describe():
            plugins = registry.available_plugins()
            return {key: available_plugin(cls.info(), cls.parameter_declarations()) for key, cls in plugins.items()}

        plugins = await self.call(describe)
        self.send({"message": "Available plugins retrieved successfully", "plugins": plugins})


PLUGIN_UPDATE = {
    "type": "object",
    "properties": {"parameters": nullable(OBJECT), "additional_info": nullable(OBJECT)},
}


class PluginHandler(ApiHandler):
    @operation("One plugin of a project", tags=("plugin",), responses={200: PLUGIN_ANSWER, 404: ERROR})
    async def get(self, plugin_id: str) -> None:
        plugin = await self.call(self.core.get_plugin, self.path_id(plugin_id, "plugin_id"))
        self.send({"message": "Plugin retrieved successfully", "plugin": plugin.to_dict()})

    @operation(
        "Change a trained plugin's parameters or additional info (it trains again when they change)",
        tags=("plugin",),
        body=PLUGIN_UPDATE,
        body_example={"parameters": {"n_neighbors": 15}, "additional_info": {}},
        responses={200: PLUGIN_ANSWER, 400: ERROR, 404: ERROR},
    )
    async def put(self, plugin_id: str) -> None:
        plugin_id = self.path_id(plugin_id, "plugin_id")
        body = self.checked_body(type(self).put)
        plugin = await self.call(
            self.core.update_plugin, plugin_id, body.get("parameters") or {}, body.get("additional_info") or {}
        )
        self.send({"message": "Plugin is updated successfully", "plugin": plugin.to_dict()})


class PluginTriggerHandler(ApiHandler):
    @operation(
        "Enable or disable a trained plugin",
        tags=("plugin",),
        responses={200: PLUGIN_ANSWER, 400: ERROR, 404: ERROR},
    )
    async def put(self, plugin_id: str, trigger_type: str) -> None:
        if trigger_type not in ("enable", "disable"):
            raise errors.StateError(errors.PLUGIN_TRIGGER_TYPE_NOT_VALID)
        plugin_id = self.path_id(plugin_id, "plugin_id")
        plugin = await self.call(self.core.set_plugin_enabled, plugin_id, trigger_type == "enable")
        self.send({"message": f"Plugin is {trigger_type}d successfully", "plugin": plugin.to_dict()})


# -- projects -----------------------------------------------------------------------------------------------------
class ProjectCreateHandler(ApiHandler):
    @operation(
        "Create a project: outcome and treatment definitions; it pre-processes and trains in the background",
        tags=("project",),
        body={
            **OUTCOME_AND_TREATMENT,
            "required": ["event_log_id"],
            "properties": {
                "event_log_id": openapi.ID,
                **OUTCOME_AND_TREATMENT["properties"],
                "name": nullable(STRING),
                "description": nullable(STRING),
            },
        },
        body_example={
            "event_log_id": 1,
            "positive_outcome": EXAMPLE_DEFINITION,
            "treatment": [[{"column": "Activity", "operator": "EQUAL", "value": "O_SENT_BACK"}]],
        },
        responses={200: message_with(project=ref("Project"), result_key=nullable(STRING)), 400: ERROR},
    )
    async def post(self) -> None:
        body = self.checked_body(type(self).post)
        keys = ("positive_outcome", "negative_outcome", "treatment", "parameters", "additional_info")
        options = {k: body.get(k) for k in keys}
        options.update({k: body[k] for k in ("name", "description") if body.get(k) is not None})
        project = await self.call(self.core.create_project, int(body["event_log_id"]), **options)
        results = await self.call(self.core.dataset_results, project.id)
        result_key = results[0]["key"] if results else None
        self.send({"message": "Project created successfully", "project": project.to_dict(), "result_key": result_key})


class ProjectListHandler(ApiHandler):
    @operation(
        "Every project, newest first, a page at a time",
        tags=("project",),
        query=(
            Query("page", {"type": "integer", "minimum": 1, "default": 1}, "Page number, from 1"),
            Query("size", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": 50}, "Page size"),
        ),
        responses={
            200: {
                "type": "object",
                "required": ["items", "total", "page", "size", "pages"],
                "properties": {
                    "items": {"type": "array", "items": ref("Project")},
                    "total": INTEGER,
                    "page": INTEGER,
                    "size": INTEGER,
                    "pages": INTEGER,
                },
            }
        },
    )
    async def get(self) -> None:
        page = self.query_int("page", 1, minimum=1)
        size = self.query_int("size", 50, minimum=1, maximum=MAX_PAGE_SIZE)
        projects = await self.call(self.core.list_projects)
        items = projects[(page - 1) * size : page * size]
        pages = -(-len(projects) // size)
        self.send(
            {"items": [p.to_dict() for p in items], "total": len(projects), "page": page, "size": size, "pages": pages}
        )


class ProjectHandler(ApiHandler):
    """``GET /project/{id}``: the seed "Check Project Status" response; rename; delete."""

    @operation(
        'A project with its status, event log and plugins (seed "Check Project Status")',
        tags=("project",),
        responses={200: PROJECT_ANSWER, 400: ERROR},
    )
    async def get(self, project_id: str) -> None:
        project = await self.call(self.core.get_project, self.path_id(project_id, "project_id"))
        self.send({"message": "Project retrieved successfully", "project": project.to_dict()})

    @operation(
        "Rename or describe a project",
        tags=("project",),
        body={"type": "object", "required": ["name"], "properties": {"name": STRING, "description": nullable(STRING)}},
        body_example={"name": "New name", "description": "This is a custom description"},
        responses={200: PROJECT_ANSWER, 400: ERROR},
    )
    async def put(self, project_id: str) -> None:
        project_id = self.path_id(project_id, "project_id")
        body = self.checked_body(type(self).put)
        description = body.get("description")
        project = await self.call(
            self.core.update_project, project_id, body["name"], "" if description is None else description
        )
        self.send({"message": "Project's basic information updated successfully", "project": project.to_dict()})

    @operation(
        "Delete a project with its event log, plugins, streamed events and results",
        tags=("project",),
        responses={200: PROJECT_ID_ANSWER, 400: ERROR},
    )
    async def delete(self, project_id: str) -> None:
        project_id = await self.call(self.core.delete_project, self.path_id(project_id, "project_id"))
        self.send({"message": "Project deleted successfully", "project_id": project_id})


class ProjectDefinitionHandler(ApiHandler):
    @operation(
        "New outcome and treatment definitions: the project trains again",
        tags=("project",),
        body={**OUTCOME_AND_TREATMENT, "properties": {"event_log_id": {}, **OUTCOME_AND_TREATMENT["properties"]}},
        body_example={"positive_outcome": EXAMPLE_DEFINITION, "treatment": None},
        responses={200: message_with(project=ref("Project"), result_key={"type": "null"}), 400: ERROR},
    )
    async def put(self, project_id: str) -> None:
        project_id = self.path_id(project_id, "project_id")
        body = self.checked_body(type(self).put)
        keys = ("positive_outcome", "negative_outcome", "treatment", "parameters", "additional_info")
        project = await self.call(self.core.redefine_project, project_id, **{k: body.get(k) for k in keys})
        self.send(
            {"message": "Project definition updated successfully", "project": project.to_dict(), "result_key": None}
        )


class DatasetSubmitHandler(ApiHandler):
    @operation(
        "Upload a dataset of ongoing cases to prescribe; answers the key of its result",
        tags=("dataset result",),
        multipart=UPLOAD_FORM,
        responses={200: message_with(project_id=INTEGER, result_key=STRING), 400: ERROR, 413: ERROR},
    )
    async def post(self, project_id: str) -> None:
        data, name = self.upload("file")
        project_id = self.path_id(project_id, "project_id")
        separator = self.separator("seperator", "separator")
        key = await self.call(self.core.submit_dataset, project_id, data, name, separator)
        self.send({"message": "Ongoing dataset uploaded successfully", "project_id": project_id, "result_key": key})


RESULT_KEYS = ("cases_count", "columns", "columns_definition", "case_attributes", "cases")


class DatasetResultHandler(ApiHandler):
    @operation(
        "A dataset's prescriptions: still processing, or every case with its events and prescriptions",
        tags=("dataset result",),
        description="Readable more than once, until it expires (PRCORE_RESULT_TTL_HOURS); `?format=prcore` gives "
        "PrCore's plugin ids and prescription objects.",
        query=(Query("format", {"type": "string", "enum": ["list", "prcore"]}, "Form of the prescriptions"),),
        responses={
            200: message_with(
                project_status=STRING,
                expected_plugins={"type": "array", "items": STRING},
                finished_plugins={"type": "array", "items": STRING},
                cases_count=nullable(INTEGER),
                columns=nullable({"type": "array", "items": STRING}),
                columns_definition=nullable(OBJECT),
                case_attributes=nullable({"type": "array"}),
                cases=nullable(OBJECT),
            ),
            400: ERROR,
            404: ERROR,
        },
    )
    async def get(self, project_id: str, result_key: str) -> None:
        project_id = self.path_id(project_id, "project_id")
        wire = self.prescription_format()
        state = await self.call(self.core.dataset_result, project_id, result_key)
        result = state.get("result")
        plugin_id = prcore_plugin_id if wire == "prcore" else (lambda key: key)
        answer = {
            "message": "Ongoing dataset result retrieved successfully"
            if result is not None
            else "Ongoing dataset result is still processing",
            "project_status": state["project_status"],
            "expected_plugins": [plugin_id(k) for k in state["expected_plugins"]],
            "finished_plugins": [plugin_id(k) for k in state["finished_plugins"]],
            **{k: (result or {}).get(k) for k in RESULT_KEYS},
        }
        if result is not None and wire == "prcore":
            for case in answer["cases"].values():
                case["prescriptions"] = [prcore_prescription(p) for p in case["prescriptions"]]
        self.send(answer)


class DatasetDownloadHandler(ApiHandler):
    @operation(
        "A project's data as a file: original upload, processed training data, held-out (simulation) or ongoing",
        tags=("project",),
        responses={
            200: (("text/csv", "application/zip", "application/octet-stream"), {"type": "string", "format": "binary"}),
            400: ERROR,
        },
    )
    async def get(self, project_id: str, dataset_type: str) -> None:
        project_id = self.path_id(project_id, "project_id")
        name, data = await self.call(self.core.dataset_file, project_id, dataset_type)
        media = mimetypes.guess_type(name)[0] or "application/octet-stream"
        self.set_header("Content-Type", media)
        self.set_header("Content-Disposition", f'attachment; filename="{name}"')
        self.finish(data)


# -- streaming ----------------------------------------------------------------------------------------------------
EVENT_ANSWER = message_with(event=ref("Event"))


class EventHandler(ApiHandler):
    @operation(
        'Post one event of a running case (seed "Stream Data")',
        tags=("streaming",),
        description="Committed before the answer. `COMPLETE_INDICATOR: true` closes the case.",
        body_example={
            "Case ID": "HXQLYpqJTGGFLJCxUvVD",
            "start_time": "2011-09-30T22:38:44.546",
            "end_time": "2011-09-30T22:38:44.546",
            "AMOUNT_REQ": "20000",
            "REG_DATE": "2011-09-30T22:38:44.546Z",
            "Activity": "A_SUBMITTED",
            "Resource": "112",
            "COMPLETE_INDICATOR": False,
        },
        body={"type": "object", "additionalProperties": True},
        responses={200: EVENT_ANSWER, 400: ERROR, 413: ERROR, 503: ERROR},
    )
    async def post(self, project_id: str) -> None:
        project_id = self.path_id(project_id, "project_id")
        if len(self.request.body) > MAX_EVENT_BODY:  # refused unparsed: no event within the core's limits is this long
            raise errors.InvalidEventError(
                f"The event has {len(self.request.body):,} bytes; at most {MAX_EVENT_BODY:,} are accepted "
                "(limit MAX_EVENT_BODY)",
                413,
            )
        body = self.json_body()
        # validation is quick and runs here; the commit is awaited (group-committed by the journal thread)
        event = await asyncio.wrap_future(self.core.submit_event(project_id, body))
        last = event["attributes"].get("COMPLETE_INDICATOR") == "True"
        message = (
            "Event received successfully, this is the last event of the case"
            if last
            else ("Event received successfully")
        )
        self.send({"message": message, "event": event})


BULK_RESULT = {
    "oneOf": [
        {"type": "object", "required": ["event"], "properties": {"event": ref("Event")}},
        {
            "type": "object",
            "required": ["detail", "status_code"],
            "properties": {"detail": STRING, "status_code": INTEGER},
        },
    ]
}
BULK_ANSWER = message_with(accepted=INTEGER, refused=INTEGER, results={"type": "array", "items": BULK_RESULT})


def _parsed_json(body: bytes) -> Any:
    """A request body's JSON, or a 400 saying why it is not JSON."""
    try:
        return json.loads(body)
    except RecursionError:
        raise errors.InvalidEventError("The request body is not valid JSON: it is nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as exc:  # ValueError: also integers of more than 4,300 digits
        raise errors.InvalidEventError(f"The request body is not valid JSON: {str(exc)[:200]}") from None


def _bulk_events(body: bytes, content_type: str) -> list[Any]:
    """The events of a bulk post: a JSON array, or NDJSON (one event per line; a line that is not JSON becomes
    that event's refusal, not the request's)."""
    if not body.strip():
        raise errors.InvalidEventError("The request body is empty; send a JSON array of events")
    if "ndjson" not in content_type:
        return _parsed_json(body)
    events: list[Any] = []
    for number, line in enumerate(body.splitlines(), 1):
        if not line.strip():
            continue
        try:
            events.append(json.loads(line))
        except (RecursionError, UnicodeDecodeError, ValueError) as exc:
            events.append(_NotJson(f"Line {number} is not valid JSON: {str(exc)[:100]}"))
    return events


class _NotJson(str):
    """An NDJSON line that could not be read: refused as that event's answer."""


class BulkEventsHandler(ApiHandler):
    @operation(
        "Post many events at once (a JSON array, or NDJSON with Content-Type application/x-ndjson)",
        tags=("streaming",),
        description="Each event is validated on its own and answered in `results`, in order: `{event}` when "
        "stored, `{detail, status_code}` when refused; one bad event does not refuse the others. The valid ones "
        "are committed together and prescribed as a batch.",
        body_example=[{"case_id": "1", "activity": "A", "timestamp": "2024-01-01T10:00:00"}],
        body={"type": "array", "items": {"type": "object", "additionalProperties": True}},
        responses={200: BULK_ANSWER, 400: ERROR, 413: ERROR},
    )
    async def post(self, project_id: str) -> None:
        project_id = self.path_id(project_id, "project_id")
        content_type = self.request.headers.get("Content-Type", "")
        events = await self.call(_bulk_events, self.request.body, content_type)
        if not isinstance(events, list):
            raise errors.InvalidEventError("The events must be a JSON array of event objects")
        bodies = [None if isinstance(e, _NotJson) else e for e in events]
        futures = await self.call(self.core.submit_events, project_id, bodies)
        results = []
        for event, future in zip(events, futures, strict=True):
            if isinstance(event, _NotJson):
                results.append({"detail": str(event), "status_code": 400})
                continue
            try:
                results.append({"event": await asyncio.wrap_future(future)})
            except errors.PrCoreError as exc:
                results.append({"detail": exc.detail, "status_code": exc.status_code})
        accepted = sum("event" in r for r in results)
        message = f"Events received: {accepted:,} accepted, {len(results) - accepted:,} refused"
        self.send({"message": message, "accepted": accepted, "refused": len(results) - accepted, "results": results})


def _optional_number(handler: RequestHandler, name: str, kind=float):
    raw = handler.get_query_argument(name, None)
    if raw in (None, ""):
        return None
    try:
        value = kind(raw) if len(raw) <= 30 else None
    except ValueError:
        value = None
    if value is None or not math.isfinite(value):
        raise errors.InvalidParameterError(f"Query parameter {name} must be a number, got {raw[:100]!r}")
    if value < 0:
        raise errors.InvalidParameterError(f"Query parameter {name} must not be negative")
    return value


PACE = (
    Query("interval", {"type": "number", "minimum": 0}, "Simulation: seconds between events"),
    Query("speed", {"type": "number", "minimum": 0}, "Simulation: follow the log's real gaps, sped up this much"),
    Query("max_events", {"type": "integer", "minimum": 0}, "Simulation: stop after this many events"),
)


class StreamStartHandler(ApiHandler):
    @operation(
        "Start streaming (posted events) or simulating (held-out cases replayed)",
        tags=("streaming",),
        query=PACE,
        responses={200: PROJECT_ID_ANSWER, 400: ERROR},
    )
    async def put(self, project_id: str, streaming_type: str | None = None) -> None:
        mode = self.core.stream_mode(streaming_type or "streaming")
        project_id = self.path_id(project_id, "project_id")
        speed = _optional_number(self, "speed")
        interval = _optional_number(self, "interval")
        pace = {"interval": interval, "speed": speed} if interval is not None or speed is not None else {}
        await self.call(
            self.core.start_streaming, project_id, mode, max_events=_optional_number(self, "max_events", int), **pace
        )
        self.send({"message": "Project streaming started successfully", "project_id": project_id})


class StreamStopHandler(ApiHandler):
    @operation("Stop streaming or simulating", tags=("streaming",), responses={200: PROJECT_ID_ANSWER, 400: ERROR})
    async def put(self, project_id: str) -> None:
        project_id = self.path_id(project_id, "project_id")
        await self.call(self.core.stop_streaming, project_id)
        self.send({"message": "Project streaming stopped successfully", "project_id": project_id})


class StreamClearHandler(ApiHandler):
    @operation(
        "Stop if needed and delete the streamed cases and events",
        tags=("streaming",),
        responses={200: PROJECT_ID_ANSWER, 400: ERROR},
    )
    async def put(self, project_id: str) -> None:
        project_id = self.path_id(project_id, "project_id")
        await self.call(self.core.clear_stream, project_id)
        self.send({"message": "Project stream data is cleared successfully", "project_id": project_id})


class SlowReaderError(Exception):
    """An SSE reader took no data for longer than the configured timeout."""


#: Events read from the database per page when a reader catches up.
CATCH_UP_PAGE = 1_000
#: An SSE message holds events up to about this many bytes of JSON (more go in the next message), so that the
#: reader timeout bounds the time a reader may take for one message.
MESSAGE_BYTES = 256 * 1024


class ResultStreamHandler(ApiHandler):
    """``GET /project/{id}/streaming/result``: prescriptions pushed as Server-Sent Events.

    One reader per project (seed "Get Prescriptions"). A new reader gets what nobody has been given yet; a
    reconnecting reader that sends ``Last-Event-ID`` gets exactly the events after that id. Message ids are event
    ids, so they only grow.
    """

    def initialize(self, context: ApiContext):
        super().initialize(context)
        self.ping_interval = context.ping_interval
        self.reader_timeout = self.core.settings.sse_reader_timeout
        #: Events waiting in the inbox, and whether news was dropped because it was full.
        self._inboxed, self._overflowed = 0, False

    @operation(
        'Prescriptions pushed as Server-Sent Events (seed "Get Prescriptions")',
        tags=("streaming",),
        description="`notification` CONNECTED first, then `message` events whose data is a JSON list of "
        "prescribed events, `ping` when idle, `notification` FINISHED at the end. `Last-Event-ID` resumes. "
        "`?format=prcore` sends PrCore's `prescriptions` object keyed by plugin id.",
        query=(Query("format", {"type": "string", "enum": ["list", "prcore"]}, "Form of the prescriptions"),),
        responses={200: ("text/event-stream", {"type": "string"}), 400: ERROR},
    )
    async def get(self, project_id: str) -> None:
        project_id = self.path_id(project_id, "project_id")
        self.wire = self.prescription_format()
        loop = IOLoop.current()
        inbox: asyncio.Queue = asyncio.Queue()
        # subscribed before anything is checked: news published while this reader waits for the activation (even
        # a whole short simulation) is in the inbox, not lost between two looks at the project
        token = self.core.broker.subscribe(
            project_id, lambda kind, payload: loop.add_callback(self._news, inbox, kind, payload)
        )
        try:
            await self._serve(project_id, inbox)
        finally:
            self.core.broker.unsubscribe(token)
            if getattr(self, "project_id", None) == project_id:
                self.core.close_stream_reader(project_id)
                self.project_id = None
        if not self._finished:
            self.finish()

    def _news(self, inbox: asyncio.Queue, kind: str, payload: Any) -> None:
        """Queue news for this reader (on the IOLoop); prescribed events beyond the inbox's bound are dropped."""
        if kind == "events":
            if self._inboxed >= INBOX_EVENTS:
                self._overflowed = True
                return
            self._inboxed += len(payload)
        inbox.put_nowait((kind, payload))

    async def _next(self, inbox: asyncio.Queue, timeout: float | None = None) -> tuple[str, Any]:
        kind, payload = await (inbox.get() if timeout is None else asyncio.wait_for(inbox.get(), timeout))
        if kind == "events":
            self._inboxed -= len(payload)
        return kind, payload

    async def _wait_for_activation(self, project_id: int, inbox: asyncio.Queue) -> list[tuple[str, Any]]:
        """Wait while the project is ACTIVATING (reference 2.25); 400 unless it ends up STREAMING/SIMULATING.

        Returns the news taken from the inbox meanwhile, to be handled first.
        """
        project = await self.call(self.core.get_project, project_id)
        if project.status is ProjectStatus.ERROR:
            raise errors.StateError(errors.PROJECT_ERROR)
        early: list[tuple[str, Any]] = []
        deadline = IOLoop.current().time() + ACTIVATION_WAIT
        while not self.core.stream_is_open(project_id):
            if any(kind == "status" and payload in LIVE for kind, payload in early):
                return early  # it was streaming a moment ago (a short simulation may be over already)
            if project.status is not ProjectStatus.ACTIVATING or IOLoop.current().time() > deadline:
                raise errors.StateError(errors.PROJECT_NOT_STREAMING)
            with contextlib.suppress(TimeoutError):
                early.append(await self._next(inbox, 0.1))
            project = await self.call(self.core.get_project, project_id)
        return early

    async def _serve(self, project_id: int, inbox: asyncio.Queue) -> None:
        resume = self._last_event_id()  # a malformed one is refused before anything waits
        early = await self._wait_for_activation(project_id, inbox)
        self.core.open_stream_reader(project_id)  # one reader per project, a Python reader included
        self.project_id = project_id
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("Connection", "keep-alive")
        self.set_header("X-Accel-Buffering", "no")
        try:
            cursor = resume if resume is not None else await self.call(self.core.stream_cursor, project_id)
            await self._emit(cursor, "notification", "CONNECTED")
            cursor = await self._catch_up(project_id, cursor)
            while True:
                if early:
                    kind, payload = early.pop(0)
                else:
                    try:
                        kind, payload = await self._next(inbox, self.ping_interval)
                    except TimeoutError:
                        await self._emit(cursor, "ping", str(dt.datetime.now(dt.UTC).replace(tzinfo=None)))
                        continue
                if kind == "events" and self._overflowed:  # some news was dropped: read it from the database
                    self._overflowed = False
                    cursor = await self._catch_up(project_id, cursor)
                elif kind == "events":
                    cursor = await self._deliver(payload, cursor)
                elif kind == "finished":
                    cursor = await self._catch_up(project_id, cursor)
                    await self._emit(cursor, "notification", "FINISHED")
                    break
        except StreamClosedError:
            pass
        except SlowReaderError as exc:
            log.warning("SSE reader of project %s disconnected: %s", project_id, exc)
            self.request.connection.close()
        except Exception as exc:  # tell the reader, never leave it hanging
            log.exception("SSE stream of project %s failed", project_id)
            try:
                self.write(f"event: error\r\ndata: Error in the SSE stream: {exc}\r\n\r\n")
                await self.flush()
            except StreamClosedError:
                pass

    def _last_event_id(self) -> int | None:
        """The id a reconnecting reader saw last (its ``Last-Event-ID``), if it sent one."""
        header = self.request.headers.get("Last-Event-ID")
        if header in (None, ""):
            return None
        try:
            value = int(header) if len(header) <= 20 else None
        except ValueError:
            value = None
        if value is None or not 0 <= value <= openapi.ID["maximum"]:
            raise errors.InvalidEventError(f"Last-Event-ID must be an event id, got {header[:100]!r}")
        return value

    async def _emit(self, event_id: int, event: str, data: str) -> None:
        """Send one message; a reader that takes none of it within the timeout is disconnected."""
        self.write(f"id: {event_id}\r\nevent: {event}\r\ndata: {data}\r\n\r\n")
        try:
            await asyncio.wait_for(self.flush(), self.reader_timeout)
        except TimeoutError:
            raise SlowReaderError(
                f"it took no data for {self.reader_timeout:g} s (PRCORE_SSE_READER_TIMEOUT); it may resume with "
                f"Last-Event-ID {event_id}"
            ) from None

    async def _catch_up(self, project_id: int, cursor: int) -> int:
        """Deliver every stored event after ``cursor``, in pages (a reader's first look, or one that lagged)."""
        while True:
            page = await self.call(self.core.stream_events, project_id, cursor, CATCH_UP_PAGE)
            cursor = await self._deliver(page, cursor)
            if len(page) < CATCH_UP_PAGE:
                return cursor

    async def _deliver(self, events: list[dict], cursor: int) -> int:
        fresh = [e for e in events if e["id"] > cursor]
        if not fresh:
            return cursor
        documents = [prcore_prescriptions(e) for e in fresh] if self.wire == "prcore" else fresh
        texts = [json.dumps(d, default=str) for d in documents]
        start, size = 0, 0
        for end, text in enumerate(texts, 1):  # messages of at most MESSAGE_BYTES (and never empty)
            size += len(text) + 1
            if size >= MESSAGE_BYTES or end == len(texts):
                await self._emit(fresh[end - 1]["id"], "message", f"[{', '.join(texts[start:end])}]")
                await self.call(self.core.mark_delivered, [e["id"] for e in fresh[start:end]])
                start, size = end, 0
        return fresh[-1]["id"]

    def on_connection_close(self) -> None:
        project_id = getattr(self, "project_id", None)
        if project_id is not None:
            self.core.close_stream_reader(project_id)
            self.project_id = None


# -- the rest: token, info, documentation, errors ------------------------------------------------------------------
class TokenHandler(ApiHandler):
    """``POST /token``: OAuth2's password form exchanges the configured user name and password for the token."""

    auth = False

    @operation(
        "Exchange the user name and password for the API token (OAuth2 password form)",
        tags=("auth",),
        auth=False,
        form={
            "type": "object",
            "required": ["username", "password"],
            "properties": {
                "username": STRING,
                "password": STRING,
                "grant_type": STRING,
                "scope": STRING,
                "client_id": STRING,
                "client_secret": STRING,
            },
        },
        responses={
            200: {
                "type": "object",
                "required": ["access_token", "token_type"],
                "properties": {"access_token": STRING, "token_type": STRING},
            },
            401: ERROR,
        },
    )
    async def post(self) -> None:
        fields = {}
        for name in ("username", "password"):
            value = self.get_body_argument(name, None)
            if value is None:
                raise invalid("body", name, "field required", "value_error.missing")
            fields[name] = value
        expected = self.context.credentials
        given = (fields["username"].encode(), fields["password"].encode())
        if expected is None or not (
            hmac.compare_digest(given[0], expected[0].encode()) & hmac.compare_digest(given[1], expected[1].encode())
        ):
            raise errors.AuthenticationError("Incorrect username or password")
        self.send({"access_token": self.context.token, "token_type": "bearer"})


class InfoHandler(ApiHandler):
    """``GET /`` for API clients (PrCore's info object); browsers get the dashboard at the same address."""

    auth = False

    @operation(
        "Where the API, its documentation and the dashboard are",
        tags=("info",),
        auth=False,
        description="Answered to clients that do not ask for HTML; a browser gets the dashboard.",
        responses={200: {"type": "object", "required": ["API", "Documentation", "Swagger UI"]}},
    )
    async def get(self) -> None:
        base = f"{self.request.protocol}://{self.request.host}"
        self.send(
            {
                "API": base,
                "Documentation": f"{base}/openapi.json",
                "Swagger UI": f"{base}/docs",
                "Dashboard": f"{base}/",
                "RabbitMQ Management": None,
            }
        )


class WantsJson(Matcher):
    """Matches ``path`` for clients that do not ask for HTML (API clients send ``*/*`` or JSON)."""

    def __init__(self, path: str):
        self.path = path

    def match(self, request) -> dict | None:
        if request.path != self.path or request.method not in ("GET", "HEAD"):
            return None
        return None if "text/html" in request.headers.get("Accept", "") else {}


class OpenApiHandler(ApiHandler):
    auth = False

    def initialize(self, context: ApiContext, document: dict):
        super().initialize(context)
        self.document = document

    def get(self) -> None:
        self.send(self.document)


SWAGGER_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>PrCore Workbench API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui"});</script>
</body></html>"""


class SwaggerHandler(JsonErrors, RequestHandler):
    """``/docs``: Swagger UI from the packaged ``swagger-ui-bundle`` assets (no network needed)."""

    def get(self) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(SWAGGER_PAGE)


class NotFoundHandler(JsonErrors, RequestHandler):
    """Any path nobody serves: ``404 {"detail": "Not Found"}``, never an HTML page."""

    def prepare(self) -> None:
        raise HTTPError(404)

    def check_xsrf_cookie(self) -> None:
        pass


#: Every route: its template (OpenAPI's path, ``{name}`` for a path parameter) and handler. Order matters:
#: fixed segments (``/event_log/all``) come before parameters.
ROUTES: list[tuple[str, type[ApiHandler]]] = [
    ("/token", TokenHandler),
    ("/event_log", EventLogUploadHandler),
    ("/event_log/all", EventLogListHandler),
    ("/event_log/{event_log_id}", EventLogHandler),
    ("/event_log/{event_log_id}/upload", EventLogReuploadHandler),
    ("/event_log/{event_log_id}/definition", EventLogDefinitionHandler),
    ("/plugin/all", PluginListHandler),
    ("/plugin/available", PluginAvailableHandler),
    ("/plugin/{plugin_id}", PluginHandler),
    ("/plugin/{plugin_id}/{trigger_type}", PluginTriggerHandler),
    ("/project", ProjectCreateHandler),
    ("/project/all", ProjectListHandler),
    ("/project/{project_id}", ProjectHandler),
    ("/project/{project_id}/definition", ProjectDefinitionHandler),
    ("/project/{project_id}/result", DatasetSubmitHandler),
    ("/project/{project_id}/result/{result_key}", DatasetResultHandler),
    ("/project/{project_id}/dataset/{dataset_type}", DatasetDownloadHandler),
    ("/project/{project_id}/stream/start", StreamStartHandler),
    ("/project/{project_id}/stream/start/{streaming_type}", StreamStartHandler),
    ("/project/{project_id}/stream/stop", StreamStopHandler),
    ("/project/{project_id}/stream/clear", StreamClearHandler),
    ("/project/{project_id}/stream/event", EventHandler),
    ("/project/{project_id}/stream/events", BulkEventsHandler),
    ("/project/{project_id}/stream/result", ResultStreamHandler),
    ("/project/{project_id}/streaming/result", ResultStreamHandler),
    ("/event/{project_id}", EventHandler),
    ("/", InfoHandler),
]


def api_document(version: str = "1.0") -> dict:
    """The OpenAPI document of :data:`ROUTES`."""
    return openapi.document(ROUTES, "PrCore Workbench API", version)


def swagger_assets() -> str | None:
    """The directory of the packaged Swagger UI assets, if ``swagger-ui-bundle`` is installed."""
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        return None
    return str(swagger_ui_path)


def routes(
    core: PrCore,
    token: str,
    pool: Executor,
    ping_interval: float = PING_INTERVAL,
    sse_format: str | None = None,
    credentials: tuple[str, str] | None = None,
) -> list[tuple]:
    """The ``extra_patterns`` for ``pn.serve``; ``ping_interval``: seconds between keep-alive pings on SSE.

    ``GET /`` for API clients is served by :func:`install`'s rule, ahead of the dashboard.
    """
    context = ApiContext(core, token, pool, sse_format or core.settings.sse_format, credentials, ping_interval)
    options = {"context": context}
    patterns = [(openapi.route_pattern(t), h, options) for t, h in ROUTES if t != "/"]
    patterns.append((r"/openapi\.json", OpenApiHandler, {**options, "document": api_document()}))
    patterns.append((r"/docs/?", SwaggerHandler))
    assets = swagger_assets()
    if assets:
        patterns.append((r"/docs/static/(.*)", StaticFileHandler, {"path": assets}))
    return patterns


def install(application, core: PrCore, token: str, pool: Executor, **options) -> None:
    """What ``extra_patterns`` cannot do, on the server's Tornado application: ``GET /`` answers API clients
    before the dashboard does, and unknown paths answer ``404 {"detail": "Not Found"}``."""
    context = ApiContext(core, token, pool, options.get("sse_format") or core.settings.sse_format)
    application.default_router.rules.insert(0, Rule(WantsJson("/"), InfoHandler, {"context": context}))
    application.settings["default_handler_class"] = NotFoundHandler
    application.settings["default_handler_args"] = {}
