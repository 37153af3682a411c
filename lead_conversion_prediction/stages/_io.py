"""The reads (and one write) that several stages share."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from lead_conversion_prediction.config import Paths
from lead_conversion_prediction.csv_io import read_raw_leads
from lead_conversion_prediction.exceptions import ArtifactError
from lead_conversion_prediction.modeling.artifacts import TrainingSummary
from lead_conversion_prediction.schema import features_and_target
from lead_conversion_prediction.utils.files import read_yaml
from lead_conversion_prediction.utils.storage import load_artifact


@dataclass(frozen=True)
class RawDataPin:
    """What ``data/raw/raw_data.csv.dvc`` pins: the file's md5 and the URL it is imported from."""

    file: Path
    md5: str
    url: str


def read_pin(pin_file: Path) -> RawDataPin:
    """Read the raw data's DVC pin: ``outs[0].md5`` and ``deps[0].path``."""
    pin = read_yaml(pin_file, hint="the DVC pin of the raw data is part of the project")
    try:
        return RawDataPin(pin_file, str(pin["outs"][0]["md5"]), str(pin["deps"][0]["path"]))
    except (KeyError, IndexError, TypeError):
        raise ArtifactError(
            f"{pin_file}: no 'outs[0].md5' and 'deps[0].path' entries in the DVC pin"
        ) from None


def read_holdout(paths: Paths) -> tuple[pd.DataFrame, pd.Series]:
    """The holdout rows' model inputs and target."""
    return features_and_target(read_raw_leads(paths.test_split))


def load_candidate_models(paths: Paths, summary: TrainingSummary) -> dict[str, Any]:
    """Every searched candidate's fitted Pipeline, checked against its checksum."""
    return {name: load_artifact(paths.candidate_model(name)) for name in summary.candidates}
