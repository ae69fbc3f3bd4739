"""The Network API: backend "cpu" against backend "numpy", training calls, save/load,
parameter assignment, utilities and input conversion."""

from __future__ import annotations

import importlib.metadata
import itertools
import pathlib

import numpy as np
import pytest

import fastbp as fb
from fbhelpers import (
    ACTIVATIONS,
    ARCHS,
    BACKENDS,
    DTYPES,
    LOSSES,
    assert_close_scaled,
    backend_rtol,
    dense_layers,
    make_data,
    make_net,
    np_forward,
    np_loss,
)

# every activation x every loss, each on one of the architectures (rotating through them
# so that every width in 1, 3, 7, 17, 33, 127 and every batch size 1, 5, 33 is used)
CASES = [
    pytest.param(
        act,
        loss,
        *ARCHS[k % len(ARCHS)],
        id=f"{act}-{loss}-{'x'.join(map(str, ARCHS[k % len(ARCHS)][0]))}"
        f"-n{ARCHS[k % len(ARCHS)][1]}",
    )
    for k, (act, loss) in enumerate(itertools.product(ACTIVATIONS, LOSSES))
]


def twin_nets(widths, act, loss, dtype, seed=3):
    """The same network on both backends, from the same seed."""
    # MSE nets also get an activation after the last layer, so output activations are
    # exercised too; the other losses work on raw logits.
    final = act if loss.startswith("mse") else None
    cpu = make_net(widths, act, loss, dtype, "cpu", seed=seed, final_activation=final)
    ref = make_net(widths, act, loss, dtype, "numpy", seed=seed, final_activation=final)
    return cpu, ref


def assert_same_params(net_a, net_b, rtol, what=""):
    for i, (a, b) in enumerate(zip(dense_layers(net_a), dense_layers(net_b))):
        assert_close_scaled(a.W, b.W, rtol, err_msg=f"{what} layer {i} W")
        assert_close_scaled(a.b, b.b, rtol, err_msg=f"{what} layer {i} b")


def lr_for(loss):
    return 0.01 if loss.endswith("_sum") else 0.05


# ---------------------------------------------------------------------------------------
# cpu backend == numpy backend
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act,loss,widths,n", CASES)
def test_backends_agree_forward_loss_gradients(rng, act, loss, widths, n, dtype):
    cpu, ref = twin_nets(widths, act, loss, dtype)
    # same seed => same initial weights, whatever the backend
    for a, b in zip(dense_layers(cpu), dense_layers(ref)):
        np.testing.assert_array_equal(a.W, b.W)
        np.testing.assert_array_equal(a.b, b.b)
    X, T = make_data(widths, loss, n, rng, dtype)
    rtol = backend_rtol(dtype)

    y_cpu, y_ref = cpu.forward(X), ref.forward(X)
    assert y_cpu.shape == (n, widths[-1])
    assert y_cpu.dtype == np.dtype(dtype) and y_ref.dtype == np.dtype(dtype)
    assert_close_scaled(y_cpu, y_ref, rtol, "forward")
    # both against the independent NumPy forward pass
    assert_close_scaled(y_ref, np_forward(ref, X), 1e-5 if dtype == "float32" else 1e-12)

    l_cpu, l_ref = cpu.loss(X, T), ref.loss(X, T)
    assert l_cpu == pytest.approx(l_ref, rel=rtol, abs=1e-30)
    assert l_ref == pytest.approx(
        np_loss(loss, np_forward(ref, X), T), rel=1e-4 if dtype == "float32" else 1e-10
    )

    b_cpu, b_ref = cpu.backward(X, T), ref.backward(X, T)
    assert b_cpu == pytest.approx(l_cpu, rel=rtol)
    assert b_ref == pytest.approx(l_ref, rel=rtol)
    for i, (a, b) in enumerate(zip(dense_layers(cpu), dense_layers(ref))):
        assert a.dW.shape == a.W.shape and a.db.shape == a.b.shape
        assert a.dW.dtype == np.dtype(dtype) and a.db.dtype == np.dtype(dtype)
        assert_close_scaled(a.dW, b.dW, rtol, f"layer {i} dW")
        assert_close_scaled(a.db, b.db, rtol, f"layer {i} db")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act,loss,widths,n", CASES)
def test_backends_agree_after_train_steps(rng, act, loss, widths, n, dtype):
    cpu, ref = twin_nets(widths, act, loss, dtype)
    X, T = make_data(widths, loss, n, rng, dtype)
    rtol = backend_rtol(dtype)
    opt_cpu = fb.SGD(lr=lr_for(loss), momentum=0.9, weight_decay=1e-3)
    opt_ref = fb.SGD(lr=lr_for(loss), momentum=0.9, weight_decay=1e-3)
    for step in range(3):
        l_cpu = cpu.train_step(X, T, opt_cpu)
        l_ref = ref.train_step(X, T, opt_ref)
        assert l_cpu == pytest.approx(l_ref, rel=rtol, abs=1e-30), f"step {step}"
        assert_same_params(cpu, ref, rtol, f"step {step}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act,loss,widths,n", CASES)
def test_backends_agree_after_fit(rng, act, loss, widths, n, dtype):
    cpu, ref = twin_nets(widths, act, loss, dtype)
    X, T = make_data(widths, loss, n, rng, dtype)
    rtol = backend_rtol(dtype)
    kw = dict(epochs=3, batch_size=4, shuffle=False)  # 4 does not divide 5 or 33
    h_cpu = cpu.fit(X, T, optimizer=fb.SGD(lr=lr_for(loss), momentum=0.5), **kw)
    h_ref = ref.fit(X, T, optimizer=fb.SGD(lr=lr_for(loss), momentum=0.5), **kw)
    np.testing.assert_allclose(h_cpu.loss, h_ref.loss, rtol=rtol)
    assert_same_params(cpu, ref, rtol, "after fit")


# ---------------------------------------------------------------------------------------
# train_step, fit, predict
# ---------------------------------------------------------------------------------------

OPTIMIZERS = {
    "plain": dict(lr=0.1),
    "momentum": dict(lr=0.05, momentum=0.9),
    "dampening": dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01),
    "nesterov": dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("opt_name", list(OPTIMIZERS))
@pytest.mark.parametrize("loss", ["mse_mean", "ce_labels", "bce_sum"])
def test_train_step_equals_backward_then_step(rng, loss, opt_name, backend, dtype):
    widths = (7, 17, 3)
    a = make_net(widths, "tanh", loss, dtype, backend, seed=5)
    b = make_net(widths, "tanh", loss, dtype, backend, seed=5)
    opt_a = fb.SGD(**OPTIMIZERS[opt_name])
    opt_b = fb.SGD(**OPTIMIZERS[opt_name])
    rtol = 1e-5 if dtype == "float32" else 1e-12
    for step in range(4):
        X, T = make_data(widths, loss, 5, rng, dtype)
        la = a.train_step(X, T, opt_a)
        lb = b.backward(X, T)
        opt_b.step(b)
        assert la == pytest.approx(lb, rel=rtol), f"step {step}"
        assert_same_params(a, b, rtol, f"step {step}")


@pytest.mark.parametrize("backend", BACKENDS)
def test_sgd_step_follows_pytorch_rule_on_network(rng, backend):
    """opt.step applies torch.optim.SGD's rule (written out here) to every W and b."""
    widths = (3, 7, 2)
    net = make_net(widths, "sigmoid", "mse_mean", "float64", backend, seed=2)
    hyper = dict(lr=0.1, momentum=0.9, dampening=0.2, weight_decay=0.05)
    opt = fb.SGD(**hyper)
    params = [p.copy() for layer in dense_layers(net) for p in (layer.W, layer.b)]
    bufs = [None] * len(params)
    for _ in range(3):
        X, T = make_data(widths, "mse_mean", 5, rng)
        net.backward(X, T)
        grads = [g.copy() for layer in dense_layers(net) for g in (layer.dW, layer.db)]
        opt.step(net)
        for i, g in enumerate(grads):
            d = g + hyper["weight_decay"] * params[i]
            bufs[i] = (
                d
                if bufs[i] is None
                else (hyper["momentum"] * bufs[i] + (1 - hyper["dampening"]) * d)
            )
            params[i] = params[i] - hyper["lr"] * bufs[i]
        now = [p for layer in dense_layers(net) for p in (layer.W, layer.b)]
        for p_now, p_exp in zip(now, params):
            np.testing.assert_allclose(p_now, p_exp, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("backend", BACKENDS)
def test_optimizer_state_is_per_network(rng, backend):
    """One SGD with momentum driving two networks gives each its own momentum buffer."""
    widths = (3, 5, 2)
    X, T = make_data(widths, "mse_mean", 5, rng)
    a, b, c = (make_net(widths, "tanh", "mse_mean", backend=backend, seed=1) for _ in range(3))
    shared = fb.SGD(lr=0.1, momentum=0.9)
    alone = fb.SGD(lr=0.1, momentum=0.9)
    for _ in range(3):
        a.train_step(X, T, shared)
        b.train_step(X, T, shared)
        c.train_step(X, T, alone)
    assert_same_params(a, c, 1e-12)
    assert_same_params(b, c, 1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_fit_history(rng, backend):
    widths = (3, 7, 2)
    X, T = make_data(widths, "mse_mean", 32, rng)
    Xv, Tv = make_data(widths, "mse_mean", 9, rng)
    net = make_net(widths, "tanh", "mse_mean", backend=backend, seed=4)
    hist = net.fit(
        X,
        T,
        epochs=4,
        batch_size=8,
        optimizer=fb.SGD(lr=0.05),
        validation_data=(Xv, Tv),
        shuffle=False,
    )
    assert len(hist.loss) == 4
    assert len(hist.val_loss) == 4
    assert all(np.isfinite(hist.loss)) and all(np.isfinite(hist.val_loss))
    # validation loss of the last epoch is the loss of the trained network
    assert hist.val_loss[-1] == pytest.approx(net.loss(Xv, Tv), rel=1e-10)

    hist2 = make_net(widths, "tanh", "mse_mean", backend=backend, seed=4).fit(
        X, T, epochs=2, batch_size=8, optimizer=fb.SGD(lr=0.05), shuffle=False
    )
    assert len(hist2.loss) == 2
    assert not hist2.val_loss  # no validation data: None or empty


@pytest.mark.parametrize("backend", BACKENDS)
def test_fit_loss_is_mean_of_batch_losses(rng, backend):
    """With equal batches and shuffle=False, an epoch's loss is the mean of the losses
    that train_step reports for its batches (computed before each update)."""
    widths = (3, 7, 2)
    X, T = make_data(widths, "mse_mean", 32, rng)
    net = make_net(widths, "tanh", "mse_mean", backend=backend, seed=4)
    twin = make_net(widths, "tanh", "mse_mean", backend=backend, seed=4)
    hist = net.fit(
        X, T, epochs=3, batch_size=8, optimizer=fb.SGD(lr=0.05, momentum=0.5), shuffle=False
    )
    opt = fb.SGD(lr=0.05, momentum=0.5)
    expected = []
    for _ in range(3):
        losses = [twin.train_step(X[i : i + 8], T[i : i + 8], opt) for i in range(0, 32, 8)]
        expected.append(np.mean(losses))
    np.testing.assert_allclose(hist.loss, expected, rtol=1e-10)
    assert_same_params(net, twin, 1e-10)
    assert hist.loss[-1] < hist.loss[0]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_predict_equals_forward(rng, backend, dtype):
    widths = (17, 33, 7)
    net = make_net(widths, "relu", "ce_labels", dtype, backend, seed=9)
    X, T = make_data(widths, "ce_labels", 33, rng, dtype)
    net.backward(X, T)
    grads = [(layer.dW.copy(), layer.db.copy()) for layer in dense_layers(net)]
    p = net.predict(X)
    f = net.forward(X)
    assert p.dtype == np.dtype(dtype) and p.shape == (33, 7)
    np.testing.assert_allclose(p, f, rtol=1e-6 if dtype == "float32" else 1e-14)
    assert_close_scaled(p, np_forward(net, X), 1e-5 if dtype == "float32" else 1e-12)
    # predict keeps no training state: the gradients of the last backward stay
    for layer, (dW, db) in zip(dense_layers(net), grads):
        np.testing.assert_array_equal(layer.dW, dW)
        np.testing.assert_array_equal(layer.db, db)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradients_zero_before_backward(backend):
    net = make_net((3, 7, 2), "tanh", "mse_mean", backend=backend, seed=0)
    for layer in dense_layers(net):
        np.testing.assert_array_equal(layer.dW, np.zeros(layer.W.shape))
        np.testing.assert_array_equal(layer.db, np.zeros(layer.b.shape))


# ---------------------------------------------------------------------------------------
# save / load
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("as_path", [str, pathlib.Path], ids=["str", "Path"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "act,loss",
    [("sigmoid", "mse_sum"), ("relu", "ce_labels"), ("tanh", "bce"), ("identity", "mse_mean")],
)
def test_save_load_roundtrip(tmp_path, rng, act, loss, backend, dtype, as_path):
    widths = (3, 17, 7)
    net = make_net(
        widths,
        act,
        loss,
        dtype,
        backend,
        seed=11,
        final_activation=act if loss.startswith("mse") else None,
    )
    X, T = make_data(widths, loss, 5, rng, dtype)
    net.train_step(X, T, fb.SGD(lr=0.1))  # saved weights differ from the initial ones
    path = as_path(tmp_path / "model.npz")
    net.save(path)
    loaded = fb.Network.load(path)

    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in net.layers]
    for a, b in zip(dense_layers(loaded), dense_layers(net)):
        assert (a.in_features, a.out_features) == (b.in_features, b.out_features)
        assert a.W.dtype == np.dtype(dtype) and a.b.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(a.W, b.W)
        np.testing.assert_array_equal(a.b, b.b)
    p = loaded.predict(X)
    assert p.dtype == np.dtype(dtype)
    # identical when loaded onto the same backend; the default backend may differ
    assert_close_scaled(p, net.predict(X), backend_rtol(dtype))
    # same loss kind and reduction
    assert loaded.loss(X, T) == pytest.approx(net.loss(X, T), rel=backend_rtol(dtype))


def test_save_load_identical_predictions_cpu(tmp_path, rng):
    net = make_net((7, 33, 3), "relu", "ce_labels", "float64", "cpu", seed=1)
    X = rng.standard_normal((33, 7))
    net.save(tmp_path / "m.npz")
    loaded = fb.Network.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))


def test_save_load_roundtrip_trains_on(tmp_path, rng):
    """A loaded network is a full network: it trains like the original."""
    widths = (3, 7, 2)
    X, T = make_data(widths, "mse_mean", 5, rng)
    net = make_net(widths, "tanh", "mse_mean", "float64", "cpu", seed=1)
    net.save(str(tmp_path / "m.npz"))
    loaded = fb.Network.load(str(tmp_path / "m.npz"))
    la = net.train_step(X, T, fb.SGD(lr=0.1))
    lb = loaded.train_step(X, T, fb.SGD(lr=0.1))
    assert la == pytest.approx(lb, rel=1e-12)
    assert_same_params(net, loaded, 1e-12)


# ---------------------------------------------------------------------------------------
# parameter assignment
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("how", ["rebind", "inplace"])
def test_assigning_parameters_changes_forward(rng, how, backend, dtype):
    net = fb.Network(
        [fb.Dense(3, 7), fb.Tanh(), fb.Dense(7, 2)],
        loss=fb.MSELoss(),
        dtype=dtype,
        backend=backend,
        seed=0,
    )
    X = rng.standard_normal((5, 3)).astype(dtype)
    before = net.forward(X).copy()
    W0 = rng.standard_normal((3, 7))
    b0 = rng.standard_normal(7)
    W1 = rng.standard_normal((7, 2))
    b1 = rng.standard_normal(2)
    first, second = net.layers[0], net.layers[2]
    if how == "rebind":
        first.W, first.b, second.W, second.b = W0, b0, W1, b1
    else:
        first.W[...] = W0
        first.b[...] = b0
        second.W[...] = W1
        second.b[...] = b1
    for layer in (first, second):
        assert layer.W.dtype == np.dtype(dtype) and layer.b.dtype == np.dtype(dtype)
    expected = np.tanh(X.astype(np.float64) @ W0 + b0) @ W1 + b1
    after = net.forward(X)
    assert not np.allclose(after, before)
    np.testing.assert_allclose(
        after,
        expected,
        rtol=1e-4 if dtype == "float32" else 1e-12,
        atol=1e-4 if dtype == "float32" else 1e-12,
    )
    # and training starts from the assigned values too
    T = rng.standard_normal((5, 2))
    assert net.loss(X, T) == pytest.approx(
        np.mean((expected - T) ** 2), rel=1e-4 if dtype == "float32" else 1e-12
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_single_element_assignment_changes_forward(backend):
    net = fb.Network([fb.Dense(2, 1)], loss=fb.MSELoss(), dtype="float64", backend=backend, seed=0)
    layer = net.layers[0]
    layer.W = np.array([[1.0], [2.0]])
    layer.b = np.array([0.5])
    X = np.array([[1.0, 1.0]])
    assert net.forward(X)[0, 0] == pytest.approx(3.5)
    layer.W[1, 0] = -4.0
    assert net.forward(X)[0, 0] == pytest.approx(-2.5)
    layer.b[0] = 10.0
    assert net.forward(X)[0, 0] == pytest.approx(7.0)


def test_assigned_array_is_copied(rng):
    """Assigning an array sets the values; later edits of the caller's array do not leak."""
    net = fb.Network([fb.Dense(2, 1)], loss=fb.MSELoss(), dtype="float64", seed=0)
    w = np.array([[1.0], [2.0]])
    net.layers[0].W = w
    w[0, 0] = 100.0
    assert net.layers[0].W[0, 0] == 1.0


def test_weights_set_before_network_are_kept():
    d = fb.Dense(2, 3)
    w = np.arange(6, dtype=np.float64).reshape(2, 3)
    d.W = w
    net = fb.Network([d, fb.Sigmoid()], loss=fb.MSELoss(), dtype="float32", seed=0)
    assert net.layers[0].W.dtype == np.float32
    np.testing.assert_array_equal(net.layers[0].W, w.astype(np.float32))


def test_network_layers_are_the_given_objects():
    layers = [fb.Dense(2, 3), fb.ReLU(), fb.Dense(3, 1)]
    net = fb.Network(layers, loss=fb.MSELoss(), seed=0)
    assert len(net.layers) == 3
    assert all(a is b for a, b in zip(net.layers, layers))


@pytest.mark.parametrize("widths", [w for w, _ in ARCHS])
@pytest.mark.parametrize("backend", BACKENDS)
def test_layer_parameter_counts_add_up_to_the_network_s(widths, backend):
    """Layers count their parameters without a network (what load checks a file by)."""
    net = make_net(widths, backend=backend)
    assert sum(layer.n_params for layer in net.layers) == net.n_params
    assert [layer.n_params for layer in net.layers if not isinstance(layer, fb.Dense)] == [0] * (
        len(net.layers) - len(dense_layers(net))
    )


def test_default_dtype_is_float32(rng):
    net = fb.Network([fb.Dense(3, 2)], loss=fb.MSELoss(), seed=0)
    assert net.layers[0].W.dtype == np.float32
    assert net.forward(rng.standard_normal((4, 3))).dtype == np.float32


# ---------------------------------------------------------------------------------------
# initialisation and seeds
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_same_seed_same_weights(backend, dtype):
    a = make_net((17, 33, 7), "relu", "mse_mean", dtype, backend, seed=42)
    b = make_net((17, 33, 7), "relu", "mse_mean", dtype, backend, seed=42)
    c = make_net((17, 33, 7), "relu", "mse_mean", dtype, backend, seed=43)
    for la, lb, lc in zip(dense_layers(a), dense_layers(b), dense_layers(c)):
        assert la.W.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(la.W, lb.W)
        np.testing.assert_array_equal(la.b, lb.b)
        assert not np.array_equal(la.W, lc.W)


def test_seed_none_gives_different_networks():
    a = make_net((17, 33, 7), seed=None)
    b = make_net((17, 33, 7), seed=None)
    assert not np.array_equal(a.layers[0].W, b.layers[0].W)


@pytest.mark.parametrize("backend", BACKENDS)
def test_seeded_fit_with_shuffle_is_reproducible(rng, backend):
    widths = (3, 7, 2)
    X, T = make_data(widths, "mse_mean", 33, rng)
    nets = [make_net(widths, "tanh", "mse_mean", backend=backend, seed=8) for _ in range(2)]
    hists = [
        n.fit(X, T, epochs=3, batch_size=4, optimizer=fb.SGD(lr=0.05), shuffle=True) for n in nets
    ]
    assert hists[0].loss == pytest.approx(hists[1].loss, rel=1e-14)
    assert_same_params(nets[0], nets[1], 1e-14)


@pytest.mark.parametrize("backend", BACKENDS)
def test_shuffle_changes_the_batches(rng, backend):
    """shuffle=True really visits the samples in another order than shuffle=False."""
    widths = (3, 7, 2)
    X, T = make_data(widths, "mse_mean", 33, rng)
    nets = [make_net(widths, "tanh", "mse_mean", backend=backend, seed=8) for _ in range(2)]
    for net, shuffle in zip(nets, (False, True)):
        net.fit(X, T, epochs=2, batch_size=4, optimizer=fb.SGD(lr=0.05), shuffle=shuffle)
    assert not np.allclose(nets[0].layers[0].W, nets[1].layers[0].W, rtol=1e-10, atol=0)


@pytest.mark.parametrize(
    "init,expected_var",
    [
        ("xavier", lambda i, o: 2.0 / (i + o)),  # Glorot: uniform or normal, same variance
        ("he", lambda i, o: 2.0 / i),  # He / Kaiming, fan-in
    ],
)
def test_init_variance(init, expected_var):
    fan_in, fan_out = 127, 200
    net = fb.Network(
        [fb.Dense(fan_in, fan_out, init=init)], loss=fb.MSELoss(), dtype="float64", seed=0
    )
    W = net.layers[0].W
    assert abs(W.mean()) < 0.05 * np.sqrt(expected_var(fan_in, fan_out))
    assert W.var() == pytest.approx(expected_var(fan_in, fan_out), rel=0.05)


def test_init_zeros():
    net = fb.Network([fb.Dense(7, 3, init="zeros")], loss=fb.MSELoss(), seed=0)
    np.testing.assert_array_equal(net.layers[0].W, np.zeros((7, 3)))
    np.testing.assert_array_equal(net.layers[0].b, np.zeros(3))


# ---------------------------------------------------------------------------------------
# build info and threads
# ---------------------------------------------------------------------------------------


def test_build_info():
    info = fb.build_info()
    assert isinstance(info, dict)
    for key in (
        "version",
        "compiler",
        "simd_compiled",
        "simd",
        "threads",
        "cuda_compiled",
        "cuda_available",
    ):
        assert key in info, key
    assert info["version"] == importlib.metadata.version("fastbp")
    assert isinstance(info["compiler"], str) and info["compiler"]
    assert isinstance(info["simd_compiled"], (list, tuple))
    assert all(isinstance(s, str) for s in info["simd_compiled"])
    assert isinstance(info["simd"], str) and info["simd"]
    assert info["threads"] == fb.get_num_threads()
    for key in ("cuda_compiled", "cuda_available"):
        assert isinstance(info[key], bool), key
    assert not (info["cuda_available"] and not info["cuda_compiled"])


@pytest.mark.parametrize("n", [1, 2, 3])
def test_set_get_num_threads(restore_threads, n):
    fb.set_num_threads(n)
    assert fb.get_num_threads() == n


def test_num_threads_default_is_positive():
    n = fb.get_num_threads()
    assert isinstance(n, int) and n >= 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_results_do_not_depend_on_thread_count(restore_threads, rng, backend):
    # Large enough that the hidden layer's products and the update run on two threads.
    widths = (129, 300, 17)
    X, T = make_data(widths, "ce_labels", 200, rng)
    out = []
    for n in (1, 2):
        fb.set_num_threads(n)
        net = make_net(widths, "relu", "ce_labels", backend=backend, seed=0)
        loss = net.train_step(X, T, fb.SGD(lr=0.1))
        out.append((loss, net.forward(X)))
    assert out[0][0] == pytest.approx(out[1][0], rel=1e-12)
    np.testing.assert_allclose(out[0][1], out[1][1], rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------------------
# input conversion
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "kind", ["list", "float16", "int", "float32/64", "non_contiguous", "fortran"]
)
def test_inputs_are_converted(rng, kind, dtype, backend):
    widths = (3, 7, 2)
    net = make_net(widths, "sigmoid", "mse_mean", dtype, backend, seed=0)
    base_X = rng.integers(-3, 4, size=(5, 3)).astype(np.float64)  # exact in every dtype
    base_T = rng.integers(-1, 2, size=(5, 2)).astype(np.float64)
    other = "float32" if dtype == "float64" else "float64"
    X, T = {
        "list": (base_X.tolist(), base_T.tolist()),
        "float16": (base_X.astype(np.float16), base_T.astype(np.float16)),
        "int": (base_X.astype(np.int64), base_T.astype(np.int32)),
        "float32/64": (base_X.astype(other), base_T.astype(other)),
        "non_contiguous": (np.repeat(base_X, 2, axis=1)[:, ::2], np.repeat(base_T, 3, axis=0)[::3]),
        "fortran": (np.asfortranarray(base_X), np.asfortranarray(base_T)),
    }[kind]
    if kind == "non_contiguous":
        assert not X.flags.c_contiguous and not T.flags.c_contiguous
    X_before = np.array(X, copy=True)

    clean_X = base_X.astype(dtype)
    clean_T = base_T.astype(dtype)
    expected_y = net.forward(clean_X).copy()
    expected_loss = net.loss(clean_X, clean_T)

    y = net.forward(X)
    assert y.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(y, expected_y)
    np.testing.assert_array_equal(net.predict(X), expected_y)
    assert net.loss(X, T) == expected_loss
    assert net.backward(X, T) == pytest.approx(expected_loss, rel=1e-6)
    net.train_step(X, T, fb.SGD(lr=0.1))
    net.fit(X, T, epochs=1, batch_size=2, optimizer=fb.SGD(lr=0.1), shuffle=False)
    # the caller's data was converted by copy, never written to
    np.testing.assert_array_equal(np.asarray(X), X_before)


@pytest.mark.parametrize("backend", BACKENDS)
def test_label_targets_accept_lists_and_integer_dtypes(rng, backend):
    widths = (3, 7, 4)
    net = make_net(widths, "relu", "ce_labels", backend=backend, seed=0)
    X = rng.standard_normal((6, 3))
    labels = np.array([0, 3, 1, 2, 3, 0])
    expected = net.loss(X, labels)
    assert expected == pytest.approx(np_loss("ce_labels", np_forward(net, X), labels), rel=1e-5)
    for lab in (labels.tolist(), labels.astype(np.int32), labels.astype(np.uint8)):
        assert net.loss(X, lab) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("form", ["column-int", "float", "column-float", "column-net-dtype"])
def test_column_and_whole_float_labels_train_as_integer_labels(rng, backend, dtype, form):
    """Labels (N, 1), and floats of whole value (Keras's sparse cross-entropy and
    scikit-learn take both), give the loss, gradients, steps and fits of int64 (N,)."""
    widths = (3, 7, 4)
    X = rng.standard_normal((10, 3))
    labels = np.array([0, 3, 1, 2, 3, 0, 1, 1, 2, 3])
    given = {
        "column-int": labels.reshape(-1, 1).astype(np.int32),
        "float": labels.astype(np.float64),
        "column-float": labels.reshape(-1, 1).astype(np.float32),
        "column-net-dtype": labels.reshape(-1, 1).astype(dtype),
    }[form]
    nets = [make_net(widths, "relu", "ce_labels", dtype, backend, seed=0) for _ in range(2)]
    results = []
    for net, T in zip(nets, (labels, given)):
        opt = fb.SGD(lr=0.1, momentum=0.9)
        loss, backward = net.loss(X, T), net.backward(X, T)
        grads = net.grads.copy()
        step = net.train_step(X, T, opt)
        history = net.fit(
            X,
            T,
            epochs=2,
            batch_size=3,
            optimizer=opt,
            validation_data=(X, T),
            metrics=["accuracy"],
        )
        results.append((loss, backward, grads, step, history.to_dict(), net.params.copy()))
    for name, want, got in zip(
        ["loss", "backward", "grads", "train_step", "history", "params"], *results
    ):
        if isinstance(want, dict):
            want.pop("epoch_time"), got.pop("epoch_time")
        np.testing.assert_equal(got, want, err_msg=name)


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_output_column_targets_are_probability_rows(rng, backend):
    """With one output, (N, 1) is the shape of the outputs, so it reads as probability
    rows (the one-class softmax's loss is 0 whatever the target), never as labels."""
    net = make_net((3, 1), "relu", "ce_labels", "float64", backend, seed=0)
    X = rng.standard_normal((5, 3))
    assert net.loss(X, np.full((5, 1), 0.5)) == 0.0
    assert net.loss(X, np.zeros(5, dtype=np.int64)) == 0.0


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_scalar_results_are_python_floats(rng, backend, dtype):
    widths = (3, 7, 2)
    net = make_net(widths, "tanh", "bce", dtype, backend, seed=0)
    X, T = make_data(widths, "bce", 5, rng, dtype)
    for value in (net.loss(X, T), net.backward(X, T), net.train_step(X, T, fb.SGD(lr=0.1))):
        assert isinstance(value, float)
    hist = net.fit(X, T, epochs=2, batch_size=2, optimizer=fb.SGD(lr=0.1))
    assert all(isinstance(v, float) for v in hist.loss)


# ---- public flat buffers ----------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_params_is_the_flat_buffer_every_layer_views(backend, dtype, rng):
    net = make_net((5, 7, 3), "tanh", "mse_mean", dtype, backend, seed=1)
    X, _ = make_data((5, 3), "mse_mean", 9, rng, dtype)
    assert net.params.shape == (net.n_params,) and net.params.dtype == np.dtype(dtype)
    assert net.grads.shape == (net.n_params,) and net.grads.dtype == np.dtype(dtype)
    for layer in dense_layers(net):
        for flat, name in (
            (net.params, "W"),
            (net.params, "b"),
            (net.grads, "dW"),
            (net.grads, "db"),
        ):
            assert np.shares_memory(getattr(layer, name), flat), name
    np.testing.assert_array_equal(
        net.params,
        np.concatenate([a.ravel() for layer in dense_layers(net) for a in (layer.W, layer.b)]),
    )
    new = rng.standard_normal(net.n_params).astype(dtype)
    net.params[...] = new  # written through the flat buffer
    first = dense_layers(net)[0]
    np.testing.assert_array_equal(first.W, new[:35].reshape(5, 7))
    np.testing.assert_array_equal(first.b, new[35:42])
    assert_close_scaled(net.forward(X), np_forward(net, X), backend_rtol(dtype))
    first.b[...] = 0.25  # and a layer's write shows in it
    np.testing.assert_array_equal(net.params[35:42], 0.25)


@pytest.mark.parametrize("backend", BACKENDS)
def test_grads_after_backward_are_the_layers_gradients(backend, rng):
    net = make_net((4, 6, 5, 2), "relu", "ce_labels", "float64", backend, seed=2)
    X, T = make_data((4, 2), "ce_labels", 11, rng, "float64")
    net.backward(X, T)
    expected = np.concatenate(
        [a.ravel() for layer in dense_layers(net) for a in (layer.dW, layer.db)]
    )
    assert np.abs(expected).max() > 0
    np.testing.assert_array_equal(net.grads, expected)


# ---- sparse input (scipy.sparse) --------------------------------------------------------

SPARSE_WIDTHS = (40, 8, 3)


def _sparse_data(rng, n=90):
    """A sparse X of about 10% nonzeros (CSR) and class labels."""
    sp = pytest.importorskip("scipy.sparse")
    X = sp.random(n, SPARSE_WIDTHS[0], density=0.1, random_state=rng, format="csr")
    return X, rng.integers(0, SPARSE_WIDTHS[-1], size=n)


@pytest.fixture
def small_blocks(monkeypatch):
    """Dense blocks of at most 3 rows of SPARSE_WIDTHS[0] values, so that fits, predictions
    and losses cross many blocks (and an epoch runs as several calls)."""
    monkeypatch.setattr(fb._sparse, "BLOCK_ELEMENTS", 3 * SPARSE_WIDTHS[0])


def _densified_rows(monkeypatch) -> list:
    """Record the rows of every densified scipy.sparse block from now on."""
    import scipy.sparse as sp

    rows = []
    for cls in (sp.csr_matrix, sp.csr_array):
        original = cls.toarray

        def toarray(self, *args, _original=original, **kwargs):
            rows.append(self.shape[0])
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(cls, "toarray", toarray)
    return rows


def _rows_of(x, rows):
    """``x[rows]``, of the format of ``x`` (COO cannot be sliced)."""
    return x[rows] if isinstance(x, np.ndarray) else x.tocsr()[rows].asformat(x.format)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
def test_sparse_input_trains_and_predicts_as_the_dense_input(
    rng, monkeypatch, small_blocks, backend, fmt
):
    """fit (shuffled, validation split, metrics, a weight penalty), train_step, backward,
    predict, loss and evaluate on a sparse X: the dense X's batches, parameters and
    results, to float32 round-off; no block densified holds more rows than a batch or a
    block."""
    X, T = _sparse_data(rng)
    X = X.asformat(fmt)
    nets = [make_net(SPARSE_WIDTHS, "relu", "ce_labels", "float32", backend) for _ in "ab"]
    dense_X = X.toarray()
    densified = _densified_rows(monkeypatch)
    results = []
    for net, x in zip(nets, (X, dense_X)):
        kwargs = dict(
            epochs=3, batch_size=4, validation_split=0.2, metrics=["accuracy"], weight_penalty=0.01
        )
        history = net.fit(x, T, optimizer=fb.Adam(lr=0.01), progress=False, **kwargs)
        opt = fb.SGD(lr=0.1)
        step_loss = net.train_step(_rows_of(x, slice(0, 5)), T[:5], opt)
        backward_loss = net.backward(_rows_of(x, slice(5, 12)), T[5:12])
        results.append(
            (
                history.loss + history.val_loss + history.accuracy + history.val_accuracy,
                [step_loss, backward_loss, net.loss(x, T)],
                list(net.evaluate(x, T, ["accuracy"]).values()),
                net.params.copy(),
                net.grads.copy(),
                net.predict(x),
            )
        )
    assert densified and max(densified) <= 7 < X.shape[0]  # a batch of train_step/backward
    for ours, dense in zip(*results):
        np.testing.assert_allclose(ours, dense, rtol=1e-5, atol=1e-6)


def test_sparse_input_is_checked_before_training(rng):
    X, T = _sparse_data(rng)
    net = make_net(SPARSE_WIDTHS, "relu", "ce_labels", "float32")
    before = net.params.copy()
    fit = dict(epochs=1, batch_size=4, optimizer=fb.SGD(lr=0.1), progress=False)
    with pytest.raises(ValueError, match="X has 39 features .columns., the network takes 40"):
        net.fit(X[:, :39], T, **fit)
    with pytest.raises(ValueError, match="X has 90 rows and T has 89"):
        net.fit(X, T[:89], **fit)
    bad = X.copy()
    bad.data[3] = np.nan
    with pytest.raises(ValueError, match="X contains NaN or inf"):
        net.fit(bad, T, **fit)
    for call in (lambda: net.fit(X[:0], T[:0], **fit), lambda: net.predict(X[:0])):
        with pytest.raises(ValueError, match=r"X is an empty batch, shape \(0, 40\)"):
            call()
    np.testing.assert_array_equal(net.params, before)


def test_fit_with_comm_refuses_sparse_input(rng):
    MPI = pytest.importorskip("mpi4py.MPI")
    X, T = _sparse_data(rng)
    net = make_net(SPARSE_WIDTHS, "relu", "ce_labels", "float32")
    with pytest.raises(NotImplementedError, match="takes dense X"):
        net.fit(X, T, epochs=1, batch_size=4, optimizer=fb.SGD(lr=0.1), comm=MPI.COMM_SELF)


def test_sparse_duplicate_entries_count_as_their_sum(rng):
    """A CSR matrix that stores a value twice means their sum, as scipy's toarray gives
    it; the caller's matrix is left as it was."""
    sp = pytest.importorskip("scipy.sparse")
    data, indices, indptr = [1.0, 2.0, 0.5, -1.0], [3, 3, 0, 7], [0, 2, 4]
    X = sp.csr_matrix((data, indices, indptr), shape=(2, SPARSE_WIDTHS[0]))
    assert not X.has_canonical_format
    net = make_net(SPARSE_WIDTHS, "relu", "ce_labels", "float64")
    T = np.array([0, 2])
    np.testing.assert_array_equal(net.predict(X), net.predict(X.toarray()))
    fit = dict(epochs=2, batch_size=1, shuffle=False, progress=False)
    twin = make_net(SPARSE_WIDTHS, "relu", "ce_labels", "float64")
    net.fit(X, T, optimizer=fb.SGD(lr=0.1), **fit)
    twin.fit(X.toarray(), T, optimizer=fb.SGD(lr=0.1), **fit)
    np.testing.assert_array_equal(net.params, twin.params)
    assert list(X.indices) == indices and list(X.data) == data
