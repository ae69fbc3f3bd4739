"""fastbp.sklearn against scikit-learn's own MLP: learning-rate schedules, stopping rules,
L-BFGS, validation scores and verbose output, on the same data or the same scripted
losses."""

from __future__ import annotations

import inspect
import re
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="scikit-learn is not installed (pip install fastbp[test])")
# Most fits here stop at a small max_iter on purpose; the tests of ConvergenceWarning
# itself record warnings on their own.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

from sklearn.base import ClassifierMixin  # noqa: E402
from sklearn.datasets import load_digits, make_regression  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import fastbp.sklearn as fbs  # noqa: E402
from sklearn import neural_network as sk  # noqa: E402


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X[:900] / 16, y[:900], test_size=0.3, random_state=0)


def _sklearn_fit(est, X, y):
    # One BLAS thread, as fastbp's lbfgs uses: more only contend on small products.
    with warnings.catch_warnings(), threadpool_limits(1, user_api="blas"):
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


# ---- the same data: the same accuracy band ---------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        dict(solver="sgd", learning_rate="invscaling", learning_rate_init=0.5, power_t=0.25),
        dict(solver="sgd", learning_rate="adaptive", learning_rate_init=0.1),
        dict(solver="lbfgs"),
        dict(solver="adam", learning_rate_init=0.01, early_stopping=True),
    ],
    ids=["invscaling", "adaptive", "lbfgs", "early_stopping"],
)
def test_classifier_accuracy_is_scikit_learns(digits, params):
    X, Xt, y, yt = digits
    ours = fbs.MLPClassifier((32,), max_iter=60, random_state=0, **params).fit(X, y)
    theirs = _sklearn_fit(sk.MLPClassifier((32,), max_iter=60, random_state=0, **params), X, y)
    assert ours.score(Xt, yt) > 0.9
    assert abs(ours.score(Xt, yt) - theirs.score(Xt, yt)) < 0.04


# ---- scripted losses: the same schedule, stops and lines as scikit-learn's loop --------


def _script_fastbp(monkeypatch, est, X, y, losses, scores=None):
    """Fit ``est`` with every epoch's training replaced by the next of ``losses`` (and
    the validation score by the next of ``scores``); returns each epoch's learning rate."""
    losses, rates = iter(losses), []

    def fake_epochs(X, T, epochs, batch, row_weights, mean_w, on_epoch):
        for epoch in range(epochs):
            rates.append(est._optimizer_.lr)
            if on_epoch(epoch, {"loss": next(losses)}) is False:
                break

    monkeypatch.setattr(est, "_epochs", fake_epochs)
    if scores is not None:
        scores = iter(scores)
        monkeypatch.setattr(est, "_validation_score", lambda X, T, w: next(scores))
    est.fit(X, y)
    return rates


def _script_sklearn(est, X, y, losses, scores=None):
    """The same for scikit-learn's MLPClassifier: its loop, its optimizer, no updates."""
    losses, rates = iter(losses), []

    def fake_backprop(X, y, sample_weight, activations, deltas, coef_grads, intercept_grads):
        rates.append(est._optimizer.learning_rate)
        zero = [np.zeros_like(c) for c in est.coefs_], [np.zeros_like(b) for b in est.intercepts_]
        return next(losses), *zero

    est._backprop = fake_backprop
    if scores is not None:
        scores = iter(scores)
        est._score = lambda X, y, sample_weight=None: next(scores)
    _sklearn_fit(est, X, y)
    return rates


# Falls, then flat runs: each run of more than n_iter_no_change=2 epochs that fail to
# improve by tol=0.01 is a plateau.
_LOSSES = [1.0, 0.9, 0.895, 0.894, 0.893, 0.7, 0.699, 0.7, 0.6985] + [
    0.5 + 1e-4 * i for i in range(40)
]


