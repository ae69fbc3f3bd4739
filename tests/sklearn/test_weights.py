"""sample_weight in the scikit-learn estimators' fit and partial_fit, and the classifier's
class_weight: scikit-learn's weighted objective for "lbfgs", weights of one and class
weights as their sample weights exactly, zero weights, the weighted validation score, bad
weights refused, and the same accuracy band as scikit-learn's own MLP."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")
# Most fits here stop at a small max_iter on purpose; the tests of ConvergenceWarning
# itself record warnings on their own.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
from sklearn.datasets import make_classification, make_regression  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.neural_network import MLPClassifier as SkMLPClassifier  # noqa: E402
from sklearn.utils import check_random_state  # noqa: E402
from sklearn.utils.class_weight import compute_sample_weight  # noqa: E402

from fastbp.sklearn import MLPClassifier, MLPRegressor  # noqa: E402


@pytest.fixture(scope="module")
def classes():
    X, y = make_classification(
        300, 6, n_informative=4, n_classes=3, weights=[0.6, 0.3, 0.1], random_state=0
    )
    return X, y


@pytest.fixture(scope="module")
def regression():
    X, y = make_regression(120, 5, noise=5.0, random_state=1)
    return X, y / y.std()


def params(est):
    return est.network_.params.copy()


@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_weights_of_one_change_nothing(classes, solver):
    X, y = classes
    plain = MLPClassifier((8,), solver=solver, max_iter=15, random_state=0).fit(X, y)
    ones = MLPClassifier((8,), solver=solver, max_iter=15, random_state=0).fit(
        X, y, sample_weight=np.ones(len(y))
    )
    np.testing.assert_array_equal(params(plain), params(ones))
    assert plain.loss_ == ones.loss_


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_class_weight_is_its_sample_weight(classes, solver):
    X, y = classes
    table = {0: 0.5, 2: 3.0}
    by_class = MLPClassifier(
        (8,), solver=solver, max_iter=15, random_state=0, class_weight=table
    ).fit(X, y)
    by_row = MLPClassifier((8,), solver=solver, max_iter=15, random_state=0).fit(
        X, y, sample_weight=np.array([table.get(c, 1.0) for c in y])
    )
    np.testing.assert_array_equal(params(by_class), params(by_row))


def test_balanced_class_weight_and_sample_weight_multiply(classes):
    X, y = classes
    w = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    both = MLPClassifier((8,), max_iter=10, random_state=0, class_weight="balanced").fit(
        X, y, sample_weight=w
    )
    by_row = MLPClassifier((8,), max_iter=10, random_state=0).fit(
        X, y, sample_weight=w * compute_sample_weight("balanced", y)
    )
    np.testing.assert_array_equal(params(both), params(by_row))


def test_lbfgs_minimises_the_weighted_objective_of_repeated_rows(regression):
    """Integer weights are repeated rows in scikit-learn's objective (weighted mean loss,
    penalty over the weight sum): L-BFGS-B follows the same path."""
    X, y = regression
    k = np.random.default_rng(2).integers(1, 4, len(y))
    kwargs = dict(hidden_layer_sizes=(6,), solver="lbfgs", alpha=0.01, max_iter=30, random_state=0)
    weighted = MLPRegressor(**kwargs).fit(X, y, sample_weight=k)
    repeated = MLPRegressor(**kwargs).fit(np.repeat(X, k, axis=0), np.repeat(y, k))
    assert weighted.loss_ == pytest.approx(repeated.loss_, rel=1e-9)
    np.testing.assert_allclose(params(weighted), params(repeated), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("est", [MLPRegressor, MLPClassifier])
def test_lbfgs_rows_of_weight_zero_have_no_effect(classes, regression, est):
    X, y = classes if est is MLPClassifier else regression
    rng = np.random.default_rng(3)
    extra = rng.standard_normal((40, X.shape[1])) * 5
    y_extra = y[rng.integers(0, len(y), 40)]
    kwargs = dict(hidden_layer_sizes=(6,), solver="lbfgs", alpha=0.01, max_iter=30, random_state=0)
    w = rng.uniform(0.5, 2.0, len(y))
    with_zeros = est(**kwargs).fit(
        np.vstack([X, extra]),
        np.concatenate([y, y_extra]),
        sample_weight=np.concatenate([w, np.zeros(40)]),
    )
    without = est(**kwargs).fit(X, y, sample_weight=w)
    assert with_zeros.loss_ == pytest.approx(without.loss_, rel=1e-9)
    np.testing.assert_allclose(params(with_zeros), params(without), rtol=1e-6, atol=1e-9)


def test_early_stopping_scores_the_held_out_rows_with_their_weights(classes):
    X, y = classes
    w = np.random.default_rng(4).uniform(0.1, 3.0, len(y))
    clf = MLPClassifier(
        (8,), max_iter=40, early_stopping=True, validation_fraction=0.2, random_state=5
    ).fit(X, y, sample_weight=w)
    # the same split as the estimator's: scikit-learn's, seeded by random_state
    _, Xv, _, yv, _, wv = train_test_split(
        X, y, w, test_size=0.2, stratify=y, random_state=check_random_state(5)
    )
    hits = clf.predict(Xv) == yv
    assert clf.best_validation_score_ == pytest.approx(np.sum(wv * hits) / np.sum(wv))
    assert clf.best_validation_score_ != pytest.approx(np.mean(hits))


@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_weighted_accuracy_matches_scikit_learn_s_mlp(classes, solver):
    """Up-weighting the rare class: fastbp's and scikit-learn's MLP recall it alike."""
    X, y = classes
    w = compute_sample_weight("balanced", y)
    kwargs = dict(
        hidden_layer_sizes=(16,),
        solver=solver,
        max_iter=300,
        random_state=0,
        learning_rate_init=0.01,
    )
    ours = MLPClassifier(**kwargs).fit(X, y, sample_weight=w)
    theirs = SkMLPClassifier(**kwargs).fit(X, y, sample_weight=w)
    rare = y == 2
    ours_recall, theirs_recall = (np.mean(m.predict(X[rare]) == 2) for m in (ours, theirs))
    assert ours.score(X, y, sample_weight=w) == pytest.approx(
        theirs.score(X, y, sample_weight=w), abs=0.06
    )
    assert ours_recall == pytest.approx(theirs_recall, abs=0.1) and ours_recall > 0.7


def test_partial_fit_takes_weights(classes):
    X, y = classes
    w = np.random.default_rng(5).uniform(0.5, 2.0, len(y))
    a = MLPClassifier((8,), random_state=0, class_weight={1: 2.0})
    b = MLPClassifier((8,), random_state=0)
    for _ in range(3):
        a.partial_fit(X, y, sample_weight=w, classes=np.unique(y))
        b.partial_fit(X, y, w * np.where(y == 1, 2.0, 1.0), np.unique(y))
    np.testing.assert_array_equal(params(a), params(b))
    r = MLPRegressor(hidden_layer_sizes=(4,), random_state=0).partial_fit(
        X, y.astype(float), sample_weight=w
    )
    assert np.isfinite(r.loss_)


@pytest.mark.parametrize(
    "weights, word",
    [
        (np.ones(5), r"shape \(300,\)"),
        (np.full(300, -1.0), ">= 0"),
        (np.full(300, np.nan), "finite"),
        (np.zeros(300), "zero for every sample"),
        ("heavy", "real numbers"),
    ],
)
def test_bad_sample_weights_are_refused(classes, weights, word):
    X, y = classes
    with pytest.raises(ValueError, match=word):
        MLPClassifier((4,), max_iter=2).fit(X, y, sample_weight=weights)


def test_bad_class_weights_are_refused(classes):
    X, y = classes
    with pytest.raises(ValueError, match="class_weight"):
        MLPClassifier((4,), max_iter=2, class_weight="equal").fit(X, y)
    with pytest.raises(ValueError, match="not supported by partial_fit"):
        MLPClassifier((4,), class_weight="balanced").partial_fit(X, y, classes=np.unique(y))
    with pytest.raises(ValueError):  # a label the data does not have
        MLPClassifier((4,), max_iter=2, class_weight={7: 2.0}).fit(X, y)


def test_class_weight_is_a_parameter_of_the_classifier_only():
    assert MLPClassifier(class_weight="balanced").get_params()["class_weight"] == "balanced"
    assert "class_weight" not in MLPRegressor().get_params()
    with pytest.raises(TypeError, match=r"MLPRegressor.__init__\(\) got an unexpected"):
        MLPRegressor(class_weight="balanced")


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_stochastic_solvers_weigh_rows_relative_to_each_other(classes, solver):
    """Weights act through their ratios (scaled to mean 1), as in scikit-learn's weighted
    mean: w and 4 w train alike without a penalty, and differ from no weights."""
    X, y = classes
    w = np.random.default_rng(6).uniform(0.1, 3.0, len(y))
    fits = [
        MLPClassifier((8,), solver=solver, alpha=0.0, max_iter=5, random_state=0).fit(
            X, y, sample_weight=weights
        )
        for weights in (w, 4 * w, None)
    ]
    np.testing.assert_array_equal(params(fits[0]), params(fits[1]))
    assert not np.allclose(params(fits[0]), params(fits[2]))
