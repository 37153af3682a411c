"""Choosing between models: the best candidate of a run, and whether a model beats the champion."""

from __future__ import annotations

from collections.abc import Mapping

from lead_conversion_prediction.exceptions import ConfigError


def select_best(scores: Mapping[str, float]) -> str:
    """Return the name with the highest score; a tie goes to the name listed first."""
    if not scores:
        raise ConfigError("train.candidates: no candidates to select from")
    best = next(iter(scores))
    for name, score in scores.items():
        if score > scores[best]:
            best = name
    return best


def is_better(score: float, champion_score: float | None) -> bool:
    """True when there is no champion, or ``score`` beats it strictly."""
    return champion_score is None or score > champion_score
