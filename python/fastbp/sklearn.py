"""scikit-learn estimators on fastbp networks: :class:`MLPClassifier`, :class:`MLPRegressor`.

They take the parameters of scikit-learn's own MLP estimators where those mean the same,
train with fastbp's C++ epoch loop, and pass scikit-learn's estimator checks. Needs
scikit-learn >= 1.6 (``pip install fastbp[sklearn]``).

Differences from scikit-learn: ``alpha`` is applied as weight decay ``alpha / batch_size``
(on biases too); ``solver`` is ``"sgd"`` or ``"adam"`` (no ``"lbfgs"``) with a constant
learning rate; early stopping monitors the validation loss (not the score) and keeps the
best weights; ``loss_`` of the regressor is the mean squared error (scikit-learn reports
half of it); the classifier always has one softmax output per class; no
``ConvergenceWarning`` is issued when ``max_iter`` is reached.
"""

from __future__ import annotations

import numbers
import os

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from .callbacks import EarlyStopping
from .layers import ACTIVATIONS, Dense
from .losses import MSELoss, SoftmaxCrossEntropyLoss
from .network import Network
from .onnx_export import to_onnx
from .optim import SGD, Adam

__all__ = ["MLPClassifier", "MLPRegressor"]

# scikit-learn's names: fastbp's, except that its sigmoid is "logistic".
_ACTIVATIONS = {{"sigmoid": "logistic"}.get(name, name): cls for name, cls in ACTIVATIONS.items()}


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) \
        and np.isfinite(value)