@pytest.mark.parametrize("learning_rate", ["constant", "invscaling", "adaptive"])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_schedule_and_stops_follow_scikit_learn_on_scripted_losses(
    monkeypatch, capsys, digits, learning_rate, solver
):
    X, _, y, _ = digits
    params = dict(
        hidden_layer_sizes=(4,),
        solver=solver,
        learning_rate=learning_rate,
        learning_rate_init=0.1,
        power_t=0.3,
        batch_size=len(X),
        tol=0.01,
        n_iter_no_change=2,
        max_iter=len(_LOSSES),
        verbose=True,
        random_state=0,
    )
    theirs = sk.MLPClassifier(**params)
    their_rates = _script_sklearn(theirs, X, y, _LOSSES)
    their_lines = capsys.readouterr().out
    ours = fbs.MLPClassifier(**params)
    our_rates = _script_fastbp(monkeypatch, ours, X, y, _LOSSES)
    assert capsys.readouterr().out == their_lines
    if solver == "sgd":  # scikit-learn's Adam keeps its bias-corrected step there instead
        assert our_rates == their_rates
    assert ours.n_iter_ == theirs.n_iter_ < len(_LOSSES)
    assert ours.loss_curve_ == theirs.loss_curve_ and ours.best_loss_ == theirs.best_loss_
    assert ours.validation_scores_ is None and ours.best_validation_score_ is None
    if solver == "adam" or learning_rate == "constant":
        assert our_rates == [0.1] * ours.n_iter_
    elif learning_rate == "invscaling":  # after epoch k, t_ = k * n samples have been seen
        assert our_rates == [0.1] + [0.1 / (k * len(X) + 1) ** 0.3 for k in range(1, ours.n_iter_)]
    else:  # divided by 5 at each plateau, until at most 1e-6
        assert min(our_rates) <= 1e-6 and "Learning rate too small. Stopping." in their_lines
        assert their_lines.count("Setting learning rate to") == 8


def test_early_stopping_follows_scikit_learn_on_scripted_scores(monkeypatch, capsys, digits):
    X, _, y, _ = digits
    scores = [0.5, 0.6, 0.605, 0.7, 0.71, 0.69, 0.705, 0.5, 0.4] + [0.3] * 20
    n_train = len(X) - int(np.ceil(0.1 * len(X)))  # one batch per epoch after the split
    params = dict(
        hidden_layer_sizes=(4,),
        solver="sgd",
        learning_rate="adaptive",
        learning_rate_init=0.1,
        batch_size=n_train,
        tol=0.01,
        n_iter_no_change=2,
        early_stopping=True,
        max_iter=len(scores),
        verbose=True,
        random_state=0,
    )
    losses = [1.0 - 0.01 * i for i in range(len(scores))]
    theirs = sk.MLPClassifier(**params)
    their_rates = _script_sklearn(theirs, X, y, losses, scores)
    their_lines = capsys.readouterr().out
    ours = fbs.MLPClassifier(**params)
    our_rates = _script_fastbp(monkeypatch, ours, X, y, losses, scores)
    assert capsys.readouterr().out == their_lines and "Validation score: 0.710000" in their_lines
    assert our_rates == their_rates and ours.n_iter_ == theirs.n_iter_
    assert ours.validation_scores_ == theirs.validation_scores_
    assert ours.best_validation_score_ == theirs.best_validation_score_ == 0.71
    assert ours.best_loss_ is None is theirs.best_loss_


# ---- real training -------------------------------------------------------------------


def test_invscaling_rate_after_each_partial_fit_is_scikit_learns(digits):
    X, _, y, _ = digits
    params = dict(
        hidden_layer_sizes=(8,),
        solver="sgd",
        learning_rate="invscaling",
        learning_rate_init=0.2,
        power_t=0.7,
        random_state=0,
    )
    ours, theirs = fbs.MLPClassifier(**params), sk.MLPClassifier(**params)
    for chunk in np.array_split(np.arange(len(X)), 4):
        ours.partial_fit(X[chunk], y[chunk], classes=np.arange(10))
        theirs.partial_fit(X[chunk], y[chunk], classes=np.arange(10))
        assert ours._optimizer_.lr == theirs._optimizer.learning_rate
        assert ours.t_ == theirs.t_ and ours.n_iter_ == theirs.n_iter_ == 1
    assert ours._optimizer_.lr == 0.2 / (len(X) + 1) ** 0.7


def _flat(est) -> np.ndarray:
    """scikit-learn's weights in fastbp's layout: each layer's W, then its b."""
    return np.concatenate([p for c, b in zip(est.coefs_, est.intercepts_) for p in (c.ravel(), b)])


def _same_start(ours, theirs, X, y):
    """Both estimators fitted for one L-BFGS iteration from scikit-learn's start, then
    holding the same weights, ready for a warm start."""
    _sklearn_fit(theirs.set_params(max_iter=1), X, y)
    ours.set_params(max_iter=1).fit(X, y)
    ours.network_.params[...] = _flat(theirs)
    ours.set_params(warm_start=True, max_iter=500)
    theirs.set_params(warm_start=True, max_iter=500)


