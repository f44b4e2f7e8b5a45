"""Deep-learning forecasters (PyTorch, CPU): an MLP on one row of features, and a GRU and a dilated causal
TCN over each symbol's last ``lookback`` rows. All three share one distributional head (Student-t with a
learned dof, or Gaussian), one negative-log-likelihood training loop with early stopping on a time-ordered
validation tail (``deep_training``), and one ``save``/``load`` format (a ``torch.save`` payload of plain tensors and numbers).

Fitting and predicting run single-threaded with deterministic algorithms and a forked RNG seeded by the
model's seed, so the same inputs and seed give identical predictions and the caller's torch state is untouched.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from quant_assets.lib.models.base import (
    TARGET,
    FeaturePrep,
    Forecaster,
    finish,
    gaussian_distribution,
    student_t_distribution,
    training_rows,
)
from quant_assets.lib.models.deep_nets import GRUNet, MLPNet, TCNNet, negative_log_likelihood
from quant_assets.lib.models.deep_training import PREDICT_CHUNK, history_index, row_dates, torch_session, train_network

SAVE_FORMAT = 1
# Early stopping after two stale epochs: the validation loss bottoms out within the first few epochs on daily
# returns; over three windows of 2019-2021, waiting three (GRU, TCN) or four (MLP) epochs instead gave the same
# mean CRPS at every horizon but 3m, where the GRU was better and the MLP worse, for a third more epochs.
PATIENCE = 2
DISTRIBUTIONS = ("student_t", "gaussian")
# Below these sizes a validation tail says nothing; the model then trains for max_epochs without one.
MIN_VALIDATION_ROWS = 32
MIN_FIT_ROWS = 64
DAY_NS = 86_400 * 10**9


def _model_class(name: object) -> type["DeepForecaster"]:
    pending = DeepForecaster.__subclasses__()
    while pending:
        cls = pending.pop()
        if cls.name == name:
            return cls
        pending.extend(cls.__subclasses__())
    raise ValueError(f"unknown deep model {name!r} in a saved file")


class DeepForecaster(Forecaster):
    """Shared fit/predict/save/load of the deep forecasters; subclasses supply the network and whether it
    reads a per-symbol window (``sequence``)."""

    sequence = False

    @property
    def reads_history(self) -> bool:  # type: ignore[override]
        return self.sequence

    def __init__(
        self,
        horizon: str,
        seed: int = 0,
        *,
        distribution: str = "student_t",
        max_epochs: int = 20,
        patience: int = PATIENCE,
        batch_size: int = 512,
        epoch_rows: int = 16_384,
        learning_rate: float = 2e-3,
        weight_decay: float = 1e-4,
        dropout: float = 0.1,
        validation_fraction: float = 0.15,
        max_train_rows: int = 100_000,
    ) -> None:
        super().__init__(horizon, seed)
        if distribution not in DISTRIBUTIONS:
            raise ValueError(f"{self.name}: distribution must be one of {DISTRIBUTIONS}, got {distribution!r}")
        if not 0.0 < validation_fraction < 1.0:
            raise ValueError(f"{self.name}: validation_fraction must lie in (0, 1), got {validation_fraction}")
        self.distribution = distribution
        self.max_epochs = int(max_epochs)
        self.patience = int(patience)
        self.batch_size = int(batch_size)
        self.epoch_rows = int(epoch_rows)
        self.learning_rate = float(learning_rate)
        self.weight_decay = float(weight_decay)
        self.dropout = float(dropout)
        self.validation_fraction = float(validation_fraction)
        self.max_train_rows = int(max_train_rows)

    # -- what subclasses provide ---------------------------------------------------------------------

    @abstractmethod
    def _network(self, n_inputs: int) -> nn.Module:
        """A freshly initialized network taking ``n_inputs`` features per row (per step for sequences)."""

    def _config(self) -> dict[str, object]:
        """Constructor keyword arguments (besides horizon and seed), as plain lists and numbers."""
        return {
            "distribution": self.distribution,
            "max_epochs": self.max_epochs,
            "patience": self.patience,
            "batch_size": self.batch_size,
            "epoch_rows": self.epoch_rows,
            "learning_rate": self.learning_rate,
            "weight_decay": self.weight_decay,
            "dropout": self.dropout,
            "validation_fraction": self.validation_fraction,
            "max_train_rows": self.max_train_rows,
        }

    def params(self) -> dict[str, object]:
        """Hyper-parameters worth logging (MLflow params)."""
        return {**super().params(), **self._config()}

    # -- inputs ------------------------------------------------------------------------------------

    def _inputs(self, frame: pd.DataFrame) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The standardized feature table and, for sequence models, each row's history positions.

        Sequence tables gain a ``valid`` channel (1 for a real row) and a trailing all-zero padding row,
        so short histories pad with the training mean and the network can tell padding from data."""
        table = self.prep_.standardized(frame).astype("float32")
        if not self.sequence:
            return torch.from_numpy(table), None
        table = np.column_stack([table, np.ones(len(table), dtype="float32")])
        table = np.vstack([table, np.zeros((1, table.shape[1]), dtype="float32")])
        return torch.from_numpy(table), torch.from_numpy(history_index(frame, self.lookback, self.name))

    @staticmethod
    def _batch(table: torch.Tensor, index: torch.Tensor | None, rows: torch.Tensor) -> torch.Tensor:
        return table[rows] if index is None else table[index[rows]]

    def _split(self, dates: np.ndarray, known: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fit and validation positions: validation is the latest ``validation_fraction`` of the known rows
        by date. Labels of the rows just before it overlap it, so a gap of the horizon's length (at most
        half the earlier span) separates the two; too little data means no validation tail."""
        d = dates[known]
        ordered = np.sort(d)
        cutoff = ordered[min(int(len(ordered) * (1.0 - self.validation_fraction)), len(ordered) - 1)]
        gap = min(self.horizon.crypto_days * DAY_NS, (cutoff - ordered[0]) // 2)
        fit, validation = known[d < cutoff - gap], known[d >= cutoff]
        if len(validation) < MIN_VALIDATION_ROWS or len(fit) < MIN_FIT_ROWS:
            return known, known[:0]
        rng = np.random.default_rng(self.seed)
        # Deterministic subsampling keeps epochs affordable on long, wide panels.
        if len(fit) > self.max_train_rows:
            fit = np.sort(rng.choice(fit, self.max_train_rows, replace=False))
        cap = max(self.epoch_rows // 2, MIN_VALIDATION_ROWS)
        if len(validation) > cap:
            validation = np.sort(rng.choice(validation, cap, replace=False))
        return fit, validation

    # -- fit / predict -----------------------------------------------------------------------------

    def fit(self, frame: pd.DataFrame) -> "DeepForecaster":
        """Fit on the rows with a known ``target`` (all rows of ``frame`` serve as history for sequence
        models) by Student-t/Gaussian NLL with early stopping on the latest validation tail."""
        rows = training_rows(frame, self.name)
        frame = frame.reset_index(drop=True)
        self.prep_ = FeaturePrep.fit(rows)
        target = pd.to_numeric(frame[TARGET], errors="coerce").to_numpy(dtype="float64")
        known = np.flatnonzero(np.isfinite(target))
        y_known = target[known]
        self.target_center_ = float(y_known.mean())
        spread = float(y_known.std())
        self.target_scale_ = spread if spread > 1e-12 else 1.0
        y = torch.from_numpy(np.nan_to_num((target - self.target_center_) / self.target_scale_).astype("float32"))
        fit_rows, validation_rows = self._split(row_dates(frame, self.name), known)
        table, index = self._inputs(frame)
        with torch_session(self.seed):
            self.n_inputs_ = int(table.shape[1])
            self.net_ = self._network(self.n_inputs_)
            self.fit_info_ = train_network(
                self.net_, self._loss(table, index, y), torch.from_numpy(fit_rows), torch.from_numpy(validation_rows),
                seed=self.seed, max_epochs=self.max_epochs, patience=self.patience, batch_size=self.batch_size,
                epoch_rows=self.epoch_rows, learning_rate=self.learning_rate, weight_decay=self.weight_decay)
        return self

    def _loss(self, table: torch.Tensor, index: torch.Tensor | None,
              y: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        """The NLL of a batch of rows under the network."""
        def loss(rows: torch.Tensor) -> torch.Tensor:
            mean, log_scale = self.net_(self._batch(table, index, rows))
            return negative_log_likelihood(mean, log_scale, y[rows], self.net_.head.dof())

        return loss

    def _check_fitted(self) -> None:
        if not hasattr(self, "net_"):
            raise ValueError(f"{self.name}: the model is not fitted; call fit(frame) or load(path) first")

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """One distribution row per input row; sequence models read history from earlier rows of the same
        symbol in ``frame`` (rows with less than ``lookback`` rows of history are padded)."""
        self._check_fitted()
        frame = frame.reset_index(drop=True)
        table, index = self._inputs(frame)
        n = len(frame)
        means, log_scales = [], []
        with torch_session(self.seed), torch.no_grad():
            self.net_.eval()
            for start in range(0, n, PREDICT_CHUNK):
                rows = torch.arange(start, min(start + PREDICT_CHUNK, n))
                mean, log_scale = self.net_(self._batch(table, index, rows))
                means.append(mean.double().numpy())
                log_scales.append(log_scale.double().numpy())
            dof = self.net_.head.dof()
        mean = np.concatenate(means) if means else np.zeros(0)
        scale = np.exp(np.concatenate(log_scales)) if log_scales else np.zeros(0)
        mean = self.target_center_ + self.target_scale_ * mean
        scale = self.target_scale_ * scale
        if dof is None:
            distribution = gaussian_distribution(mean, scale)
        else:
            nu = float(dof)
            distribution = student_t_distribution(mean, scale * np.sqrt(nu / (nu - 2.0)), nu)
        return finish(frame, distribution)

    # -- persistence -------------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write the fitted model (weights, feature medians and standardization, target scale) with
        ``torch.save``; ``load`` restores it and predicts identically."""
        self._check_fitted()
        prep = self.prep_
        payload = {
            "format": SAVE_FORMAT,
            "model": self.name,
            "horizon": self.horizon.label,
            "seed": self.seed,
            "config": self._config(),
            "n_inputs": self.n_inputs_,
            "state": self.net_.state_dict(),
            "prep": {
                "columns": list(prep.columns),
                "medians": [float(prep.medians[c]) for c in prep.columns],
                "center": [float(v) for v in prep.center],
                "scale": [float(v) for v in prep.scale],
                "use_asset_class": bool(prep.use_asset_class),
            },
            "target": [self.target_center_, self.target_scale_],
            "fit_info": dict(self.fit_info_),
        }
        torch.save(payload, Path(path))

    @classmethod
    def load(cls, path: str | Path) -> "DeepForecaster":
        """Restore a model written by ``save``; ``DeepForecaster.load`` returns whichever deep model the file
        holds, a subclass's ``load`` insists on its own kind."""
        payload = torch.load(Path(path), weights_only=True)
        if not isinstance(payload, dict) or payload.get("format") != SAVE_FORMAT:
            raise ValueError(f"{path} is not a deep forecaster saved by this version (format {SAVE_FORMAT})")
        model_cls = _model_class(payload["model"])
        if not issubclass(model_cls, cls):
            raise ValueError(f"{path} holds a {payload['model']!r} model, not {cls.name!r}")
        model = model_cls(horizon=payload["horizon"], seed=payload["seed"], **payload["config"])
        prep = payload["prep"]
        model.prep_ = FeaturePrep(
            columns=list(prep["columns"]),
            medians=pd.Series(prep["medians"], index=prep["columns"], dtype="float64"),
            center=np.asarray(prep["center"], dtype="float64"),
            scale=np.asarray(prep["scale"], dtype="float64"),
            use_asset_class=prep["use_asset_class"],
        )
        model.target_center_, model.target_scale_ = (float(v) for v in payload["target"])
        model.n_inputs_ = int(payload["n_inputs"])
        model.fit_info_ = dict(payload["fit_info"])
        with torch_session(model.seed):
            model.net_ = model._network(model.n_inputs_)
        model.net_.load_state_dict(payload["state"])
        model.net_.eval()
        return model


