"""The meta-ensemble: stacked quantile averaging, conformal recalibration and a calibrated confidence.

Everything here learns only from *earlier* windows' out-of-sample predictions whose labels were realized
before the current window starts, then applies to the current window:

1. ``stacking.stacking_weights``: per horizon, simplex weights minimizing the quantile CRPS of the Vincentized
   combination ``q = sum_m w_m q_m``, shrunk toward equal weights (more so with little history).
2. ``stacking.combine``: quantile averaging plus mixture mean/std and mixture P(up).
3. ``recalibration.fit_recalibration`` / ``apply_recalibration``: per central interval (q05-q95, q10-q90,
   q25-q75), a symmetric scale-normalized widening or narrowing so that its coverage on earlier windows matches
   its nominal share (conformalized quantile regression); the median stays.
4. ``confidence.gain_probability``: the probability of a gain, ``p_up`` Platt-scaled on the out-of-fold history,
   shown only where it beats the base rate out of fold (else the base rate, labelled).
5. ``sizing_prior.sizing_from_reference``: the expected return sizing uses, off the prior only as far as skill.

History size is counted in effective rows (``history.effective_rows``). Every fallback (equal weights, no
recalibration, the base rate shown as the confidence) is reported in ``info``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from quant_assets.lib.ensemble import confidence, history, recalibration, sizing_prior, stacking
from quant_assets.lib.ensemble.frames import PREDICTION_REQUIRED, horizon_order, key_columns, require
from quant_assets.lib.models.base import DISTRIBUTION_COLUMNS


def build_ensemble(
    current_preds: pd.DataFrame,
    history_preds: pd.DataFrame | None,
    as_of,
    *,
    shrinkage: float = stacking.DEFAULT_SHRINKAGE,
    min_rows: float = stacking.DEFAULT_MIN_ROWS,
    seed: int = 0,
    segments: Mapping[str, str] | None = None,
    reference: str | None = None,
    reference_drift_days: Mapping[str, float] | None = None,
    class_growth: Mapping[str, float] | None = None,
    base_rates: Mapping[str, float] | None = None,
    memo: Callable[..., Any] | None = None,
) -> tuple[pd.DataFrame, dict]:
    """The calibrated ensemble of the current window and a JSON-ready account of how it was made.

    ``current_preds``: every member's predictions for the current window. ``history_preds``: earlier
    windows' predictions with ``realized`` (and ``label_end``, rows with ``label_end >= as_of`` are
    dropped). ``segments`` maps a symbol to its asset class, for per-class recalibration. ``reference``
    names the member every other is judged against (the random walk): stacking weights shrink toward it
    (so without history the ensemble is the reference), members whose spread or median is implausible
    against it at a horizon are dropped there, and a horizon whose out-of-fold ensemble has not beaten it
    on earlier windows does not drive sizing (``sizing_mean`` is the prior, the mean with the standard error of a drift estimated over ``reference_drift_days[horizon]`` days per
    symbol, the reference's training span; a trailing year where not given). ``class_growth`` (per asset
    class, the log of the mean daily gross return over the training span) sets the sizing prior
    (``sizing_prior``), which the ensemble's mean moves off only as far as its out-of-fold skill. ``base_rates``
    (per horizon, the long-run share of gains over the training span) is the base rate the confidence must beat
    and shows where it does not (the history's own share of gains without it). ``memo``
    (``memo(fn, *args)``, e.g. a ``memo.DiskMemo``) keeps what is learned from the history alone across calls.

    Per horizon: stacking weights; an out-of-fold (cross-fitted over blocks of earlier windows) ensemble of
    the history, on which the conformal recalibration, the reference comparison and the calibration of the
    probability of a gain are learned; spreads made non-decreasing across horizons. Returns per key the
    distribution columns, ``confidence.CONFIDENCE_COLUMNS`` (``confidence`` is the probability of a gain shown:
    ``prob_gain``, calibrated out of fold, or ``prob_gain_base_rate``, as ``confidence_source`` says), ``sizing_mean`` and ``mean_uncertainty`` (the expected return sizing uses and its
    standard error), ``beats_reference`` and (when present in ``current_preds``) ``realized`` and
    ``label_end``; and ``info`` with weights, adjustments, scores, history sizes and every fallback used.
    """
    require(current_preds, PREDICTION_REQUIRED, "the current predictions frame")
    if current_preds.empty:
        raise ValueError("build_ensemble: the current predictions frame is empty")
    models = sorted(current_preds["model"].unique())
    if reference is not None and reference not in models:
        raise ValueError(f"build_ensemble: the reference {reference!r} has no predictions in the current window")
    horizons = sorted(current_preds["horizon"].unique(), key=horizon_order)
    if history_preds is None or history_preds.empty:
        history_preds = current_preds.iloc[0:0].assign(realized=np.nan, label_end=pd.NaT)
    earlier = history.usable_history(history_preds, as_of)
    earlier = earlier[earlier["model"].isin(models) & earlier["horizon"].isin(horizons)]
    # A canonical row order: the cross-fitted folds follow it, and a warehouse query returns
    # rows in whatever order they were written, so the same forecasts must give the same ensemble.
    current_preds = current_preds.sort_values([*key_columns(current_preds), "model"], ignore_index=True)
    earlier = earlier.sort_values([*key_columns(earlier), "model"], ignore_index=True)

    info: dict = {"as_of": str(pd.Timestamp(as_of).date()), "models": models, "reference": reference,
                  "horizons": {}, "fallbacks": []}
    dropped = stacking.implausible_members(current_preds, reference) if reference else {}
    members = {h: [m for m in models if m not in dropped.get(h, {})] for h in horizons}
    prior = {reference: 1.0} if reference else None
    stacks = {h: stacking.stack(earlier, members[h], h, shrinkage, min_rows, prior) for h in horizons}
    weights = {h: {m: stacks[h].weights.get(m, 0.0) for m in models} for h in horizons}
    learn = memo or _call
    past, fold_key, blocks = learn(stacking.out_of_fold, earlier, members, horizons, shrinkage, min_rows, prior)
    versus = sizing_prior.reference_comparison(past, earlier, reference, horizons)
    # Never worse than the reference: a horizon whose stack has not beaten it out of fold is the reference alone,
    # unrecalibrated (the recalibration was learned on the stack's errors, not the reference's).
    stacked = [h for h in horizons if versus[h]["beats"]]
    weights.update({h: {m: float(m == reference) for m in models} for h in horizons if h not in stacked})
    current = stacking.combine(current_preds, weights)
    if segments is not None:
        current = current.assign(segment=current["symbol"].map(segments))
        past = past.assign(segment=past["symbol"].map(segments))
    recal = recalibration.fit_recalibration(past[past["horizon"].isin(stacked)], horizons=stacked)
    current, widened_current = recalibration.widen_with_horizon(recalibration.apply_recalibration(current, recal))
    past = recalibration.apply_recalibration(past, recal)

    current = current.assign(**sizing_prior.member_uncertainty(current_preds, current, weights))
    current["beats_reference"] = current["horizon"].map(lambda h: versus[h]["beats"]).astype(bool)
    gain_columns = []
    for h in horizons:
        stack = stacks[h]
        now = (current["horizon"] == h).to_numpy()
        probability = _gain_probability(h, h in stacked, past, earlier, current[now], current_preds, reference,
                                        fold_key, blocks, learn, (base_rates or {}).get(h))
        gain_columns.append((now, probability))
        info["horizons"][h] = {
            "members": members[h],
            "dropped_implausible": dropped.get(h, {}),
            "weights": weights[h],
            "optimal_weights": stack.optimal,
            "shrinkage_lambda": stack.lam,
            "history_rows": stack.rows,
            "history_effective_rows": stack.n_eff,
            "crps_equal_weights": stack.crps_equal,
            "crps_stacked": stack.crps_stacked,
            "out_of_fold": versus[h],
            "recalibration": recal.adjustments.get(h),
            "recalibration_by_segment": recal.segments.get(h, {}),
            "recalibration_rows": recal.rows.get(h, 0),
            "recalibration_borrowed_from": recal.borrowed.get(h),
            "confidence_source": probability.source,
            "confidence_base_rate": probability.base_rate,
            "confidence_evaluation": probability.evaluation,
            "widened_across_horizons": int(widened_current.get(h, 0)),
        }
        if dropped.get(h):
            info["fallbacks"].append(f"{h}: dropped implausible member(s) {', '.join(sorted(dropped[h]))}")
        if stack.fallback:
            start = "the reference" if reference else "equal weights"
            info["fallbacks"].append(f"{h}: {start} ({stack.fallback})")
        if h in recal.borrowed:
            info["fallbacks"].append(f"{h}: recalibration widening borrowed from {recal.borrowed[h]} "
                                     f"({recal.fallback[h]})")
        elif h in stacked and h not in recal.adjustments:
            reason = recal.fallback.get(h, "no realized history")
            info["fallbacks"].append(f"{h}: no recalibration ({reason})")
        if probability.source == confidence.BASE_RATE:
            info["fallbacks"].append(f"{h}: the confidence shown is the base rate {probability.base_rate:.3f} "
                                     f"({probability.reason})")
        if h not in stacked:
            info["fallbacks"].append(f"{h}: the reference alone, and it does not drive sizing ({versus[h]['reason']}): "
                                     f"distribution and expected return are the reference's")
    out = current.assign(confidence=np.nan, prob_gain=np.nan, prob_gain_base_rate=np.nan, confidence_source=None,
                         sizing_prior=0.0)
    for now, probability in gain_columns:
        for column, values in probability.columns().items():
            out.loc[now, column] = values
    keys = key_columns(current)
    if reference:
        out, skill = sizing_prior.sizing_from_reference(out, current_preds, past, earlier, reference,
                                                        reference_drift_days or {}, class_growth)
        for h, entry in skill.items():
            info["horizons"].setdefault(h, {})["sizing_skill"] = entry
    extras = [c for c in ("realized", "label_end") if c in current_preds.columns]
    if extras:
        out = out.merge(current_preds.drop_duplicates(keys)[[*keys, *extras]], on=keys, how="left")
    return out[[*keys, *DISTRIBUTION_COLUMNS, *confidence.CONFIDENCE_COLUMNS, *sizing_prior.SIZING_COLUMNS, *extras]], info


def build_class_ensembles(current_preds: pd.DataFrame, history_preds: pd.DataFrame | None, as_of,
                          classes: Mapping[str, str], class_base_rates: Mapping[str, Mapping[str, float]] | None = None,
                          **options) -> tuple[pd.DataFrame, dict[str, dict]]:
    """``build_ensemble`` once per asset class (``classes`` maps each symbol to its class): stacking weights, the
    comparison with the reference, the recalibration, the confidence and the sizing skill are each the class's own.

    Members' skill differs by class (on the sample, every model beats the random walk at 3m on equities and loses
    to it on crypto), and stacking weights fitted on both classes pooled minimize a CRPS dominated by the class
    with the larger errors (a crypto asset's is several times an equity's): equities would get crypto's weights.
    ``class_base_rates`` gives each class its ``base_rates``. Returns the rows of every class and, per class,
    ``build_ensemble``'s account."""
    unknown = sorted(set(current_preds["symbol"]) - set(classes))
    if unknown:
        raise ValueError(f"build_class_ensembles: no asset class for {', '.join(unknown)}")
    frames, info = [], {}
    for name in sorted({classes[s] for s in current_preds["symbol"].unique()}):
        members = [s for s, c in classes.items() if c == name]
        earlier = None if history_preds is None else history_preds[history_preds["symbol"].isin(members)]
        frame, info[name] = build_ensemble(current_preds[current_preds["symbol"].isin(members)], earlier, as_of,
                                           segments=classes, base_rates=(class_base_rates or {}).get(name), **options)
        frames.append(frame)
    combined = pd.concat(frames, ignore_index=True)
    return combined.sort_values(key_columns(combined), ignore_index=True), info