def _indicator(y) -> np.ndarray:
    """Three labels of each digit, as a multilabel indicator matrix."""
    return np.stack([y % 2, y > 4, y % 3 == 0], axis=1).astype(int)


@pytest.mark.parametrize("cls, alpha", [("MLPClassifier", 0.01), ("MLPRegressor", 1.0)])
def test_lbfgs_minimises_scikit_learns_objective(digits, cls, alpha):
    X, _, y, _ = digits
    X, y = X[:300], y[:300]
    if cls == "MLPRegressor":
        X, y = make_regression(300, 8, noise=5.0, random_state=0)
        y = y / y.std()
    params = dict(
        hidden_layer_sizes=(8,), activation="tanh", solver="lbfgs", alpha=alpha, random_state=0
    )
    ours, theirs = getattr(fbs, cls)(**params), getattr(sk, cls)(**params)
    _same_start(ours, theirs, X, y)
    ours.fit(X, y)
    _sklearn_fit(theirs, X, y)
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-4)
    assert abs(ours.n_iter_ - theirs.n_iter_) <= 2 and ours.n_iter_ < 500 and ours.t_ == 0
    assert not hasattr(ours, "loss_curve_") and not hasattr(ours, "validation_scores_")


def test_lbfgs_takes_scikit_learns_steps_on_multilabel_targets(digits):
    """scikit-learn's objective for an indicator matrix (the binary log-loss summed over
    the labels, plus the penalty): from the same start, the same iterates."""
    X, _, y, _ = digits
    X, y = X[:300], _indicator(y[:300])
    params = dict(
        hidden_layer_sizes=(8,), activation="tanh", solver="lbfgs", alpha=0.01, random_state=0
    )
    ours, theirs = fbs.MLPClassifier(**params), sk.MLPClassifier(**params)
    _same_start(ours, theirs, X, y)
    ours.set_params(max_iter=30).fit(X, y)
    _sklearn_fit(theirs.set_params(max_iter=30), X, y)
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-9)
    np.testing.assert_allclose(ours.network_.params, _flat(theirs), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("labels", ["multiclass", "binary", "multilabel"])
def test_an_sgd_step_from_the_same_weights_is_scikit_learns(digits, labels):
    """The same output layer, loss and update: scikit-learn's log-loss (for two classes,
    of one sigmoid output; summed over the labels of a multilabel target) and its
    gradient."""
    X, _, y, _ = digits
    X, y = X[:100], y[:100]
    if labels == "multilabel":
        y = _indicator(y)
    elif labels == "binary":
        y = np.where(y % 2, "odd", "even")
    classes = np.arange(3) if labels == "multilabel" else np.unique(y)
    params = dict(
        hidden_layer_sizes=(8,),
        solver="sgd",
        learning_rate_init=0.5,
        momentum=0.0,
        alpha=0.0,
        batch_size=100,
        shuffle=False,
        random_state=0,
    )
    ours, theirs = fbs.MLPClassifier(**params), sk.MLPClassifier(**params)
    theirs.partial_fit(X, y, classes=classes)
    ours.partial_fit(X, y, classes=classes)
    ours.network_.params[...] = _flat(theirs)
    theirs.partial_fit(X, y)
    ours.partial_fit(X, y)
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-12)
    np.testing.assert_allclose(ours.network_.params, _flat(theirs), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    "cls, solver",
    [("MLPClassifier", "sgd"), ("MLPClassifier", "adam"), ("MLPRegressor", "adam")],
)
def test_the_penalty_is_scikit_learns_on_the_weights_alone(digits, cls, solver):
    """alpha is scikit-learn's penalty alpha / (2 n_b) ||W||² per batch of n_b rows (the
    last batch smaller), on the weights and not the biases, in the gradient and in loss_:
    from the same weights, the same epochs of steps."""
    X, _, y, _ = digits
    X, y = X[:100], y[:100]
    if cls == "MLPRegressor":
        y = X @ np.linspace(-1, 1, X.shape[1])
    params = dict(
        hidden_layer_sizes=(8,),
        activation="tanh",
        solver=solver,
        learning_rate_init=0.1,
        momentum=0.0,
        alpha=2.0,
        batch_size=40,
        shuffle=False,
        epsilon=1e-12,  # where the two Adams add it differs; too small here to matter
        random_state=0,
    )
    ours, theirs = getattr(fbs, cls)(**params), getattr(sk, cls)(**params)
    _same_start(ours, theirs, X, y)
    ours.set_params(max_iter=3).fit(X, y)
    _sklearn_fit(theirs.set_params(max_iter=3), X, y)
    # Adam's step divides by sqrt(v), which magnifies round-off where gradients are small
    tol = 1e-9 if solver == "sgd" else 1e-5
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=tol)
    np.testing.assert_allclose(ours.network_.params, _flat(theirs), rtol=tol, atol=tol * 1e-2)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_a_vanishing_penalty_trains_as_none(digits, solver):
    """With alpha > 0 an epoch is a fastbp step per batch plus the penalty, with alpha=0
    fastbp's epoch in one call: the same batches (shuffled) and updates."""
    X, _, y, _ = digits
    fits = [
        fbs.MLPClassifier((8,), solver=solver, alpha=alpha, batch_size=64, max_iter=3).set_params(
            random_state=0
        )
        for alpha in (0.0, 1e-300)
    ]
    for est in fits:
        est.fit(X, y)
    np.testing.assert_allclose(fits[0].network_.params, fits[1].network_.params, rtol=1e-12)
    np.testing.assert_allclose(fits[0].loss_curve_, fits[1].loss_curve_, rtol=1e-12)


