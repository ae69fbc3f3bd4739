"""Bad input gets a clear error, and nothing is lost.

Each case asserts the exception type, that the message names the offending value (and, for
shapes, the expected one), and that the network's parameters are exactly as before."""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pytest

import fastbp as fb
from fbhelpers import BACKENDS, make_net, match_all

WIDTHS = (4, 9, 2)  # distinctive sizes, so messages can be matched on them
N = 6

X_CALLS = ["forward", "predict", "loss", "backward", "train_step", "fit"]
XT_CALLS = ["loss", "backward", "train_step", "fit"]


def call(net, method, X, T=None):
    if method == "forward":
        return net.forward(X)
    if method == "predict":
        return net.predict(X)
    if method == "loss":
        return net.loss(X, T)
    if method == "backward":
        return net.backward(X, T)
    if method == "train_step":
        return net.train_step(X, T, fb.SGD(lr=0.1, momentum=0.9))
    if method == "fit":
        # batch_size 2: a bad value in the last rows is only reached after two updates,
        # so fit must check all its data before it trains
        return net.fit(X, T, epochs=2, batch_size=2, optimizer=fb.SGD(lr=0.1), shuffle=False)
    raise KeyError(method)


def good_data(loss="mse_mean", n=N, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, WIDTHS[0]))
    if loss.startswith("ce_labels"):
        T = rng.integers(0, WIDTHS[-1], size=n)
    else:
        T = rng.standard_normal((n, WIDTHS[-1]))
    return X, T


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def net(backend):
    return make_net(WIDTHS, "tanh", "mse_mean", "float64", backend, seed=0)


def assert_raises_and_unchanged(net, snapshot, exc, match, fn):
    snap = snapshot(net)
    with pytest.raises(exc, match=match or None):
        fn()
    snap.assert_unchanged()


# ---------------------------------------------------------------------------------------
# shapes
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", X_CALLS)
def test_wrong_number_of_x_columns(net, snapshot, method):
    X, T = good_data()
    X = np.hstack([X, X[:, :1]])  # 5 columns for 4 inputs
    assert_raises_and_unchanged(
        net, snapshot, ValueError, match_all(4, 5), lambda: call(net, method, X, T)
    )


@pytest.mark.parametrize("method", XT_CALLS)
def test_x_rows_differ_from_t_rows(net, snapshot, method):
    X, T = good_data(n=6)
    T = np.vstack([T, T[:2]])  # 8 target rows for 6 samples
    assert_raises_and_unchanged(
        net, snapshot, ValueError, match_all(6, 8), lambda: call(net, method, X, T)
    )


@pytest.mark.parametrize("method", XT_CALLS)
def test_wrong_number_of_t_columns(net, snapshot, method):
    X, T = good_data()
    T = np.hstack([T, T[:, :1]])  # 3 target columns for 2 outputs
    assert_raises_and_unchanged(
        net, snapshot, ValueError, match_all(2, 3), lambda: call(net, method, X, T)
    )


@pytest.mark.parametrize("method", XT_CALLS)
def test_wrong_number_of_probability_columns(backend, snapshot, method):
    net = make_net((4, 9, 3), "relu", "ce_probs", "float64", backend, seed=0)
    X, _ = good_data()
    T = np.full((N, 5), 0.2)  # 5 classes for 3 outputs
    assert_raises_and_unchanged(
        net, snapshot, ValueError, match_all(3, 5), lambda: call(net, method, X, T)
    )


@pytest.mark.parametrize("method", X_CALLS)
def test_empty_batch(net, snapshot, method):
    X = np.zeros((0, WIDTHS[0]))
    T = np.zeros((0, WIDTHS[-1]))
    assert_raises_and_unchanged(
        net, snapshot, ValueError, r"(?i)empty|\b0\b", lambda: call(net, method, X, T)
    )


@pytest.mark.parametrize("method", X_CALLS)
@pytest.mark.parametrize("shape", [(2, 3, 4), (4,)], ids=["3-D", "1-D"])
def test_x_not_two_dimensional(net, snapshot, method, shape):
    # (4,) is refused rather than guessed to be one sample: the API takes samples as rows
    X = np.ones(shape)
    T = np.ones((N, WIDTHS[-1]))
    assert_raises_and_unchanged(
        net, snapshot, ValueError, r"(?i)2-?d|dim|shape", lambda: call(net, method, X, T)
    )


# ---------------------------------------------------------------------------------------
# non-finite values
# ---------------------------------------------------------------------------------------

NONFINITE = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf}


@pytest.mark.parametrize("method", X_CALLS)
@pytest.mark.parametrize("value", list(NONFINITE))
def test_nonfinite_in_x(net, snapshot, method, value):
    X, T = good_data()
    X[-1, 2] = NONFINITE[value]  # in the last batch of fit
    assert_raises_and_unchanged(
        net, snapshot, ValueError, r"(?i)nan|inf|finite", lambda: call(net, method, X, T)
    )


@pytest.mark.parametrize("method", XT_CALLS)
@pytest.mark.parametrize("value", list(NONFINITE))
def test_nonfinite_in_t(net, snapshot, method, value):
    X, T = good_data()
    T[-1, 1] = NONFINITE[value]
    assert_raises_and_unchanged(
        net, snapshot, ValueError, r"(?i)nan|inf|finite", lambda: call(net, method, X, T)
    )


@pytest.mark.parametrize("method", X_CALLS)
def test_nonfinite_in_float32_network_input(backend, snapshot, method):
    net = make_net(WIDTHS, "sigmoid", "mse_mean", "float32", backend, seed=0)
    X, T = good_data()
    X = X.astype(np.float32)
    X[3, 0] = np.nan
    assert_raises_and_unchanged(
        net,
        snapshot,
        ValueError,
        r"(?i)nan|inf|finite",
        lambda: call(net, method, X, T.astype(np.float32)),
    )


@pytest.mark.parametrize("method", X_CALLS)
def test_value_too_large_for_float32_network(backend, snapshot, method):
    """1e300 is finite in float64 but overflows to inf when converted to float32."""
    net = make_net(WIDTHS, "sigmoid", "mse_mean", "float32", backend, seed=0)
    X, T = good_data()
    X[-1, 0] = 1e300
    snap = snapshot(net)
    with pytest.raises(ValueError, match=r"(?i)nan|inf|finite|overflow|range"):
        call(net, method, X, T)
    snap.assert_unchanged()


# ---------------------------------------------------------------------------------------
# class labels
# ---------------------------------------------------------------------------------------


@pytest.fixture
def ce_net(backend):
    return make_net((4, 9, 3), "relu", "ce_labels", "float64", backend, seed=0)


@pytest.mark.parametrize("method", XT_CALLS)
@pytest.mark.parametrize("bad", [-1, 3, 7, 10**6])
def test_label_out_of_range(ce_net, snapshot, method, bad):
    X, _ = good_data()
    labels = np.array([0, 1, 2, 0, 1, bad])  # 3 classes: 0, 1, 2
    assert_raises_and_unchanged(
        ce_net, snapshot, ValueError, match_all(bad), lambda: call(ce_net, method, X, labels)
    )


@pytest.mark.parametrize("method", XT_CALLS)
@pytest.mark.parametrize("shape", [(N,), (N, 1)], ids=["labels", "column"])
@pytest.mark.parametrize("bad", [1.5, np.nan])
def test_fractional_labels_are_refused_naming_the_first(ce_net, snapshot, method, shape, bad):
    X, _ = good_data()
    labels = np.array([0, 1, 2, 0, bad, 1.5]).reshape(shape)
    assert_raises_and_unchanged(
        ce_net,
        snapshot,
        ValueError,
        rf"whole numbers, got {bad} at index 4",
        lambda: call(ce_net, method, X, labels),
    )


@pytest.mark.parametrize("mod", [fb.ops, fb.reference], ids=["ops", "reference"])
@pytest.mark.parametrize("bad", [-1, 3, 1000])
def test_ops_label_out_of_range(mod, bad):
    # for the reference too: -1 would otherwise silently pick the last class
    z = np.zeros((4, 3))
    labels = np.array([0, 1, bad, 2])
    with pytest.raises(ValueError, match=match_all(bad)):
        mod.softmax_cross_entropy(z, labels)
    with pytest.raises(ValueError, match=match_all(bad)):
        mod.softmax_cross_entropy_backward(z, labels)


# ---------------------------------------------------------------------------------------
# wrong types, unknown arguments, bad settings
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: fb.Dense(2, 3, bias=False),
        lambda: fb.Sigmoid(bias=False),
        lambda: fb.MSELoss(bias=False),
        lambda: fb.SoftmaxCrossEntropyLoss(bias=False),
        lambda: fb.BCEWithLogitsLoss(bias=False),
        lambda: fb.SGD(lr=0.1, bias=False),
        lambda: fb.Network([fb.Dense(2, 1)], loss=fb.MSELoss(), bias=False),
    ],
    ids=["Dense", "Sigmoid", "MSELoss", "SoftmaxCE", "BCE", "SGD", "Network"],
)
def test_unknown_constructor_keyword(make):
    # Python's own TypeError: it names the keyword, or says the class takes no arguments
    with pytest.raises(TypeError, match="bias|takes no arguments"):
        make()


def test_unknown_keyword_in_methods(net, snapshot):
    X, T = good_data()
    opt = fb.SGD(lr=0.1)
    for fn in (
        lambda: net.forward(X, bias=False),
        lambda: net.backward(X, T, bias=False),
        lambda: net.train_step(X, T, opt, bias=False),
        lambda: net.fit(X, T, epochs=1, batch_size=2, optimizer=opt, bias=False),
        lambda: net.fit(X, T, 1, 2, opt),
    ):  # epochs, batch_size, optimizer are keywords
        assert_raises_and_unchanged(net, snapshot, TypeError, None, fn)


@pytest.mark.parametrize("lr", [0, 0.0, -0.1, -5])
def test_non_positive_learning_rate(lr):
    with pytest.raises(ValueError, match=match_all(lr)):
        fb.SGD(lr=lr)


@pytest.mark.parametrize(
    "kwargs,exc",
    [
        (dict(lr=float("nan")), ValueError),
        (dict(lr=float("inf")), ValueError),
        (dict(lr="0.1"), TypeError),
        (dict(lr=0.1, momentum=-0.5), ValueError),
        (dict(lr=0.1, weight_decay=-1.0), ValueError),
        (dict(lr=0.1, nesterov=True), ValueError),  # needs momentum > 0
        (dict(lr=0.1, momentum=0.9, dampening=0.5, nesterov=True), ValueError),  # and no dampening
    ],
    ids=[
        "nan",
        "inf",
        "str",
        "neg-momentum",
        "neg-wd",
        "nesterov-no-momentum",
        "nesterov-dampening",
    ],
)
def test_bad_sgd_settings(kwargs, exc):
    with pytest.raises(exc):
        fb.SGD(**kwargs)


@pytest.mark.parametrize("init", ["glorot", "", "Xavier", None])
def test_unknown_init(init):
    with pytest.raises((ValueError, TypeError), match=match_all(init) if init else None):
        # the error may come from Dense or from the Network that initialises it
        fb.Network([fb.Dense(2, 3, init=init)], loss=fb.MSELoss(), seed=0)


def test_unknown_init_is_value_error():
    with pytest.raises(ValueError, match="glorot"):
        fb.Network([fb.Dense(2, 3, init="glorot")], loss=fb.MSELoss(), seed=0)


@pytest.mark.parametrize("loss_cls", [fb.MSELoss, fb.SoftmaxCrossEntropyLoss, fb.BCEWithLogitsLoss])
@pytest.mark.parametrize("reduction", ["avg", "none", "Mean", ""])
def test_bad_reduction(loss_cls, reduction):
    with pytest.raises(ValueError, match=match_all(reduction) if reduction else None):
        loss_cls(reduction=reduction)


@pytest.mark.parametrize("mod", [fb.ops, fb.reference], ids=["ops", "reference"])
@pytest.mark.parametrize(
    "name",
    [
        "mse",
        "mse_backward",
        "bce_with_logits",
        "bce_with_logits_backward",
        "softmax_cross_entropy",
        "softmax_cross_entropy_backward",
    ],
)
def test_ops_bad_reduction(mod, name):
    # for the reference too: an unknown reduction must not silently act as "sum"
    z = np.zeros((2, 3))
    t = np.array([0, 1]) if name.startswith("softmax") else np.zeros((2, 3))
    with pytest.raises(ValueError, match="avg"):
        getattr(mod, name)(z, t, reduction="avg")


@pytest.mark.parametrize("dtype", ["float16", "int32", "complex128", "double64", ""])
def test_bad_dtype(dtype):
    with pytest.raises(ValueError, match=match_all(dtype) if dtype else None):
        fb.Network([fb.Dense(2, 1)], loss=fb.MSELoss(), dtype=dtype, seed=0)


@pytest.mark.parametrize("backend_name", ["gpu", "torch", "numpy2", ""])
def test_bad_backend(backend_name):
    with pytest.raises(ValueError, match=match_all(backend_name) if backend_name else None):
        fb.Network([fb.Dense(2, 1)], loss=fb.MSELoss(), backend=backend_name, seed=0)


@pytest.mark.parametrize(
    "layers",
    [
        [1, 2],
        ["relu"],
        [fb.Dense(2, 3), np.zeros(3)],
        [fb.Dense(2, 3), fb.ReLU],  # a class, not an instance
        [fb.Dense(2, 3), None],
        fb.Dense(2, 3),  # not a list at all
        "Dense",
    ],
    ids=["ints", "str", "array", "class", "None", "bare-layer", "str-layers"],
)
def test_layers_not_layer_objects(layers):
    with pytest.raises(TypeError):
        fb.Network(layers, loss=fb.MSELoss(), seed=0)


@pytest.mark.parametrize(
    "loss", ["mse", fb.MSELoss, None, fb.Dense(1, 1)], ids=["str", "class", "None", "layer"]
)
def test_loss_not_a_loss_object(loss):
    with pytest.raises(TypeError):
        fb.Network([fb.Dense(2, 1)], loss=loss, seed=0)


def _fit_with(**kwargs):
    net = make_net(WIDTHS, "tanh", "mse_mean", "float64", "cpu", seed=0)
    X, T = good_data()
    return net.fit(X, T, **{"epochs": 1, "batch_size": 2, "optimizer": fb.SGD(lr=0.1), **kwargs})


