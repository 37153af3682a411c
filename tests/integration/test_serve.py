"""REST scoring: the champion served by `lcp serve` answers raw lead records like the batch CLI."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.support import free_port, start_serve, stop_group, wait_until
from tests.trained import PipelineRun

COLUMNS = ["purchases", "time_spent", "n_visits", "customer_group", "onboarding"]
START_SECONDS = 240  # an idle machine needs a few seconds; a busy one many times more


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=10):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def server(pipeline_run: PipelineRun, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    # The server's output goes to a file: a pipe nobody reads would block it once full.
    log = tmp_path_factory.mktemp("serve") / "server.log"
    env = {
        **os.environ,
        "LCP_ROOT": str(pipeline_run.root),
        "MLFLOW_TRACKING_URI": pipeline_run.tracking_uri,
    }
    process = start_serve(port, env, log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(f"{url}/ping"), START_SECONDS, "lcp serve", process, log)
        yield url
    finally:
        stop_group(process)


def post(url: str, records: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"{url}/invocations",
        data=json.dumps({"dataframe_records": records}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_endpoint_and_the_batch_cli_give_the_same_probabilities(
    server: str, pipeline_run: PipelineRun, tmp_path: Path
) -> None:
    leads = pd.read_csv(pipeline_run.root / "data" / "processed" / "test.csv").head(50)
    records = json.loads(leads[["lead_id", *COLUMNS]].to_json(orient="records"))
    status, answer = post(server, records)
    assert status == 200
    served = [row["conversion_probability"] for row in answer["predictions"]]
    assert [row["lead_id"] for row in answer["predictions"]] == leads["lead_id"].tolist()
    assert {row["model"] for row in answer["predictions"]} == {"models:/lead_model/1"}

    leads.to_csv(tmp_path / "leads.csv", index=False)
    result = pipeline_run.lcp(
        "predict", "-i", str(tmp_path / "leads.csv"), "-o", str(tmp_path / "scores.parquet"),
        "--model", "models:/lead_model@champion",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    scores = pd.read_parquet(tmp_path / "scores.parquet")  # every bit
    np.testing.assert_allclose(served, scores["conversion_probability"], rtol=1e-6)
    assert set(scores["model"]) == {"models:/lead_model/1"}


def test_missing_values_are_imputed_as_in_training(server: str) -> None:
    record = {
        "purchases": None,
        "time_spent": 12.5,
        "n_visits": 3,
        "customer_group": None,
        "onboarding": None,
    }
    status, answer = post(server, [record])
    assert status == 200
    assert 0.0 <= answer["predictions"][0]["conversion_probability"] <= 1.0
    assert "lead_id" not in answer["predictions"][0], "no id asked, none answered"


GOOD = {"purchases": 1, "time_spent": 2.0, "n_visits": 3, "customer_group": 2, "onboarding": True}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"onboarding": None}, "missing inputs ['onboarding']"),
        ({"purchases": "many"}, "column 'purchases': value 'many' is not a number"),
        ({"n_visits": -4}, "column 'n_visits': value -4 is below 0"),
        ({"time_spent": 1e308}, "column 'time_spent': value 1e+308 is above 100000"),
        ({"onboarding": "yes"}, "column 'onboarding': value 'yes' is not true or false"),
        ({"customer_group": 12}, "column 'customer_group': value 12 is above 9"),
    ],
    ids=["missing-column", "text-in-a-number", "negative", "absurd", "yes", "unseen-group"],
)
def test_a_bad_request_gets_a_400_naming_the_field_and_the_reason(
    server: str, change: dict[str, Any], message: str
) -> None:
    record = {key: value for key, value in {**GOOD, **change}.items() if value is not None}
    # With a good record first, the bad one is the second record of the request.
    status, answer = post(server, [record] if len(record) < len(GOOD) else [GOOD, record])
    assert status == 400
    assert message in answer["message"]
    if len(record) == len(GOOD):
        assert "(record 1, counting from 0)" in answer["message"]


def send(url: str, body: bytes, content_type: str | None) -> tuple[int, bytes]:
    """POST ``body`` as is, with ``content_type`` or no Content-Type at all."""
    import http.client
    from urllib.parse import urlsplit

    address = urlsplit(url)
    connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=120)
    headers = {"Content-Length": str(len(body))}
    if content_type is not None:
        headers["Content-Type"] = content_type
    try:
        connection.request("POST", "/invocations", body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_a_request_without_a_content_type_gets_a_415(server: str) -> None:
    status, body = send(server, json.dumps({"dataframe_records": [GOOD]}).encode(), None)
    assert status == 415
    assert "Content-Type" in json.loads(body)["message"]


def test_a_body_over_the_limit_gets_a_413_before_it_is_sent(server: str) -> None:
    """As curl sends a large body: the headers first, the body only after a 100 Continue."""
    import socket
    from urllib.parse import urlsplit

    from lead_conversion_prediction.config import ServeParams

    limit = ServeParams().max_request_bytes
    address = urlsplit(server)
    head = (
        "POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {limit + 1}\r\nExpect: 100-continue\r\n\r\n"
    )
    with socket.create_connection((address.hostname, address.port), timeout=60) as client:
        client.sendall(head.encode())
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            chunk = client.recv(65536)
            if not chunk:
                break
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 413 "), reply[:200]
    assert f"{limit:,} bytes".encode() in reply
    assert post(server, [GOOD])[0] == 200


def test_json_nested_too_deep_gets_a_400_not_a_server_error(server: str) -> None:
    deep = b'{"dataframe_records": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    status, body = send(server, deep, "application/json")
    assert status == 400
    assert "nests deeper than" in json.loads(body)["message"]
    assert post(server, [GOOD])[0] == 200


def test_an_error_answer_holds_no_echo_stack_trace_or_path(
    server: str, pipeline_run: PipelineRun
) -> None:
    garbage = b"purchases,time_spent\n" + b'"unclosed' + b"x" * 1_000_000
    for content_type in ("text/csv", "application/json"):
        status, body = send(server, garbage, content_type)
        assert status == 400, body[:500]
        assert len(body) < 1000, "the answer does not echo the request"
        answer = json.loads(body)
        assert set(answer) == {"error_code", "message"}
        text = body.decode()
        assert "Traceback" not in text and "site-packages" not in text
        assert str(pipeline_run.root) not in text and "/lead_conversion_prediction/" not in text
