"""Fixtures that run the real commands on the real data, once per test run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.trained import PipelineRun, pipeline_copy


@pytest.fixture(scope="session")
def second_run(tmp_path_factory: pytest.TempPathFactory, real_raw_data: Path) -> PipelineRun:
    """The same pipeline run again from scratch, in another folder and store."""
    return pipeline_copy(tmp_path_factory, "second-pipeline", real_raw_data)
