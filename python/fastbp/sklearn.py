"""scikit-learn estimators on fastbp networks: :class:`MLPClassifier`, :class:`MLPRegressor`.

They take the parameters of scikit-learn's own MLP estimators where those mean the same,
train with fastbp's C++ epoch loop, and pass scikit-learn's estimator checks. Needs
scikit-learn >= 1.6 (``pip install fastbp[sklearn]``).

The stopping rules, ``learning_rate`` (``"constant"``, ``"invscaling"``, ``"adaptive"``,
for ``solver="sgd"`` only), early stopping on the validation score (accuracy, R²) with
``validation_scores_`` and ``best_validation_score_``, ``n_iter_`` (epochs of the last
``fit`` call), ``verbose`` output, ``solver="lbfgs"`` (SciPy's L-BFGS-B on
scikit-learn's objective) and ``ConvergenceWarning`` (a fit that ends at ``max_iter``, or
``max_fun`` for "lbfgs", never ``partial_fit``) are scikit-learn's.

``alpha`` is scikit-learn's L2 penalty on the weights (not the biases), in the gradient
and in ``loss_``: ``alpha / (2 n) ||W||²`` per batch of ``n`` rows for "sgd" and "adam",
over all the rows for "lbfgs". Sparse ``X`` (``scipy.sparse``) is taken as scikit-learn
takes it: each batch's rows are gathered into a dense block, never the whole matrix.

Differences from scikit-learn: SGD's momentum holds gradients (PyTorch's form), not
steps scaled by the learning rate, so a change of the rate also scales the momentum
carried over; the weights start from fastbp's initialisation; a warm start refuses a
change of the parameters that shape the network (see ``warm_start``), where scikit-learn applies a
new ``activation`` to the weights it has and ignores, or fails on, new
``hidden_layer_sizes``; ``partial_fit`` takes labels among ``classes_`` also with
``warm_start=True`` (scikit-learn then wants every class in each call); a step whose loss
or gradient is not finite is not applied: the fit raises scikit-learn's ValueError
("Solver produced non-finite parameter weights"), or with ``early_stopping`` stops there
with a ``ConvergenceWarning``, NaN as the epoch's loss and validation score and the best
validation weights kept (scikit-learn trains on with NaN weights until ``max_iter``).

``sample_weight`` (``fit``, ``partial_fit``) and the classifier's ``class_weight`` weight
each sample's loss. "lbfgs" minimises scikit-learn's weighted objective exactly (the
weighted mean loss plus ``alpha / (2 sum(w)) ||W||²``); "sgd" and "adam" scale the weights
of a call to mean 1 and divide each batch's weighted loss by its rows, where scikit-learn
divides by the batch's weight sum, so batches of heavier rows take larger steps (the two
agree for weights of one value and on average over batches).
"""

from __future__ import annotations

import inspect
import numbers
import os
import warnings

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize
from scipy.special import expit, xlogy
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data
from threadpoolctl import threadpool_limits

from . import _sparse, _validate
from .io.onnx_export import to_onnx
from .network import Network
from .nn.activations import ACTIVATIONS
from .nn.layers import Dense
from .nn.losses import BCEWithLogitsLoss, MSELoss, PoissonNLLLoss, SoftmaxCrossEntropyLoss
from .optim.optimizers import SGD, Adam

__all__ = ["MLPClassifier", "MLPRegressor"]

# scikit-learn's activations, under its names: fastbp's, except that its sigmoid is "logistic".
_ACTIVATIONS = {
    {"sigmoid": "logistic"}.get(name, name): ACTIVATIONS[name]
    for name in ("identity", "sigmoid", "tanh", "relu")
}


_SOLVERS = ("lbfgs", "sgd", "adam")
_LEARNING_RATES = ("constant", "invscaling", "adaptive")
# Real parameters: (low, high, low allowed, high allowed), scikit-learn's intervals except
# that validation_fraction must leave rows to validate on.
_INTERVALS = {
    "alpha": (0, np.inf, True, False),
    "learning_rate_init": (0, np.inf, False, False),
    "power_t": (0, np.inf, True, False),
    "tol": (0, np.inf, True, False),
    "momentum": (0, 1, True, True),
    "validation_fraction": (0, 1, False, False),
    "beta_1": (0, 1, True, False),
    "beta_2": (0, 1, True, False),
    "epsilon": (0, np.inf, False, False),
}
# Sparse X in any scipy.sparse format becomes CSR, whose rows a batch gathers.
_SPARSE_FORMATS = "csr"
_BOOLEANS = ("shuffle", "warm_start", "nesterovs_momentum", "early_stopping")
# scikit-learn's error where training diverges (without early stopping).
_NON_FINITE = (
    "Solver produced non-finite parameter weights. The input data may contain "
    "large values and need to be preprocessed."
)
# Set by the stochastic solvers only, as scikit-learn does; a fresh fit drops stale ones.
_STOCHASTIC_ATTRIBUTES = (
    "loss_curve_",
    "best_loss_",
    "validation_scores_",
    "best_validation_score_",
    "_no_improvement_count",
    "_best_params",
)


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _in_interval(value, low, high, low_ok, high_ok) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and np.isfinite(value)
        and (value > low or (low_ok and value == low))
        and (value < high or (high_ok and value == high))
    )


def _interval(low, high, low_ok, high_ok) -> str:
    return f"{'[' if low_ok else '('}{low}, {high}{']' if high_ok else ')'}"


def _assign(layers: list, coefs: list, intercepts: list) -> None:
    """Set the W and b of each Dense layer among ``layers``, in order."""
    dense = [layer for layer in layers if isinstance(layer, Dense)]
    for layer, W, b in zip(dense, coefs, intercepts):
        layer.W, layer.b = W, b


