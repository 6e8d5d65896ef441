"""The sandbox's HTTP plumbing: one WSGI app on a loopback port serving every API under its own prefix, applying
faults, recording requests, and turning :class:`SandboxError` into each API's own error shape.

An API is an object with ``name`` (what faults and the request log call it), ``prefix`` (where it is served;
AMC shares the Ads host, as on Amazon), ``routes`` (``(path, method, operation)``, werkzeug syntax, relative to
the prefix) and a method per operation (``createReport`` -> ``create_report``) taking ``(request, **path_values)``
and returning a :class:`Reply`; ``error_body(status, code, message)`` shapes its errors.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from local.sandbox.errors import SandboxError
from local.sandbox.faults import Faults
from local.sandbox.records import RecordedRequest, RequestLog


@dataclass
class Reply:
    body: Any = None  # a dict, or a list with a JSON content type -> JSON; bytes or an iterable of bytes -> as is
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


class Api(Protocol):
    name: str
    prefix: str
    routes: list[tuple[str, str, str]]

    def error_body(self, status: int, code: str | None, message: str) -> Any: ...


class SandboxHttp:
    """Serves ``apis``, each under its prefix, on ``host:port``."""

    def __init__(self, apis: Iterable[Api], faults: Faults, log: RequestLog, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        self.apis = {api.name: api for api in apis}
        self.faults, self.log = faults, log
        self._map = Map([Rule(f"{api.prefix}{path}", endpoint=(api.name, operation), methods=[method])
                         for api in self.apis.values() for path, method, operation in api.routes])
        self._server = make_server(host, port, self._wsgi, threaded=True, request_handler=_QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="sandbox", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://{self._server.host}:{self._server.port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        request.get_data(cache=True)  # kept for the request log; form parsing reads the cached copy
        try:
            (api_name, operation), values = self._map.bind_to_environ(environ).match()
        except (NotFound, MethodNotAllowed) as exc:
            return _json_response(exc.code or 404, {"message": f"no route {request.method} {request.path}"})(
                environ, start_response)
        except HTTPException as exc:  # pragma: no cover - werkzeug's other routing answers
            return exc(environ, start_response)
        api = self.apis[api_name]
        response = self._answer(api, operation, request, values)
        self.log.append(RecordedRequest(time.time(), api_name, operation, request.method, request.path,
                                        dict(request.args), dict(request.headers), _body_of(request),
                                        response.status_code))
        return response(environ, start_response)

    def _answer(self, api: Api, operation: str, request: Request, values: dict[str, Any]) -> Response:
        try:
            fault = self.faults.take(api.name, operation)
            if fault and fault.delay_s:
                time.sleep(fault.delay_s)
            if fault and fault.status:
                headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
                raise SandboxError(fault.status, fault.message or _REASONS.get(fault.status, "Injected fault"),
                                   code=_CODES.get(fault.status), headers=headers)
            reply = getattr(api, _method_name(operation))(request, **values)
        except SandboxError as exc:
            body = exc.body if exc.body is not None else api.error_body(exc.status, exc.code, exc.message)
            return _json_response(exc.status, body, exc.headers)
        return _response(reply)


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any) -> None:  # the request log records every request
        pass


def _method_name(operation: str) -> str:
    """``createReport`` -> ``create_report``: the API object's method for an operation."""
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in operation)


def _response(reply: Reply) -> Response:
    if isinstance(reply.body, dict) or (isinstance(reply.body, list) and "json" in reply.content_type):
        return _json_response(reply.status, reply.body, reply.headers, reply.content_type)
    body = reply.body if reply.body is not None else b""
    return Response(body, status=reply.status, headers=reply.headers, content_type=reply.content_type,
                    direct_passthrough=not isinstance(body, bytes))


def _json_response(status: int, body: Any, headers: dict[str, str] | None = None,
                   content_type: str = "application/json") -> Response:
    return Response(json.dumps(body), status=status, headers=headers or {}, content_type=content_type)


def _body_of(request: Request) -> Any:
    if request.path.startswith("/files/"):
        return None
    data = request.get_data(cache=True)
    if not data:
        return None
    parsed = request.get_json(silent=True)
    return parsed if parsed is not None else dict(request.form) or data[:2048].decode(errors="replace")


_REASONS = {429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
            503: "Service Unavailable", 504: "Gateway Timeout"}
_CODES = {429: "QuotaExceeded", 500: "InternalFailure", 503: "ServiceUnavailable"}
