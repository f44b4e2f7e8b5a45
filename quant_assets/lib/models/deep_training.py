"""What the deep forecasters share beneath the estimator: a seeded, deterministic torch session, each row's date
and its symbol's history, and the one negative-log-likelihood training loop with early stopping on a validation
tail. The networks are in ``deep_nets``, the estimators in ``deep``."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import pandas as pd
import torch
from torch import nn

# Mini-batches shrink on small training sets so an epoch still takes this many optimizer steps.
MIN_STEPS_PER_EPOCH = 32
MIN_BATCH_SIZE = 64
PREDICT_CHUNK = 8192


@contextmanager
def torch_session(seed: int) -> Iterator[None]:
    """Seeded, single-threaded, deterministic torch for the duration of the block; restores the
    caller's thread count, determinism flag and RNG state afterwards."""
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.set_num_threads(1)
        _use_deterministic_algorithms(True)
        try:
            yield
        finally:
            torch.set_num_threads(threads)
            _use_deterministic_algorithms(deterministic, warn_only=warn_only)


def _use_deterministic_algorithms(mode: bool, warn_only: bool = False) -> None:
    """``torch.use_deterministic_algorithms`` without its other half: it also sets the flag of torch.compile's code
    generator, importing it (2 s in every process that fits or predicts); these models are never compiled."""
    torch._C._set_deterministic_algorithms(mode, warn_only=warn_only)


def row_dates(frame: pd.DataFrame, model: str) -> np.ndarray:
    """The ``date`` column as int64 nanoseconds; every row must have one."""
    if "date" not in frame.columns:
        raise ValueError(f"{model}: the frame has no 'date' column")
    dates = pd.to_datetime(frame["date"], cache=False)
    missing = int(dates.isna().sum())
    if missing:
        raise ValueError(f"{model}: {missing} row(s) of the frame have no 'date'")
    return dates.to_numpy(dtype="datetime64[ns]").astype("int64")


def history_index(frame: pd.DataFrame, lookback: int, model: str) -> np.ndarray:
    """For each row, the positions of the ``lookback`` rows of the same symbol ending at that row, oldest
    first, ordered by date (ties by frame order). Missing history points at position ``len(frame)``, the
    padding row."""
    if "symbol" not in frame.columns:
        raise ValueError(f"{model}: the frame has no 'symbol' column, needed to read each symbol's history")
    n = len(frame)
    if n == 0:
        return np.zeros((0, lookback), dtype="int64")
    codes = pd.factorize(frame["symbol"].astype("string").fillna("<null>"))[0]
    order = np.lexsort((np.arange(n), row_dates(frame, model), codes))
    sorted_codes = codes[order]
    starts = np.r_[True, sorted_codes[1:] != sorted_codes[:-1]]
    group_start = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    rank = np.arange(n) - group_start
    back = np.arange(lookback - 1, -1, -1)
    positions = np.arange(n)[:, None] - back[None, :]
    sorted_index = np.where(back[None, :] <= rank[:, None], order[np.maximum(positions, 0)], n)
    index = np.empty_like(sorted_index)
    index[order] = sorted_index
    return index


def mean_loss(net: nn.Module, loss: Callable[[torch.Tensor], torch.Tensor], rows: torch.Tensor) -> float:
    """Mean ``loss`` over ``rows`` in eval mode, in chunks."""
    net.eval()
    total = 0.0
    with torch.no_grad():
        for start in range(0, len(rows), PREDICT_CHUNK):
            chunk = rows[start : start + PREDICT_CHUNK]
            total += loss(chunk).item() * len(chunk)
    return total / len(rows)


def train_network(
    net: nn.Module,
    loss: Callable[[torch.Tensor], torch.Tensor],
    fit_rows: torch.Tensor,
    validation_rows: torch.Tensor,
    *,
    seed: int,
    max_epochs: int,
    patience: int,
    batch_size: int,
    epoch_rows: int,
    learning_rate: float,
    weight_decay: float,
) -> dict[str, object]:
    """Train ``net`` by AdamW on ``loss(rows)`` (the NLL of those rows), stopping after ``patience`` epochs without
    a better validation loss and keeping the best epoch's weights (no validation rows: all ``max_epochs``). The
    net's head must offer ``dof()``. Returns what the fit did, for ``fit_info_``."""
    optimizer = torch.optim.AdamW(net.parameters(), lr=learning_rate, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(seed)
    early_stopping = len(validation_rows) > 0
    # Each epoch draws at most epoch_rows fit rows (a fresh draw each time), so an epoch costs the
    # same on a long panel as on a short one while every row is still seen across epochs.
    per_epoch = min(len(fit_rows), epoch_rows)
    batch_size = max(min(per_epoch // MIN_STEPS_PER_EPOCH, batch_size), MIN_BATCH_SIZE)
    best_loss, best_epoch, best_state, stale = float("inf"), 0, None, 0
    epochs = 0
    train_loss = float("nan")
    for epoch in range(1, max_epochs + 1):
        epochs = epoch
        net.train()
        order = fit_rows[torch.randperm(len(fit_rows), generator=generator)[:per_epoch]]
        total = 0.0
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            optimizer.zero_grad()
            batch_loss = loss(rows)
            batch_loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            optimizer.step()
            total += batch_loss.detach().item() * len(rows)
        train_loss = total / max(len(order), 1)
        if not early_stopping:
            continue
        validation_loss = mean_loss(net, loss, validation_rows)
        if validation_loss < best_loss - 1e-4:
            best_loss, best_epoch, stale = validation_loss, epoch, 0
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            stale += 1
            if stale >= patience:
                break
    if best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    with torch.no_grad():
        dof = net.head.dof()
    return {
        "epochs": epochs,
        "best_epoch": best_epoch if early_stopping else epochs,
        "train_nll": train_loss,
        "validation_nll": best_loss if early_stopping else float("nan"),
        "batch_size": batch_size,
        "fit_rows": int(len(fit_rows)),
        "validation_rows": int(len(validation_rows)),
        "dof": float(dof) if dof is not None else float("inf"),
    }