@pytest.mark.parametrize(
    "make,name,meant",
    [
        (
            lambda: fb.Network([fb.Dense(2, 3), fb.ReLU, fb.Dense(3, 1)], loss=fb.MSELoss()),
            "layers[1]",
            "fb.ReLU()",
        ),
        (
            lambda: fb.Network([fb.Dense, fb.ReLU()], loss=fb.MSELoss()),
            "layers[0]",
            "fb.Dense(...)",
        ),
        (lambda: fb.Network([fb.Dense(2, 1)], loss=fb.MSELoss), "loss", "fb.MSELoss()"),
        (lambda: fb.Network([fb.Dense(2, 1)], loss=fb.HuberLoss), "loss", "fb.HuberLoss()"),
        (
            lambda: make_net(WIDTHS, "tanh", "mse_mean", "float64", "cpu").train_step(
                *good_data(), fb.SGD
            ),
            "optimizer",
            "fb.SGD()",
        ),
        (lambda: _fit_with(optimizer=fb.Adam), "optimizer", "fb.Adam()"),
        (
            lambda: _fit_with(callbacks=[fb.callbacks.CSVLogger]),
            "callbacks[0]",
            "fb.callbacks.CSVLogger(...)",
        ),
        (
            lambda: _fit_with(callbacks=[print, fb.callbacks.ReduceLROnPlateau]),
            "callbacks[1]",
            "fb.callbacks.ReduceLROnPlateau()",
        ),
        (
            lambda: _fit_with(callbacks=[fb.callbacks.EarlyStopping]),
            "callbacks[0]",
            "fb.callbacks.EarlyStopping(...)",
        ),
        (
            lambda: _fit_with(lr_schedule=fb.schedules.StepLR),
            "lr_schedule",
            "fb.schedules.StepLR(...)",
        ),
        (lambda: fb.gradcheck(fb.Network, *good_data()), "net", "fb.Network(...)"),
    ],
    ids=[
        "layer",
        "dense",
        "loss",
        "huber",
        "train_step-optimizer",
        "fit-optimizer",
        "callback",
        "second-callback",
        "early-stopping",
        "schedule",
        "gradcheck",
    ],
)
def test_a_class_passed_for_its_instance_names_the_call_meant(make, name, meant):
    with pytest.raises(TypeError, match=re.escape(f"{name} must be")) as caught:
        make()
    assert f"did you mean `{meant}`?" in str(caught.value)


@pytest.mark.parametrize(
    "make",
    [
        lambda: fb.Network([fb.Dense(2, 1)], loss=fb.ReLU),
        lambda: _fit_with(callbacks=[fb.Dense]),
    ],
    ids=["loss", "callback"],
)
def test_a_class_of_another_kind_gets_no_suggestion(make):
    with pytest.raises(TypeError, match="got the class") as caught:
        make()
    assert "did you mean" not in str(caught.value)


def test_inconsistent_layer_sizes():
    with pytest.raises(ValueError, match=match_all(3, 4)):
        fb.Network([fb.Dense(2, 3), fb.ReLU(), fb.Dense(4, 1)], loss=fb.MSELoss(), seed=0)


def test_network_without_layers():
    with pytest.raises((ValueError, TypeError)):
        fb.Network([], loss=fb.MSELoss(), seed=0)


def test_layer_in_two_networks(snapshot):
    dense = fb.Dense(2, 3)
    first = fb.Network([dense], loss=fb.MSELoss(), seed=0)
    snap = snapshot(first)
    with pytest.raises(ValueError):
        fb.Network([dense, fb.Sigmoid()], loss=fb.MSELoss(), seed=1)
    snap.assert_unchanged()


@pytest.mark.parametrize(
    "args,exc",
    [
        ((0, 3), ValueError),
        ((2, 0), ValueError),
        ((-1, 3), ValueError),
        ((2.5, 3), TypeError),
        (("2", 3), TypeError),
    ],
)
def test_bad_dense_sizes(args, exc):
    with pytest.raises(exc):
        fb.Dense(*args)


@pytest.mark.parametrize(
    "sizes",
    [(2**32, 2**32), (2**62, 2), (3, 2**62), (2**63 - 1, 1)],
    ids=["2^32-squared", "2^62-in", "2^62-out", "int64-max"],
)
def test_dense_sizes_overflowing_64_bit_counts(sizes):
    """A parameter count past int64 is refused before anything is allocated, from Python
    and from fastbp._core directly."""
    with pytest.raises(ValueError, match="overflow"):
        fb.Network([fb.Dense(*sizes)], fb.MSELoss())
    with pytest.raises(ValueError, match="overflow"):
        fb._core.Network64(
            [fb._core.LayerSpec(fb._core.LayerKind.Dense, *sizes)],
            fb._core.Loss.MSE,
            fb._core.Reduction.Mean,
        )


def test_bad_seed():
    with pytest.raises((TypeError, ValueError)):
        fb.Network([fb.Dense(2, 1)], loss=fb.MSELoss(), seed="zero")


@pytest.mark.parametrize(
    "X",
    [
        np.array([["a", "b", "c", "d"]] * N),
        np.ones((N, 4), dtype=complex),
        np.ones((N, 4), dtype=bool),
        [[1, 2, 3, None]] * N,
    ],
    ids=["str", "complex", "bool", "object"],
)
@pytest.mark.parametrize("method", X_CALLS)
def test_x_of_wrong_type(net, snapshot, method, X):
    _, T = good_data()
    snap = snapshot(net)
    with pytest.raises((TypeError, ValueError)):
        call(net, method, X, T)
    snap.assert_unchanged()


@pytest.mark.parametrize("bad_opt", ["sgd", None, fb.MSELoss()], ids=["str", "None", "loss"])
def test_optimizer_of_wrong_type(net, snapshot, bad_opt):
    X, T = good_data()
    assert_raises_and_unchanged(
        net, snapshot, TypeError, None, lambda: net.train_step(X, T, bad_opt)
    )
    assert_raises_and_unchanged(
        net,
        snapshot,
        TypeError,
        None,
        lambda: net.fit(X, T, epochs=1, batch_size=2, optimizer=bad_opt),
    )