class _BaseMLP(BaseEstimator):
    """What the classifier and the regressor share: parameters, checks, the network."""

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        compute_dtype=None,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
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
        self.max_fun = max_fun
        self.compute_dtype = compute_dtype

    #: parameters a subclass adds to the shared ones, with their defaults: keyword-only
    #: ones after them, and positional ones before them (the regressor's ``loss``, first
    #: as in scikit-learn)
    _EXTRA_PARAMS: dict = {}
    _LEADING_PARAMS: dict = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # Each estimator gets its own __init__: the shared parameters and its own extra
        # ones in one signature (what scikit-learn's get_params reads), and argument
        # errors that name the estimator.
        shared = inspect.signature(_BaseMLP.__init__)
        self_param, *shared_params = shared.parameters.values()
        signature = shared.replace(
            parameters=[
                self_param,
                *(
                    inspect.Parameter(
                        name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default
                    )
                    for name, default in cls._LEADING_PARAMS.items()
                ),
                *shared_params,
                *(
                    inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default)
                    for name, default in cls._EXTRA_PARAMS.items()
                ),
            ]
        )
        qualname = f"{cls.__qualname__}.__init__"

        def __init__(self, *args, **params):
            try:
                bound = signature.bind(self, *args, **params)
            except TypeError as e:
                raise TypeError(f"{qualname}() {e}") from None
            bound.apply_defaults()
            for name, value in list(bound.arguments.items())[1:]:
                setattr(self, name, value)

        __init__.__signature__, __init__.__qualname__ = signature, qualname
        __init__.__doc__ = _BaseMLP.__init__.__doc__
        cls.__init__ = __init__

    # ---- checks and construction ------------------------------------------------------

    def _fail(self, name: str, expected: str, value) -> None:
        raise ValueError(f"{type(self).__name__}: {name} must be {expected}, got {value!r}")

    def _hidden_sizes(self) -> list:
        sizes = self.hidden_layer_sizes
        sizes = [sizes] if _is_int(sizes) else list(sizes)
        if not all(_is_int(s) and s > 0 for s in sizes):
            self._fail(
                "hidden_layer_sizes",
                "a positive int or a sequence of them",
                self.hidden_layer_sizes,
            )
        return sizes

    def _check_params(self) -> None:
        """Validate every parameter, as scikit-learn does at fit time (not in __init__)."""
        try:
            self._hidden_sizes()
        except TypeError:  # not a sequence at all
            self._fail(
                "hidden_layer_sizes",
                "a positive int or a sequence of them",
                self.hidden_layer_sizes,
            )
        for name, allowed in (
            ("activation", sorted(_ACTIVATIONS)),
            ("solver", _SOLVERS),
            ("learning_rate", _LEARNING_RATES),
        ):
            value = getattr(self, name)
            if not isinstance(value, str) or value not in allowed:
                self._fail(name, "one of " + ", ".join(map(repr, allowed)), value)
        if not (self.batch_size == "auto" or (_is_int(self.batch_size) and self.batch_size > 0)):
            self._fail("batch_size", "'auto' or a positive int", self.batch_size)
        for name in ("max_iter", "max_fun"):
            if not (_is_int(getattr(self, name)) and getattr(self, name) > 0):
                self._fail(name, "a positive int", getattr(self, name))
        if not (
            (_is_int(self.n_iter_no_change) and self.n_iter_no_change > 0)
            or self.n_iter_no_change == np.inf
        ):
            self._fail("n_iter_no_change", "a positive int or numpy.inf", self.n_iter_no_change)
        for name, bounds in _INTERVALS.items():
            if not _in_interval(getattr(self, name), *bounds):
                self._fail(name, "a real number in " + _interval(*bounds), getattr(self, name))
        for name in _BOOLEANS:
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                self._fail(name, "a bool", getattr(self, name))
        if not (
            isinstance(self.verbose, (bool, np.bool_))
            or (_is_int(self.verbose) and self.verbose >= 0)
        ):
            self._fail("verbose", "a bool or an int >= 0", self.verbose)
        if self.compute_dtype not in (None, *_validate.COMPUTE_DTYPES):
            self._fail(
                "compute_dtype",
                "None or one of " + ", ".join(map(repr, _validate.COMPUTE_DTYPES)),
                self.compute_dtype,
            )

    def _network_params(self) -> dict:
        """The parameters that shape the network, with the values that would build it now
        (``hidden_layer_sizes`` as a tuple). A warm start keeps the network, so they
        cannot change between its fits; every other parameter is a training setting."""
        return {
            "hidden_layer_sizes": tuple(self._hidden_sizes()),
            "activation": self.activation,
            "compute_dtype": self.compute_dtype,
        }

    def _start(self, incremental: bool) -> bool:
        """Check the parameters of a fit (partial_fit when ``incremental``) and return
        whether it continues training the current network (partial_fit, or fit with
        warm_start), whose shaping parameters must then be those it was built with."""
        self._check_params()
        if incremental and self.early_stopping:
            raise ValueError(
                f"{type(self).__name__}: partial_fit does not support early_stopping=True"
            )
        if not ((incremental or self.warm_start) and hasattr(self, "network_")):
            return False
        for name, value in self._network_params().items():
            if value != self._built_params[name]:
                raise ValueError(
                    f"{type(self).__name__}: {name} shapes the network, which a warm start "
                    f"keeps: it was built with {name}={self._built_params[name]!r}, got "
                    f"{getattr(self, name)!r}; fit with warm_start=False to build a new "
                    "network"
                )
        return True

    def _batch_size(self, n_samples: int) -> int:
        return min(200 if self.batch_size == "auto" else self.batch_size, n_samples)

    def _optimizer(self):
        """The solver's optimizer, without weight decay: the penalty on the weights alone
        is fastbp's ``weight_penalty`` (see :meth:`_epochs`)."""
        if self.solver == "sgd":
            return SGD(
                lr=self.learning_rate_init,
                momentum=self.momentum,
                nesterov=self.nesterovs_momentum and self.momentum > 0,
            )
        return Adam(lr=self.learning_rate_init, betas=(self.beta_1, self.beta_2), eps=self.epsilon)

    def _layers(self, widths: list) -> list:
        """Dense layers of ``widths``, the hidden activation between them."""
        act = _ACTIVATIONS[self.activation]
        layers = []
        for i in range(len(widths) - 1):
            layers.append(Dense(widths[i], widths[i + 1]))
            if i < len(widths) - 2:
                layers.append(act())
        return layers

    def _build(self, n_in: int, n_out: int, dtype, start=None) -> Network:
        """A new network, with fastbp's initial weights or ``start``, assigned
        ``(coefs_, intercepts_)`` checked first."""
        widths = [n_in, *self._hidden_sizes(), n_out]
        layers = self._layers(widths)
        if start is not None:
            _assign(layers, *self._checked_parameters(*start, widths))
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
        return Network(
            layers,
            self._loss(),
            dtype=np.dtype(dtype).name,
            seed=seed,
            compute_dtype=self.compute_dtype,
        )

    def _copy_network(self, coefs: list, intercepts: list, tail: list) -> Network:
        """A network of the fitted one's dtype and activations holding ``coefs`` and
        ``intercepts``, followed by the layers ``tail`` (for export only)."""
        layers = self._layers([coefs[0].shape[0], *(W.shape[1] for W in coefs)])
        _assign(layers, coefs, intercepts)
        return Network(layers + tail, MSELoss(), dtype=self.network_.dtype.name)

    # ---- coefs_ and intercepts_ -----------------------------------------------------------
    # As scikit-learn's, they are lists of arrays that may be replaced, element by element
    # or whole. After a fit they hold views of the network's parameters (so writing into
    # them changes the network); a replaced list or element is checked and copied into
    # the network before its next use (predict, partial_fit, a warm fit), and partial_fit
    # or a warm fit of an estimator without a network starts from them.

    @property
    def coefs_(self) -> list:
        """The weight matrix of each layer, (n_in, n_out), as scikit-learn lays them out:
        views of the network's parameters; assignable (see above)."""
        return self._parameter_list("_coefs")

    @coefs_.setter
    def coefs_(self, value) -> None:
        self._keep_parameter_lists()
        self._coefs = value

    @property
    def intercepts_(self) -> list:
        """The bias vector of each layer: views of the network's parameters; assignable."""
        return self._parameter_list("_intercepts")

    @intercepts_.setter
    def intercepts_(self, value) -> None:
        self._keep_parameter_lists()
        self._intercepts = value

    def __sklearn_is_fitted__(self) -> bool:
        # A network makes the estimator fitted; assigned coefs_ alone do not.
        return "network_" in self.__dict__

    def _dense_layers(self) -> list:
        return [layer for layer in self.network_.layers if isinstance(layer, Dense)]

    def _link_parameters(self) -> None:
        """coefs_ and intercepts_ as views of the network's parameters, and n_layers_."""
        dense = self._dense_layers()
        self._coefs, self._intercepts = [d.W for d in dense], [d.b for d in dense]
        self.n_layers_ = len(dense) + 1

    def _linked(self) -> bool:
        """Whether coefs_ and intercepts_ are still the network's own views."""
        dense, coefs, intercepts = self._dense_layers(), self._coefs, self._intercepts
        return (
            isinstance(coefs, list)
            and isinstance(intercepts, list)
            and len(coefs) == len(intercepts) == len(dense)
            and all(W is d.W and b is d.b for d, W, b in zip(dense, coefs, intercepts))
        )

    def _keep_parameter_lists(self) -> None:
        """Link coefs_ and intercepts_ to a network that has neither (after unpickling)."""
        if "network_" in self.__dict__ and "_coefs" not in self.__dict__:
            self._link_parameters()

    def _parameter_list(self, attr: str) -> list:
        """coefs_ (``attr="_coefs"``) or intercepts_; NotFittedError when neither a
        network nor an assigned list has it."""
        self._keep_parameter_lists()
        if attr not in self.__dict__:
            check_is_fitted(self)
        return self.__dict__[attr]

    def _assigned_start(self, incremental: bool):
        """The assigned ``(coefs_, intercepts_)`` that partial_fit and a warm fit of an
        estimator without a network start from, as scikit-learn's do; None if there are
        none (or the fit builds a new network)."""
        if not (incremental or self.warm_start):
            return None
        coefs, intercepts = self.__dict__.get("_coefs"), self.__dict__.get("_intercepts")
        if coefs is None and intercepts is None:
            return None
        if coefs is None or intercepts is None:
            raise ValueError(
                f"{type(self).__name__}: set both coefs_ and intercepts_ to "
                f"start from them, got only "
                f"{'coefs_' if intercepts is None else 'intercepts_'}"
            )
        return coefs, intercepts

    def _use_assigned_parameters(self) -> None:
        """Copy coefs_ and intercepts_ into the network where they were replaced, once
        checked, and link them again."""
        if "_coefs" not in self.__dict__ or self._linked():
            return
        dense = self._dense_layers()
        widths = [dense[0].W.shape[0], *(d.W.shape[1] for d in dense)]
        _assign(dense, *self._checked_parameters(self._coefs, self._intercepts, widths))
        self._link_parameters()

    def _checked_parameters(self, coefs, intercepts, widths: list) -> tuple:
        """Assigned coefs_ and intercepts_ as float64 arrays, ValueError unless they are
        lists of one finite array per layer of ``widths``, of its shapes."""
        name, n_layers = type(self).__name__, len(widths) - 1
        for attr, arrays in (("coefs_", coefs), ("intercepts_", intercepts)):
            if not isinstance(arrays, (list, tuple)) or len(arrays) != n_layers:
                raise ValueError(
                    f"{name}: {attr} must be a list of {n_layers} arrays, one "
                    f"per layer, got {arrays!r:.80}"
                )
        checked = ([], [])
        for i in range(n_layers):
            shapes = ((widths[i], widths[i + 1]), (widths[i + 1],))
            for attr, arrays, shape, out in zip(
                ("coefs_", "intercepts_"), (coefs, intercepts), shapes, checked
            ):
                try:
                    array = np.asarray(arrays[i], dtype=np.float64)
                except (TypeError, ValueError):
                    raise ValueError(
                        f"{name}: {attr}[{i}] must be an array of real numbers, "
                        f"got {arrays[i]!r:.80}"
                    ) from None
                if array.shape != shape:
                    raise ValueError(
                        f"{name}: {attr}[{i}] must have shape {shape} (layer "
                        f"{i} maps {widths[i]} to {widths[i + 1]} units), got "
                        f"{array.shape}"
                    )
                if not np.isfinite(array).all():
                    raise ValueError(f"{name}: {attr}[{i}] must be finite")
                out.append(array)
        return checked

    def __getstate__(self) -> dict:
        # Views of the network's parameters would come back as copies: drop them, the
        # network has them. Assigned lists not yet used are kept.
        state = dict(super().__getstate__())
        if "network_" in state and state.get("_coefs") is not None and self._linked():
            del state["_coefs"], state["_intercepts"]
        return state

    # ---- training -----------------------------------------------------------------------

    def _sample_weight(self, sample_weight, n: int):
        """``sample_weight`` checked: None, or n finite weights >= 0 with a positive sum,
        as float64 (a copy: the caller's array is never changed)."""
        if sample_weight is None:
            return None
        try:
            w = np.array(sample_weight, dtype=np.float64)
        except (TypeError, ValueError):
            self._fail("sample_weight", f"{n} real numbers", sample_weight)
        if w.ndim == 0:
            w = np.full(n, float(w))
        if w.shape != (n,):
            raise ValueError(
                f"{type(self).__name__}: sample_weight must have shape ({n},), got {w.shape}"
            )
        if not np.isfinite(w).all() or (w < 0).any():
            raise ValueError(f"{type(self).__name__}: sample_weight must be finite and >= 0")
        if not w.sum() > 0:
            raise ValueError(
                f"{type(self).__name__}: sample_weight is zero for every "
                "sample: there is nothing to train on"
            )
        return w

    def _train(self, X, T, n_out: int, w, *, incremental: bool, warm: bool):
        """Build the network unless ``warm`` (continuing, see :meth:`_start`), then
        train: one epoch when incremental, else up to max_iter epochs (or L-BFGS
        iterations) with scikit-learn's rules; ``w``: each row's weight (checked), or
        None."""
        if warm:
            self._use_assigned_parameters()
        if warm and X.dtype != self.network_.dtype:
            X = X.astype(self.network_.dtype)
        elif not warm and self.compute_dtype is not None:
            X = X.astype(np.float32, copy=False)  # a compute dtype needs float32 weights
        if sp.issparse(X):  # CSR (validate_data's), its rows' values each stored once
            X = _sparse.canonical("X", X)
        val = None
        if self.solver != "lbfgs" and self.early_stopping:
            X, T, w, val = self._split(X, T, w)
        if not warm:
            self.network_ = self._build(
                X.shape[1], n_out, X.dtype, self._assigned_start(incremental)
            )
            self._built_params = self._network_params()
            self._link_parameters()
            self.n_iter_, self.t_ = 0, 0
            for name in _STOCHASTIC_ATTRIBUTES:
                self.__dict__.pop(name, None)
        if self.solver == "lbfgs":
            self._fit_lbfgs(X, T, w)
        else:
            self._fit_stochastic(X, T, w, val, incremental)
        return self

    def _fit_stochastic(self, X, T, w, val, incremental: bool) -> None:
        """scikit-learn's epoch loop for "sgd" and "adam": one fastbp fit of all the
        epochs (see :meth:`_epochs`), scikit-learn's rules after each in its callback.
        Weights ``w`` are scaled to mean 1 over the rows, and the penalty divided by their
        mean, so the objective's scale is scikit-learn's."""
        net, n = self.network_, X.shape[0]
        mean_w = 1.0 if w is None else float(w.mean())
        row_weights = self._row_weights(w, n)
        if not hasattr(self, "loss_curve_"):
            self.loss_curve_, self._no_improvement_count = [], 0
            self.validation_scores_ = self.best_validation_score_ = self.best_loss_ = None
        # scikit-learn's starting values, also when a warm start turns early stopping
        # on or off.
        if val is not None and self.validation_scores_ is None:
            self.validation_scores_, self.best_validation_score_ = [], -np.inf
            self.best_loss_, self._best_params = None, net.params.copy()
        elif val is None and self.best_loss_ is None:
            self.validation_scores_ = self.best_validation_score_ = None
            self.best_loss_ = np.inf
        batch = self._batch_size(n)
        # A new optimizer (momentum and learning rate) per fit, kept over partial_fit
        # calls, as scikit-learn does.
        if not incremental or getattr(self, "_solver", None) != self.solver:
            self._solver, self._optimizer_ = self.solver, self._optimizer()
        opt = self._optimizer_
        offset = self._loss_offset(T, w)
        self.n_iter_ = 0
        epochs = 1 if incremental else self.max_iter
        stopped = False

        def after_epoch(mean_loss: float) -> bool:
            """scikit-learn's bookkeeping after an epoch whose mean loss (in fastbp's
            scale, NaN for one that diverged) is ``mean_loss``; False to stop."""
            nonlocal stopped
            # scikit-learn's loss, on which its stopping rule (tol) acts
            self.loss_ = offset + self._loss_scale * mean_loss
            self.n_iter_ += 1
            self.t_ += n
            self.loss_curve_.append(self.loss_)
            if self.verbose:
                print(f"Iteration {self.n_iter_:d}, loss = {self.loss_:.8f}")
            if np.isnan(self.loss_):  # diverged: the best validation weights are restored
                self._count_score(np.nan)
                stopped = True
                return False
            if val is not None:
                self._count_score(self._validation_score(*val))
            else:
                self._count_loss(self.loss_)
            if self.solver == "sgd" and self.learning_rate == "invscaling":
                opt.lr = self.learning_rate_init / (self.t_ + 1) ** self.power_t
            if self._no_improvement_count > self.n_iter_no_change:
                if self._plateau(val is not None):
                    stopped = True
                    return False
                self._no_improvement_count = 0
            return True

        lr = opt.lr  # fit sets it back when it ends; the epochs' changes are kept

        def on_epoch(epoch: int, logs: dict) -> bool:
            nonlocal lr
            go_on = after_epoch(logs["loss"])
            lr = opt.lr
            return go_on

        try:
            self._epochs(X, T, epochs, batch, row_weights, mean_w, on_epoch)
        except FloatingPointError as error:
            # A step whose loss or gradient is not finite (the step is not applied):
            # with early stopping, NaN and a ConvergenceWarning, where scikit-learn trains
            # on with NaN weights to max_iter and keeps its best validation weights; else
            # scikit-learn's ValueError.
            if val is None:
                raise ValueError(_NON_FINITE) from error
            warnings.warn(
                f"Stochastic Optimizer: {error}. Training stops; the weights of "
                "the best validation score are kept.",
                ConvergenceWarning,
            )
            after_epoch(np.nan)
        finally:
            opt.lr = lr
        if not stopped and not incremental:  # scikit-learn's rule: partial_fit never warns
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) "
                "reached and the optimization hasn't converged yet.",
                ConvergenceWarning,
            )
        if val is not None:
            net.params[...] = self._best_params

    def _epochs(self, X, T, epochs: int, batch: int, row_weights, mean_w: float, on_epoch):
        """Up to ``epochs`` epochs in one fastbp ``fit`` over batches of ``batch`` rows
        (shuffled from the network's generator when ``shuffle``; a sparse X's rows
        gathered into a dense block per batch), ``on_epoch(epoch, logs)`` after each (False
        stops). Each batch of ``n_b`` rows adds scikit-learn's penalty ``alpha / (2 n_b)
        ||W||²`` to its loss and its gradient to the weights' (not the biases'), as
        fastbp's ``weight_penalty`` does, in fastbp's loss scale (and with weights ``w``
        scaled to mean 1, divided by their mean ``mean_w``, as scikit-learn divides by
        the batch's weight sum). FloatingPointError where a step diverges."""
        self.network_.fit(
            X,
            T,
            epochs=epochs,
            batch_size=batch,
            optimizer=self._optimizer_,
            shuffle=self.shuffle,
            callbacks=[on_epoch],
            progress=False,
            sample_weight=row_weights,
            weight_penalty=self.alpha / (mean_w * self._loss_scale),
        )

    def _count_loss(self, loss: float) -> None:
        """An epoch without a training-loss decrease of more than tol counts."""
        if loss > self.best_loss_ - self.tol:
            self._no_improvement_count += 1
        else:
            self._no_improvement_count = 0
        if loss < self.best_loss_:
            self.best_loss_ = loss

    def _count_score(self, score: float) -> None:
        """An epoch without a validation-score increase of tol counts; the best score's
        weights are kept."""
        self.validation_scores_.append(score)
        if self.verbose:
            print(f"Validation score: {score:f}")
        if score < self.best_validation_score_ + self.tol:
            self._no_improvement_count += 1
        else:
            self._no_improvement_count = 0
        if score > self.best_validation_score_:
            self.best_validation_score_ = score
            self._best_params = self.network_.params.copy()

    def _plateau(self, on_score: bool) -> bool:
        """After more than n_iter_no_change epochs without improvement: whether to stop,
        or (adaptive sgd) divide the learning rate by 5 and go on."""
        what = "Validation score" if on_score else "Training loss"
        msg = (
            f"{what} did not improve more than tol={self.tol:f} for "
            f"{self.n_iter_no_change:d} consecutive epochs."
        )
        opt = self._optimizer_
        if self.solver != "sgd" or self.learning_rate != "adaptive":
            msg += " Stopping."
        elif opt.lr <= 1e-6:
            msg += " Learning rate too small. Stopping."
        else:
            opt.lr /= 5.0
            if self.verbose:
                print(f"{msg} Setting learning rate to {opt.lr:f}")
            return False
        if self.verbose:
            print(msg)
        return True

    def _validation_score(self, X, T, w) -> float:
        """scikit-learn's score on the held-out rows, weighted by ``w`` if not None (NaN
        for non-finite outputs)."""
        out = self.network_.predict(X)
        return self._score_outputs(out, T, w) if np.isfinite(out).all() else np.nan

    def _fit_lbfgs(self, X, T, w) -> None:
        """Full-batch L-BFGS-B (SciPy) on scikit-learn's objective: its loss (the
        ``w``-weighted mean) plus ``alpha / (2 sum(w)) ||W||²`` over the weights (not the
        biases), ``sum(w)`` being the number of rows without weights, with scikit-learn's
        options; fastbp's backward pass gives the loss and gradient."""
        net, scale, n = self.network_, self._loss_scale, X.shape[0]
        offset = self._loss_offset(T, w)
        total = n if w is None else float(w.sum())
        row_weights = self._row_weights(w, n)
        decay = np.concatenate(
            [
                np.full(layer.W.size, self.alpha / total) if part == "W" else np.zeros(layer.b.size)
                for layer in net.layers
                if isinstance(layer, Dense)
                for part in "Wb"
            ]
        )

        def objective(theta):
            net.params[...] = theta
            loss = (
                scale * self._full_backward(X, T, row_weights)
                + offset
                + 0.5 * np.dot(decay * theta, theta)
            )
            return loss, scale * net.grads + decay * theta

        # L-BFGS-B's BLAS calls work on vectors of n_params: BLAS threads would only
        # contend with fastbp's own (15x slower on two cores).
        with threadpool_limits(1, user_api="blas"):
            result = minimize(
                objective,
                net.params.astype(np.float64),
                method="L-BFGS-B",
                jac=True,
                options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol},
            )
        if not np.isfinite(result.x).all():
            raise ValueError(_NON_FINITE)
        net.params[...] = result.x
        self.n_iter_ = min(result.nit, self.max_iter)
        self.loss_ = float(result.fun)
        if result.status != 0:  # stopped by max_iter or max_fun, or failed
            warnings.warn(self._lbfgs_warning(result), ConvergenceWarning)

    def _full_backward(self, X, T, row_weights) -> float:
        """The network's loss and gradients (in ``net.grads``) on all the rows, each
        weighted by ``row_weights``; a sparse ``X`` in dense blocks of its rows, their
        losses and gradients averaged weighted by their rows."""
        net = self.network_
        if not sp.issparse(X):
            return net.backward(X, T, sample_weight=row_weights)
        loss, grads = 0.0, np.zeros_like(net.grads)
        take = _sparse.Rows(X, _sparse.block_rows(X))
        for rows in _sparse.blocks(X):
            w = None if row_weights is None else row_weights[rows]
            share = len(T[rows]) / X.shape[0]
            loss += share * net.backward(take(rows), T[rows], sample_weight=w)
            grads += share * net.grads
        net.grads[...] = grads
        return loss

    def _lbfgs_warning(self, result) -> str:
        """scikit-learn's words for an L-BFGS-B run that did not converge."""
        message = (
            f"lbfgs failed to converge after {self.n_iter_} iteration(s) "
            f"(status={result.status}):\n{result.message}\n"
        )
        if self.n_iter_ == self.max_iter:
            message += (
                "\nIncrease the number of iterations to improve the convergence "
                f"(max_iter={self.max_iter})."
            )
        return message + (
            "\nYou might also want to scale the data as shown in:\n"
            "    https://scikit-learn.org/stable/modules/preprocessing.html"
        )

    def _row_weights(self, w, n: int):
        """What each of the ``n`` rows' loss is multiplied by in fastbp's mean: the weights
        ``w`` scaled to mean 1 (None without weights), times :meth:`_loss_per_row`."""
        per_row = self._loss_per_row()
        if w is None and per_row == 1:
            return None
        w = np.ones(n) if w is None else w / w.mean()
        return (per_row * w).astype(self.network_.dtype)

    def _loss_per_row(self) -> int:
        """The factor that turns fastbp's mean loss per element into scikit-learn's loss
        per row, where the two differ by the number of outputs."""
        return 1

    def _loss_offset(self, T, w) -> float:
        """What scikit-learn's loss adds to fastbp's on targets ``T`` (rows weighted by
        ``w``): terms of the targets alone, which change no gradient."""
        return 0.0

    def _stochastic(self) -> bool:
        """partial_fit exists for the stochastic solvers only, as in scikit-learn."""
        if self.solver not in ("sgd", "adam"):
            raise AttributeError(
                f"{type(self).__name__}.partial_fit needs solver 'sgd' or "
                f"'adam', got {self.solver!r}"
            )
        return True

    def _split(self, X, T, w):
        """Hold out validation_fraction of the rows and their weights (stratified for a
        classifier): ``(X, T, w, (Xv, Tv, wv))``."""
        arrays = (X, T) if w is None else (X, T, w)
        X, Xv, T, Tv, *weights = train_test_split(
            *arrays,
            test_size=self.validation_fraction,
            random_state=check_random_state(self.random_state),
            stratify=self._strata(T),
        )
        w, wv = weights or (None, None)
        if Xv.shape[0] < 2:  # scikit-learn's words, and the numbers
            raise ValueError(
                f"The validation set is too small: validation_fraction="
                f"{self.validation_fraction} of the {len(X) + len(Xv)} rows "
                f"holds out {Xv.shape[0]}, and a score needs 2. Increase "
                "'validation_fraction' or the size of your dataset."
            )
        return X, T, w, (Xv, Tv, wv)

    def _strata(self, T):
        """What the validation split is stratified on: nothing (the classifier stratifies)."""

    def _outputs(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(
            self, X, reset=False, accept_sparse=_SPARSE_FORMATS, dtype=(np.float64, np.float32)
        )
        self._use_assigned_parameters()
        return self.network_.predict(X)

    def to_onnx(self, path: str | os.PathLike, opset: int = 17) -> None:
        """Write the fitted model to ``path`` as an ONNX model of the network's dtype,
        whose input ``"input"`` is a dynamic batch of rows (see
        :func:`fastbp.io.onnx_export.to_onnx`; needs ``pip install "fastbp[onnx]"``).

        The classifier's output ``"probabilities"`` is :meth:`MLPClassifier.predict_proba`;
        the regressor's output ``"output"`` is :meth:`MLPRegressor.predict`, of shape
        (batch,) for a single target.
        """
        check_is_fitted(self)
        self._use_assigned_parameters()
        network, head = self._onnx_graph()
        to_onnx(network, path, opset, **head)


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier trained by fastbp.

    Its output layer is scikit-learn's: a softmax output per class (softmax
    cross-entropy), or for two classes one sigmoid output (binary cross-entropy), the
    probability of ``classes_[1]``. As scikit-learn's, it also takes a label indicator
    matrix ``y`` (n_samples, n_labels) of 0 and 1 (multilabel classification): one
    sigmoid output per label, trained on scikit-learn's loss (the binary cross-entropy
    summed over the labels); ``classes_`` is ``0 .. n_labels - 1``, ``predict`` gives the
    indicator matrix of the probabilities above 0.5 and ``predict_proba`` each label's
    probability. The validation split of ``early_stopping`` is then not stratified.

    Parameters
    ----------
    hidden_layer_sizes : int or tuple of int
        Width of each hidden layer.
    activation : {"relu", "tanh", "logistic", "identity"}
        Activation of the hidden layers.
    solver : {"adam", "sgd", "lbfgs"}
        ``fastbp.Adam`` or ``fastbp.SGD`` over mini-batches, or full-batch L-BFGS-B
        (``scipy.optimize.minimize``) on fastbp's loss and gradient.
    alpha : float
        scikit-learn's L2 penalty on the weights (not the biases): ``alpha / (2 n)
        ||W||²`` added to the loss of each batch of ``n`` rows ("sgd", "adam") or of all
        the rows ("lbfgs"), and its gradient to the weights'.
    batch_size : int or "auto"
        Mini-batch size; ``"auto"`` is ``min(200, n_samples)``.
    learning_rate : {"constant", "invscaling", "adaptive"}
        For "sgd" only (the others ignore it), as scikit-learn: ``"invscaling"`` sets the
        rate after each epoch to ``learning_rate_init / (t_ + 1) ** power_t``, ``t_`` the
        samples seen; ``"adaptive"`` divides it by 5 when more than ``n_iter_no_change``
        epochs in a row have not improved (see ``tol``), instead of stopping, and stops
        once it is at most 1e-6.
    learning_rate_init : float
        The initial learning rate ("sgd", "adam").
    power_t : float
        Exponent of ``"invscaling"``.
    max_iter : int
        Maximum number of epochs ("sgd", "adam") or of L-BFGS iterations ("lbfgs").
    shuffle : bool
        Shuffle the samples every epoch.
    random_state : int, RandomState or None
        Seeds the weights, the shuffling and the validation split.
    tol, n_iter_no_change :
        An epoch improves when the training loss falls by more than ``tol`` below the
        best so far (with ``early_stopping``, the validation score rises to at least the
        best plus ``tol``); training stops after more than ``n_iter_no_change`` epochs in
        a row without improvement. For "lbfgs", ``tol`` is L-BFGS-B's ``gtol``.
    verbose : bool or int
        Print ``Iteration k, loss = ...`` after each epoch (and ``Validation score: ...``
        with ``early_stopping``), as scikit-learn; "lbfgs" prints nothing. No progress bar.
    warm_start : bool
        ``fit`` continues from the current weights. As in scikit-learn, ``y`` must then
        hold the classes of the previous fit, no more and no fewer, and ``X`` the same
        number of features (``partial_fit``: labels among ``classes_``), else ValueError.
        ``hidden_layer_sizes``, ``activation`` and ``compute_dtype`` shape the network,
        so they cannot change between warm fits (``fit`` with ``warm_start``,
        ``partial_fit``): a change raises ValueError naming the parameter, the value the
        network was built with and the new one, before anything changes; ``fit`` with
        ``warm_start=False`` builds a new network. Every other parameter is a training
        setting that each fit reads afresh.
    momentum, nesterovs_momentum :
        SGD's momentum.
    early_stopping : bool
        Hold out ``validation_fraction`` of the data (stratified) and monitor its score
        (accuracy; R² for the regressor); the best-scoring weights are kept. "sgd" and
        "adam" only.
    validation_fraction : float
    beta_1, beta_2, epsilon :
        Adam's hyper-parameters.
    max_fun : int
        Maximum number of loss evaluations of "lbfgs".
    compute_dtype : None or "bfloat16"
        The network's ``compute_dtype`` (:class:`fastbp.Network`): ``"bfloat16"`` trains a
        float32 network with bfloat16 products (the data is converted to float32).
    class_weight : dict, "balanced" or None
        Weights of the classes (``{label: weight}``, 1 for labels not named), multiplied
        into ``sample_weight``; ``"balanced"`` weighs each class by ``n_samples /
        (n_classes * its count)`` (``fit`` only), as scikit-learn's other classifiers do.

    Attributes
    ----------
    classes_ : ndarray
    network_ : fastbp.Network
    loss_ : float
        The last epoch's mean training loss (scikit-learn's log-loss), the penalty
        included; for "lbfgs", the final objective.
    best_loss_ : float or None
        The lowest ``loss_`` of the training; None with ``early_stopping``; not set by
        "lbfgs".
    loss_curve_ : list of float
        ``loss_`` after each epoch, over every fit of a warm start; not set by "lbfgs".
    validation_scores_ : list of float or None
        With ``early_stopping``, the validation score after each epoch; else None. Not set
        by "lbfgs".
    best_validation_score_ : float or None
        The best of ``validation_scores_``; None without ``early_stopping``.
    n_iter_ : int
        Epochs (L-BFGS iterations) of the last ``fit`` call; 1 after ``partial_fit``.
    t_ : int
        Training samples seen over all calls ("sgd", "adam").
    coefs_, intercepts_ : list of ndarray
        Each layer's weights (n_in, n_out) and biases: views of the network's parameters.
        As in scikit-learn they may be assigned, whole or element by element; the arrays
        are checked (shapes, finite) and copied into the network before its next use, and
        partial_fit or a warm fit of an estimator without a network starts from them.
    n_features_in_, n_outputs_, n_layers_ : int
    out_activation_ : str
    """

    _EXTRA_PARAMS = {"class_weight": None}

    def fit(self, X, y, sample_weight=None) -> MLPClassifier:
        """Train on ``X`` (n_samples, n_features; dense or ``scipy.sparse``) and labels
        ``y`` (n_samples,), or a label indicator matrix ``y`` (n_samples, n_labels) of 0
        and 1 for multilabel classification, each sample's loss weighted by
        ``sample_weight`` times its class's ``class_weight``; returns self."""
        warm = self._start(incremental=False)
        X, y = self._data(X, y, reset=not warm)
        classes = self.classes_ if warm else self._labels(y)
        self._check_labels(y, classes, warm=warm, exact=True)
        w = self._weights(sample_weight, y)
        self.classes_ = classes
        return self._fit_labels(X, y, w, incremental=False, warm=warm)

    @available_if(_BaseMLP._stochastic)
    def partial_fit(self, X, y, sample_weight=None, classes=None) -> MLPClassifier:
        """One epoch over (X, y), weighted as by :meth:`fit` (``class_weight="balanced"``
        is refused: one call's labels do not tell the classes' frequencies); ``classes``
        lists every label on the first call (for an indicator matrix, ``0 .. n_labels -
        1``)."""
        classes = self._partial_fit_classes(classes)
        if isinstance(self.class_weight, str) and self.class_weight == "balanced":
            raise ValueError(
                f"{type(self).__name__}: class_weight='balanced' is not "
                "supported by partial_fit: pass the weights as a dict, e.g. "
                "from sklearn.utils.class_weight.compute_class_weight on a "
                "large enough sample of the labels"
            )
        warm = self._start(incremental=True)
        X, y = self._data(X, y, reset=not warm)
        self._check_labels(y, classes, warm=warm, exact=False)
        w = self._weights(sample_weight, y)
        self.classes_ = classes
        return self._fit_labels(X, y, w, incremental=True, warm=warm)

    def _partial_fit_classes(self, classes) -> np.ndarray:
        """The classes of a partial_fit: ``classes`` on the first call; a later call may
        repeat them, not change them (scikit-learn's rule and message)."""
        if not hasattr(self, "classes_"):
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit")
            return np.unique(column_or_1d(classes))
        if classes is not None and not np.array_equal(
            self.classes_, np.unique(column_or_1d(classes))
        ):
            raise ValueError(
                f"`classes={classes!r}` is not the same as on last call to "
                f"partial_fit, was: {self.classes_!r}"
            )
        return self.classes_

    @staticmethod
    def _labels(y) -> np.ndarray:
        """The labels in ``y``: its classes, or an indicator matrix's column numbers (as
        scikit-learn's ``unique_labels`` gives them)."""
        return np.arange(y.shape[1]) if y.ndim == 2 else np.unique(y)

    def _multilabel(self) -> bool:
        """Whether the fitted network has one sigmoid output per label of an indicator
        matrix."""
        return self.out_activation_ == "logistic" and self.n_outputs_ > 1

    def _check_labels(self, y, classes: np.ndarray, *, warm: bool, exact: bool) -> None:
        """``y``'s labels checked with scikit-learn's rules and messages: a warm network
        takes the kind of ``y`` it was fitted on; ``exact`` (a warm ``fit``) wants the
        ``classes`` exactly, partial_fit labels among them and an indicator matrix with a
        column per class."""
        name = type(self).__name__
        if warm and (y.ndim == 2) != self._multilabel():
            kinds = ("a vector of labels", "a label indicator matrix")
            raise ValueError(
                f"{name}: y is {kinds[y.ndim - 1]}, but the network was fitted "
                f"on {kinds[int(self._multilabel())]}"
            )
        labels, known = self._labels(y), set(classes)
        if exact and set(labels) != known:
            raise ValueError(
                "warm_start can only be used where `y` has the same classes as "
                f"in the previous call to fit. Previously got {classes}, `y` has "
                f"{labels}"
            )
        if not known.issuperset(labels):
            raise ValueError(
                "`y` has classes not in `self.classes_`. `self.classes_` has "
                f"{classes}. 'y' has {labels}."
            )
        if y.ndim == 2 and len(classes) != y.shape[1]:
            raise ValueError(
                f"{name}: y has {y.shape[1]} label columns, but classes has "
                f"{len(classes)} labels: {classes}"
            )

    def _weights(self, sample_weight, y):
        """Each sample's weight: ``sample_weight`` times its class's weight, or None when
        neither is given."""
        w = self._sample_weight(sample_weight, len(y))
        if self.class_weight is None:
            return w
        if not (isinstance(self.class_weight, dict) or self.class_weight == "balanced"):
            self._fail(
                "class_weight", "None, 'balanced' or a dict label -> weight", self.class_weight
            )
        if y.ndim == 2:
            raise ValueError(
                f"{type(self).__name__}: class_weight weighs the classes of "
                "single labels, and y is a label indicator matrix: weigh its "
                "rows with sample_weight"
            )
        by_class = compute_sample_weight(self.class_weight, y)
        return self._sample_weight(by_class if w is None else w * by_class, len(y))

    def _data(self, X, y, reset: bool):
        """X and the labels checked: ``y`` (n_samples,), or a dense indicator matrix."""
        X, y = validate_data(
            self,
            X,
            y,
            reset=reset,
            multi_output=True,
            accept_sparse=_SPARSE_FORMATS,
            dtype=(np.float64, np.float32),
        )
        check_classification_targets(y)
        if type_of_target(y) == "multilabel-indicator":
            return X, y.toarray() if sp.issparse(y) else np.asarray(y)
        return X, column_or_1d(y, warn=True)

    def _fit_labels(self, X, y, w, incremental: bool, warm: bool) -> MLPClassifier:
        """Train on the checked labels ``y`` of ``classes_``: a new network gets
        scikit-learn's output layer for them (a sigmoid per label of an indicator matrix,
        one sigmoid for two classes, else a softmax per class); a warm one keeps its
        own."""
        if not warm:
            sigmoids = y.shape[1] if y.ndim == 2 else int(len(self.classes_) == 2)
            self.out_activation_ = "logistic" if sigmoids else "softmax"
            self.n_outputs_ = sigmoids or len(self.classes_)
        T = self._targets(y)
        return self._train(X, T, self.n_outputs_, w, incremental=incremental, warm=warm)

    def _targets(self, y) -> np.ndarray:
        """The network's targets for labels ``y``: class indices for a softmax output, else
        0/1 per output."""
        if y.ndim == 2:
            return y.astype(np.float64)
        codes = LabelEncoder().fit(self.classes_).transform(y)
        if self.out_activation_ == "softmax":
            return codes.astype(np.int64)
        return (codes == 1).astype(np.float64)[:, None]

    def _loss(self):
        if self.out_activation_ == "logistic":
            return BCEWithLogitsLoss()
        return SoftmaxCrossEntropyLoss()

    # scikit-learn's log-loss is fastbp's softmax cross-entropy, and its binary log-loss
    # fastbp's binary cross-entropy summed over the outputs (see _loss_per_row).
    _loss_scale = 1.0

    def _loss_per_row(self) -> int:
        return self.n_outputs_ if self.out_activation_ == "logistic" else 1

    def _strata(self, T):
        """The validation split is stratified on the classes (for a sigmoid output, on its
        boolean target, as scikit-learn's split, which names the classes so); not for
        multilabel, as in scikit-learn."""
        if self._multilabel():
            return None
        return T.astype(bool) if T.ndim == 2 else T

    def _score_outputs(self, out: np.ndarray, T: np.ndarray, w) -> float:
        """Accuracy (of whole rows, for multilabel) of the outputs against targets T."""
        truth = T if T.ndim == 1 else T.astype(int)
        if truth.ndim == 2 and not self._multilabel():
            truth = truth[:, 0]  # two classes: the one output's 0/1
        return accuracy_score(truth, self._decisions(out), sample_weight=w)

    def _decisions(self, out: np.ndarray) -> np.ndarray:
        """The predicted class index of each row, or its 0/1 per label (multilabel)."""
        if self.out_activation_ == "softmax":
            return out.argmax(axis=1)
        hits = (expit(out) > 0.5).astype(int)  # scikit-learn's threshold on probabilities
        return hits if self._multilabel() else hits[:, 0]

    def _onnx_graph(self) -> tuple:
        """The network to export with predict_proba's head: a softmax; a sigmoid per label
        for multilabel; for two classes a softmax of (0, z), which is (1 - sigmoid(z),
        sigmoid(z))."""
        probabilities = {"output": "probabilities"}
        if self.out_activation_ == "softmax":
            return self.network_, {"head": "softmax", **probabilities}
        coefs, intercepts = list(self.coefs_), list(self.intercepts_)
        if self._multilabel():
            sigmoid = _ACTIVATIONS["logistic"]()
            return self._copy_network(coefs, intercepts, [sigmoid]), probabilities
        coefs[-1] = np.hstack([np.zeros_like(coefs[-1]), coefs[-1]])
        intercepts[-1] = np.concatenate([np.zeros_like(intercepts[-1]), intercepts[-1]])
        return self._copy_network(coefs, intercepts, []), {"head": "softmax", **probabilities}

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, (n_samples, n_classes), columns in ``classes_`` order;
        for multilabel, each label's probability."""
        z = self._outputs(X)
        if self.out_activation_ == "softmax":
            e = np.exp(z - z.max(axis=1, keepdims=True))
            return e / e.sum(axis=1, keepdims=True)
        return expit(z) if self._multilabel() else np.hstack([expit(-z), expit(z)])

    def predict_log_proba(self, X) -> np.ndarray:
        """Log of :meth:`predict_proba`: for a softmax output computed from the outputs
        (finite where a probability underflows); for sigmoid outputs, as scikit-learn,
        the log of the probabilities themselves (so the two rank labels alike where
        several probabilities round to 1)."""
        check_is_fitted(self)
        if self.out_activation_ == "logistic":
            with np.errstate(divide="ignore"):  # log(0) is -inf
                return np.log(self.predict_proba(X))
        z = self._outputs(X)
        z = z - z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    def predict(self, X) -> np.ndarray:
        """The most probable class of each sample; for multilabel, the indicator matrix of
        the labels whose probability is above 0.5."""
        decided = self._decisions(self._outputs(X))
        return decided if self._multilabel() else self.classes_[decided]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor trained by fastbp.

    Parameters and attributes as for :class:`MLPClassifier` (without ``classes_``; the
    early-stopping score is R²), and ``loss``, the first parameter, as in scikit-learn.
    ``y`` may be (n_samples,) or (n_samples, n_outputs); predictions have the same shape. A
    warm start's ``y`` (``fit`` with ``warm_start``, ``partial_fit``) must have the
    network's number of outputs.

    Parameters
    ----------
    loss : {"squared_error", "poisson"}
        ``"squared_error"``: identity outputs (``out_activation_ = "identity"``), trained on
        fastbp's ``MSELoss``. ``"poisson"``: scikit-learn's half Poisson deviance with a log
        link: the network's outputs are log-rates (``out_activation_ = "exp"``), trained on
        ``PoissonNLLLoss(log_input=True)`` summed over the outputs, and ``predict`` returns
        their exp; ``y`` must be >= 0. ``loss_`` is then scikit-learn's, the targets' own
        terms ``y log y - y`` included. ``loss`` shapes the network, as
        ``hidden_layer_sizes`` does: a warm start refuses a change.
    """

    _LEADING_PARAMS = {"loss": "squared_error"}
    _LOSSES = ("squared_error", "poisson")

    def fit(self, X, y, sample_weight=None) -> MLPRegressor:
        """Train on ``X`` (n_samples, n_features; dense or ``scipy.sparse``) and targets
        ``y``, each sample's loss weighted by ``sample_weight``; returns self."""
        return self._fit(X, y, sample_weight, incremental=False)

    @available_if(_BaseMLP._stochastic)
    def partial_fit(self, X, y, sample_weight=None) -> MLPRegressor:
        """One epoch over (X, y), weighted as by :meth:`fit`, continuing from the current
        weights once fitted."""
        return self._fit(X, y, sample_weight, incremental=True)

    def _check_params(self) -> None:
        super()._check_params()
        if isinstance(self.loss, str) and self.loss in self._LOSSES:
            return
        hint = (
            ""
            if isinstance(self.loss, str)
            else " (loss is the first parameter, as in "
            "scikit-learn's MLPRegressor: pass hidden_layer_sizes by name)"
        )
        raise ValueError(
            f"{type(self).__name__}: loss must be one of "
            f"{', '.join(map(repr, self._LOSSES))}, got {self.loss!r}{hint}"
        )

    def _network_params(self) -> dict:
        return {**super()._network_params(), "loss": self.loss}

    def _fit(self, X, y, sample_weight, incremental: bool) -> MLPRegressor:
        warm = self._start(incremental)
        X, y = validate_data(
            self,
            X,
            y,
            reset=not warm,
            multi_output=True,
            y_numeric=True,
            accept_sparse=_SPARSE_FORMATS,
            dtype=(np.float64, np.float32),
        )
        T = y.reshape(len(y), -1).astype(X.dtype)
        if warm and T.shape[1] != self.n_outputs_:
            raise ValueError(
                f"{type(self).__name__}: y has {T.shape[1]} outputs, the network {self.n_outputs_}"
            )
        if self.loss == "poisson" and not (T >= 0).all():
            bad = np.flatnonzero(~(T >= 0))[0]
            raise ValueError(
                f"{type(self).__name__}: loss='poisson' needs y >= 0, got "
                f"{float(T.flat[bad])!r} at flat index {bad}"
            )
        w = self._sample_weight(sample_weight, len(T))
        self.n_outputs_ = T.shape[1]
        self.out_activation_ = "exp" if self.loss == "poisson" else "identity"
        return self._train(X, T, T.shape[1], w, incremental=incremental, warm=warm)

    def _loss(self):
        return PoissonNLLLoss() if self.loss == "poisson" else MSELoss()

    @property
    def _loss_scale(self) -> float:
        # scikit-learn's squared error is half of fastbp's MSELoss; its Poisson loss
        # fastbp's summed over the outputs (see _loss_per_row).
        return 1.0 if self.loss == "poisson" else 0.5

    def _loss_per_row(self) -> int:
        return self.n_outputs_ if self.loss == "poisson" else 1

    def _loss_offset(self, T, w) -> float:
        """scikit-learn's half Poisson deviance is fastbp's loss plus ``y log y - y``,
        summed over the outputs and averaged over the rows."""
        if self.loss != "poisson":
            return 0.0
        return float(np.average((xlogy(T, T) - T).sum(axis=1), weights=w))

    def _predictions(self, out: np.ndarray) -> np.ndarray:
        """The predicted targets for the network's outputs: their exp for the Poisson
        loss's log link."""
        return np.exp(out) if self.out_activation_ == "exp" else out

    def _score_outputs(self, out: np.ndarray, T: np.ndarray, w) -> float:
        return r2_score(T, self._predictions(out), sample_weight=w)

    def _onnx_graph(self) -> tuple:
        """The network to export, with predict's exp (Poisson loss) and flattening of a
        single output."""
        head = ("exp",) if self.out_activation_ == "exp" else ()
        head += ("ravel",) if self.n_outputs_ == 1 else ()
        return self.network_, {"head": head or None}

    def predict(self, X) -> np.ndarray:
        """Predicted targets, (n_samples,) for a single output."""
        y = self._predictions(self._outputs(X))
        return y.ravel() if y.shape[1] == 1 else y

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags
