"""``lcp promote``, ``lcp rollback`` and ``lcp champion``: the champion alias, by the rule.

``lcp promote`` compares a challenger with the champion on this checkout's evaluation set and
moves the alias only when the challenger is better, and no worse (``modeling/promotion.py``);
both versions must have been evaluated on that very set, with the same promotion metric. With
no champion yet, the version must beat the base-rate model and keep the course contract.
``lcp rollback`` walks back along the champions' line: the alias goes to the champion before
the current one (``--to N``: to an earlier champion N), and a second rollback goes one step
further back. Every move is kept in the registry's history.

Both hold the registry lock (``modeling/registry_lock.py``) from their reading of the
champion to its move, so that a concurrent promotion elsewhere can never slip in between.
After a move, the workspace keeps the new champion's resolution (``scoring/model_cache.py``):
the next ``lcp predict`` asks MLflow nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loguru import logger

from lead_conversion_prediction.config import Params, Paths
from lead_conversion_prediction.exceptions import (
    NoChampionError,
    PromotionRefusedError,
    RegistryError,
)
from lead_conversion_prediction.modeling.registry import CHAMPION, ChampionMove
from lead_conversion_prediction.scoring.model import remember_resolution

if TYPE_CHECKING:
    import pandas as pd

    from lead_conversion_prediction.modeling.promotion import Comparison, FirstChampionCheck


def promotion_decision(
    paths: Paths, params: Params, version: int, champion: Any | None
) -> tuple[bool, str]:
    """Whether ``version`` may replace ``champion`` (or be the first champion, when there is
    none), and why, on this checkout's evaluation set."""
    from lead_conversion_prediction.csv_io import read_raw_leads
    from lead_conversion_prediction.modeling.promotion import (
        Version,
        admit,
        evaluation_set_md5,
        judge,
    )
    from lead_conversion_prediction.modeling.registry import (
        COMPLETE,
        get_version,
        registration_state,
    )

    name = params.registry.model_name
    challenger = get_version(name, version)
    state = registration_state(challenger)
    if state != COMPLETE:
        return False, f"refused: version {version}'s registration is {state}, not complete"
    holdout = read_raw_leads(paths.test_split)
    here = evaluation_set_md5(holdout)
    if champion is None:
        first = admit(
            Version.of(challenger, state), here, lambda: check_first(holdout, params, challenger)
        )
        return first.promoted, first.reason
    decision = judge(
        Version.of(champion, registration_state(champion)),
        Version.of(challenger, state),
        here,
        params.promotion.metric,
        lambda: compare_on(holdout, params, challenger, champion),
    )
    return decision.promoted, decision.reason


def compare_on(
    holdout: pd.DataFrame, params: Params, challenger: Any, champion: Any
) -> Comparison:
    """Score two registered versions on the evaluation set and measure the challenger's lead."""
    from lead_conversion_prediction.modeling.evaluate import positive_probability
    from lead_conversion_prediction.modeling.promotion import compare
    from lead_conversion_prediction.schema import features_and_target
    from lead_conversion_prediction.scoring.model import load_registered_model

    name = params.registry.model_name
    X, y = features_and_target(holdout)
    challenger_p, champion_p = (
        positive_probability(load_registered_model(f"models:/{name}/{v.version}").model, X)
        for v in (challenger, champion)
    )
    return compare(y, challenger_p, champion_p, params.promotion, params.threshold)


def check_first(holdout: pd.DataFrame, params: Params, version: Any) -> FirstChampionCheck:
    """Check a registered version on the evaluation set as a would-be first champion: its lead
    on the scoring rule over the base-rate model (its training rows' conversion rate, from the
    reference profile logged with it), and its classifier's check by the course contract on
    its own 12 scaled columns (as ``lcp validate`` checks ``model.pkl``)."""
    from lead_conversion_prediction.modeling.course_contract import check_predictions
    from lead_conversion_prediction.modeling.evaluate import positive_probability
    from lead_conversion_prediction.modeling.promotion import (
        FirstChampionCheck,
        compare_with_base_rate,
    )
    from lead_conversion_prediction.schema import features_and_target
    from lead_conversion_prediction.scoring.model import load_registered_model

    name = params.registry.model_name
    loaded = load_registered_model(f"models:/{name}/{version.version}", with_profile=True)
    assert loaded.profile is not None  # asked for
    X, y = features_and_target(holdout)
    base_rate = loaded.profile.conversion_rate
    lead = compare_with_base_rate(
        y, positive_probability(loaded.model, X), base_rate, params.promotion, params.threshold
    )
    matrix = loaded.model[:-1].transform(X)
    validation = check_predictions(loaded.model[-1], matrix, y, params.validation.min_accuracy)
    return FirstChampionCheck(base_rate, lead, validation)