def test_the_regressors_loss_and_stopping_rule_are_scikit_learns(digits):
    """loss_ is scikit-learn's half squared error, and tol acts on it: from the same
    weights, the same loss curve and the same epoch of the stop."""
    X, _, _, _ = digits
    y = X @ np.linspace(-1, 1, X.shape[1])
    params = dict(
        hidden_layer_sizes=(8,),
        activation="tanh",
        alpha=1e-3,
        batch_size=50,
        shuffle=False,
        tol=1e-2,
        epsilon=1e-12,
        random_state=0,
    )
    ours, theirs = fbs.MLPRegressor(**params), sk.MLPRegressor(**params)
    _same_start(ours, theirs, X, y)
    ours.fit(X, y)
    _sklearn_fit(theirs, X, y)
    assert ours.n_iter_ == theirs.n_iter_ < 500
    np.testing.assert_allclose(
        ours.loss_curve_[-ours.n_iter_ :], theirs.loss_curve_[-theirs.n_iter_ :], rtol=1e-5
    )


def test_partial_fit_from_assigned_weights_is_scikit_learns_worked_example():
    """scikit-learn's worked example (its test_fit: weights assigned to a 3-2-1 logistic
    network, then one SGD step), with a penalty large enough to show that it applies to
    the weights and not to the biases."""
    X, y = np.array([[0.6, 0.8, 0.7]]), np.array([0])
    W = [np.array([[0.1, 0.2], [0.3, 0.1], [0.5, 0]]), np.array([[0.1], [0.2]])]
    b = [np.array([0.1, 0.1]), np.array([1.0])]
    params = dict(
        solver="sgd",
        learning_rate_init=0.1,
        alpha=0.1,
        activation="logistic",
        random_state=1,
        max_iter=1,
        hidden_layer_sizes=2,
        momentum=0,
    )
    ours = fbs.MLPClassifier(**params)
    ours.coefs_, ours.intercepts_ = [w.copy() for w in W], [v.copy() for v in b]
    ours.n_layers_ = 3  # scikit-learn's test sets this too
    ours.partial_fit(X, y, classes=[0, 1])
    theirs = sk.MLPClassifier(**params).partial_fit(X, y, classes=[0, 1])
    for theirs_array, start in zip(theirs.coefs_ + theirs.intercepts_, W + b):
        theirs_array[...] = start  # in place: its optimizer holds these arrays
    theirs.partial_fit(X, y)
    for got, want in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(got, want, rtol=1e-12)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-12)


def test_lbfgs_stops_at_max_iter_and_max_fun(digits):
    X, _, y, _ = digits
    params = dict(hidden_layer_sizes=(8,), solver="lbfgs", random_state=0)
    assert fbs.MLPClassifier(max_iter=5, **params).fit(X, y).n_iter_ == 5
    few = fbs.MLPClassifier(max_fun=4, **params).fit(X, y)
    assert few.n_iter_ <= 4 < fbs.MLPClassifier(max_iter=20, **params).fit(X, y).n_iter_
    with pytest.raises(AttributeError, match="has no attribute 'partial_fit'") as error:
        few.partial_fit(X, y)
    assert "partial_fit needs solver 'sgd' or 'adam', got 'lbfgs'" in str(error.value.__cause__)


