"""Stage ``package``: bundle the chosen model's artifacts into ``models/models.tar``.

Reads ``model.pkl``, ``lead_model.joblib``, ``columns_list.json`` (each checked against
``models/SHA256SUMS``); writes the reproducible bundle with its own ``SHA256SUMS``.
"""

from __future__ import annotations

from lead_conversion_prediction.config import Paths
from lead_conversion_prediction.utils.logging import log_stage
from lead_conversion_prediction.utils.storage import verify_artifact, write_bundle


def run_package(paths: Paths) -> None:
    """Bundle the validator model, the full pipeline and the column list into ``models.tar``."""
    with log_stage("package") as facts:
        members = list(paths.model_set)
        for member in members:
            verify_artifact(member)
        write_bundle(paths.bundle, members)
        facts.update(bundle=paths.bundle.name, bytes=paths.bundle.stat().st_size)
