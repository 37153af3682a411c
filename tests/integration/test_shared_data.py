"""The shared data folder the tests read: the pinned raw file and the course validator's pair.

The workflow's test job lays this folder out from the fetched raw file and the validator's
repository; its replay (``test_workflow_run.py``) runs this test there.
"""

from pathlib import Path

import pandas as pd

from tests.support import REFERENCE_COLUMNS, VALIDATOR_FIRST_FIVE


def test_the_shared_folder_holds_the_pinned_raw_file_and_the_validators_pair(
    real_raw_data: Path, validator_pair: tuple[Path, Path]
) -> None:
    """The raw file's md5 is checked by its fixture; the pair must be the validator's own."""
    header = real_raw_data.open(encoding="utf-8").readline().strip().split(",")
    assert {"lead_id", "lead_indicator", "onboarding"} <= set(header)
    X_path, y_path = validator_pair
    X, y = pd.read_csv(X_path), pd.read_csv(y_path)
    assert list(X.columns) == REFERENCE_COLUMNS
    assert len(X) == len(y) > 0
    assert y.iloc[:5, 0].astype(int).tolist() == VALIDATOR_FIRST_FIVE