@pytest.mark.parametrize(
    "kwargs,token",
    [
        (dict(epochs=0), None),
        (dict(epochs=-1), "-1"),
        (dict(batch_size=0), None),
        (dict(batch_size=-2), "-2"),
    ],
    ids=["epochs0", "epochs-1", "batch0", "batch-2"],
)
def test_fit_bad_counts(net, snapshot, kwargs, token):
    X, T = good_data()
    args = dict(epochs=1, batch_size=2, optimizer=fb.SGD(lr=0.1))
    args.update(kwargs)
    if kwargs.get("epochs") == 0:
        # zero epochs is either refused or a no-op; it never trains
        snap = snapshot(net)
        try:
            hist = net.fit(X, T, **args)
        except ValueError:
            pass
        else:
            assert len(hist.loss) == 0
        snap.assert_unchanged()
        return
    assert_raises_and_unchanged(
        net,
        snapshot,
        ValueError,
        match_all(token) if token else None,
        lambda: net.fit(X, T, **args),
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(batch_size=2**64),
        dict(batch_size=np.uint64(2**63)),
        dict(epochs=2**64),
        dict(epochs=np.uint64(2**63)),
    ],
    ids=["batch-2**64", "batch-uint64", "epochs-2**64", "epochs-uint64"],
)
def test_fit_counts_beyond_int64_are_value_errors(net, snapshot, kwargs):
    X, T = good_data()
    args = dict(epochs=1, batch_size=2, optimizer=fb.SGD(lr=0.1))
    args.update(kwargs)
    assert_raises_and_unchanged(
        net,
        snapshot,
        ValueError,
        match_all(r"[1, 2**63 - 1]", str(next(iter(kwargs.values())))),
        lambda: net.fit(X, T, **args),
    )


def test_fit_batch_size_beyond_the_rows_is_one_batch_of_all_rows():
    X, T = good_data()
    runs = []
    for batch_size in (N, 2**63 - 1):
        net = make_net(WIDTHS, seed=3)
        hist = net.fit(
            X, T, epochs=2, batch_size=batch_size, optimizer=fb.SGD(lr=0.1), shuffle=False
        )
        runs.append((hist.loss, net._core.params.copy()))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


@pytest.mark.parametrize("bad", ["cols", "rows", "nan", "not-a-pair"])
def test_fit_bad_validation_data_is_caught_before_training(net, snapshot, bad):
    X, T = good_data()
    Xv, Tv = good_data(n=4, seed=1)
    if bad == "cols":
        Xv = Xv[:, :3]
    elif bad == "rows":
        Tv = Tv[:3]
    elif bad == "nan":
        Tv[2, 0] = np.nan
    validation = (Xv,) if bad == "not-a-pair" else (Xv, Tv)
    snap = snapshot(net)
    with pytest.raises((ValueError, TypeError), match="validation_data"):
        net.fit(X, T, epochs=2, batch_size=2, optimizer=fb.SGD(lr=0.1), validation_data=validation)
    snap.assert_unchanged()


def test_failed_train_step_leaves_optimizer_state_alone(backend):
    """After a refused train_step, training goes on exactly as if it had never happened
    (no momentum buffer or step count was touched)."""
    X, T = good_data()
    a = make_net(WIDTHS, "tanh", "mse_mean", "float64", backend, seed=0)
    b = make_net(WIDTHS, "tanh", "mse_mean", "float64", backend, seed=0)
    opt_a = fb.SGD(lr=0.1, momentum=0.9, dampening=0.5)
    opt_b = fb.SGD(lr=0.1, momentum=0.9, dampening=0.5)
    bad_X = X.copy()
    bad_X[0, 0] = np.nan
    with pytest.raises(ValueError):
        a.train_step(bad_X, T, opt_a)
    with pytest.raises(ValueError):
        a.train_step(X, T[:, :1], opt_a)
    for _ in range(2):
        a.train_step(X, T, opt_a)
        b.train_step(X, T, opt_b)
    for la, lb in zip(a.layers[::2], b.layers[::2]):
        np.testing.assert_array_equal(la.W, lb.W)
        np.testing.assert_array_equal(la.b, lb.b)


# ---------------------------------------------------------------------------------------
# parameter assignment
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["rebind", "inplace"])
@pytest.mark.parametrize(
    "which,shape",
    [("W", (9, 4)), ("W", (4, 8)), ("W", (36,)), ("b", (8,)), ("b", (10,)), ("b", (9, 9))],
)
def test_wrong_shape_assignment(net, snapshot, which, shape, how):
    layer = net.layers[0]  # Dense(4, 9): W (4, 9), b (9,)
    value = np.ones(shape)
    snap = snapshot(net)
    with pytest.raises(ValueError, match=r"\(" if how == "rebind" else None):
        if how == "rebind":
            setattr(layer, which, value)
        else:
            getattr(layer, which)[...] = value
    snap.assert_unchanged()


def test_wrong_shape_assignment_message_names_both_shapes(net):
    with pytest.raises(ValueError, match=match_all(4, 9, 3, 5)):
        net.layers[0].W = np.ones((3, 5))


@pytest.mark.parametrize(
    "value", [np.full((4, 9), np.nan), "weights", None], ids=["nan", "str", "None"]
)
def test_bad_value_assignment(net, snapshot, value):
    snap = snapshot(net)
    with pytest.raises((ValueError, TypeError)):
        net.layers[0].W = value
    snap.assert_unchanged()


# ---------------------------------------------------------------------------------------
# model files
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("as_str", [True, False], ids=["str", "Path"])
def test_load_missing_file(tmp_path, as_str):
    path = tmp_path / "no_such_model.npz"
    with pytest.raises(FileNotFoundError, match="no_such_model"):
        fb.Network.load(str(path) if as_str else path)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\x00\x01\x02garbage\xff\xfe" * 50,
        b"PK\x03\x04 this is not really a zip file",
        b"this is a text file\n",
    ],
    ids=["empty", "garbage", "fake-zip", "text"],
)
def test_load_corrupt_file(tmp_path, content):
    path = tmp_path / "corrupt.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError):
        fb.Network.load(path)


def test_load_npz_without_header(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, a=np.zeros(3), b=np.ones((2, 2)))
    with pytest.raises(ValueError):
        fb.Network.load(path)


def test_load_truncated_model_file(tmp_path, net):
    path = tmp_path / "model.npz"
    net.save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError):
        fb.Network.load(path)


def test_load_model_with_tampered_parameters(tmp_path, net):
    """A file whose arrays do not fit its header is refused, not half loaded."""
    path = tmp_path / "model.npz"
    net.save(path)
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    shapes = {k: v.shape for k, v in arrays.items()}
    # shrink the biggest array (a weight matrix: 4 x 9 here)
    biggest = max(arrays, key=lambda k: arrays[k].size)
    arrays[biggest] = arrays[biggest].ravel()[:5]
    assert arrays[biggest].shape != shapes[biggest]
    np.savez(path, **arrays)
    with pytest.raises(ValueError):
        fb.Network.load(path)


def test_save_to_missing_directory(tmp_path, net):
    with pytest.raises((FileNotFoundError, OSError)):
        net.save(tmp_path / "no_dir" / "model.npz")


# ---------------------------------------------------------------------------------------
# threads and ops
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "n,exc", [(0, ValueError), (-2, ValueError), (1.5, TypeError), ("2", TypeError)]
)
def test_set_num_threads_bad(restore_threads, n, exc):
    before = fb.get_num_threads()
    with pytest.raises(exc):
        fb.set_num_threads(n)
    assert fb.get_num_threads() == before


@pytest.mark.parametrize("mod", [fb.ops, fb.reference], ids=["ops", "reference"])
@pytest.mark.parametrize(
    "case",
    [
        "matmul-inner",
        "matmul-trans",
        "matmul-1d",
        "linear-w",
        "linear-b",
        "act-backward",
        "mse",
        "bce",
        "softmax-1d",
        "ce-rows",
        "ce-probs-cols",
    ],
)
def test_ops_shape_mismatch(mod, case):
    a = np.ones((3, 4))
    fn = {
        "matmul-inner": lambda: mod.matmul(a, np.ones((5, 2))),
        "matmul-trans": lambda: mod.matmul(a, np.ones((4, 2)), trans_b=True),
        "matmul-1d": lambda: mod.matmul(np.ones(4), np.ones((4, 2))),
        "linear-w": lambda: mod.linear(a, np.ones((5, 2)), np.ones(2)),
        "linear-b": lambda: mod.linear(a, np.ones((4, 2)), np.ones(3)),
        "act-backward": lambda: mod.sigmoid_backward(a, np.ones((3, 5))),
        "mse": lambda: mod.mse(a, np.ones((3, 5))),
        "bce": lambda: mod.bce_with_logits_backward(a, np.ones((4, 4))),
        "softmax-1d": lambda: mod.softmax(np.ones(4)),
        "ce-rows": lambda: mod.softmax_cross_entropy(a, np.zeros(5, dtype=int)),
        "ce-probs-cols": lambda: mod.softmax_cross_entropy(a, np.ones((3, 5)) / 5),
    }[case]
    with pytest.raises(ValueError):
        fn()


BAD_SGD_SETTINGS = [
    ("lr", np.nan, "lr"),
    ("lr", np.inf, "lr"),
    ("lr", 0.0, "lr"),
    ("lr", -0.1, "lr"),
    ("momentum", -1.0, "momentum"),
    ("dampening", np.nan, "dampening"),
    ("weight_decay", -1e-3, "weight_decay"),
    ("nesterov", True, "nesterov"),
]
BAD_ADAM_SETTINGS = [
    ("lr", np.nan, "lr"),
    ("beta1", 1.0, "beta1"),
    ("beta2", np.nan, "beta2"),
    ("beta1", -0.5, "beta1"),
    ("eps", 0.0, "eps"),
    ("weight_decay", np.inf, "weight_decay"),
]
SGD_DEFAULTS = dict(lr=0.1, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0)
ADAM_DEFAULTS = dict(
    lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, decoupled_weight_decay=False
)