class MLPForecaster(DeepForecaster):
    """MLP on one row of standardized, median-filled features with a Student-t (or Gaussian) head."""

    name = "mlp"

    def __init__(self, horizon: str, seed: int = 0, *, hidden: tuple[int, ...] = (64, 32), **training: object) -> None:
        super().__init__(horizon, seed, **training)
        self.hidden = tuple(int(h) for h in hidden)

    def _config(self) -> dict[str, object]:
        return {**super()._config(), "hidden": list(self.hidden)}

    def _network(self, n_inputs: int) -> nn.Module:
        return MLPNet(n_inputs, self.hidden, self.dropout, self.distribution == "student_t")


# A sequence row costs lookback steps: half the rows per epoch and fewer epochs (early stopping rarely ran
# past ten) keep the recurrent and convolutional nets near the MLP's cost at the same CRPS.
SEQUENCE_TRAINING: dict[str, object] = {"epoch_rows": 8_192, "max_epochs": 12}


class SequenceForecaster(DeepForecaster):
    """A deep model over each symbol's last ``lookback`` rows of features (by date), trained as sequences cost."""

    sequence = True

    def __init__(self, horizon: str, seed: int = 0, *, lookback: int = 20, **training: object) -> None:
        super().__init__(horizon, seed, **{**SEQUENCE_TRAINING, **training})
        if lookback < 1:
            raise ValueError(f"{self.name}: lookback must be at least 1, got {lookback}")
        self.lookback = int(lookback)

    def _config(self) -> dict[str, object]:
        return {**super()._config(), "lookback": self.lookback}


