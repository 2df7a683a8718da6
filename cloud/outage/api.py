"""A small HTTP JSON API (stdlib): distribution automation, operators' forms, planned outages,
registrations, unsubscribe links, and the read side (Tables 3-5).

POST /da                {"area": "広島県/広島市中区/基町1丁目", "kind": "outage"|"restored", "at": ISO}
POST /outages/{id}      {"response_status", "reason", "expected_restoration": ISO|null}
POST /planned           {"area", "start": ISO, "end": ISO, "reason"}
POST /registrations     [{"meter_id", "customer_number", "area", "concentrator_id", "email", "name", "language"}]
POST /security_errors   {"meter_id", "detail", "at": ISO, "reference"}
GET  /outages           open outages          GET /areas   Table 3
GET  /meters/{id}       Table 4/5 for a meter GET /unsubscribe?meter_id=..&token=..
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

from appliance.clock import iso, parse_iso

from .da_feed import parse_da
from .mail import Sender
from .manager import OutageManager
from .model import Area, Language, Registration

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
    return Registration(
        meter_id=obj["meter_id"], customer_number=obj["customer_number"], area=Area.from_key(obj["area"]),
        concentrator_id=obj["concentrator_id"], email=obj.get("email") or None, name=obj.get("name", ""),
        language=Language(obj.get("language", "ja")), unsubscribed=bool(obj.get("unsubscribed", False)),
    )


class OutageApi:
    def __init__(self, manager: OutageManager, sender: Sender, host: str = "127.0.0.1", port: int = 8080) -> None:
        self.manager = manager
        self.sender = sender
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, fmt, *args):  # route the access log through logging
                log.debug(fmt, *args)

            def _reply(self, status: int, body: Any) -> None:
                data = json.dumps(to_json(body), ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> Any:
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length) or b"null")

            def _dispatch(self, method: str) -> None:
                url = urlparse(self.path)
                parts = [p for p in url.path.split("/") if p]
                try:
                    status, body = api.route(method, parts, parse_qs(url.query), self._body if method == "POST" else None)
                except (KeyError, ValueError, TypeError) as exc:
                    status, body = HTTPStatus.BAD_REQUEST, {"error": str(exc)}
                except LookupError as exc:
                    status, body = HTTPStatus.NOT_FOUND, {"error": str(exc)}
                self._reply(status, body)

            def do_GET(self):
                self._dispatch("GET")

            def do_POST(self):
                self._dispatch("POST")

        self.server = ThreadingHTTPServer((host, port), Handler)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def route(self, method: str, parts: list[str], query: dict[str, list[str]], body) -> tuple[int, Any]:
        m, s = self.manager, self.manager.storage
        if method == "GET" and parts == ["outages"]:
            return 200, s.outages(open_only=True)
        if method == "GET" and parts == ["areas"]:
            return 200, m.area_counts()
        if method == "GET" and len(parts) == 2 and parts[0] == "meters":
            info = m.meter_info(parts[1])
            return (200, info) if info else (404, {"error": f"no outage for meter {parts[1]}"})
        if method == "GET" and parts == ["unsubscribe"]:
            meter = (query.get("meter_id") or [""])[0]
            token = (query.get("token") or [""])[0]
            if not meter or token != self.sender.unsubscribe_token(meter):
                return 403, {"error": "invalid unsubscribe link"}
            s.set_unsubscribed(meter)
            return 200, {"unsubscribed": meter, "message": "配信を停止しました / You are unsubscribed"}
        if method == "POST" and parts == ["da"]:
            return 200, m.report_da(parse_da(body()))
        if method == "POST" and len(parts) == 2 and parts[0] == "outages":
            obj = body()
            expected = obj.get("expected_restoration")
            o = m.operator_update(
                int(parts[1]), response_status=obj.get("response_status"), reason=obj.get("reason"),
                expected_restoration=parse_iso(expected) if expected else None,
                clear_expected="expected_restoration" in obj and expected is None,
            )
            return 200, o
        if method == "POST" and parts == ["planned"]:
            obj = body()
            return 200, m.plan_outage(Area.from_key(obj["area"]), parse_iso(obj["start"]), parse_iso(obj["end"]),
                                      obj.get("reason", "construction"))
        if method == "POST" and parts == ["registrations"]:
            return 200, {"registered": s.upsert_registrations([registration_from_json(o) for o in body()])}
        if method == "POST" and parts == ["security_errors"]:
            obj = body()
            queued = m.report_security_error(obj["meter_id"], obj.get("detail", ""), parse_iso(obj["at"]), obj.get("reference", ""))
            return 200, {"queued": queued}
        raise LookupError(f"no route {method} /{'/'.join(parts)}")

    def start(self) -> "OutageApi":
        self._thread = threading.Thread(target=self.server.serve_forever, name="outage-api", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