@pytest.mark.parametrize("name,value,token", BAD_SGD_SETTINGS)
def test_core_sgd_calls_check_their_hyper_parameters(name, value, token):
    """fastbp._core holds direct calls to the rules fb.SGD enforces."""
    net = make_net(WIDTHS, dtype="float64", seed=0)
    core, (X, T) = net._core, good_data()
    before = core.params.copy()
    settings = {**SGD_DEFAULTS, name: value}
    p, g, v = np.ones(5), np.ones(5), np.zeros(5)
    velocity = np.zeros(net.n_params)
    sgd = fb._core.Optimizer.SGD
    hyper = [settings[k] for k in ("lr", "momentum", "dampening", "weight_decay")] + [
        float(settings["nesterov"])
    ]
    calls = {
        "optimizer_step": lambda: fb._core.optimizer_step(sgd, hyper, p, g, [v], 1),
        "step": lambda: core.step(fb._core.UpdateSpec(sgd, hyper), [velocity], 0),
        "train_step": lambda: core.train_step(X, T, fb._core.UpdateSpec(sgd, hyper), [velocity], 0),
        "train_epoch": lambda: core.train_epoch(
            X, T, np.arange(N, dtype=np.int64), 2, fb._core.UpdateSpec(sgd, hyper), [velocity], 0
        ),
    }
    for fn in calls.values():
        with pytest.raises(ValueError, match=re.escape(token)):
            fn()
    np.testing.assert_array_equal(p, np.ones(5))
    np.testing.assert_array_equal(core.params, before)
    assert not velocity.any()


@pytest.mark.parametrize("name,value,token", BAD_ADAM_SETTINGS)
def test_core_adam_calls_check_their_hyper_parameters(name, value, token):
    """fastbp._core holds direct calls to the rules fb.Adam enforces."""
    net = make_net(WIDTHS, dtype="float64", seed=0)
    core, (X, T) = net._core, good_data()
    before = core.params.copy()
    settings = {**ADAM_DEFAULTS, name: value}
    p, g, m, v = np.ones(5), np.ones(5), np.zeros(5), np.zeros(5)
    m_net, v_net = np.zeros(net.n_params), np.zeros(net.n_params)
    adam = fb._core.Optimizer.Adam
    hyper = [float(settings[k]) for k in ADAM_DEFAULTS]
    calls = {
        "optimizer_step": lambda: fb._core.optimizer_step(adam, hyper, p, g, [m, v], 1),
        "step": lambda: core.step(fb._core.UpdateSpec(adam, hyper), [m_net, v_net], 0),
        "train_step": lambda: core.train_step(
            X, T, fb._core.UpdateSpec(adam, hyper), [m_net, v_net], 0
        ),
        "train_epoch": lambda: core.train_epoch(
            X,
            T,
            np.arange(N, dtype=np.int64),
            2,
            fb._core.UpdateSpec(adam, hyper),
            [m_net, v_net],
            0,
        ),
    }
    for fn in calls.values():
        with pytest.raises(ValueError, match=re.escape(token)):
            fn()
    np.testing.assert_array_equal(p, np.ones(5))
    np.testing.assert_array_equal(core.params, before)
    assert not m_net.any() and not v_net.any()


@pytest.mark.parametrize("mod", [fb.ops, fb.reference], ids=["ops", "reference"])
def test_sgd_step_bad_buffers(mod):
    p = np.ones(5)
    with pytest.raises(ValueError):
        mod.sgd_step(p, np.ones(4), np.zeros(5), lr=0.1)
    with pytest.raises(ValueError):
        mod.sgd_step(p, np.ones(5), np.zeros(6), lr=0.1, momentum=0.9)
    np.testing.assert_array_equal(p, np.ones(5))
    ro = np.ones(5)
    ro.flags.writeable = False
    with pytest.raises((ValueError, TypeError)):
        mod.sgd_step(ro, np.ones(5), np.zeros(5), lr=0.1)
    np.testing.assert_array_equal(ro, np.ones(5))


def _resave(path, header=None, params=None):
    """Rewrite a saved model file with its header (a dict) or parameters replaced."""
    with np.load(path, allow_pickle=False) as f:
        old_header, old_params = json.loads(str(f["header"])), f["params"]
    header = old_header if header is None else header(old_header)
    params = old_params if params is None else params(old_params)
    np.savez(path, header=np.array(json.dumps(header)), params=params)