@pytest.mark.parametrize("cls", [fbs.MLPClassifier, fbs.MLPRegressor])
def test_lbfgs_loss_is_scikit_learns_plus_the_weights_penalty(digits, cls):
    """loss_ is scikit-learn's loss (the regressor's half fastbp's mean squared error) plus
    its penalty alpha / (2 n) ||W||², on the weights (not the biases)."""
    X, _, y, _ = digits
    est = cls(hidden_layer_sizes=(8,), solver="lbfgs", alpha=0.5, max_iter=30, random_state=0).fit(
        X, y
    )
    squares = sum(float((W**2).sum()) for W in est.coefs_)
    scale = 0.5 if cls is fbs.MLPRegressor else 1.0
    expected = scale * est.network_.loss(X, y) + 0.5 * 0.5 * squares / len(X)
    assert est.loss_ == pytest.approx(expected, rel=1e-9)


def test_validation_scores_are_the_held_out_score(digits):
    X, _, y, _ = digits
    clf = fbs.MLPClassifier(
        (16,),
        learning_rate_init=0.01,
        early_stopping=True,
        n_iter_no_change=3,
        max_iter=40,
        random_state=0,
    ).fit(X, y)
    assert len(clf.validation_scores_) == clf.n_iter_ == len(clf.loss_curve_)
    assert clf.best_validation_score_ == max(clf.validation_scores_) and clf.best_loss_ is None
    assert all(s * 63 == pytest.approx(round(s * 63)) for s in clf.validation_scores_)  # 63 rows
    Xr, yr = make_regression(300, 5, noise=1.0, random_state=0)
    reg = fbs.MLPRegressor(
        hidden_layer_sizes=(16,),
        learning_rate_init=0.01,
        early_stopping=True,
        max_iter=50,
        random_state=0,
    ).fit(Xr, yr / yr.std())
    assert len(reg.validation_scores_) == reg.n_iter_ and reg.best_validation_score_ > 0.9
    assert fbs.MLPClassifier((4,), max_iter=2).fit(X, y).validation_scores_ is None


def test_verbose_prints_scikit_learns_lines_and_no_bar(digits, capsys):
    X, _, y, _ = digits
    fbs.MLPClassifier((8,), max_iter=3, early_stopping=True, verbose=True, random_state=0).fit(X, y)
    out, err = capsys.readouterr()
    assert (
        re.fullmatch(r"(Iteration \d+, loss = \d+\.\d{8}\nValidation score: \d\.\d{6}\n){3}", out)
        and err == ""
    )
    fbs.MLPClassifier((8,), max_iter=3, random_state=0).fit(X, y)
    assert capsys.readouterr() == ("", "")


def test_partial_fit_refuses_early_stopping(digits):
    X, _, y, _ = digits
    clf = fbs.MLPClassifier((4,), early_stopping=True)
    with pytest.raises(ValueError, match="MLPClassifier: partial_fit does not support"):
        clf.partial_fit(X, y, classes=np.arange(10))
    assert not hasattr(clf, "network_")


# ---- loss="poisson": scikit-learn's half Poisson deviance with a log link -----------------

needs_sklearn_poisson = pytest.mark.skipif(
    "loss" not in inspect.signature(sk.MLPRegressor).parameters,
    reason="scikit-learn's MLPRegressor has loss='poisson' from scikit-learn 1.7",
)


