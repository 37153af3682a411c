"""Stage ``features``: split the leads, fit the preprocessing on the training rows (steps 4-10).

Reads ``data/interim/leads.csv``; writes the splits, both model matrices, the outlier summary
and the fitted preprocessor in ``data/processed/``.
"""

from __future__ import annotations

from lead_conversion_prediction.config import Params, Paths
from lead_conversion_prediction.features import (
    build_preprocessor,
    outlier_summary,
    split_leads,
)
from lead_conversion_prediction.schema import (
    TARGET,
    features_and_target,
    read_raw_leads,
    write_leads,
)
from lead_conversion_prediction.utils.logging import log_stage
from lead_conversion_prediction.utils.storage import save_artifact, write_csv, write_manifest


def run_features(paths: Paths, params: Params) -> None:
    """Split the leads, fit the preprocessing on the training rows, write both model matrices."""
    with log_stage("features") as facts:
        leads = read_raw_leads(paths.leads)
        train, test = split_leads(leads, params.split)
        X_train, y_train = features_and_target(train)
        X_test, y_test = features_and_target(test)
        preprocessor = build_preprocessor(params.features).fit(X_train)
        matrices = {
            paths.X_train: preprocessor.transform(X_train),
            paths.y_train: y_train.astype("float64").to_frame(TARGET),
            paths.X_test: preprocessor.transform(X_test),
            paths.y_test: y_test.astype("float64").to_frame(TARGET),
        }
        write_leads(paths.train_split, train)
        write_leads(paths.test_split, test)
        for path, frame in matrices.items():
            write_csv(path, frame)
        write_csv(paths.outlier_summary, outlier_summary(preprocessor, X_train))
        save_artifact(preprocessor, paths.preprocessor)
        write_manifest(paths.processed_dir, [paths.preprocessor.name])
        facts.update(train=len(train), test=len(test), columns=matrices[paths.X_test].shape[1])
