"""An ASGI middleware in front of Gradio's API routes: requests Gradio itself would answer with an
HTTP 500 or a message-less error get a plain 4xx answer instead.

Gradio 6.31 routes POST /gradio_api/{call,call/v2,run,api}/<name>. For a name that is not an
endpoint it raises inside the route (HTTP 500), for too few values in `data` it fails before our
code runs with an error event that carries no message, and the v2 route turns unknown keyword
arguments into a TypeError (HTTP 500). Here every such request is checked against the public API
(name, parameters, defaults) first:

    unknown name                    -> 404 naming the endpoints there are
    body not a JSON object / too big -> 400 / 413
    `data` shorter than the required -> 422 naming the parameters
    an object or list as a value     -> 422 (every parameter is text or a number)
    `data` missing trailing values   -> filled in with the documented defaults, then passed on
    v2 body with unknown keywords    -> 422

The page's own events go through /gradio_api/queue/join, or /gradio_api/run/predict for the
unqueued ones, and are not touched.
"""
from __future__ import annotations

import inspect
import json
import re
from dataclasses import dataclass
from typing import Any, Callable

MAX_API_BODY = 16 * 2**20      # a 1 MB paste JSON-escaped as \uXXXX is 6 MB; more is not a prompt
_ROUTE = re.compile(r"^/gradio_api/(call/v2|call|run|api)/([^/]+)/?$")


@dataclass(frozen=True)
class Endpoint:
    name: str
    params: tuple[str, ...]
    defaults: tuple[Any, ...]       # of the trailing parameters that have one

    @property
    def required(self) -> int:
        return len(self.params) - len(self.defaults)

    @classmethod
    def of(cls, name: str, fn: Callable) -> "Endpoint":
        ps = list(inspect.signature(fn).parameters.values())
        defaults = tuple(p.default for p in ps if p.default is not inspect.Parameter.empty)
        return cls(name, tuple(p.name for p in ps), defaults)

    def usage(self) -> str:
        shown = [p if i < self.required else f"{p}={json.dumps(self.defaults[i - self.required])}"
                 for i, p in enumerate(self.params)]
        return f"/{self.name}({', '.join(shown)})"


class ApiGuard:
    def __init__(self, app, endpoints: dict[str, Callable]):
        self.app = app
        self.endpoints = {name: Endpoint.of(name, fn) for name, fn in endpoints.items()}

    async def __call__(self, scope, receive, send):
        m = _ROUTE.match(scope.get("path", "")) if scope["type"] == "http" and scope.get("method") == "POST" else None
        if m is None:
            return await self.app(scope, receive, send)
        route, name = m.groups()
        if route in ("run", "api") and name == "predict":
            return await self.app(scope, receive, send)    # the page's own unqueued events (by fn_index)
        endpoint = self.endpoints.get(name)
        if endpoint is None:
            known = ", ".join(e.usage() for e in self.endpoints.values())
            return await _answer(send, 404, f"There is no API endpoint named {name!r}. The API has: {known}.")
        body, too_big = await _read_body(receive)
        if too_big:
            return await _answer(send, 413, f"The request body is over {MAX_API_BODY // 2**20} MB.")
        try:
            payload = json.loads(body) if body.strip() else None
        except (ValueError, UnicodeDecodeError, RecursionError):
            return await self.app(scope, _replay(body, receive), send)   # Gradio answers malformed JSON with 422
        problem, payload = check_payload(endpoint, route, payload)
        if problem:
            return await _answer(send, 422, problem)
        if payload is not None:
            body = json.dumps(payload).encode()
            scope = {**scope, "headers": _with_length(scope["headers"], len(body))}
        return await self.app(scope, _replay(body, receive), send)


def check_payload(endpoint: Endpoint, route: str, payload) -> tuple[str | None, Any]:
    """-> (a message for a request that cannot run, or None; a corrected payload, or None to pass as is)."""
    if route == "call/v2":
        if not isinstance(payload, dict):
            return f"/{endpoint.name} takes a JSON object of named arguments: {endpoint.usage()}", None
        unknown = sorted(set(payload) - set(endpoint.params) - {"oauth_token"})
        if unknown:
            return f"Unknown argument(s) {', '.join(map(repr, unknown))}; usage: {endpoint.usage()}", None
        missing = [p for p in endpoint.params[:endpoint.required] if p not in payload]
        if missing:
            return f"Missing argument(s) {', '.join(map(repr, missing))}; usage: {endpoint.usage()}", None
        return _nested(endpoint, list(payload.items())), None
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        return None, None        # Gradio's own validation answers these with a 422
    data = payload["data"]
    nested = _nested(endpoint, list(zip(endpoint.params, data)))
    if nested:
        return nested, None
    if len(data) < endpoint.required:
        return (f"/{endpoint.name} needs at least {endpoint.required} value(s) in \"data\", got {len(data)}; "
                f"usage: {endpoint.usage()}"), None
    if len(data) < len(endpoint.params):
        return None, {**payload, "data": data + list(endpoint.defaults[len(data) - endpoint.required:])}
    return None, None


def _nested(endpoint: Endpoint, named_values: list) -> str | None:
    """Every parameter is text or a number. An object or list would reach Gradio's file handling
    (a {"path": ...} object is taken for a file to copy), which refuses it without a message."""
    for name, value in named_values:
        if isinstance(value, (dict, list)):
            return f"{name!r} must be text or a number, not a JSON {type(value).__name__}; usage: {endpoint.usage()}"
    return None


async def _read_body(receive) -> tuple[bytes, bool]:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False       # the client went away; Gradio sees an empty body
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_API_BODY:
            return b"", True
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), False


def _replay(body: bytes, receive):
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()
    return replay


def _with_length(headers, n: int) -> list:
    return [(k, v) for k, v in headers if k.lower() != b"content-length"] + [(b"content-length", str(n).encode())]


async def _answer(send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