def _counts(n_targets, n=120, seed=0):
    """Features and Poisson counts of rates exp(X @ beta), (n,) or (n, n_targets)."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, 4))
    rates = np.exp(X @ rng.uniform(-0.7, 0.7, (4, n_targets)) + 0.5)
    return X, rng.poisson(rates).astype(np.float64).squeeze()


@needs_sklearn_poisson
@pytest.mark.parametrize("targets", [1, 3], ids=["single", "multi"])
@pytest.mark.parametrize("weighted", [False, True])
def test_a_poisson_sgd_step_from_the_same_weights_is_scikit_learns(targets, weighted):
    """The same output activation (exp), loss (summed over the outputs, the targets' own
    terms included in loss_) and gradient: one full-batch step from scikit-learn's
    weights lands on its weights, and predict is its predict."""
    X, y = _counts(targets)
    w = np.random.default_rng(1).uniform(0.2, 2.0, len(X)) if weighted else None
    params = dict(
        loss="poisson",
        hidden_layer_sizes=(8,),
        activation="tanh",
        solver="sgd",
        learning_rate_init=0.05,
        momentum=0.0,
        alpha=0.0,
        batch_size=len(X),
        shuffle=False,
        random_state=0,
    )
    ours, theirs = fbs.MLPRegressor(**params), sk.MLPRegressor(**params)
    theirs.partial_fit(X, y, sample_weight=w)
    ours.partial_fit(X, y, sample_weight=w)
    assert ours.out_activation_ == theirs.out_activation_ == "exp"
    ours.network_.params[...] = _flat(theirs)
    theirs.partial_fit(X, y, sample_weight=w)
    ours.partial_fit(X, y, sample_weight=w)
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-12)
    np.testing.assert_allclose(ours.network_.params, _flat(theirs), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-12)
    assert ours.score(X, y) == pytest.approx(theirs.score(X, y), rel=1e-12)


@needs_sklearn_poisson
@pytest.mark.parametrize("targets", [1, 3], ids=["single", "multi"])
def test_poisson_lbfgs_takes_scikit_learns_steps(targets):
    """scikit-learn's objective (the half Poisson deviance plus the penalty): from the same
    start, the same iterates and loss_."""
    X, y = _counts(targets)
    params = dict(
        loss="poisson",
        hidden_layer_sizes=(8,),
        activation="tanh",
        solver="lbfgs",
        alpha=0.1,
        random_state=0,
    )
    ours, theirs = fbs.MLPRegressor(**params), sk.MLPRegressor(**params)
    _same_start(ours, theirs, X, y)
    ours.set_params(max_iter=30).fit(X, y)
    _sklearn_fit(theirs.set_params(max_iter=30), X, y)
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-9)
    np.testing.assert_allclose(ours.network_.params, _flat(theirs), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-6)


def test_poisson_validation_scores_are_the_r2_of_the_rates():
    X, y = _counts(1)
    est = fbs.MLPRegressor(
        "poisson",
        hidden_layer_sizes=(8,),
        early_stopping=True,
        validation_fraction=0.25,
        max_iter=1,
        random_state=0,
    ).fit(X, y)
    _, Xv, _, yv = train_test_split(X, y, test_size=0.25, random_state=np.random.RandomState(0))
    assert est.validation_scores_ == [pytest.approx(est.score(Xv, yv), rel=1e-12)]


@needs_sklearn_poisson
def test_the_regressors_signature_is_scikit_learns():
    """loss first, and positional, as in scikit-learn; fastbp adds compute_dtype."""

    def parameters(cls):
        return [(p.name, p.kind) for p in inspect.signature(cls).parameters.values()]

    assert parameters(fbs.MLPRegressor)[:-1] == parameters(sk.MLPRegressor)
    assert fbs.MLPRegressor("poisson").get_params()["loss"] == "poisson"


def test_poisson_refuses_negative_targets_and_unknown_losses_before_anything_changes():
    X, y = _counts(1)
    est = fbs.MLPRegressor(
        "poisson", hidden_layer_sizes=(4,), max_iter=2, warm_start=True, random_state=0
    ).fit(X, y)
    net, before = est.network_, est.network_.params.copy()
    bad = y.copy()
    bad[3] = -1.0
    for call in (est.fit, est.partial_fit):
        with pytest.raises(
            ValueError,
            match=r"^MLPRegressor: loss='poisson' needs y >= 0, "
            r"got -1\.0 at flat index 3$",
        ):
            call(X, bad)
        assert est.network_ is net and np.array_equal(net.params, before)
    with pytest.raises(
        ValueError,
        match=r"^MLPRegressor: loss must be one of "
        r"'squared_error', 'poisson', got 'gamma'$",
    ):
        fbs.MLPRegressor("gamma").fit(X, y)
    with pytest.raises(
        ValueError,
        match=r"got \(8,\) \(loss is the first parameter, as in "
        r"scikit-learn's MLPRegressor: pass "
        r"hidden_layer_sizes by name\)",
    ):
        fbs.MLPRegressor((8,)).fit(X, y)


# ---- ConvergenceWarning: where scikit-learn warns, with its words -------------------------


def _convergence_warnings(est, calls, X, y) -> list:
    """The messages of the ConvergenceWarnings that ``est``'s ``calls`` (method names, each
    given X and y, and partial_fit every class) emit, whatever the warning filters."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for call in calls:
            classes = (
                {"classes": np.unique(y)}
                if call == "partial_fit" and isinstance(est, ClassifierMixin)
                else {}
            )
            getattr(est, call)(X, y, **classes)
    return [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]


# (parameters, calls): max_iter reached, by a fit and by each warm fit; a stop on tol (for
# "lbfgs" a gradient within gtol at once); partial_fit, which never warns.
_CONVERGENCE_CASES = {
    "max_iter": (dict(max_iter=3, n_iter_no_change=np.inf), ["fit"]),
    "warm_start": (dict(max_iter=3, n_iter_no_change=np.inf, warm_start=True), ["fit", "fit"]),
    "tol": (dict(max_iter=50, tol=1e9, n_iter_no_change=1), ["fit"]),
    "partial_fit": (dict(max_iter=3), ["partial_fit", "partial_fit"]),
}