@pytest.mark.parametrize(
    "header,params,token",
    [
        (lambda h: {**h, "version": 2}, None, "version 2"),
        (lambda h: {k: v for k, v in h.items() if k != "version"}, None, "version None"),
        (lambda h: {**h, "format": "keras"}, None, "not a fastbp network file"),
        (lambda h: {**h, "dtype": "float16"}, lambda p: p.astype(np.float16), "float16"),
        (lambda h: {**h, "dtype": "object"}, None, "object"),
        (lambda h: {**h, "dtype": "float32"}, None, "float32"),
        (None, lambda p: p.reshape(1, -1), "shape"),
        (None, lambda p: np.where(np.arange(p.size) == 3, np.nan, p), "NaN"),
        (None, lambda p: np.where(np.arange(p.size) == 0, -np.inf, p), "inf"),
        (lambda h: {**h, "layers": h["layers"][:1]}, None, "parameters"),
        (lambda h: {**h, "layers": [{"type": "Conv2d"}]}, None, "Conv2d"),
        (lambda h: {**h, "loss": {"type": "MSELoss", "reduction": "median"}}, None, "reduction"),
        (lambda h: {**h, "layers": "Dense"}, None, "malformed"),
    ],
    ids=[
        "version",
        "no-version",
        "format",
        "float16",
        "object-dtype",
        "dtype-mismatch",
        "2-D-params",
        "nan-param",
        "inf-param",
        "layers-too-few",
        "unknown-layer",
        "bad-loss-setting",
        "layers-not-a-list",
    ],
)
def test_load_tampered_model_file(tmp_path, net, header, params, token):
    """Each way a model file's header or arrays may disagree is a ValueError naming it."""
    path = tmp_path / "model.npz"
    net.save(path)
    _resave(path, header, params)
    with pytest.raises(ValueError, match=re.escape(token)):
        fb.Network.load(path)


def test_load_flipped_byte_in_parameters(tmp_path, net):
    """A byte changed inside the stored parameters fails the archive's CRC check."""
    path = tmp_path / "model.npz"
    net.save(path)
    data = bytearray(path.read_bytes())
    at = data.find(net._core.params.tobytes())
    assert at > 0
    data[at + 5] ^= 0x40
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="CRC"):
        fb.Network.load(path)


def test_load_never_unpickles(tmp_path, net):
    """A file whose parameters are a pickled object array is refused without running the
    pickle (which would create a marker file)."""
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "model.npz"
    net.save(path)
    with np.load(path, allow_pickle=False) as f:
        header = f["header"]
    np.savez(path, header=header, params=np.array([Payload()], dtype=object))
    with pytest.raises(ValueError):
        fb.Network.load(path)
    assert not marker.exists()


# ---------------------------------------------------------------------------------------
# construction and targets
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "given,name",
    [(np.float32, "float32"), (np.dtype("float64"), "float64"), ("float32", "float32")],
)
def test_network_dtype_may_be_a_numpy_dtype(given, name):
    assert fb.Network([fb.Dense(2, 3)], fb.MSELoss(), dtype=given).dtype == np.dtype(name)


@pytest.mark.parametrize("given", [np.int32, "float16", np.float16, None, 32])
def test_network_dtype_other_than_float32_or_64_is_refused(given):
    with pytest.raises(ValueError, match=match_all("dtype must be one of", repr(given))):
        fb.Network([fb.Dense(2, 3)], fb.MSELoss(), dtype=given)


def test_loss_subclass_fastbp_cannot_compute_is_a_type_error():
    class Hinge(fb.Loss):
        pass

    with pytest.raises(TypeError, match=match_all("Hinge", "MSELoss")):
        fb.Network([fb.Dense(2, 3)], Hinge())


@pytest.mark.parametrize("loss", [fb.BCEWithLogitsLoss, fb.SoftmaxCrossEntropyLoss])
def test_sigmoid_before_a_loss_with_its_own_squashing_warns(loss):
    with pytest.warns(UserWarning, match=match_all("ends in Sigmoid", loss.__name__)):
        fb.Network([fb.Dense(2, 3), fb.Sigmoid()], loss())


def test_sigmoid_before_mse_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fb.Network([fb.Dense(2, 3), fb.Sigmoid()], fb.MSELoss())


@pytest.fixture(params=BACKENDS)
def bce_net(request):
    return lambda: fb.Network(
        [fb.Dense(WIDTHS[0], 1)],
        fb.BCEWithLogitsLoss(),
        dtype="float64",
        backend=request.param,
        seed=0,
    )


@pytest.mark.parametrize("bad", [1.5, -0.25])
@pytest.mark.parametrize("method", XT_CALLS)
def test_bce_targets_outside_0_1_are_refused(snapshot, bce_net, method, bad):
    net = bce_net()
    X = np.random.default_rng(0).standard_normal((N, WIDTHS[0]))
    T = np.full(N, 0.5)
    T[3] = bad
    assert_raises_and_unchanged(
        net,
        snapshot,
        ValueError,
        match_all("BCEWithLogitsLoss targets must lie in [0, 1]", f"{bad:f}", "flat index 3"),
        lambda: call(net, method, X, T),
    )


def test_bce_boolean_targets_train_as_zeros_and_ones(bce_net):
    X = np.random.default_rng(0).standard_normal((N, WIDTHS[0]))
    flags = np.arange(N) % 2 == 0
    nets = [bce_net(), bce_net()]
    for net, T in zip(nets, (flags, flags.astype(float))):
        net.fit(X, T, epochs=2, batch_size=2, optimizer=fb.SGD(lr=0.1), shuffle=False)
    np.testing.assert_array_equal(nets[0].params, nets[1].params)


def test_dir_of_the_package_lists_its_public_names_only():
    assert dir(fb) == sorted(fb.__all__)
    assert "annotations" not in dir(fb) and "warnings" not in dir(fb)
