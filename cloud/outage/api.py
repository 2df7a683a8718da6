"""A small HTTP JSON API (stdlib): distribution automation, operators' forms, planned outages,
registrations, unsubscribe links, and the read side (Tables 3-5).

POST /da                {"area": "広島県/広島市中区/基町1丁目", "kind": "outage"|"restored", "at": ISO}
POST /outages/{id}      {"response_status", "reason", "expected_restoration": ISO|null}
POST /planned           {"area", "start": ISO, "end": ISO, "reason"}
POST /registrations     [{"meter_id", "customer_number", "area", "concentrator_id", "email", "name", "language"}]
POST /security_errors   {"meter_id", "detail", "at": ISO, "reference"}
GET  /outages           open outages          GET /areas   Table 3
GET  /meters/{id}       Table 4/5 for a meter GET /unsubscribe?meter_id=..&expires=..&token=..

Every request but the customer's signed unsubscribe link needs an operator's credentials (HTTP
Basic, :mod:`.api_auth`): 401 without them, 403 for a ``viewer`` that tries to write, 429 for a
client that keeps failing. The server listens on 127.0.0.1 unless told otherwise.

Every body is validated against its declared struct (:mod:`.api_schema`) before anything is done:
a body over the size limit is answered 413 unread, a malformed one 400 with ``{"error", "field"}``.
Client input never yields a 500, and no request can end a handler thread: a fault of the server's
own (its database) is logged and answered 500.
"""
from __future__ import annotations

import json
import logging
import threading
from datetime import datetime
from enum import Enum
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import msgspec

from appliance.clock import iso

from . import api_schema as schema
from . import openapi
from ..accounts import Accounts
from .api_auth import REALM, Gate
from .api_schema import BodyError, decode_body
from .mail import Sender
from .manager import OutageManager
from .model import Area, DaEvent, Language, Registration

log = logging.getLogger(__name__)


def to_json(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, Area):
        return {"prefecture": value.prefecture, "city": value.city, "district": value.district, "key": value.key}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return {k: to_json(getattr(value, k)) for k in value.__dataclass_fields__}
    return value


def registration_from_json(obj: dict) -> Registration:
    """A registration from a file (``registrations import``); the API validates with :func:`registration_from_body`."""
    return Registration(
        meter_id=obj["meter_id"], customer_number=obj["customer_number"], area=Area.from_key(obj["area"]),
        concentrator_id=obj["concentrator_id"], email=obj.get("email") or None, name=obj.get("name", ""),
        language=Language(obj.get("language", "ja")), unsubscribed=bool(obj.get("unsubscribed", False)),
        substation=obj.get("substation") or "", feeder=obj.get("feeder") or "", section=obj.get("section") or "",
    )


def registration_from_body(body: schema.RegistrationBody) -> Registration:
    return Registration(
        meter_id=body.meter_id, customer_number=body.customer_number, area=Area.from_key(body.area),
        concentrator_id=body.concentrator_id, email=body.email or None, name=body.name,
        language=Language(body.language), unsubscribed=body.unsubscribed,
        substation=body.substation, feeder=body.feeder, section=body.section,
    )


class TooLarge(Exception):
    """A body over :data:`api_schema.MAX_BODY_BYTES` (answered 413 without reading it)."""


class OutageApi:
    def __init__(self, manager: OutageManager, sender: Sender, accounts: Accounts, host: str = "127.0.0.1",
                 port: int = 8080) -> None:
        self.manager = manager
        self.sender = sender
        self.gate = Gate(accounts)
        api = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 30  # s: a client that stops sending mid-request frees its thread

            def log_message(self, fmt, *args):  # route the access log through logging
                log.debug(fmt, *args)

            def _reply(self, status: int, body: Any) -> None:
                data = json.dumps(to_json(body), ensure_ascii=False).encode()
                self.send_response(status)
                if status == HTTPStatus.UNAUTHORIZED:
                    self.send_header("WWW-Authenticate", REALM)
                if status == HTTPStatus.METHOD_NOT_ALLOWED:
                    self.send_header("Allow", "GET, POST")
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> bytes:
                length = self.headers.get("Content-Length") or "0"
                if not (length.isascii() and length.isdigit()):
                    raise BodyError(f"Content-Length {length[:20]!r} is not a byte count", "Content-Length")
                if int(length) > schema.MAX_BODY_BYTES:
                    self.close_connection = True  # the unread body must not be taken for the next request
                    raise TooLarge(f"body of {int(length)} bytes is over the limit of {schema.MAX_BODY_BYTES}")
                return self.rfile.read(int(length))

            def _dispatch(self, method: str) -> None:
                url = urlparse(self.path)
                parts = [p for p in url.path.split("/") if p]
                refusal = api.refusal(method, parts, self.headers.get("Authorization"), self.client_address[0])
                if refusal is not None:
                    if method == "POST":
                        self.close_connection = True  # its body stays unread
                    self._reply(*refusal)
                    return
                try:
                    status, body = api.route(method, parts, parse_qs(url.query), self._body if method == "POST" else None)
                except BodyError as exc:
                    status, body = HTTPStatus.BAD_REQUEST, {"error": str(exc), "field": exc.field}
                except TooLarge as exc:
                    status, body = HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": str(exc)}
                except (KeyError, ValueError) as exc:  # the manager refuses it (no such outage, end before start)
                    status, body = HTTPStatus.BAD_REQUEST, {"error": str(exc.args[0] if exc.args else exc)}
                except LookupError as exc:
                    status, body = HTTPStatus.NOT_FOUND, {"error": str(exc)}
                except Exception:  # the server's own fault; the thread lives on for the next request
                    log.exception("%s %s failed", method, url.path[:200])
                    status, body = HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "internal error"}
                self._reply(status, body)

            def do_GET(self):
                self._dispatch("GET")

            def do_POST(self):
                self._dispatch("POST")

            def _not_allowed(self):
                self.close_connection = True  # any body stays unread
                self._reply(HTTPStatus.METHOD_NOT_ALLOWED, {"error": f"method {self.command} is not used here"})

            def __getattr__(self, name):  # any other method (PUT, TRACE, QUERY, ...): 405 in JSON, not 501 in HTML
                if name.startswith("do_"):
                    return self._not_allowed
                raise AttributeError(name)

        self.server = ThreadingHTTPServer((host, port), Handler)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def refusal(self, method: str, parts: list[str], authorization: str | None, client: str) -> tuple[int, dict] | None:
        """Why this request may not go on, as (status, body); None when it may."""
        if method == "GET" and parts in (["unsubscribe"], ["openapi.json"]):
            return None  # the customer's own link (its signature is the credential), and the API's description
        verdict = self.gate.check(authorization, client)
        if verdict.limited:
            return HTTPStatus.TOO_MANY_REQUESTS, {"error": "too many failed logins from this address; wait a minute"}
        if verdict.account is None:
            return HTTPStatus.UNAUTHORIZED, {"error": "an operator's user name and password are needed"}
        if method != "GET" and verdict.account.role != "operator":
            return HTTPStatus.FORBIDDEN, {"error": f"{verdict.account.name} may read but not change anything"}
        return None

    def route(self, method: str, parts: list[str], query: dict[str, list[str]], body) -> tuple[int, Any]:
        m, s = self.manager, self.manager.storage
        if method == "GET" and parts == ["openapi.json"]:
            return 200, openapi.document()
        if method == "GET" and parts == ["outages"]:
            return 200, s.outages(open_only=True)
        if method == "GET" and parts == ["areas"]:
            return 200, m.area_counts()
        if method == "GET" and len(parts) == 2 and parts[0] == "meters":
            meter = schema.meter_id(parts[1])
            info = m.meter_info(meter)
            return (200, info) if info else (404, {"error": f"no outage for meter {meter}"})
        if method == "GET" and parts == ["unsubscribe"]:
            meter, expires, token = ((query.get(k) or [""])[0] for k in ("meter_id", "expires", "token"))
            if not meter or not self.sender.unsubscribe_links.verify(meter, expires, token, m.clock.now()):
                return 403, {"error": "この配信停止リンクは無効か期限切れです / This unsubscribe link is invalid or has expired"}
            s.set_unsubscribed(meter)
            return 200, {"unsubscribed": meter, "message": "配信を停止しました / You are unsubscribed"}
        if method == "POST" and parts == ["da"]:
            da = decode_body(body(), schema.DaBody)
            return 200, m.report_da(DaEvent(Area.from_key(da.area), da.kind, da.at, da.reference))
        if method == "POST" and len(parts) == 2 and parts[0] == "outages":
            outage_id = schema.outage_id(parts[1])
            form = decode_body(body(), schema.OperatorBody)
            expected = None if form.expected_restoration is msgspec.UNSET else form.expected_restoration
            o = m.operator_update(
                outage_id, response_status=form.response_status, reason=form.reason,
                expected_restoration=expected,
                clear_expected=form.expected_restoration is None,
            )
            return 200, o
        if method == "POST" and parts == ["planned"]:
            plan = decode_body(body(), schema.PlannedBody)
            return 200, m.plan_outage(Area.from_key(plan.area), plan.start, plan.end, plan.reason)
        if method == "POST" and parts == ["registrations"]:
            regs = decode_body(body(), schema.Registrations)
            return 200, {"registered": s.upsert_registrations([registration_from_body(r) for r in regs])}
        if method == "POST" and parts == ["security_errors"]:
            err = decode_body(body(), schema.SecurityErrorBody)
            return 200, {"queued": m.report_security_error(err.meter_id, err.detail, err.at, err.reference)}
        raise LookupError(f"no route {method} /{'/'.join(parts)}")

    def start(self) -> "OutageApi":
        self._thread = threading.Thread(target=self.server.serve_forever, name="outage-api", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