class _BaseMLP(BaseEstimator):
    """What the classifier and the regressor share: parameters, checks, the network."""

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate_init=0.001, max_iter=200,
                 shuffle=True, random_state=None, tol=1e-4, verbose=False, warm_start=False,
                 momentum=0.9, nesterovs_momentum=True, early_stopping=False,
                 validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 n_iter_no_change=10):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change

    # ---- checks and construction ------------------------------------------------------

    def _hidden_sizes(self) -> list:
        sizes = self.hidden_layer_sizes
        sizes = [sizes] if _is_int(sizes) else list(sizes)
        _check(all(_is_int(s) and s > 0 for s in sizes),
               f"hidden_layer_sizes must hold positive ints, got {self.hidden_layer_sizes!r}")
        return sizes

    def _check_params(self) -> None:
        """Validate every parameter, as scikit-learn does at fit time (not in __init__)."""
        self._hidden_sizes()
        _check(self.activation in _ACTIVATIONS,
               f"activation must be one of {sorted(_ACTIVATIONS)}, got {self.activation!r}")
        _check(self.solver in ("sgd", "adam"),
               f"solver must be 'sgd' or 'adam' (fastbp has no 'lbfgs'), got {self.solver!r}")
        _check(self.batch_size == "auto" or (_is_int(self.batch_size) and self.batch_size > 0),
               f"batch_size must be 'auto' or a positive int, got {self.batch_size!r}")
        _check(_is_int(self.max_iter) and self.max_iter > 0,
               f"max_iter must be a positive int, got {self.max_iter!r}")
        _check(_is_int(self.n_iter_no_change) and self.n_iter_no_change > 0,
               f"n_iter_no_change must be a positive int, got {self.n_iter_no_change!r}")
        for name, low, high in (("alpha", 0, np.inf), ("learning_rate_init", 0, np.inf),
                                ("tol", 0, np.inf), ("momentum", 0, 1),
                                ("validation_fraction", 0, 1), ("beta_1", 0, 1),
                                ("beta_2", 0, 1), ("epsilon", 0, np.inf)):
            value = getattr(self, name)
            strict = name in ("learning_rate_init", "validation_fraction", "epsilon")
            _check(_is_real(value) and (value > low if strict else value >= low)
                   and (value < high or (name == "momentum" and value == 1)),
                   f"{name} must be a real number in the allowed range, got {value!r}")

    def _batch_size(self, n_samples: int) -> int:
        return min(200 if self.batch_size == "auto" else self.batch_size, n_samples)

    def _optimizer(self, batch_size: int):
        decay = self.alpha / batch_size
        if self.solver == "sgd":
            return SGD(lr=self.learning_rate_init, momentum=self.momentum,
                       nesterov=self.nesterovs_momentum and self.momentum > 0,
                       weight_decay=decay)
        return Adam(lr=self.learning_rate_init, betas=(self.beta_1, self.beta_2),
                    eps=self.epsilon, weight_decay=decay)

    def _build(self, n_in: int, n_out: int, dtype) -> Network:
        widths = [n_in, *self._hidden_sizes(), n_out]
        act = _ACTIVATIONS[self.activation]
        layers = []
        for i in range(len(widths) - 1):
            layers.append(Dense(widths[i], widths[i + 1]))
            if i < len(widths) - 2:
                layers.append(act())
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        return Network(layers, self._loss(), dtype=np.dtype(dtype).name, seed=seed)

    # ---- training -----------------------------------------------------------------------

    def _train(self, X, T, n_out: int, *, incremental: bool):
        """Build the network unless continuing, then train: one epoch when incremental,
        else up to max_iter with scikit-learn's stopping rules."""
        if not (incremental or self.warm_start) or not hasattr(self, "network_"):
            self.network_ = self._build(X.shape[1], n_out, X.dtype)
            self.n_iter_, self.t_, self.loss_curve_ = 0, 0, []
            self.best_loss_ = np.inf
        elif X.dtype != self.network_.dtype:
            X = X.astype(self.network_.dtype)
        batch = self._batch_size(X.shape[0])
        if not hasattr(self, "_solver") or self._solver != (self.solver, batch):
            self._solver, self._optimizer_ = (self.solver, batch), self._optimizer(batch)
        val, stopper = None, None
        if incremental:
            epochs = 1
        else:
            epochs = self.max_iter
            if self.early_stopping:
                X, T, val = self._split(X, T)
            stopper = EarlyStopping(self.network_, patience=self.n_iter_no_change,
                                    min_delta=self.tol,
                                    monitor="val_loss" if val is not None else "loss")
        history = self.network_.fit(
            X, T, epochs=epochs, batch_size=batch, optimizer=self._optimizer_,
            shuffle=self.shuffle, validation_data=val, progress=bool(self.verbose),
            callbacks=[stopper] if stopper is not None else [])
        if val is not None:
            stopper.restore_best()
            self.best_validation_loss_ = stopper.best
        self.n_iter_ += history.epochs
        self.t_ += history.epochs * X.shape[0]
        self.loss_curve_ += history.loss
        self.loss_ = history.loss[-1]
        self.best_loss_ = min(self.best_loss_, *history.loss)
        return self

    def _split(self, X, T):
        """Hold out validation_fraction of the rows (stratified for a classifier)."""
        stratify = T if isinstance(self, ClassifierMixin) else None
        X, Xv, T, Tv = train_test_split(X, T, test_size=self.validation_fraction,
                                        random_state=check_random_state(self.random_state),
                                        stratify=stratify)
        return X, T, (Xv, Tv)

    def _outputs(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32))
        return self.network_.predict(X)

    def to_onnx(self, path: str | os.PathLike, opset: int = 17) -> None:
        """Write the fitted model to ``path`` as an ONNX model of the network's dtype,
        whose input ``"input"`` is a dynamic batch of rows (see
        :func:`fastbp.onnx_export.to_onnx`; needs ``pip install "fastbp[onnx]"``).

        The classifier's output ``"probabilities"`` is :meth:`MLPClassifier.predict_proba`;
        the regressor's output ``"output"`` is :meth:`MLPRegressor.predict`, of shape
        (batch,) for a single target.
        """
        check_is_fitted(self)
        to_onnx(self.network_, path, opset, **self._onnx_head())

    @property
    def coefs_(self) -> list:
        """The weight matrix of each layer, (n_in, n_out), as scikit-learn lays them out."""
        check_is_fitted(self)
        return [layer.W.copy() for layer in self.network_.layers if isinstance(layer, Dense)]

    @property
    def intercepts_(self) -> list:
        """The bias vector of each layer."""
        check_is_fitted(self)
        return [layer.b.copy() for layer in self.network_.layers if isinstance(layer, Dense)]

    @property
    def n_layers_(self) -> int:
        """Layers counted as scikit-learn does: input, hidden and output."""
        return len(self._hidden_sizes()) + 2


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier trained by fastbp (softmax cross-entropy).

    Parameters
    ----------
    hidden_layer_sizes : int or tuple of int
        Width of each hidden layer.
    activation : {"relu", "tanh", "logistic", "identity"}
        Activation of the hidden layers.
    solver : {"adam", "sgd"}
        ``fastbp.Adam`` or ``fastbp.SGD``.
    alpha : float
        L2 penalty, applied as weight decay ``alpha / batch_size``.
    batch_size : int or "auto"
        Mini-batch size; ``"auto"`` is ``min(200, n_samples)``.
    learning_rate_init : float
        The (constant) learning rate.
    max_iter : int
        Maximum number of epochs.
    shuffle : bool
        Shuffle the samples every epoch.
    random_state : int, RandomState or None
        Seeds the weights, the shuffling and the validation split.
    tol, n_iter_no_change :
        Training stops when the monitored loss has not improved by ``tol`` for
        ``n_iter_no_change`` epochs.
    verbose : bool
        Show a progress bar.
    warm_start : bool
        ``fit`` continues from the current weights.
    momentum, nesterovs_momentum :
        SGD's momentum.
    early_stopping : bool
        Hold out ``validation_fraction`` of the data and monitor its loss; the best
        weights are kept.
    validation_fraction : float
    beta_1, beta_2, epsilon :
        Adam's hyper-parameters.

    Attributes
    ----------
    classes_ : ndarray
    network_ : fastbp.Network
    loss_, best_loss_ : float
    loss_curve_ : list of float
    n_iter_, t_ : int
        Epochs trained and samples seen.
    coefs_, intercepts_ : list of ndarray
    n_features_in_, n_outputs_, n_layers_ : int
    out_activation_ : str
    """

    def fit(self, X, y) -> "MLPClassifier":
        """Train on ``X`` (n_samples, n_features) and labels ``y``; returns self."""
        X, y = self._data(X, y, reset=True)
        self.classes_, codes = np.unique(y, return_inverse=True)
        return self._fit_codes(X, codes, incremental=False)

    def partial_fit(self, X, y, classes=None) -> "MLPClassifier":
        """One epoch over (X, y); ``classes`` lists every label on the first call."""
        first = not hasattr(self, "classes_")
        if first and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit")
        X, y = self._data(X, y, reset=first)
        if first:
            self.classes_ = np.unique(column_or_1d(classes))
        unknown = np.setdiff1d(y, self.classes_)
        if unknown.size:
            raise ValueError(f"y holds labels not in classes: {unknown[:5].tolist()}")
        codes = LabelEncoder().fit(self.classes_).transform(y)
        return self._fit_codes(X, codes, incremental=True)

    def _data(self, X, y, reset: bool):
        self._check_params()
        X, y = validate_data(self, X, y, reset=reset, dtype=(np.float64, np.float32))
        check_classification_targets(y)
        return X, column_or_1d(y, warn=True)

    def _fit_codes(self, X, codes, incremental: bool) -> "MLPClassifier":
        self.n_outputs_, self.out_activation_ = len(self.classes_), "softmax"
        return self._train(X, codes.astype(np.int64), len(self.classes_),
                           incremental=incremental)

    def _loss(self):
        return SoftmaxCrossEntropyLoss()

    def _onnx_head(self) -> dict:
        """predict_proba's softmax, in the exported graph."""
        return {"head": "softmax", "output": "probabilities"}

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, (n_samples, n_classes), columns in ``classes_`` order."""
        z = self._outputs(X)
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X) -> np.ndarray:
        """Log of :meth:`predict_proba`."""
        z = self._outputs(X)
        z = z - z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    def predict(self, X) -> np.ndarray:
        """The most probable class of each sample."""
        best = self._outputs(X).argmax(axis=1)
        return self.classes_[best]


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor trained by fastbp (mean squared error).

    Parameters and attributes as for :class:`MLPClassifier` (without ``classes_``);
    ``out_activation_`` is ``"identity"``. ``y`` may be (n_samples,) or
    (n_samples, n_outputs); predictions have the same shape.
    """

    def fit(self, X, y) -> "MLPRegressor":
        """Train on ``X`` (n_samples, n_features) and targets ``y``; returns self."""
        return self._fit(X, y, reset=True, incremental=False)

    def partial_fit(self, X, y) -> "MLPRegressor":
        """One epoch over (X, y), continuing from the current weights once fitted."""
        return self._fit(X, y, reset=not hasattr(self, "network_"), incremental=True)

    def _fit(self, X, y, reset: bool, incremental: bool) -> "MLPRegressor":
        self._check_params()
        X, y = validate_data(self, X, y, reset=reset, multi_output=True, y_numeric=True,
                             dtype=(np.float64, np.float32))
        T = y.reshape(len(y), -1).astype(X.dtype)
        if not reset and T.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {T.shape[1]} outputs, the network {self.n_outputs_}")
        self.n_outputs_, self.out_activation_ = T.shape[1], "identity"
        return self._train(X, T, T.shape[1], incremental=incremental)

    def _loss(self):
        return MSELoss()

    def _onnx_head(self) -> dict:
        """predict's flattening of a single output, in the exported graph."""
        return {"head": "ravel" if self.n_outputs_ == 1 else None}

    def predict(self, X) -> np.ndarray:
        """Predicted targets, (n_samples,) for a single output."""
        y = self._outputs(X)
        return y.ravel() if y.shape[1] == 1 else y

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags
