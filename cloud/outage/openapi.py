"""The manager API's OpenAPI 3.1 description, served at ``GET /openapi.json``.

The request bodies' schemas are generated from the very structs the API decodes with
(:mod:`.api_schema`), so the description cannot drift from what is accepted. Answers are described
as the API writes them: an object or a list on success, ``{"error", "field"?}`` on a refusal.
"""
from __future__ import annotations

from typing import Any

import msgspec

from . import api_schema as schema

BODIES = {"DaBody": schema.DaBody, "OperatorBody": schema.OperatorBody, "PlannedBody": schema.PlannedBody,
          "Registrations": schema.Registrations, "SecurityErrorBody": schema.SecurityErrorBody}

ERROR = {"type": "object", "required": ["error"],
         "properties": {"error": {"type": "string"}, "field": {"type": ["string", "null"]}}}
OBJECT = {"type": "object"}
LIST = {"type": "array", "items": {"type": "object"}}
METER_ID = {"name": "id", "in": "path", "required": True,
            "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}}
OUTAGE_ID = {"name": "id", "in": "path", "required": True,
             "schema": {"type": "integer", "minimum": 1, "maximum": schema.MAX_OUTAGE_ID}}


def _answers(ok: dict, *codes: int) -> dict[str, Any]:
    out: dict[str, Any] = {"200": {"description": "done", "content": {"application/json": {"schema": ok}}}}
    words = {400: "malformed input, naming the field", 401: "no or wrong operator credentials",
             403: "a viewer may not write; or an invalid unsubscribe link", 404: "no such thing",
             413: "body over 4 MiB", 429: "too many failed logins from this address"}
    for code in codes:
        out[str(code)] = {"description": words[code], "content": {"application/json": {"schema": ERROR}}}
    return out


def _write(summary: str, body: str, *, params: list | None = None, ok: dict = OBJECT) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary, "security": [{"operator": []}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}}},
        "responses": _answers(ok, 400, 401, 403, 413, 429),
    }
    if params:
        op["parameters"] = params
    return {"post": op}


def _read(summary: str, ok: dict, *, params: list | None = None, codes: tuple[int, ...] = (401, 429)) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "security": [{"operator": []}], "responses": _answers(ok, *codes)}
    if params:
        op["parameters"] = params
    return {"get": op}


def document() -> dict[str, Any]:
    (_, components) = msgspec.json.schema_components(list(BODIES.values()), ref_template="#/components/schemas/{name}")
    named = dict(components)
    named["Registrations"] = {"type": "array", "maxItems": schema.MAX_REGISTRATIONS,
                              "items": {"$ref": "#/components/schemas/RegistrationBody"}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Outage manager API", "version": "1",
                 "description": "Distribution automation, operators' input, planned outages, registrations and the "
                                "read side (Tables 3-5). HTTP Basic with an operator's account; viewers may only read."},
        "paths": {
            "/da": _write("A distribution automation event (outage or restored) in an area; the outage it "
                          "declared or restored, or null when a restoration finds none open", "DaBody",
                          ok={"type": ["object", "null"]}),
            "/outages/{id}": _write("The operator's input for one outage", "OperatorBody", params=[OUTAGE_ID]),
            "/planned": _write("Announce a planned (construction) outage", "PlannedBody"),
            "/registrations": _write("Add or replace customers' registrations (Table 1)", "Registrations"),
            "/security_errors": _write("A meter's security error, to e-mail its customer", "SecurityErrorBody"),
            "/outages": _read("The open outages", LIST),
            "/areas": _read("Homes without power per area (Table 3)", LIST),
            "/meters/{id}": _read("A meter's newest outage (Tables 4 and 5)", OBJECT, params=[METER_ID],
                                  codes=(400, 401, 404, 429)),
            "/unsubscribe": {"get": {
                "summary": "The customer's signed unsubscribe link (no account needed)",
                "parameters": [{"name": n, "in": "query", "required": True, "schema": {"type": "string"}}
                               for n in ("meter_id", "expires", "token")],
                "responses": _answers(OBJECT, 403)}},
            "/openapi.json": {"get": {"summary": "This description", "responses": _answers(OBJECT)}},
        },
        "components": {"schemas": named,
                       "securitySchemes": {"operator": {"type": "http", "scheme": "basic"}}},
    }
