from collections.abc import Callable

import numpy as np
import pandas as pd

from lead_conversion_prediction.modeling.predict import score_leads


class _ByPurchases:
    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = X["purchases"].to_numpy(dtype=float) / 10
        return np.column_stack([1 - p, p])


def test_scores_hold_probability_label_and_rank(make_leads: Callable[..., pd.DataFrame]) -> None:
    leads = make_leads(n=5).assign(purchases=[1, 9, 5, 7, 3])
    scores = score_leads(_ByPurchases(), leads, threshold=0.5)
    assert list(scores.columns) == ["lead_id", "conversion_probability", "predicted_label", "rank"]
    assert scores["predicted_label"].tolist() == [0, 1, 0, 1, 0]  # 0.5 is not above 0.5
    assert scores["rank"].tolist() == [5, 1, 3, 2, 4]
    assert scores["lead_id"].tolist() == leads["lead_id"].tolist()
