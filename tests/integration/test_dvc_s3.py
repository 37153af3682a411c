"""The team's shared DVC storage: an S3 remote, on a loopback S3 endpoint (moto's server).

In a git copy of the project, the raw data and the training stage's model outputs are pushed
to ``s3://<bucket>/dvc`` and pulled back into an empty cache and workspace, unchanged. The
remote's settings (URL, ``endpointurl``) are in DVC's config; the credentials only in the
environment: without them the pull fails, and no secret is written anywhere.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support import GIT_IDENTITY, SHARED_DIR, copy_project, free_port, md5_of, small_params

BUCKET = "lcp-team"
OUTPUTS = ("data/raw/raw_data.csv", "models/lead_model.joblib", "models/model.pkl")


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on a loopback port, with an empty bucket."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def test_raw_data_and_model_outputs_round_trip_through_an_s3_remote(
    tmp_path: Path, s3_endpoint: str
) -> None:
    import boto3

    secret = secrets.token_urlsafe(24)
    credentials = {
        "AWS_ACCESS_KEY_ID": "lcp-test-key",
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    boto3.client("s3", endpoint_url=s3_endpoint, **_boto(credentials)).create_bucket(Bucket=BUCKET)
    root = copy_project(tmp_path / "repo")
    # No credentials from anywhere but the environment: no ~/.aws, no instance metadata.
    base = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("AWS_") and name != "LCP_ROOT"
    }
    (tmp_path / "home").mkdir()
    env = {
        **base,
        **GIT_IDENTITY,
        "HOME": str(tmp_path / "home"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
    }
    with_credentials = {**env, **credentials}
    mirror = SHARED_DIR / "dvc-remote"
    if not mirror.is_dir():
        pytest.fail(f"{mirror} is missing: the test pulls the raw data from that mirror")
    (root / "params.yaml").write_text(yaml.safe_dump(small_params().model_dump(mode="json")))
    for command in (
        f"dvc remote add --local mirror {mirror}",
        "dvc pull --quiet -r mirror data/raw/raw_data.csv.dvc",
        "dvc repro --quiet train",
        # What the team commits: the remote's URL and endpoint, never a credential.
        f"dvc remote add team s3://{BUCKET}/dvc",
        f"dvc remote modify team endpointurl {s3_endpoint}",
    ):
        run(command, root, env)
    before = {name: md5_of(root / name) for name in OUTPUTS}

    pushed = run("dvc push -r team data/raw/raw_data.csv.dvc train", root, with_credentials)
    objects = boto3.client("s3", endpoint_url=s3_endpoint, **_boto(credentials)).list_objects_v2(
        Bucket=BUCKET, Prefix="dvc/"
    )
    assert objects.get("KeyCount", 0) >= len(OUTPUTS), pushed

    def empty_workspace() -> None:
        shutil.rmtree(root / ".dvc" / "cache", ignore_errors=True)
        for name in OUTPUTS:
            (root / name).unlink()
        shutil.rmtree(root / "models" / "candidates")

    empty_workspace()
    refused = _run("dvc pull -r team data/raw/raw_data.csv.dvc train", root, env)
    assert refused.returncode != 0 and not (root / OUTPUTS[0]).exists()

    output = run("dvc pull -r team data/raw/raw_data.csv.dvc train", root, with_credentials)
    assert {name: md5_of(root / name) for name in OUTPUTS} == before, output
    assert (root / "models" / "candidates").is_dir()

    config = (root / ".dvc" / "config").read_text()
    assert f"s3://{BUCKET}/dvc" in config and s3_endpoint in config
    written = [path for path in (root / ".dvc").glob("config*") if path.is_file()]
    assert all(secret not in path.read_text() for path in written)
    assert secret not in pushed + output + refused.stdout + refused.stderr


def _boto(credentials: dict[str, str]) -> dict[str, str]:
    return {
        "aws_access_key_id": credentials["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": credentials["AWS_SECRET_ACCESS_KEY"],
        "region_name": credentials["AWS_DEFAULT_REGION"],
    }


def _run(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, shell=True, cwd=cwd, env=env, capture_output=True, text=True, check=False
    )


def run(command: str, cwd: Path, env: dict[str, str]) -> str:
    result = _run(command, cwd, env)
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr
