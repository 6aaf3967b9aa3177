"""The OpenAPI 3.1 document of the REST API, built from the handlers' own declarations.

Each handler method carries an :func:`operation` declaration (summary, query parameters, request body, responses
with their schemas); the request bodies' schemas are also what the handlers validate JSON bodies with, so the
document and the behaviour cannot drift. :func:`document` walks the routes and assembles the document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

#: Path parameters are written ``{name}`` in route templates; the regular expression captures one segment.
PARAMETER = re.compile(r"\{(\w+)\}")

ERROR = {"$ref": "#/components/schemas/Error"}
VALIDATION_ERROR = {"$ref": "#/components/schemas/ValidationError"}


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: dict) -> dict:
    return {"anyOf": [schema, {"type": "null"}]}


STRING, INTEGER, BOOLEAN, NUMBER = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}, {"type": "number"}
#: A database id: what the database's 64-bit integers hold (larger ones are refused with 422, not looked up).
ID = {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1}
TIME = {"type": "string", "format": "date-time"}
OBJECT = {"type": "object"}

CONDITION = {
    "type": "object",
    "required": ["column", "operator"],
    "properties": {"column": STRING, "operator": STRING, "value": {"type": ["string", "number", "boolean", "null"]}},
}
#: OR of AND-groups of conditions (reference 6.1); a flat list is refused with 422 as PrCore does.
DEFINITION = nullable({"type": "array", "items": {"type": "array", "items": CONDITION}})
PER_PLUGIN = nullable({"type": "object", "additionalProperties": OBJECT})

SCHEMAS: dict[str, dict] = {
    "Error": {"type": "object", "required": ["detail"], "properties": {"detail": STRING}},
    "ValidationError": {
        "type": "object",
        "required": ["detail"],
        "properties": {
            "detail": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["loc", "msg", "type"],
                    "properties": {"loc": {"type": "array"}, "msg": STRING, "type": STRING},
                },
            }
        },
    },
    "Definition": nullable(
        {
            "type": "object",
            "required": ["id", "columns_definition"],
            "properties": {
                "id": INTEGER,
                "created_at": TIME,
                "updated_at": nullable(TIME),
                "columns_definition": {"type": "object", "additionalProperties": nullable(STRING)},
                "case_attributes": nullable({"type": "array", "items": STRING}),
                "fast_mode": BOOLEAN,
                "start_transition": STRING,
                "complete_transition": STRING,
                "abort_transition": STRING,
                "outcome_definition": DEFINITION,
                "outcome_definition_negative": BOOLEAN,
                "treatment_definition": DEFINITION,
            },
        }
    ),
    "EventLog": {
        "type": "object",
        "required": ["id", "created_at", "updated_at", "file_name", "definition"],
        "properties": {
            "id": INTEGER,
            "created_at": TIME,
            "updated_at": nullable(TIME),
            "file_name": STRING,
            "definition": ref("Definition"),
        },
    },
    "Plugin": {
        "type": "object",
        "required": ["id", "created_at", "updated_at", "name", "prescription_type", "description", "status", "key"],
        "properties": {
            "id": INTEGER,
            "created_at": TIME,
            "updated_at": nullable(TIME),
            "name": STRING,
            "prescription_type": STRING,
            "description": nullable(STRING),
            "status": STRING,
            "key": STRING,
            "error": nullable(STRING),
            "parameters": OBJECT,
            "additional_info": OBJECT,
            "disabled": BOOLEAN,
            "progress": NUMBER,
            "progress_message": nullable(STRING),
            "metrics": nullable(OBJECT),
        },
    },
    "Project": {
        "type": "object",
        "required": ["id", "created_at", "updated_at", "name", "description", "status", "event_log", "plugins"],
        "properties": {
            "id": INTEGER,
            "created_at": TIME,
            "updated_at": nullable(TIME),
            "name": STRING,
            "description": nullable(STRING),
            "status": STRING,
            "event_log": ref("EventLog"),
            "plugins": {"type": "array", "items": ref("Plugin")},
            "error": nullable(STRING),
            "progress": NUMBER,
            "progress_message": nullable(STRING),
        },
    },
    "Event": {
        "type": "object",
        "required": ["project_id", "attributes", "id", "created_at", "updated_at"],
        "properties": {
            "project_id": INTEGER,
            "attributes": OBJECT,
            "id": INTEGER,
            "created_at": TIME,
            "updated_at": nullable(TIME),
        },
    },
    "Prescription": {
        "type": "object",
        "required": ["type", "output"],
        "properties": {
            "id": nullable(INTEGER),
            "datetime": STRING,
            "date": STRING,
            "type": STRING,
            "output": {},
            "detail": nullable(STRING),
            "plugin": OBJECT,
            "model": OBJECT,
        },
    },
    "Analysis": {
        "type": "object",
        "required": [
            "message",
            "event_log_id",
            "received_definition",
            "activities_count",
            "resources_count",
            "outcome_options",
            "treatment_options",
        ],
        "properties": {
            "message": STRING,
            "event_log_id": INTEGER,
            "received_definition": {"type": "object", "additionalProperties": nullable(STRING)},
            "activities_count": {"type": "object", "additionalProperties": INTEGER},
            "resources_count": {"type": "object", "additionalProperties": INTEGER},
            "outcome_options": {"type": "array", "items": STRING},
            "treatment_options": {"type": "array", "items": STRING},
        },
    },
}


def message_with(**properties) -> dict:
    """A ``{"message": ..., <properties>}`` answer, all keys required."""
    return {
        "type": "object",
        "required": ["message", *properties],
        "properties": {"message": STRING, **properties},
    }


@dataclass(frozen=True)
class Query:
    """A query parameter: its name, JSON schema and what it does."""

    name: str
    schema: dict
    description: str = ""
    required: bool = False


@dataclass(frozen=True)
class Operation:
    """What a handler method declares about itself."""

    summary: str
    tags: tuple[str, ...]
    responses: dict[int, Any]
    description: str = ""
    query: tuple[Query, ...] = ()
    body: dict | None = None
    form: dict | None = None
    multipart: dict | None = None
    auth: bool = True
    examples: dict[int, Any] = field(default_factory=dict)
    body_example: Any = None


def operation(summary: str, *, tags: tuple[str, ...], responses: dict[int, Any], **options):
    """Declare a handler method: its OpenAPI operation, and the request-body schema it validates with."""

    def mark(method):
        method.operation = Operation(summary, tags, responses, **options)
        return method

    return mark


def route_pattern(template: str) -> str:
    """The Tornado pattern of a route template: each ``{name}`` captures one path segment."""
    return PARAMETER.sub(r"([^/]+)", template) + "/?"


def _content(schema: Any, example: Any = None, media: str = "application/json") -> dict:
    medias = [media]
    if isinstance(schema, tuple):  # (media type or types, schema)
        medias, schema = schema
        medias = [medias] if isinstance(medias, str) else list(medias)
    entry: dict[str, Any] = {"schema": schema}
    if example is not None:
        entry["example"] = example
    return {m: entry for m in medias}


def _operation(template: str, method: str, declared: Operation) -> dict:
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": STRING if name == "result_key" else ID}
        for name in PARAMETER.findall(template)
    ]
    if template.endswith("{streaming_type}"):
        parameters[-1]["schema"] = {"type": "string", "enum": ["streaming", "simulating"]}
    if template.endswith("{dataset_type}"):
        parameters[-1]["schema"] = {"type": "string", "enum": ["original", "processed", "ongoing", "simulation"]}
    if template.endswith("{trigger_type}"):
        parameters[-1]["schema"] = {"type": "string", "enum": ["enable", "disable"]}
    parameters += [
        {"name": q.name, "in": "query", "required": q.required, "schema": q.schema, "description": q.description}
        for q in declared.query
    ]
    responses: dict[str, Any] = {}
    for status, schema in declared.responses.items():
        described = {200: "Success", 400: "Refused (the detail says why)", 404: "Not found", 413: "Too large"}
        entry: dict[str, Any] = {"description": described.get(status, "Answer")}
        if schema is not None:
            entry["content"] = _content(schema, declared.examples.get(status))
        responses[str(status)] = entry
    if declared.auth:
        responses.setdefault("401", {"description": "Not authenticated", "content": _content(ERROR)})
    if parameters or declared.body or declared.form or declared.multipart:
        responses.setdefault("422", {"description": "Invalid request", "content": _content(VALIDATION_ERROR)})
    document: dict[str, Any] = {
        "summary": declared.summary,
        "operationId": f"{method}_{re.sub(r'[^a-z0-9]+', '_', template.lower()).strip('_')}",
        "tags": list(declared.tags),
        "parameters": parameters,
        "responses": responses,
    }
    if declared.description:
        document["description"] = declared.description
    if not declared.auth:
        document["security"] = []
    for media, schema in (
        ("application/json", declared.body),
        ("application/x-www-form-urlencoded", declared.form),
        ("multipart/form-data", declared.multipart),
    ):
        if schema is not None:
            document["requestBody"] = {"required": True, "content": _content(schema, declared.body_example, media)}
    return document


def document(routes: list[tuple[str, type]], title: str, version: str) -> dict:
    """The OpenAPI 3.1 document of ``(template, handler class)`` routes (undeclared methods are left out)."""
    paths: dict[str, dict] = {}
    for template, handler in routes:
        for method in ("get", "post", "put", "delete"):
            declared = getattr(getattr(handler, method, None), "operation", None)
            if declared is None:
                continue
            paths.setdefault(template, {})[method] = _operation(template, method, declared)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "PrCore's REST API (every route of PrCore 1.0.1) served by PrCore Workbench. "
            "Send the API token as `Authorization: Bearer <token>`; `POST /token` exchanges the configured user "
            "name and password for it.",
        },
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }
