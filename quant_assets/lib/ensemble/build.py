"""The meta-ensemble: stacked quantile averaging, conformal recalibration and a calibrated confidence.

Everything here learns only from *earlier* windows' out-of-sample predictions whose labels were realized
before the current window starts, then applies to the current window:

1. ``stacking.stacking_weights``: per horizon, simplex weights minimizing the quantile CRPS of the Vincentized
   combination ``q = sum_m w_m q_m``, shrunk toward equal weights (more so with little history).
2. ``stacking.combine``: quantile averaging plus mixture mean/std and mixture P(up).
3. ``recalibration.fit_recalibration`` / ``apply_recalibration``: per central interval (q05-q95, q10-q90,
   q25-q75), a symmetric scale-normalized widening or narrowing so that its coverage on earlier windows matches
   its nominal share (conformalized quantile regression); the median stays.
4. ``confidence.agreement_features`` / ``fit_confidence`` / ``predict_confidence``: the probability that the
   ensemble's direction is right, from a calibrated logistic regression on model agreement.
5. ``sizing_prior.sizing_from_reference``: the expected return sizing uses, off the prior only as far as skill.

History size is counted in effective rows (``history.effective_rows``). Every fallback (equal weights, no
recalibration, agreement-based confidence) is reported in ``info``.
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
    memo: Callable[..., Any] | None = None,
) -> tuple[pd.DataFrame, dict]:
    """The calibrated ensemble of the current window and a JSON-ready account of how it was made.

    ``current_preds``: every member's predictions for the current window. ``history_preds``: earlier
    windows' predictions with ``realized`` (and ``label_end``, rows with ``label_end >= as_of`` are
    dropped). ``segments`` maps a symbol to its asset class, for per-class recalibration. ``reference``
    names the member every other is judged against (the random walk): stacking weights shrink toward it
    (so without history the ensemble is the reference), members whose spread or median is implausible
    against it at a horizon are dropped there, and a horizon whose out-of-fold ensemble has not beaten it
    on earlier windows does not drive sizing (``sizing_mean`` is the prior and ``confidence`` the reference's,
    the mean with the standard error of a drift estimated over ``reference_drift_days[horizon]`` days per
    symbol, the reference's training span; a trailing year where not given). ``class_growth`` (per asset
    class, the log of the mean daily gross return over the training span) sets the sizing prior
    (``sizing_prior``), which the ensemble's mean moves off only as far as its out-of-fold skill. ``memo``
    (``memo(fn, *args)``, e.g. a ``memo.DiskMemo``) keeps what is learned from the history alone across calls.

    Per horizon: stacking weights; an out-of-fold (cross-fitted over blocks of earlier windows) ensemble of
    the history, on which the conformal recalibration, the reference comparison and the confidence model
    are learned; spreads made non-decreasing across horizons. Returns per key the distribution columns,
    ``confidence``, ``sizing_mean`` and ``mean_uncertainty`` (the expected return sizing uses and its
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

    current_features = confidence.agreement_features(current_preds, current)
    past_features = confidence.agreement_features(earlier, past).merge(
        past[[*key_columns(past), "realized", "p_up", "mean"]], on=key_columns(past))
    p_right = pd.Series(np.nan, index=current_features.index)
    current = current.assign(**sizing_prior.member_uncertainty(current_preds, current, weights))
    current["beats_reference"] = current["horizon"].map(lambda h: versus[h]["beats"]).astype(bool)
    direction_now = current.set_index(key_columns(current)).reindex(
        current_features.set_index(key_columns(current_features)).index)
    for h in horizons:
        stack = stacks[h]
        fit_rows = past_features[past_features["horizon"] == h].reset_index(drop=True)
        hit = confidence.direction_hit(fit_rows["direction"], fit_rows["realized"])
        model = confidence.fit_confidence(fit_rows, hit, seed=seed)
        now = (current_features["horizon"] == h).to_numpy()
        evaluation = {} if model.fallback else learn(confidence.confidence_evaluation, fit_rows, hit, fold_key, blocks, seed)
        p_right.loc[now], used_fallback = confidence.predict_confidence(model, current_features[now])
        method = model.method
        if evaluation and evaluation["brier_confidence"] >= evaluation["brier_p_up"]:
            calibration = confidence.fit_pup_calibration(confidence.direction_probability(fit_rows), hit)
            p_right.loc[now] = calibration.predict(confidence.direction_probability(direction_now[now]))
            method = "calibrated_p_up"
            info["fallbacks"].append(f"{h}: confidence is the calibrated p_up (agreement adds nothing out of fold: "
                                     f"Brier {evaluation['brier_confidence']:.4f} vs {evaluation['brier_p_up']:.4f})")
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
            "confidence_method": method,
            "confidence_rows": model.rows,
            "confidence_evaluation": evaluation,
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
        if used_fallback:
            info["fallbacks"].append(f"{h}: agreement-share confidence ({model.reason})")
        if h not in stacked:
            info["fallbacks"].append(f"{h}: the reference alone, and it does not drive sizing ({versus[h]['reason']}): "
                                     f"distribution, expected return and confidence are the reference's")
    current_features = current_features.assign(confidence=p_right.to_numpy())

    keys = key_columns(current)
    out = current.merge(current_features[[*keys, "confidence"]], on=keys, how="left")
    out = out.assign(sizing_prior=0.0)
    if reference:
        out, skill = sizing_prior.sizing_from_reference(out, current_preds, past, earlier, reference,
                                                        reference_drift_days or {}, class_growth)
        for h, entry in skill.items():
            info["horizons"].setdefault(h, {})["sizing_skill"] = entry
    extras = [c for c in ("realized", "label_end") if c in current_preds.columns]
    if extras:
        out = out.merge(current_preds.drop_duplicates(keys)[[*keys, *extras]], on=keys, how="left")
    return out[[*keys, *DISTRIBUTION_COLUMNS, "confidence", *sizing_prior.SIZING_COLUMNS, *extras]], info


def build_class_ensembles(current_preds: pd.DataFrame, history_preds: pd.DataFrame | None, as_of,
                          classes: Mapping[str, str], **options) -> tuple[pd.DataFrame, dict[str, dict]]:
    """``build_ensemble`` once per asset class (``classes`` maps each symbol to its class): stacking weights, the
    comparison with the reference, the recalibration, the confidence and the sizing skill are each the class's own.

    Members' skill differs by class (on the sample, every model beats the random walk at 3m on equities and loses
    to it on crypto), and stacking weights fitted on both classes pooled minimize a CRPS dominated by the class
    with the larger errors (a crypto asset's is several times an equity's): equities would get crypto's weights.
    Returns the rows of every class and, per class, ``build_ensemble``'s account."""
    unknown = sorted(set(current_preds["symbol"]) - set(classes))
    if unknown:
        raise ValueError(f"build_class_ensembles: no asset class for {', '.join(unknown)}")
    frames, info = [], {}
    for name in sorted({classes[s] for s in current_preds["symbol"].unique()}):
        members = [s for s, c in classes.items() if c == name]
        earlier = None if history_preds is None else history_preds[history_preds["symbol"].isin(members)]
        frame, info[name] = build_ensemble(current_preds[current_preds["symbol"].isin(members)], earlier, as_of,
                                           segments=classes, **options)
        frames.append(frame)
    combined = pd.concat(frames, ignore_index=True)
    return combined.sort_values(key_columns(combined), ignore_index=True), info


def _call(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)