class GRUForecaster(SequenceForecaster):
    """GRU over each symbol's last ``lookback`` rows of features (by date), Student-t (or Gaussian) head."""

    name = "gru"

    def __init__(self, horizon: str, seed: int = 0, *, hidden_size: int = 32, num_layers: int = 1,
                 **rest: object) -> None:
        super().__init__(horizon, seed, **rest)
        self.hidden_size = int(hidden_size)
        self.num_layers = int(num_layers)

    def _config(self) -> dict[str, object]:
        return {**super()._config(), "hidden_size": self.hidden_size, "num_layers": self.num_layers}

    def _network(self, n_inputs: int) -> nn.Module:
        return GRUNet(n_inputs, self.hidden_size, self.num_layers, self.dropout, self.distribution == "student_t")


class TCNForecaster(SequenceForecaster):
    """Dilated causal 1-D convolutions over each symbol's last ``lookback`` rows, Student-t (or Gaussian) head.
    The default kernel 3 and dilations 1, 2, 4, 8 see 31 steps, the whole default window."""

    name = "tcn"

    def __init__(self, horizon: str, seed: int = 0, *, channels: int = 32, kernel_size: int = 3,
                 dilations: tuple[int, ...] = (1, 2, 4, 8), **rest: object) -> None:
        super().__init__(horizon, seed, **rest)
        self.channels = int(channels)
        self.kernel_size = int(kernel_size)
        self.dilations = tuple(int(d) for d in dilations)

    def _config(self) -> dict[str, object]:
        return {**super()._config(), "channels": self.channels, "kernel_size": self.kernel_size,
                "dilations": list(self.dilations)}

    def _network(self, n_inputs: int) -> nn.Module:
        return TCNNet(
            n_inputs,
            self.channels,
            self.kernel_size,
            self.dilations,
            self.lookback,
            self.dropout,
            self.distribution == "student_t",
        )