def run_promote(paths: Paths, params: Params, version: int | None = None) -> ChampionMove:
    """Compare a challenger (by default the latest) with the champion; promote it if it is
    better, and no worse (with no champion: if it beats the base rate and keeps the course
    contract)."""
    from lead_conversion_prediction.modeling.registry import store_is_new
    from lead_conversion_prediction.modeling.registry_lock import registry_lock

    name = params.registry.model_name
    if store_is_new():  # nothing to promote: the lock would create the store
        raise no_challenger(name)
    with registry_lock(name, "lcp promote"):
        move = _promote(paths, params, name, version)
    remember_resolution(f"models:/{name}@{CHAMPION}", paths.cache_dir)
    return move


def _promote(paths: Paths, params: Params, name: str, version: int | None) -> ChampionMove:
    from lead_conversion_prediction.modeling.registry import (
        challenger_version,
        champion_version,
        move_champion,
    )

    if version is None:
        latest = challenger_version(name)
        if latest is None:
            raise no_challenger(name)
        version = int(latest.version)
    champion = champion_version(name)
    if champion is not None and int(champion.version) == version:
        raise PromotionRefusedError(f"version {version} is the champion already")
    promoted, why = promotion_decision(paths, params, version, champion)
    if not promoted:
        raise PromotionRefusedError(why)
    move = move_champion(name, version, why)
    logger.info("promote: {}", why)
    return move


def no_challenger(name: str) -> RegistryError:
    """The error of ``lcp promote`` with nothing registered to promote."""
    return RegistryError(f"{name}: no challenger to promote; run 'make pipeline' first")


def run_rollback(paths: Paths, params: Params, to: int | None = None) -> ChampionMove:
    """Give the champion alias to the champion before the current one, or to the earlier
    champion ``to``."""
    from lead_conversion_prediction.modeling.registry import store_is_new
    from lead_conversion_prediction.modeling.registry_lock import registry_lock

    name = params.registry.model_name
    if store_is_new():  # no champion: the lock would create the store
        raise NoChampionError(name)
    with registry_lock(name, "lcp rollback"):
        move = _rollback(name, to)
    remember_resolution(f"models:/{name}@{CHAMPION}", paths.cache_dir)
    return move


def _rollback(name: str, to: int | None) -> ChampionMove:
    from lead_conversion_prediction.modeling.registry import (
        ROLLBACK_REASON,
        champion_line,
        champion_version,
        history,
        move_champion,
    )

    champion = champion_version(name)
    if champion is None:
        raise NoChampionError(name)
    moves = history(name)
    if not moves or moves[-1].version != int(champion.version):
        raise RegistryError(f"{name}: the champion's history is unknown; nothing to roll back")
    target = rollback_target(name, champion_line(moves), to)
    move = move_champion(name, target, f"{ROLLBACK_REASON} {champion.version}", rollback=True)
    logger.info("rollback: version {} is the champion again (was {})", target, champion.version)
    return move


def rollback_target(name: str, line: list[int], to: int | None) -> int:
    """The version a rollback along the champions' ``line`` gives the alias to: the one before
    the current champion, or ``to`` when it is an earlier champion of the line."""
    current, earlier = line[-1], line[:-1]
    first = f"version {current} is the first champion: there is no earlier champion"
    if to is not None and to == current:
        raise RegistryError(f"{name}: version {to} is the champion already")
    if to is not None and to not in earlier:
        named = ", ".join(str(v) for v in dict.fromkeys(reversed(earlier)))
        where = f"roll back to one of: {named}" if earlier else first
        raise RegistryError(f"{name}: version {to} is not an earlier champion; {where}")
    if not earlier:
        raise RegistryError(f"{name}: {first} to roll back to")
    return to if to is not None else earlier[-1]


def champion_report(params: Params) -> list[str]:
    """What ``lcp champion`` prints, each fact once: the champion, its evidence and lineage,
    then the history of the alias, whose last move made it champion."""
    from lead_conversion_prediction.modeling.registry import champion_version, history

    name = params.registry.model_name
    champion = champion_version(name)
    if champion is None:
        raise NoChampionError(name)
    tags = champion.tags
    metric = tags.get("promotion_metric", params.promotion.metric)
    holdout = [tags.get(f"holdout.{metric}{end}", "?") for end in ("", ".low", ".high")]
    moves = history(name)
    lines = [
        f"champion: models:/{name}/{champion.version} ({tags.get('candidate', '?')})",
        f"  holdout {metric} {holdout[0]} ({holdout[1]} to {holdout[2]})",
        f"  evaluation set md5 {tags.get('evaluation_set_md5', '?')}",
        f"  data md5 {tags.get('raw_md5', '?')}",
        f"  git commit {tags.get('git_commit', '?')} (dirty: {tags.get('git_dirty', '?')})",
        "history (oldest first):",
        *(f"  {move.at}  {move.by}  {describe_move(move)}" for move in moves),
    ]
    if not moves or moves[-1].version != int(champion.version):
        lines.append(f"  (version {champion.version} was made champion outside lcp)")
    return lines


def describe_move(move: ChampionMove) -> str:
    """A move of the champion alias in a few words: where it went, and why."""
    if move.is_rollback:
        return f"version {move.version} again ({move.reason})"
    if f"version {move.version}" in move.reason:
        return move.reason
    return f"version {move.version}: {move.reason}"
