"""Stage ``features``: split the leads, fit the preprocessing on the training rows (steps 4-10).

Reads ``data/interim/leads.csv``; writes the splits, both model matrices, the outlier summary
and the fitted preprocessor in ``data/processed/``, as one checksummed set.
"""

from __future__ import annotations

from lead_conversion_prediction.config import Params, Paths
from lead_conversion_prediction.csv_io import read_raw_leads, write_leads
from lead_conversion_prediction.exceptions import DataContractError
from lead_conversion_prediction.features import (
    build_preprocessor,
    outlier_summary,
    split_leads,
)
from lead_conversion_prediction.schema import MODEL_COLUMNS, TARGET, features_and_target
from lead_conversion_prediction.utils.logging import log_stage
from lead_conversion_prediction.utils.storage import artifact_set


def run_features(paths: Paths, params: Params) -> None:
    """Split the leads, fit the preprocessing on the training rows, write both model matrices."""
    with log_stage("features") as facts:
        leads = read_raw_leads(paths.leads)
        train, test = split_leads(leads, params.split)
        X_train, y_train = features_and_target(train)
        X_test, y_test = features_and_target(test)
        preprocessor = build_preprocessor(params.features).fit(X_train)
        columns = [str(name) for name in preprocessor.get_feature_names_out()]
        if columns != list(MODEL_COLUMNS):
            missing = ", ".join(sorted(set(MODEL_COLUMNS) - set(columns))) or "none"
            raise DataContractError(
                paths.leads,
                f"the model matrix would have {len(columns)} columns, not the "
                f"{len(MODEL_COLUMNS)} of the contract (missing: {missing}); every level of "
                "customer_group and onboarding must occur in the training rows",
            )
        matrices = {
            paths.X_train: preprocessor.transform(X_train),
            paths.y_train: y_train.astype("float64").to_frame(TARGET),
            paths.X_test: preprocessor.transform(X_test),
            paths.y_test: y_test.astype("float64").to_frame(TARGET),
        }
        with artifact_set(paths.processed_dir) as processed:
            write_leads(processed.path(paths.train_split.name), train)
            write_leads(processed.path(paths.test_split.name), test)
            for path, frame in matrices.items():
                processed.write_csv(frame, path.name)
            processed.write_csv(outlier_summary(preprocessor, X_train), paths.outlier_summary.name)
            processed.save(preprocessor, paths.preprocessor.name)
        facts.update(train=len(train), test=len(test), columns=matrices[paths.X_test].shape[1])