@pytest.mark.parametrize(
    "solver, case",
    [
        (solver, case)
        for solver in ("sgd", "adam", "lbfgs")
        for case in _CONVERGENCE_CASES
        if (solver, case) != ("lbfgs", "partial_fit")
    ],
)
@pytest.mark.parametrize("cls", ["MLPClassifier", "MLPRegressor"])
def test_convergence_warnings_are_scikit_learns(digits, cls, solver, case):
    X, _, y, _ = digits
    X, y = X[:200], y[:200]
    if cls == "MLPRegressor":
        y = y / 10.0
    params, calls = _CONVERGENCE_CASES[case]
    params = dict(hidden_layer_sizes=(8,), solver=solver, random_state=0, **params)
    ours = _convergence_warnings(getattr(fbs, cls)(**params), calls, X, y)
    with threadpool_limits(1, user_api="blas"):
        theirs = _convergence_warnings(getattr(sk, cls)(**params), calls, X, y)
    assert ours == theirs
    assert len(ours) == (len(calls) if case in ("max_iter", "warm_start") else 0)


def test_lbfgs_warns_when_max_fun_stops_it(digits):
    X, _, y, _ = digits
    est = fbs.MLPClassifier((8,), solver="lbfgs", max_fun=5, random_state=0)
    with pytest.warns(
        ConvergenceWarning,
        match=r"lbfgs failed to converge after \d+ "
        r"iteration\(s\) \(status=1\)",
    ):
        est.fit(X, y)
    assert est.n_iter_ <= 5


# ---- divergence: scikit-learn's outcomes -------------------------------------------------


@pytest.mark.parametrize("call", ["fit", "partial_fit"])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_divergence_raises_scikit_learns_error(solver, call):
    rng = np.random.RandomState(0)
    X = np.finfo(np.float64).max * rng.uniform(size=(10, 2))  # overflows the first step
    y = rng.standard_normal(10)
    messages = []
    for est in (fbs.MLPRegressor(solver=solver), sk.MLPRegressor(solver=solver)):
        with warnings.catch_warnings(), pytest.raises(ValueError) as error:
            warnings.simplefilter("ignore", RuntimeWarning)  # scikit-learn's overflows
            getattr(est, call)(X, y)
        messages.append(str(error.value))
    assert messages[0] == messages[1]


def test_divergence_under_early_stopping_keeps_the_best_validation_weights(digits):
    X, _, y, _ = digits
    est = fbs.MLPRegressor(
        hidden_layer_sizes=(100,),
        activation="identity",
        solver="sgd",
        learning_rate_init=1,
        max_iter=20,
        early_stopping=True,
        random_state=0,
    )
    with pytest.warns(ConvergenceWarning, match="training diverged at epoch") as caught:
        est.fit(X, y)
    assert len(caught) == 1
    scores = est.validation_scores_
    assert len(scores) == est.n_iter_ and np.isnan(scores[-1]) and type(scores[-1]) is float
    assert np.isnan(est.loss_) and est.best_validation_score_ == max(scores[:-1])
    # the kept weights score the best validation score on the held-out rows
    _, Xv, _, yv = train_test_split(X, y, test_size=0.1, random_state=0)
    assert est.score(Xv, yv) == pytest.approx(est.best_validation_score_)


# ---- a warm start's labels: scikit-learn's rules and messages ----------------------------


def _refusal(call, est, X, y) -> str:
    """The message of the ValueError that ``call(est, X, y)`` raises."""
    with pytest.raises(ValueError) as error:
        call(est, X, y)
    return str(error.value)


def _with_a_new_class(y):
    y = y.copy()
    y[0] = 10
    return y


@pytest.mark.parametrize(
    "relabel",
    [lambda y: y + 1, lambda y: y.astype(str), lambda y: y % 2, _with_a_new_class],
    ids=["shifted", "strings", "fewer", "one_more"],
)
def test_a_warm_fit_on_other_classes_is_refused_as_scikit_learn_refuses_it(digits, relabel):
    X, _, y, _ = digits
    params = dict(hidden_layer_sizes=(8,), max_iter=2, warm_start=True, random_state=0)
    ours = fbs.MLPClassifier(**params).fit(X, y)
    theirs = _sklearn_fit(sk.MLPClassifier(**params), X, y)
    proba = ours.predict_proba(X)

    def fit(est, X, y):
        return est.fit(X, relabel(y))

    assert _refusal(fit, ours, X, y) == _refusal(fit, theirs, X, y)
    assert np.array_equal(ours.classes_, np.arange(10)) and ours.t_ == 2 * len(X)
    np.testing.assert_array_equal(ours.predict_proba(X), proba)


