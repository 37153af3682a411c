"""Bounds on what ``lcp serve`` takes and what it answers, around MLflow's scoring app.

MLflow's scoring server reads any body whole, answers a request without a Content-Type with a
500, a deeply nested JSON body with a ``RecursionError``, and an error with the message, the
stack trace and file paths of the server, the request's own bytes included. This ASGI
middleware stands in front of it:

- a ``POST`` without a Content-Type: 415;
- a body over ``max_bytes`` (by its Content-Length, or as it arrives): 413, the rest unread;
- a JSON body nested deeper than ``max_depth``: 400;
- every error answer: ``{"error_code", "message"}`` only, the message cut to the first line
  of its reason (MLflow's repeat of the request dropped) and ``MESSAGE_CHARS`` characters,
  file paths replaced by ``<path>``; a 5xx says only that the server failed (its cause is in
  the server's log).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

MESSAGE_CHARS = 300
# MLflow's messages repeat the request, then give the reason: "Failed to predict data
# '<the request>'. \nError: <reason>", "Failed to enforce schema of data '<...>' ... Error: <...>".
_MLFLOW_REASON = "Error: "
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_PATH = re.compile(r"(?:[A-Za-z]:)?(?:/[\w.@+-]+){2,}/?")


def json_depth(body: bytes) -> int:
    """How deep the arrays and objects of a JSON text nest (strings skipped), in one pass."""
    import numpy as np

    brackets = np.frombuffer(_STRING.sub(b'""', body), dtype=np.uint8)
    steps = np.zeros(len(brackets), dtype=np.int64)
    steps[(brackets == ord("[")) | (brackets == ord("{"))] = 1
    steps[(brackets == ord("]")) | (brackets == ord("}"))] = -1
    return int(np.cumsum(steps).max(initial=0))


def safe_error(status: int, body: bytes) -> bytes:
    """The answer to send instead of an error body: no echo, no stack trace, no path."""
    from http import HTTPStatus

    known = status in HTTPStatus._value2member_map_
    code = "INTERNAL_ERROR" if status >= 500 else HTTPStatus(status).name if known else "ERROR"
    message = "the server failed to score the request; its log says why"
    if status < 500:
        try:
            sent = json.loads(body)
        except ValueError:
            sent = {"message": body.decode("utf-8", errors="replace")}
        if isinstance(sent, dict):
            code = str(sent.get("error_code", code))[:64]
            text = str(sent.get("message", ""))
            # MLflow puts the request's own data first, then its reason: keep the reason.
            text = text.rsplit(_MLFLOW_REASON, 1)[-1].strip()
            first = text.splitlines()[0] if text else "the request was refused"
            message = _PATH.sub("<path>", first)
            if len(message) > MESSAGE_CHARS:
                message = message[:MESSAGE_CHARS] + "... (cut)"
    return json.dumps({"error_code": code, "message": message}).encode()


async def answer(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error_code": code, "message": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class RequestGuard:
    """The scoring app behind the bounds of this module."""

    def __init__(self, app: App, max_bytes: int, max_depth: int) -> None:
        self.app, self.max_bytes, self.max_depth = app, max_bytes, max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = self._errors_made_safe(send)
        if scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = {name.lower(): value for name, value in scope["headers"]}
        content_type = headers.get(b"content-type", b"").strip()
        if not content_type:
            await answer(
                send, 415, "UNSUPPORTED_MEDIA_TYPE",
                "the request has no Content-Type: send application/json or text/csv",
            )  # fmt: skip
            return
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                await self._too_large(send)
                return
            if not message.get("more_body", False):
                break
        if (
            content_type.startswith(b"application/json")
            and json_depth(bytes(body)) > self.max_depth
        ):
            await answer(
                send, 400, "BAD_REQUEST",
                f"the JSON body nests deeper than {self.max_depth} levels",
            )  # fmt: skip
            return
        await self.app(scope, _replay(bytes(body), receive), send)

    async def _too_large(self, send: Send) -> None:
        await answer(
            send, 413, "REQUEST_TOO_LARGE",
            f"the body is over {self.max_bytes:,} bytes: send the leads in smaller batches, "
            "or score a file with lcp predict",
        )  # fmt: skip

    @staticmethod
    def _errors_made_safe(send: Send) -> Send:
        """``send``, with an error answer's body replaced by :func:`safe_error`'s."""
        start: Message | None = None
        chunks = bytearray()

        async def guarded(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start" and message["status"] >= 400:
                start = message
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.extend(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = safe_error(int(start["status"]), bytes(chunks))
            headers = [
                (name, value)
                for name, value in start.get("headers", [])
                if name.lower() not in (b"content-length", b"content-type")
            ]
            headers += [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(body)),
            ]
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        return guarded


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app the body already read, then the client's own events."""
    given = False

    async def replayed() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