def _gain_probability(horizon: str, stacked: bool, past: pd.DataFrame, earlier: pd.DataFrame, now: pd.DataFrame,
                      current_preds: pd.DataFrame, reference: str | None, fold_key: str, blocks: list[np.ndarray],
                      learn: Callable[..., Any], long_run: float | None) -> confidence.GainProbability:
    """The horizon's probability of a gain, calibrated on the out-of-fold history of what the rows ``now`` are: the
    stack's where the horizon is stacked, the reference's where the reference alone is shown."""
    if stacked or reference is None:
        rows = past[past["horizon"] == horizon]
    else:
        rows = earlier[(earlier["model"] == reference) & (earlier["horizon"] == horizon)]
    # With a single earlier window the folds are dates, and the fold key is the date column itself.
    rows = rows.reindex(columns=list(dict.fromkeys([fold_key, "date", "horizon", "p_up", "realized"])))
    rows = rows.reset_index(drop=True)
    evaluation = learn(confidence.confidence_evaluation, rows, fold_key, blocks, long_run)
    # Without outcomes the base rate is the random walk's own probability of a gain (its drift over the training
    # span), one number for the class: no symbol is told more than its class's history says.
    ref_now = current_preds[(current_preds["model"] == reference) & (current_preds["horizon"] == horizon)]
    prior = float(ref_now["p_up"].mean()) if reference is not None and len(ref_now) else 0.5
    return confidence.gain_probability(rows, now["p_up"].to_numpy(dtype="float64"), evaluation, prior, long_run)


def _call(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)
