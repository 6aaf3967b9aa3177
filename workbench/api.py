"""REST and SSE endpoints (PrCore's wire formats) as Tornado handlers served in the Panel server's process.

Handlers only translate HTTP to facade calls and back: every rule and message comes from ``prcore_core``. Facade
calls run in a thread pool, so the IOLoop never waits on the database or a model; streamed prescriptions arrive
from the core's broker and are handed to the loop with ``IOLoop.add_callback``.

Endpoints (seeds "Check Project Status", "Stream Data", "Get Prescriptions"; reference 2.20-2.25):

* ``POST /event_log`` (multipart ``file``, ``separator``), ``PUT /event_log/{id}`` (columns definition),
  ``POST /project`` (outcome and treatment definitions): enough of PrCore's API to go from a file to a project
* ``GET /project/{id}``
* ``POST /event/{id}`` (alias ``POST /project/{id}/stream/event``)
* ``PUT /project/{id}/stream/start``, ``PUT /project/{id}/stream/start/{streaming|simulating}``
  (simulation pace: query ``interval`` seconds, or ``speed`` to follow the log's real gaps sped up; ``max_events``)
* ``PUT /project/{id}/stream/stop``, ``PUT /project/{id}/stream/clear``
* ``GET /project/{id}/streaming/result`` (alias ``/stream/result``): Server-Sent Events. ``?format=prcore`` gives
  PrCore's original ``prescriptions`` object keyed by plugin key instead of the seed's list.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hmac
import json
import logging
import secrets
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

from tornado.ioloop import IOLoop
from tornado.iostream import StreamClosedError
from tornado.web import HTTPError, RequestHandler

from prcore_core import PrCore, errors
from prcore_core.prescriptions import prcore_prescriptions
from prcore_core.status import LIVE, ProjectStatus

log = logging.getLogger(__name__)

#: Seconds between keep-alive pings on an idle SSE connection.
PING_INTERVAL = 15.0
#: Seconds the SSE endpoint waits for a project that is still activating (reference 2.25).
ACTIVATION_WAIT = 15.0
TOKEN_FILE = "api_token"


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


class ApiHandler(RequestHandler):
    """JSON in and out, bearer-token auth, PrCore errors as ``{"detail": ...}``."""

    def initialize(self, core: PrCore, token: str, pool: Executor):
        self.core = core
        self.token = token
        self.pool = pool

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Access-Control-Allow-Origin", "*")

    def check_xsrf_cookie(self) -> None:  # token-authenticated API, no cookies
        pass

    def prepare(self) -> None:
        header = self.request.headers.get("Authorization", "")
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() != "bearer" or not credentials:
            raise errors.AuthenticationError("Not authenticated")
        if not hmac.compare_digest(credentials.strip().encode(), self.token.encode()):
            raise errors.AuthenticationError("Invalid token")

    def _handle_request_exception(self, exc: BaseException) -> None:
        if isinstance(exc, errors.PrCoreError):
            if self._finished:
                return
            self.clear()
            self.set_default_headers()
            self.set_status(exc.status_code)
            if exc.status_code == 401:
                self.set_header("WWW-Authenticate", "Bearer")
            self.finish(json.dumps(exc.to_dict()))
            return
        super()._handle_request_exception(exc)

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

    async def call(self, function, *args, **kwargs):
        """Run a facade call in the thread pool (never on the IOLoop)."""
        return await IOLoop.current().run_in_executor(self.pool, lambda: function(*args, **kwargs))

    def json_body(self) -> Any:
        if not self.request.body:
            raise errors.InvalidEventError("The request body is empty; send a JSON object")
        try:
            return json.loads(self.request.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise errors.InvalidEventError(f"The request body is not valid JSON: {exc}") from None

    def send(self, document: dict) -> None:
        self.finish(json.dumps(document, default=str))


class ProjectHandler(ApiHandler):
    """``GET /project/{id}``: the seed "Check Project Status" response."""

    async def get(self, project_id: str) -> None:
        project = await self.call(self.core.get_project, int(project_id))
        self.send({"message": "Project retrieved successfully", "project": project.to_dict()})


class EventLogUploadHandler(ApiHandler):
    """``POST /event_log``: multipart ``file`` (csv/xes/zip/gz) and ``separator`` (reference 2.1)."""

    async def post(self) -> None:
        files = self.request.files.get("file")
        if not files:
            raise errors.InvalidEventLogError(errors.EVENT_LOG_INVALID)
        upload = files[0]
        separator = self.get_body_argument("separator", None) or self.get_body_argument("seperator", None)
        event_log = await self.call(self.core.upload_event_log, upload["body"], upload["filename"], separator)
        self.send(event_log.upload_response())


class EventLogDefinitionHandler(ApiHandler):
    """``PUT /event_log/{id}``: the columns definition (reference 2.2)."""

    async def put(self, event_log_id: str) -> None:
        body = self.json_body()
        if not isinstance(body, dict) or not isinstance(body.get("columns_definition"), dict):
            raise errors.InvalidColumnsDefinitionError(errors.INVALID_COLUMN_DEFINITION)
        allowed = {"case_attributes", "fast_mode", "start_transition", "complete_transition", "abort_transition"}
        options = {k: v for k, v in body.items() if k in allowed and v is not None}
        analysis = await self.call(
            self.core.set_columns_definition, int(event_log_id), body["columns_definition"], **options
        )
        self.send(analysis)


class ProjectCreateHandler(ApiHandler):
    """``POST /project``: outcome/treatment definitions, plugin parameters and info (reference 2.12)."""

    async def post(self) -> None:
        body = self.json_body()
        if not isinstance(body, dict) or "event_log_id" not in body:
            raise errors.InvalidConditionError("event_log_id is required")
        try:
            event_log_id = int(body["event_log_id"])
        except (TypeError, ValueError):
            raise errors.InvalidConditionError("event_log_id must be an integer") from None
        keys = (
            "positive_outcome",
            "negative_outcome",
            "treatment",
            "parameters",
            "additional_info",
            "name",
            "description",
        )
        project = await self.call(self.core.create_project, event_log_id, **{k: body.get(k) for k in keys})
        self.send({"message": "Project created successfully", "project": project.to_dict(), "result_key": None})


class EventHandler(ApiHandler):
    """``POST /event/{id}``: one event of a running case (seed "Stream Data"); committed before the answer."""

    async def post(self, project_id: str) -> None:
        body = self.json_body()
        # validation is quick and runs here; the commit is awaited (group-committed by the journal thread)
        event = await asyncio.wrap_future(self.core.submit_event(int(project_id), body))
        last = event["attributes"].get("COMPLETE_INDICATOR") == "True"
        message = (
            "Event received successfully, this is the last event of the case"
            if last
            else ("Event received successfully")
        )
        self.send({"message": message, "event": event})


def _optional_number(handler: RequestHandler, name: str, kind=float):
    raw = handler.get_query_argument(name, None)
    if raw in (None, ""):
        return None
    try:
        value = kind(raw)
    except ValueError:
        raise errors.InvalidParameterError(f"Query parameter {name} must be a number, got {raw!r}") from None
    if value < 0:
        raise errors.InvalidParameterError(f"Query parameter {name} must not be negative")
    return value


class StreamControlHandler(ApiHandler):
    """``PUT /project/{id}/stream/{start[/type]|stop|clear}`` (reference 2.20-2.23)."""

    async def put(self, project_id: str, action: str, streaming_type: str | None = None) -> None:
        project_id = int(project_id)
        if action == "start":
            mode = self.core.stream_mode(streaming_type or "streaming")
            speed = _optional_number(self, "speed")
            interval = _optional_number(self, "interval")
            pace = {"interval": interval, "speed": speed} if interval is not None or speed is not None else {}
            await self.call(
                self.core.start_streaming,
                project_id,
                mode,
                max_events=_optional_number(self, "max_events", int),
                **pace,
            )
            self.send({"message": "Project streaming started successfully", "project_id": project_id})
        elif action == "stop":
            await self.call(self.core.stop_streaming, project_id)
            self.send({"message": "Project streaming stopped successfully", "project_id": project_id})
        else:
            await self.call(self.core.clear_stream, project_id)
            self.send({"message": "Project stream data is cleared successfully", "project_id": project_id})


class ResultStreamHandler(ApiHandler):
    """``GET /project/{id}/streaming/result``: prescriptions pushed as Server-Sent Events.

    One reader per project (seed "Get Prescriptions"). A new reader gets what nobody has been given yet; a
    reconnecting reader that sends ``Last-Event-ID`` gets exactly the events after that id. Message ids are event
    ids, so they only grow.
    """

    def initialize(self, core: PrCore, token: str, pool: Executor, ping_interval: float = PING_INTERVAL):
        super().initialize(core, token, pool)
        self.ping_interval = ping_interval

    async def get(self, project_id: str) -> None:
        project_id = int(project_id)
        loop = IOLoop.current()
        inbox: asyncio.Queue = asyncio.Queue()
        # subscribed before anything is checked: news published while this reader waits for the activation (even
        # a whole short simulation) is in the inbox, not lost between two looks at the project
        token = self.core.broker.subscribe(
            project_id, lambda kind, payload: loop.add_callback(inbox.put_nowait, (kind, payload))
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
                early.append(await asyncio.wait_for(inbox.get(), 0.1))
            project = await self.call(self.core.get_project, project_id)
        return early

    async def _serve(self, project_id: int, inbox: asyncio.Queue) -> None:
        early = await self._wait_for_activation(project_id, inbox)
        self.core.open_stream_reader(project_id)  # one reader per project, a Python reader included
        try:
            resume = self._last_event_id()
        except Exception:
            self.core.close_stream_reader(project_id)
            raise
        self.project_id = project_id
        self.legacy = self.get_query_argument("format", "") == "prcore"
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("Connection", "keep-alive")
        self.set_header("X-Accel-Buffering", "no")
        try:
            cursor = resume if resume is not None else await self.call(self.core.stream_cursor, project_id)
            await self._emit(cursor, "notification", "CONNECTED")
            backlog = await self.call(self.core.stream_events, project_id, cursor)
            cursor = await self._deliver(backlog, cursor)
            while True:
                if early:
                    kind, payload = early.pop(0)
                else:
                    try:
                        kind, payload = await asyncio.wait_for(inbox.get(), self.ping_interval)
                    except TimeoutError:
                        await self._emit(cursor, "ping", str(dt.datetime.now(dt.UTC).replace(tzinfo=None)))
                        continue
                if kind == "events":
                    cursor = await self._deliver(payload, cursor)
                elif kind == "finished":
                    rest = await self.call(self.core.stream_events, project_id, cursor)
                    cursor = await self._deliver(rest, cursor)
                    await self._emit(cursor, "notification", "FINISHED")
                    break
        except StreamClosedError:
            pass
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
            return int(header)
        except ValueError:
            raise errors.InvalidEventError(f"Last-Event-ID must be an event id, got {header!r}") from None

    async def _emit(self, event_id: int, event: str, data: str) -> None:
        self.write(f"id: {event_id}\r\nevent: {event}\r\ndata: {data}\r\n\r\n")
        await self.flush()

    async def _deliver(self, events: list[dict], cursor: int) -> int:
        fresh = [e for e in events if e["id"] > cursor]
        if not fresh:
            return cursor
        documents = [prcore_prescriptions(e) if self.legacy else e for e in fresh]
        last = fresh[-1]["id"]
        await self._emit(last, "message", json.dumps(documents, default=str))
        await self.call(self.core.mark_delivered, [e["id"] for e in fresh])
        return last

    def on_connection_close(self) -> None:
        project_id = getattr(self, "project_id", None)
        if project_id is not None:
            self.core.close_stream_reader(project_id)
            self.project_id = None


def routes(core: PrCore, token: str, pool: Executor, ping_interval: float = PING_INTERVAL) -> list[tuple]:
    """The ``extra_patterns`` for ``pn.serve``; ``ping_interval``: seconds between keep-alive pings on SSE."""
    options = {"core": core, "token": token, "pool": pool}
    stream = {**options, "ping_interval": ping_interval}
    return [
        (r"/event_log", EventLogUploadHandler, options),
        (r"/event_log/(\d+)", EventLogDefinitionHandler, options),
        (r"/project", ProjectCreateHandler, options),
        (r"/project/(\d+)", ProjectHandler, options),
        (r"/event/(\d+)", EventHandler, options),
        (r"/project/(\d+)/stream/event", EventHandler, options),
        (r"/project/(\d+)/stream/(start)(?:/([^/]+))?", StreamControlHandler, options),
        (r"/project/(\d+)/stream/(stop|clear)", StreamControlHandler, options),
        (r"/project/(\d+)/(?:streaming|stream)/result", ResultStreamHandler, stream),
    ]
