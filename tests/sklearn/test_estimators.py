"""fastbp.sklearn: scikit-learn's own estimator checks, and the estimators' behaviour."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="scikit-learn is not installed (pip install fastbp[test])")
# Most fits here stop at a small max_iter on purpose; the tests of ConvergenceWarning
# itself record warnings on their own.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

from sklearn.datasets import (  # noqa: E402
    load_iris,
    make_multilabel_classification,
    make_regression,
)
from sklearn.model_selection import cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import fastbp  # noqa: E402
from fastbp.sklearn import MLPClassifier, MLPRegressor  # noqa: E402


@parametrize_with_checks(
    [
        MLPClassifier(random_state=0),
        MLPRegressor(random_state=0),
        MLPClassifier((8,), solver="lbfgs", random_state=0),
        MLPRegressor(hidden_layer_sizes=(8,), solver="lbfgs", random_state=0),
    ]
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_classifier_learns_iris_in_a_pipeline(iris, solver):
    X, y = iris
    lr = 0.01 if solver == "adam" else 0.1
    model = make_pipeline(
        StandardScaler(),
        MLPClassifier((16,), solver=solver, learning_rate_init=lr, max_iter=150, random_state=0),
    )
    assert cross_val_score(model, X, y, cv=3).mean() > 0.9


def test_classifier_attributes_and_probabilities(iris):
    X, y = iris
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    clf = MLPClassifier((8, 5), activation="tanh", max_iter=30, random_state=1).fit(X, labels)
    assert list(clf.classes_) == list(labels[[0, 50, 100]])
    assert [c.shape for c in clf.coefs_] == [(4, 8), (8, 5), (5, 3)]
    assert [b.shape for b in clf.intercepts_] == [(8,), (5,), (3,)]
    assert clf.n_layers_ == 4 and clf.n_outputs_ == 3 and clf.n_iter_ == len(clf.loss_curve_)
    assert clf.t_ == clf.n_iter_ * len(X) and clf.loss_ == clf.loss_curve_[-1]
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)), proba)
    assert (clf.predict(X) == clf.classes_[proba.argmax(axis=1)]).all()


def test_regressor_fits_single_and_multiple_outputs():
    X, y = make_regression(200, 5, n_targets=2, noise=0.1, random_state=0)
    y = y / y.std(axis=0)
    params = dict(hidden_layer_sizes=(32,), learning_rate_init=0.01, max_iter=200, random_state=0)
    two = MLPRegressor(**params).fit(X, y)
    assert two.predict(X).shape == (200, 2) and two.score(X, y) > 0.95
    one = MLPRegressor(**params)
    assert one.fit(X, y[:, 0]).predict(X).shape == (200,) and one.score(X, y[:, 0]) > 0.95


def test_training_stops_when_the_loss_stops_improving(iris):
    X, y = iris
    clf = MLPClassifier(
        (8,), learning_rate_init=0.05, tol=0.5, n_iter_no_change=3, max_iter=500, random_state=0
    ).fit(X, y)
    # The first epoch is the best by more than tol; stopped after more than 3 without.
    assert clf.n_iter_ == 5


def test_early_stopping_keeps_the_best_validation_weights(iris):
    X, y = iris
    clf = MLPClassifier(
        (8,),
        early_stopping=True,
        validation_fraction=0.2,
        max_iter=300,
        n_iter_no_change=5,
        learning_rate_init=0.05,
        random_state=0,
    ).fit(X, y)
    assert clf.n_iter_ < 300 and clf.best_validation_score_ == max(clf.validation_scores_)
    assert clf.t_ == clf.n_iter_ * 120  # trained on the 80% left after the split


def test_partial_fit_trains_one_epoch_at_a_time(iris):
    X, y = iris
    clf = MLPClassifier((8,), random_state=0, batch_size=50)
    with pytest.raises(ValueError, match="classes"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[:100], y[:100], classes=[0, 1, 2])
    before = clf.coefs_[0].copy()
    clf.partial_fit(X[100:], y[100:])
    assert clf.n_iter_ == 1 and clf.t_ == 150 and not np.array_equal(before, clf.coefs_[0])
    with pytest.raises(ValueError, match="`y` has classes not in `self.classes_`"):
        clf.partial_fit(X[:3], [0, 1, 7])


def test_warm_start_continues_and_fit_restarts(iris):
    X, y = iris
    warm = MLPClassifier((8,), max_iter=5, warm_start=True, tol=0, random_state=0)
    cold = MLPClassifier((8,), max_iter=5, tol=0, random_state=0)
    warm.fit(X, y).fit(X, y)
    cold.fit(X, y).fit(X, y)
    assert warm.n_iter_ == cold.n_iter_ == 5  # epochs of the last fit, as scikit-learn
    assert len(warm.loss_curve_) == 10 and warm.t_ == 1500 and cold.t_ == 750


# Every constructor parameter, with a value other than the one _warm_fitted builds with:
# those that shape the network, and the training settings, which each fit reads afresh.
# (warm_start=False is neither: it builds a new network, its meaning.)
SHAPING = [
    ("hidden_layer_sizes", (7,)),
    ("hidden_layer_sizes", (5, 5)),
    ("activation", "tanh"),
    ("compute_dtype", "bfloat16"),
    ("loss", "poisson"),
]
TRAINING = [
    ("solver", "sgd"),
    ("solver", "lbfgs"),
    ("alpha", 0.01),
    ("batch_size", 16),
    ("learning_rate", "adaptive"),
    ("learning_rate_init", 0.01),
    ("power_t", 0.25),
    ("max_iter", 2),
    ("shuffle", False),
    ("random_state", 1),
    ("tol", 0.1),
    ("verbose", True),
    ("momentum", 0.5),
    ("nesterovs_momentum", False),
    ("early_stopping", True),
    ("validation_fraction", 0.2),
    ("beta_1", 0.8),
    ("beta_2", 0.99),
    ("epsilon", 1e-6),
    ("n_iter_no_change", 2),
    ("max_fun", 100),
    ("class_weight", "balanced"),
]


def _warm_fitted(cls, iris):
    """A warm-starting estimator fitted once on iris (targets: a column's magnitudes for the
    regressor, >= 0 as either of its losses takes them), and its data."""
    X, y = iris
    y = y if cls is MLPClassifier else np.abs(X[:, 0])
    return cls(hidden_layer_sizes=(5,), max_iter=3, warm_start=True, random_state=0).fit(X, y), X, y


def _settings_of(cls, settings: list) -> list:
    """The ``settings`` that ``cls`` has (the regressor has no class_weight, the classifier
    no loss)."""
    return [(name, value) for name, value in settings if name in cls().get_params()]


def _training(cls) -> list:
    return _settings_of(cls, TRAINING)


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_every_parameter_either_shapes_the_network_or_is_a_training_setting(cls):
    classified = {name for name, _ in _settings_of(cls, SHAPING) + _training(cls)}
    assert set(cls().get_params()) == classified | {"warm_start"}


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
@pytest.mark.parametrize(
    "cls, name, value",
    [
        (cls, *setting)
        for cls in (MLPClassifier, MLPRegressor)
        for setting in _settings_of(cls, SHAPING)
    ],
)
def test_a_warm_start_refuses_a_change_of_what_shapes_the_network(iris, cls, name, value, method):
    est, X, y = _warm_fitted(cls, iris)
    before, built = est.network_.params.copy(), est.get_params()[name]
    net, t, curve, n_layers = est.network_, est.t_, len(est.loss_curve_), est.n_layers_
    est.set_params(**{name: value})
    with pytest.raises(ValueError, match=f"{name} shapes the network") as error:
        getattr(est, method)(X, y)
    assert f"built with {name}={built!r}, got {value!r}" in str(error.value)
    assert est.network_ is net and np.array_equal(est.network_.params, before)
    assert est.t_ == t and len(est.loss_curve_) == curve and est.n_layers_ == n_layers
    est.set_params(warm_start=False).fit(X, y)  # a new network, as asked
    assert est.network_ is not net


@pytest.mark.parametrize("sizes", [5, [5]])
def test_a_warm_start_takes_the_same_sizes_spelled_otherwise(iris, sizes):
    est, X, y = _warm_fitted(MLPClassifier, iris)
    net = est.network_
    assert est.set_params(hidden_layer_sizes=sizes).fit(X, y).network_ is net


@pytest.mark.parametrize(
    "cls, name, value",
    [(cls, *setting) for cls in (MLPClassifier, MLPRegressor) for setting in _training(cls)],
)
def test_training_settings_may_change_between_warm_fits(iris, cls, name, value):
    est, X, y = _warm_fitted(cls, iris)
    net, before = est.network_, est.network_.params.copy()
    est.set_params(**{name: value}).fit(X, y)
    assert est.network_ is net and not np.array_equal(net.params, before)


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_a_warm_start_refuses_other_features_before_anything_changes(iris, cls, method):
    est, X, y = _warm_fitted(cls, iris)
    before = est.network_.params.copy()
    with pytest.raises(
        ValueError, match=f"X has 3 features, but {cls.__name__} is expecting 4 features as input"
    ):
        getattr(est, method)(X[:, :3], y)
    assert est.n_features_in_ == 4 and np.array_equal(est.network_.params, before)


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_a_warm_start_of_the_regressor_refuses_other_outputs(iris, method):
    est, X, _ = _warm_fitted(MLPRegressor, iris)
    before = est.network_.params.copy()
    with pytest.raises(ValueError, match="MLPRegressor: y has 2 outputs, the network 1"):
        getattr(est, method)(X, X[:, :2])
    assert est.n_outputs_ == 1 and np.array_equal(est.network_.params, before)
    assert est.predict(X).shape == (len(X),)


def test_partial_fit_takes_some_of_the_classes_also_with_warm_start(iris):
    est, X, y = _warm_fitted(MLPClassifier, iris)
    est.partial_fit(X[y > 0], y[y > 0])  # scikit-learn would want every class here
    assert est.n_iter_ == 1 and list(est.classes_) == [0, 1, 2]


def test_n_layers_counts_the_fitted_network(iris):
    est = _warm_fitted(MLPClassifier, iris)[0]
    assert est.set_params(hidden_layer_sizes=(5, 5)).n_layers_ == 3  # not refitted
    assert not hasattr(MLPClassifier(), "n_layers_")


def test_pickle_round_trip_predicts_the_same(iris):
    X, y = iris
    clf = MLPClassifier((8,), max_iter=10, random_state=0, solver="sgd").fit(X, y)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
    again.partial_fit(X, y)  # the optimizer comes back without its per-network state
    assert again.t_ == 11 * len(X)


def test_float32_input_trains_a_float32_network(iris):
    X, y = iris
    clf = MLPClassifier((8,), max_iter=3, random_state=0).fit(X.astype(np.float32), y)
    assert clf.network_.dtype == np.float32 and clf.coefs_[0].dtype == np.float32


@pytest.mark.parametrize(
    "params, word",
    [
        (dict(solver="newton"), "solver"),
        (dict(activation="softplus"), "activation"),
        (dict(hidden_layer_sizes=(8, 0)), "hidden_layer_sizes"),
        (dict(batch_size=0), "batch_size"),
        (dict(alpha=-1.0), "alpha"),
        (dict(momentum=1.5), "momentum"),
        (dict(max_iter=0), "max_iter"),
        (dict(beta_2=1.0), "beta_2"),
        (dict(learning_rate="adaptive", power_t=-0.5), "power_t"),
        (dict(learning_rate="optimal"), "learning_rate"),
        (dict(max_fun=0), "max_fun"),
    ],
)
@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_bad_parameters_are_refused_at_fit(iris, params, word, cls):
    X, y = iris
    est = cls(**params)  # scikit-learn's rule: no checks in __init__
    with pytest.raises(ValueError, match=word):
        est.fit(X, y)
    assert vars(est) == vars(cls(**params))  # nothing was set


@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
def test_two_classes_have_one_sigmoid_output_as_in_scikit_learn(iris, solver):
    X, y = iris
    labels = np.array(["no", "yes"])[(y == 2).astype(int)]
    clf = MLPClassifier(
        (8,), solver=solver, learning_rate_init=0.05, max_iter=50, random_state=0
    ).fit(X, labels)
    assert clf.out_activation_ == "logistic" and clf.n_outputs_ == 1
    assert [c.shape for c in clf.coefs_] == [(4, 8), (8, 1)]
    z = clf.network_.predict(X)[:, 0]
    p = 1 / (1 + np.exp(-z))  # the probability of classes_[1]
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba, np.stack([1 / (1 + np.exp(z)), p], axis=1))
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)), proba)
    np.testing.assert_array_equal(clf.predict(X), np.where(p > 0.5, "yes", "no"))
    assert clf.score(X, labels) > 0.9


# ---- multilabel classification: a sigmoid output per label -----------------------------


@pytest.fixture(scope="module")
def multilabel():
    X, Y = make_multilabel_classification(n_samples=80, n_classes=4, random_state=0)
    return StandardScaler().fit_transform(X), Y


@pytest.mark.parametrize("solver", ["lbfgs", "adam", "sgd"])
def test_multilabel_predicts_the_indicator_matrix_of_probabilities_above_one_half(
    multilabel, solver
):
    X, Y = multilabel
    clf = MLPClassifier(
        (16,), solver=solver, learning_rate_init=0.05, max_iter=200, random_state=0
    ).fit(X, Y)
    assert list(clf.classes_) == [0, 1, 2, 3] and clf.n_outputs_ == 4
    assert clf.out_activation_ == "logistic" and clf.coefs_[-1].shape == (16, 4)
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba, 1 / (1 + np.exp(-clf.network_.predict(X))))
    assert not np.allclose(proba.sum(axis=1), 1.0)  # labels, not a distribution
    np.testing.assert_array_equal(clf.predict(X), (proba > 0.5).astype(int))
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)), proba)
    assert clf.score(X, Y) == np.mean((clf.predict(X) == Y).all(axis=1)) > 0.7


def test_multilabel_partial_fit_takes_the_label_columns_as_classes(multilabel):
    X, Y = multilabel
    clf = MLPClassifier((8,), solver="sgd", random_state=0)
    with pytest.raises(ValueError, match=r"y has 4 label columns, but classes has 5 labels"):
        clf.partial_fit(X, Y, classes=np.arange(5))
    assert not hasattr(clf, "network_")
    clf.partial_fit(X, Y, classes=np.arange(4))
    before = clf.network_.params.copy()
    clf.partial_fit(X[:10], Y[:10])
    assert clf.t_ == len(X) + 10 and not np.array_equal(clf.network_.params, before)


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_a_warm_start_keeps_the_kind_of_labels(multilabel, method):
    X, Y = multilabel
    multi = MLPClassifier((8,), max_iter=3, warm_start=True, random_state=0).fit(X, Y)
    single = MLPClassifier((8,), max_iter=3, warm_start=True, random_state=0).fit(X, Y[:, 0])
    for est, y, message in [
        (
            multi,
            Y[:, 0],
            ("y is a vector of labels, but the network was fitted on a label indicator matrix"),
        ),
        (
            single,
            Y[:, :2],
            ("y is a label indicator matrix, but the network was fitted on a vector of labels"),
        ),
    ]:
        before = est.network_.params.copy()
        with pytest.raises(ValueError, match=f"MLPClassifier: {message}"):
            getattr(est, method)(X, y)
        assert np.array_equal(est.network_.params, before)


def test_class_weight_is_refused_for_multilabel(multilabel):
    X, Y = multilabel
    with pytest.raises(ValueError, match="class_weight weighs the classes of single labels"):
        MLPClassifier((4,), class_weight="balanced").fit(X, Y)


def test_multilabel_early_stopping_splits_without_strata(multilabel):
    X, Y = multilabel
    clf = MLPClassifier((8,), early_stopping=True, max_iter=20, random_state=0).fit(X, Y)
    assert len(clf.validation_scores_) == clf.n_iter_
    assert clf.t_ == clf.n_iter_ * (len(X) - 8)  # 10% held out


# ---- coefs_ and intercepts_: views of the network, assignable ----------------------------


def test_coefs_are_views_of_the_network_and_writes_reach_it(iris):
    X, y = iris
    clf = MLPClassifier((5,), max_iter=3, random_state=0).fit(X, y)
    assert clf.coefs_ is clf.coefs_ and clf.coefs_[0].dtype == clf.network_.dtype
    clf.coefs_[1][...] = 0.0
    clf.intercepts_[1][...] = [0.0, 5.0, 0.0]
    assert (clf.predict(X) == 1).all()


@pytest.mark.parametrize("whole", [True, False], ids=["lists", "elements"])
def test_assigned_coefs_and_intercepts_are_what_predict_uses(iris, whole):
    X, y = iris
    clf = MLPClassifier((5,), max_iter=3, random_state=0).fit(X, y)
    W, b = np.zeros((5, 3)), np.array([0.0, 0.0, 5.0])
    if whole:
        clf.coefs_ = [clf.coefs_[0].copy(), W]
        clf.intercepts_ = [clf.intercepts_[0].copy(), b]
    else:
        clf.coefs_[1], clf.intercepts_[1] = W, b
    assert (clf.predict(X) == 2).all()
    np.testing.assert_array_equal(clf.network_.layers[-1].W, W)
    assert clf.coefs_[1] is clf.network_.layers[-1].W  # linked again


@pytest.mark.parametrize(
    "attr, value, message",
    [
        (
            "coefs_",
            lambda est: [est.coefs_[0], np.zeros((5, 2))],
            r"coefs_\[1\] must have shape \(5, 3\) \(layer 1 maps 5 to 3 units\), got \(5, 2\)",
        ),
        (
            "intercepts_",
            lambda est: [est.intercepts_[0]],
            r"intercepts_ must be a list of 2 arrays, one per layer",
        ),
        (
            "coefs_",
            lambda est: [est.coefs_[0], np.full((5, 3), np.nan)],
            r"coefs_\[1\] must be finite",
        ),
        (
            "intercepts_",
            lambda est: [est.intercepts_[0], "abc"],
            r"intercepts_\[1\] must be an array of real numbers",
        ),
    ],
)
@pytest.mark.parametrize("use", ["predict", "partial_fit"])
def test_assigned_parameters_are_checked_before_anything_changes(iris, attr, value, message, use):
    X, y = iris
    clf = MLPClassifier((5,), max_iter=3, random_state=0).fit(X, y)
    before, t = clf.network_.params.copy(), clf.t_
    setattr(clf, attr, value(clf))
    with pytest.raises(ValueError, match=f"^MLPClassifier: {message}"):
        getattr(clf, use)(*((X,) if use == "predict" else (X, y)))
    assert np.array_equal(clf.network_.params, before) and clf.t_ == t


def test_partial_fit_without_a_network_starts_from_assigned_parameters(iris):
    X, y = iris
    W = [np.full((4, 5), 0.1), np.full((5, 3), -0.2)]
    b = [np.zeros(5), np.array([0.0, 1.0, 2.0])]
    clf = MLPClassifier((5,), solver="sgd", learning_rate_init=1e-12, random_state=0)
    clf.coefs_, clf.intercepts_ = W, b
    assert clf.coefs_ is W and not hasattr(clf, "network_")
    clf.partial_fit(X, y, classes=[0, 1, 2])
    for got, want in zip(clf.coefs_ + clf.intercepts_, W + b):
        np.testing.assert_allclose(got, want, atol=1e-9)  # one step of a rate of 1e-12
    assert clf.n_layers_ == 3 and clf.t_ == len(X)


def test_a_fresh_fit_ignores_assigned_parameters_as_scikit_learn_does(iris):
    X, y = iris
    clf = MLPClassifier((5,), max_iter=3, random_state=0)
    clf.coefs_, clf.intercepts_ = [np.zeros((4, 5)), np.zeros((5, 3))], [np.zeros(5)] * 2
    clf.fit(X, y)
    np.testing.assert_array_equal(
        clf.coefs_[0], MLPClassifier((5,), max_iter=3, random_state=0).fit(X, y).coefs_[0]
    )


def test_assigned_start_needs_both_lists_and_the_data_s_shapes(iris):
    X, y = iris
    clf = MLPClassifier((5,), solver="sgd", random_state=0)
    clf.coefs_ = [np.zeros((4, 5)), np.zeros((5, 3))]
    with pytest.raises(
        ValueError, match="set both coefs_ and intercepts_ to start from them, got only coefs_"
    ):
        clf.partial_fit(X, y, classes=[0, 1, 2])
    clf.intercepts_ = [np.zeros(5), np.zeros(3)]
    with pytest.raises(ValueError, match=r"coefs_\[0\] must have shape \(3, 5\)"):
        clf.partial_fit(X[:, :3], y, classes=[0, 1, 2])
    assert not hasattr(clf, "network_")


def test_unfitted_coefs_raise_not_fitted_error():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        _ = MLPRegressor().coefs_
    assert not hasattr(MLPRegressor(), "intercepts_")


def test_pickling_keeps_the_parameters_and_assigned_lists(iris):
    X, y = iris
    clf = MLPClassifier((5,), max_iter=3, random_state=0).fit(X, y)
    again = pickle.loads(pickle.dumps(clf))
    assert again.coefs_[0] is again.network_.layers[0].W
    np.testing.assert_array_equal(again.coefs_[0], clf.coefs_[0])
    clf.intercepts_[1] = np.array([0.0, 0.0, 5.0])
    assert (pickle.loads(pickle.dumps(clf)).predict(X) == 2).all()


# ---- tests/sklearn/sklearn_suite.py: scikit-learn's own MLP tests, run on these estimators -------


def test_the_suite_script_runs_scikit_learns_tests_on_fastbp_s_estimators(tmp_path):
    import sklearn_suite

    text = sklearn_suite.prepare(tmp_path).read_text()
    assert sklearn_suite.FASTBP_IMPORT in text and sklearn_suite.SKLEARN_IMPORT not in text
    for name in sklearn_suite.PRIVATE_API_TESTS:  # what it deselects is there to deselect
        assert f"def {name}(" in text
    assert sklearn_suite.main(["-k", "multilabel or partial_fit_errors"]) == 0


# ---- sparse X ---------------------------------------------------------------------------


@pytest.fixture
def small_blocks(monkeypatch):
    """Dense blocks of a few rows of a sparse X, so that predictions and L-BFGS's
    full-batch gradients cross many blocks."""
    monkeypatch.setattr(fastbp._sparse, "BLOCK_ELEMENTS", 200)


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
@pytest.mark.parametrize(
    "cls, solver",
    [
        (MLPClassifier, "adam"),
        (MLPClassifier, "sgd"),
        (MLPClassifier, "lbfgs"),
        (MLPRegressor, "adam"),
        (MLPRegressor, "lbfgs"),
    ],
)
def test_sparse_x_trains_and_predicts_as_the_dense_x(small_blocks, fmt, cls, solver):
    """fit (shuffled, float32, weighted), partial_fit, predict, predict_proba and score on a
    sparse X (any format): the same batches, parameters and results as on the dense X, to float32
    round-off."""
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    X = sp.random(120, 30, density=0.2, random_state=1, format=fmt, dtype=np.float32)
    y = (X @ rng.standard_normal(30) > 0).astype(int) + (X @ rng.standard_normal(30) > 0)
    if cls is MLPRegressor:
        y = X @ rng.standard_normal(30)
    params = dict(hidden_layer_sizes=(8,), solver=solver, max_iter=5, batch_size=16)
    w = rng.uniform(0.5, 2.0, X.shape[0])
    fitted = []
    for x in (X, X.toarray()):
        est = cls(random_state=0, **params).fit(x, y, sample_weight=w)
        if solver != "lbfgs":
            est.partial_fit(x, y)
        outputs = [est.predict(x), est.score(x, y)]
        if cls is MLPClassifier:
            outputs.append(est.predict_proba(x))
        fitted.append((est.network_.params.copy(), est.loss_, *outputs))
    assert est.network_.dtype == np.float32
    # L-BFGS sums the blocks' gradients in another order than one full batch's product
    rtol = 1e-4 if solver == "lbfgs" else 1e-5
    for ours, dense in zip(*fitted):
        np.testing.assert_allclose(ours, dense, rtol=rtol, atol=rtol / 10)


def test_sparse_x_early_stopping_validates_as_the_dense_x(small_blocks):
    import scipy.sparse as sp

    X = sp.random(150, 30, density=0.2, random_state=2, format="csr")
    y = (X @ np.linspace(-1, 1, 30) > 0).astype(int)
    fits = [
        MLPClassifier((8,), early_stopping=True, max_iter=8, random_state=0).fit(x, y)
        for x in (X, X.toarray())
    ]
    np.testing.assert_allclose(fits[0].validation_scores_, fits[1].validation_scores_)
    np.testing.assert_allclose(fits[0].network_.params, fits[1].network_.params, rtol=1e-9)