@pytest.mark.parametrize(
    "call",
    [
        lambda est, X, y: est.partial_fit(X, y + 1),
        lambda est, X, y: est.partial_fit(X, y.astype(str)),
        lambda est, X, y: est.partial_fit(X, y % 2, classes=[0, 1]),
    ],
    ids=["unknown", "strings", "other_classes_argument"],
)
@pytest.mark.parametrize("start", ["fit", "partial_fit"])
def test_partial_fit_outside_the_classes_is_refused_as_scikit_learn_refuses_it(digits, call, start):
    X, _, y, _ = digits
    ours, theirs = (
        cls((8,), max_iter=2, random_state=0) for cls in (fbs.MLPClassifier, sk.MLPClassifier)
    )
    if start == "fit":
        ours.fit(X, y)
        _sklearn_fit(theirs, X, y)
    else:
        ours.partial_fit(X, y, classes=np.arange(10))
        theirs.partial_fit(X, y, classes=np.arange(10))
    before, t = ours.network_.params.copy(), ours.t_
    assert _refusal(call, ours, X, y) == _refusal(call, theirs, X, y)
    assert np.array_equal(ours.classes_, np.arange(10)) and ours.t_ == t
    assert np.array_equal(ours.network_.params, before)


def test_a_validation_set_too_small_is_refused_in_scikit_learns_words():
    X, y = np.arange(10.0).reshape(5, 2), np.arange(5.0)
    messages = []
    for module in (fbs, sk):
        with pytest.raises(ValueError) as error:
            module.MLPRegressor(early_stopping=True, validation_fraction=0.2).fit(X, y)
        messages.append(str(error.value))
    ours, theirs = messages
    assert ours.startswith(
        "The validation set is too small: validation_fraction=0.2 of the "
        "5 rows holds out 1, and a score needs 2."
    )
    assert ours.endswith(theirs.split(". ", 1)[1])  # "Increase 'validation_fraction' ..."


def test_classes_too_small_for_the_stratified_split_are_refused_as_scikit_learn_does():
    X, y = [[1, 2], [2, 3], [3, 4], [4, 5]], [0, 0, 0, 1]
    ours, theirs = (cls(early_stopping=True) for cls in (fbs.MLPClassifier, sk.MLPClassifier))
    assert _refusal(type(ours).fit, ours, X, y) == _refusal(type(theirs).fit, theirs, X, y)


@pytest.mark.parametrize(
    "params, expected",
    [
        (
            dict(learning_rate="optimal"),
            r"learning_rate must be one of 'constant', 'invscaling', "
            r"'adaptive', got 'optimal'",
        ),
        (dict(power_t=-1), r"power_t must be a real number in \[0, inf\), got -1"),
        (dict(max_fun=0), r"max_fun must be a positive int, got 0"),
        (dict(solver="newton"), r"solver must be one of 'lbfgs', 'sgd', 'adam', got 'newton'"),
        (dict(momentum=1.5), r"momentum must be a real number in \[0, 1\], got 1.5"),
        (dict(early_stopping="yes"), r"early_stopping must be a bool, got 'yes'"),
        (dict(n_iter_no_change=0), r"n_iter_no_change must be a positive int or numpy.inf"),
    ],
)
@pytest.mark.parametrize("cls", [fbs.MLPClassifier, fbs.MLPRegressor])
def test_parameter_errors_name_the_estimator_and_what_was_expected(digits, params, expected, cls):
    X, _, y, _ = digits
    with pytest.raises(ValueError, match=f"^{cls.__name__}: {expected}"):
        cls(**params).fit(X, y)


@pytest.mark.parametrize("cls", [fbs.MLPClassifier, fbs.MLPRegressor])
def test_unknown_parameters_name_the_estimator(cls):
    with pytest.raises(
        TypeError,
        match=rf"^{cls.__name__}\.__init__\(\) got an unexpected "
        "keyword argument 'learning_rates'",
    ):
        cls(learning_rates="adaptive")
    assert cls(learning_rate="adaptive", power_t=0.25, max_fun=10).get_params()["power_t"] == 0.25
