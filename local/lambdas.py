"""Running the apps' functions as Lambda would: a registry of deployed function names, an invoker that gives each
call a context with the function's timeout, and the Lambda Invoke API on loopback for Step Functions tasks.

moto's Step Functions interpreter calls Lambda through boto3; with Lambda in moto's passthrough list and
``AWS_ENDPOINT_URL_LAMBDA`` pointing here, those calls reach our handlers. An error is answered the way Lambda
answers it (200, ``X-Amz-Function-Error: Unhandled``, ``{"errorType", "errorMessage"}``), so Retry and Catch match
on the exception's class name.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import unquote

from chalice.local import LambdaContext

from local.apps import Function
from local.crashes import Crash, FunctionCrashed, running
from local.environ import function_environment
from shared.logs import bind

log = logging.getLogger(__name__)


class FunctionNotFound(KeyError):
    """No function of that name is deployed in the local cloud."""


class Lambdas:
    """The deployed functions by name, and the one way they are invoked."""

    def __init__(self) -> None:
        self.functions: dict[str, Function] = {}
        self.invocations: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self._lock = threading.Lock()

    def deploy(self, function: Function) -> None:
        self.functions[function.name] = function

    def invoke(self, name: str, event: Any) -> Any:
        """Call function ``name`` with ``event``; exceptions propagate, as an unhandled error would in Lambda."""
        function = self._find(name)
        context = LambdaContext(function.name, function.memory_mb, max_runtime_ms=function.timeout_s * 1000)
        context.aws_request_id = str(uuid.uuid4())
        started = time.perf_counter()
        with self._lock:
            self.invocations[function.name] += 1
        try:
            with bind(function=function.name), function_environment(function.environment), running(function.name):
                return function.handler(event, context)
        except Crash as crash:
            with self._lock:
                self.errors[function.name] += 1
            raise FunctionCrashed(str(crash)) from None
        except Exception:
            with self._lock:
                self.errors[function.name] += 1
            raise
        finally:
            log.debug("invoked", extra={"function": function.name, "ms": round((time.perf_counter() - started) * 1000)})

    def _find(self, name: str) -> Function:
        name = name.rsplit(":function:", 1)[-1].split(":")[0]  # an ARN, possibly qualified, or a bare name
        if name not in self.functions:
            raise FunctionNotFound(name)
        return self.functions[name]


class _WarmServer(HTTPServer):
    """Requests are handled by a pool of reused threads, as Lambda reuses warm containers: what a function caches
    per thread (boto3 resources) is built once per worker, not once per call."""

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], workers: int) -> None:
        super().__init__(address, handler)
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="lambda")

    def process_request(self, request: Any, client_address: Any) -> None:
        self._pool.submit(self._handle, request, client_address)

    def _handle(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:  # as socketserver does: report it and carry on serving
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)

    def server_close(self) -> None:
        super().server_close()
        self._pool.shutdown(wait=False, cancel_futures=True)


class InvokeEndpoint:
    """Lambda's ``Invoke`` API (``POST /2015-03-31/functions/{name}/invocations``) on a loopback port."""

    WORKERS = 64  # concurrent invocations (Step Functions tasks waiting on slow APIs hold one each)

    def __init__(self, lambdas: Lambdas, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = _WarmServer((host, port), _handler_class(lambdas), self.WORKERS)
        self._thread = threading.Thread(target=self._server.serve_forever, name="lambda-invoke", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler_class(lambdas: Lambdas) -> type[BaseHTTPRequestHandler]:
    class InvokeHandler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            parts = self.path.split("?")[0].strip("/").split("/")
            if len(parts) != 4 or parts[1] != "functions" or parts[3] != "invocations":
                error = {"message": f"unknown path {self.path}"}
                return self._reply(404, error, {"x-amzn-ErrorType": "UnknownOperation"})
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)) or 0)
            try:
                result = lambdas.invoke(unquote(parts[2]), json.loads(body or b"{}"))
            except FunctionNotFound as exc:
                return self._reply(404, {"Type": "User", "Message": f"Function not found: {exc.args[0]}"},
                                   {"x-amzn-ErrorType": "ResourceNotFoundException"})
            except Exception as exc:
                error = {"errorType": type(exc).__name__, "errorMessage": str(exc),
                         "stackTrace": traceback.format_tb(exc.__traceback__)}
                return self._reply(200, error, {"X-Amz-Function-Error": "Unhandled"})
            return self._reply(200, result)

        def _reply(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload, default=str).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-Amz-Executed-Version", "$LATEST")
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # requests are logged by Lambdas.invoke
            pass

    return InvokeHandler
