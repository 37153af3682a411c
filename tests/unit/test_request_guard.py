"""The bounds around the scoring app, called in this process as an ASGI server would."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from lead_conversion_prediction.scoring.request_guard import (
    MESSAGE_CHARS,
    Message,
    Receive,
    RequestGuard,
    Scope,
    Send,
    json_depth,
)

LIMIT, DEPTH = 1000, 5


class Echo:
    """A stand-in app: answers ``status`` with ``body``, and keeps the body it was sent."""

    def __init__(self, status: int = 200, body: bytes = b'{"predictions": [0.5]}') -> None:
        self.status, self.body = status, body
        self.received: bytes | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = b""
        while True:
            message = await receive()
            received += message.get("body", b"")
            if not message.get("more_body", False):
                break
        self.received = received
        headers = [(b"content-type", b"application/json"), (b"content-length", b"1")]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


def call(
    app: Echo, chunks: list[bytes], headers: dict[str, str], method: str = "POST"
) -> tuple[int, dict[str, str], bytes]:
    """Send ``chunks`` as one request through the guard; its status, headers and body."""
    scope = {
        "type": "http",
        "method": method,
        "path": "/invocations",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    events = [
        {"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1}
        for index, chunk in enumerate(chunks)
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return events.pop(0) if events else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(RequestGuard(app, LIMIT, DEPTH)(scope, receive, send))
    start = sent[0]
    answer = {k.decode(): v.decode() for k, v in start.get("headers", [])}
    return start["status"], answer, b"".join(m.get("body", b"") for m in sent[1:])


JSON = {"Content-Type": "application/json"}


def test_a_good_request_reaches_the_app_whole_and_its_answer_is_untouched() -> None:
    app = Echo()
    body = json.dumps({"dataframe_records": [{"purchases": 1}]}).encode()
    status, _, answer = call(app, [body[:10], body[10:]], JSON)
    assert (status, answer, app.received) == (200, app.body, body)


def test_no_content_type_is_a_415_and_the_app_is_not_called() -> None:
    app = Echo()
    status, _, answer = call(app, [b"{}"], {})
    assert status == 415 and "Content-Type" in json.loads(answer)["message"]
    assert app.received is None


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "streamed"])
def test_a_body_over_the_limit_is_a_413_and_the_app_is_not_called(declared: bool) -> None:
    app = Echo()
    chunks = [b" " * 600, b" " * 600]
    headers = {**JSON, "Content-Length": "1200"} if declared else JSON
    status, _, answer = call(app, chunks, headers)
    assert status == 413 and f"{LIMIT:,} bytes" in json.loads(answer)["message"]
    assert app.received is None


def test_json_deeper_than_the_bound_is_a_400_and_brackets_in_strings_do_not_count() -> None:
    app = Echo()
    deep = b"[" * (DEPTH + 1) + b"]" * (DEPTH + 1)
    status, _, answer = call(app, [deep], JSON)
    assert status == 400 and "nests deeper than 5" in json.loads(answer)["message"]
    assert app.received is None
    quoted = b'[{"a": "[[[[[[[[[[\\"[[[["}]'
    assert json_depth(quoted) == 2
    assert call(app, [quoted], JSON)[0] == 200


@pytest.mark.parametrize(
    ("body", "depth"), [(b"", 0), (b"1", 0), (b"{}", 1), (b'{"a": [[], {"b": [1]}]}', 4)]
)
def test_json_depth(body: bytes, depth: int) -> None:
    assert json_depth(body) == depth


def test_an_error_answer_keeps_its_first_line_without_trace_path_or_echo() -> None:
    echo = "x" * 5000
    error: dict[str, Any] = {
        "error_code": "BAD_REQUEST",
        "message": f"Failed to read /srv/app/lead_conversion_prediction/io.py: {echo}\nmore",
        "stack_trace": 'Traceback (most recent call last):\n  File "/srv/app/x.py"',
    }
    status, headers, answer = call(Echo(400, json.dumps(error).encode()), [b"{}"], JSON)
    sent = json.loads(answer)
    assert status == 400 and set(sent) == {"error_code", "message"}
    assert sent["message"].startswith("Failed to read <path>: xxx")
    assert sent["message"].endswith("... (cut)") and len(sent["message"]) < MESSAGE_CHARS + 20
    assert headers["content-length"] == str(len(answer))


def test_mlflows_repeat_of_the_request_is_dropped_and_its_reason_kept() -> None:
    reason = "column 'purchases': value 'many' is not a number (record 0, counting from 0)"
    message = f"Failed to predict data '   purchases  n_visits\n0  many  3'. \nError: {reason}"
    body = json.dumps({"error_code": "BAD_REQUEST", "message": message}).encode()
    status, _, answer = call(Echo(400, body), [b"{}"], JSON)
    assert (status, json.loads(answer)["message"]) == (400, reason)


def test_a_server_error_says_only_that_it_failed() -> None:
    body = json.dumps({"error_code": "INTERNAL_ERROR", "message": "KeyError: '/etc/x'"}).encode()
    status, _, answer = call(Echo(500, body), [b"{}"], JSON)
    assert status == 500
    assert json.loads(answer) == {
        "error_code": "INTERNAL_ERROR",
        "message": "the server failed to score the request; its log says why",
    }


def test_a_get_passes_but_its_error_answers_are_made_safe_too() -> None:
    assert call(Echo(), [b""], {}, method="GET")[0] == 200
    status, _, answer = call(Echo(404, b"not found at /srv/app/x"), [b""], {}, method="GET")
    assert status == 404
    assert json.loads(answer) == {"error_code": "NOT_FOUND", "message": "not found at <path>"}
