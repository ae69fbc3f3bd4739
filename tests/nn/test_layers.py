"""Dropout, LayerNorm, RMSNorm and BatchNorm inside whole networks, on the cpu and numpy backends:
against the same torch.nn.Sequential (forward, gradients, running statistics, optimizer
steps, fit), dropout's masks and their reproducibility, gradcheck, persistence, the
1-row refusal of BatchNorm, summary, torch interop, ONNX export, sample weights and
gradient clipping."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import fastbp as fb
from fastbp import ops, reference
from fbhelpers import BACKENDS, DTYPES, assert_close_scaled

torch = pytest.importorskip("torch")

RTOL = {"float32": 1e-4, "float64": 1e-9}
TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64}
IN, OUT = 5, 3  # widths that are multiples of no vector width, as the hidden one (7)

#: Norm stacks compared with torch (no dropout: its masks are not torch's). In "both" a
#: Dense feeds a BatchNorm, so that Dense's bias has a true gradient of 0.
STACKS = ("layernorm", "rmsnorm", "batchnorm", "both")
#: Those without such a bias, for Adam: it turns a gradient of rounding noise into steps
#: of about lr in directions no two implementations share.
LIVE_STACKS = ("layernorm", "rmsnorm", "batchnorm")


def stack_layers(kind: str, rng=None) -> list:
    """Fresh layers of a 5 -> 7 -> 3 network with the norm layers of ``kind`` (one of
    STACKS, or "dropout" or "all"); the norm layers get random scales and shifts and
    BatchNorm random running statistics, so a misplaced one shows."""
    rng = np.random.default_rng(11) if rng is None else rng
    layers = {
        "layernorm": [fb.Dense(IN, 7), fb.LayerNorm(7), fb.Tanh(), fb.Dense(7, OUT)],
        "rmsnorm": [fb.Dense(IN, 7), fb.RMSNorm(7), fb.Tanh(), fb.Dense(7, OUT)],
        "batchnorm": [fb.Dense(IN, 7), fb.Tanh(), fb.BatchNorm(7), fb.Dense(7, OUT)],
        "both": [
            fb.Dense(IN, 7),
            fb.BatchNorm(7, momentum=0.3),
            fb.Tanh(),
            fb.Dense(7, OUT),
            fb.LayerNorm(OUT, eps=1e-3),
        ],
        "dropout": [fb.Dense(IN, 7), fb.Tanh(), fb.Dropout(0.4), fb.Dense(7, OUT)],
        "all": [
            fb.Dense(IN, 7),
            fb.BatchNorm(7, eps=1e-4, momentum=0.2),
            fb.Tanh(),
            fb.Dropout(0.3),
            fb.Dense(7, OUT),
            fb.LayerNorm(OUT),
            fb.RMSNorm(OUT),
        ],
    }[kind]
    for layer in layers:
        if isinstance(layer, (fb.LayerNorm, fb.RMSNorm, fb.BatchNorm)):
            layer.W = rng.uniform(0.5, 1.5, layer.n)
        if isinstance(layer, (fb.LayerNorm, fb.BatchNorm)):
            layer.b = rng.standard_normal(layer.n)
        if isinstance(layer, fb.BatchNorm):
            layer.running_mean = rng.standard_normal(layer.n)
            layer.running_var = rng.uniform(0.5, 2.0, layer.n)
    return layers


def stack_net(kind, dtype="float64", backend="cpu", seed=0, loss=None) -> fb.Network:
    return fb.Network(
        stack_layers(kind),
        fb.MSELoss() if loss is None else loss,
        dtype=dtype,
        backend=backend,
        seed=seed,
    )


def data(rng, rows, dtype, widths=(IN, OUT)):
    X = (2 * rng.standard_normal((rows, widths[0])) + 0.5).astype(dtype)
    T = rng.standard_normal((rows, widths[1])).astype(dtype)
    return X, T


def torch_by_hand(net):
    """The torch.nn.Sequential of ``net`` built here, module by module, with copies of
    its weights and running statistics (independent of fastbp's to_torch)."""
    dtype = TORCH_DTYPES[str(net.dtype)]
    modules = []

    def copy(target, source):
        with torch.no_grad():
            target.copy_(torch.from_numpy(np.array(source)))

    for layer in net.layers:
        if isinstance(layer, fb.Dense):
            m = torch.nn.Linear(layer.in_features, layer.out_features, dtype=dtype)
            copy(m.weight, np.asarray(layer.W).T)
            copy(m.bias, layer.b)
        elif isinstance(layer, fb.LayerNorm):
            m = torch.nn.LayerNorm(layer.n, eps=layer.eps, dtype=dtype)
            copy(m.weight, layer.W)
            copy(m.bias, layer.b)
        elif isinstance(layer, fb.RMSNorm):
            m = torch.nn.RMSNorm(layer.n, eps=layer.eps, dtype=dtype)
            copy(m.weight, layer.W)
        elif isinstance(layer, fb.BatchNorm):
            m = torch.nn.BatchNorm1d(layer.n, eps=layer.eps, momentum=layer.momentum, dtype=dtype)
            for target, source in (
                (m.weight, layer.W),
                (m.bias, layer.b),
                (m.running_mean, layer.running_mean),
                (m.running_var, layer.running_var),
            ):
                copy(target, source)
        elif isinstance(layer, fb.Tanh):
            m = torch.nn.Tanh()
        elif isinstance(layer, fb.ReLU):
            m = torch.nn.ReLU()
        else:
            raise AssertionError(f"no torch twin written for {layer!r}")
        modules.append(m)
    return torch.nn.Sequential(*modules)


BUILDERS = {"to_torch": lambda net: net.to_torch(), "by_hand": torch_by_hand}


def t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def torch_loss(model, X, T, training: bool):
    model.train(training)
    return torch.nn.functional.mse_loss(model(t(X)), t(T))


def param_layers(net):
    return [layer for layer in net.layers if layer.n_params]


def param_modules(model):
    return [m for m in model if any(True for _ in m.parameters())]


def assert_params_match_torch(net, model, rtol, grads=False):
    """Every parameter (or gradient) of ``net`` against ``model``'s, and the running
    statistics of every BatchNorm. The absolute tolerance is ``rtol`` times the largest
    value of all of them: a Dense bias before a BatchNorm has a gradient that is 0 up
    to rounding, which no relative tolerance of its own can hold."""
    pairs = []
    layers, modules = param_layers(net), param_modules(model)
    assert len(layers) == len(modules)
    for i, (layer, m) in enumerate(zip(layers, modules)):
        W, tw = (layer.dW, m.weight.grad) if grads else (layer.W, m.weight)
        tw = tw.detach().numpy()
        name = "dW" if grads else "W"
        pairs.append((W, tw.T if isinstance(layer, fb.Dense) else tw, f"layer {i} {name}"))
        if "b" in layer.param_shapes():  # not a norm without a shift, as RMSNorm
            b, tb = (layer.db, m.bias.grad) if grads else (layer.b, m.bias)
            pairs.append((b, tb.detach().numpy(), f"layer {i} {name[:-1]}b"))
    scale = max(float(np.max(np.abs(want))) for _, want, _ in pairs)
    for got, want, what in pairs:
        assert got.dtype == net.dtype and np.all(np.isfinite(got)), what
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale, err_msg=what)
    assert_running_stats_match_torch(net, model, rtol)


def assert_running_stats_match_torch(net, model, rtol):
    norms = [layer for layer in net.layers if isinstance(layer, fb.BatchNorm)]
    twins = [m for m in model if isinstance(m, torch.nn.BatchNorm1d)]
    assert len(norms) == len(twins)
    for i, (layer, m) in enumerate(zip(norms, twins)):
        assert_close_scaled(
            layer.running_mean, m.running_mean.numpy(), rtol, err_msg=f"BatchNorm {i} running_mean"
        )
        assert_close_scaled(
            layer.running_var, m.running_var.numpy(), rtol, err_msg=f"BatchNorm {i} running_var"
        )


def running_stats(net) -> list:
    return [
        (layer.running_mean.copy(), layer.running_var.copy())
        for layer in net.layers
        if isinstance(layer, fb.BatchNorm)
    ]


def assert_same_stats(a, b):
    assert len(a) == len(b)
    for (m1, v1), (m2, v2) in zip(a, b):
        np.testing.assert_array_equal(m1, m2)
        np.testing.assert_array_equal(v1, v2)


def dropout_seed(seed: int) -> int:
    """The mask seed a network with a Dropout draws: the first draw of its ``seed``'s
    generator, before the weights."""
    return int(np.random.default_rng(seed).integers(2**63))


class Frozen:
    """Bitwise copies of everything training may change: parameters, gradients, state,
    the training pass count and an optimizer's buffers and steps."""

    def __init__(self, net, opt=None):
        core = net._core
        self.net, self.opt = net, opt
        self.params, self.grads = net.params.copy(), net.grads.copy()
        self.state, self.passes = core.state.copy(), core.passes
        if opt is not None:
            state = opt.state_for(net)
            self.buffers, self.steps = [a.copy() for a in state.arrays], state.steps

    def assert_unchanged(self):
        net = self.net
        np.testing.assert_array_equal(net.params, self.params)
        np.testing.assert_array_equal(net.grads, self.grads)
        np.testing.assert_array_equal(net._core.state, self.state)
        assert net._core.passes == self.passes
        if self.opt is not None:
            state = self.opt.state_for(net)
            assert len(state.arrays) == len(self.buffers)
            for a, b in zip(state.arrays, self.buffers):
                np.testing.assert_array_equal(a, b)
            assert state.steps == self.steps


backends = pytest.mark.parametrize("backend", BACKENDS)
dtypes = pytest.mark.parametrize("dtype", DTYPES)


# ---- norm layers against torch --------------------------------------------------------


@backends
@dtypes
@pytest.mark.parametrize("build", sorted(BUILDERS))
@pytest.mark.parametrize("kind", STACKS)
def test_inference_matches_torch_in_eval_mode(kind, build, dtype, backend, rng):
    net = stack_net(kind, dtype, backend)
    model = BUILDERS[build](net)
    X, T = data(rng, 9, dtype)
    model.eval()
    with torch.no_grad():
        want = model(t(X)).numpy()
        want_loss = torch_loss(model, X, T, training=False).item()
    stats = running_stats(net)
    assert_close_scaled(net.forward(X), want, RTOL[dtype])
    assert_close_scaled(net.predict(X), want, RTOL[dtype])
    assert net.loss(X, T) == pytest.approx(want_loss, rel=RTOL[dtype])
    assert_same_stats(running_stats(net), stats)  # inference leaves them
    assert net._core.passes == 0


@backends
@dtypes
@pytest.mark.parametrize("build", sorted(BUILDERS))
@pytest.mark.parametrize("kind", STACKS)
def test_backward_gradients_and_running_stats_match_torch_in_train_mode(
    kind, build, dtype, backend, rng
):
    net = stack_net(kind, dtype, backend)
    model = BUILDERS[build](net)
    X, T = data(rng, 11, dtype)
    want = torch_loss(model, X, T, training=True)
    want.backward()
    assert net.backward(X, T) == pytest.approx(want.item(), rel=RTOL[dtype])
    assert_params_match_torch(net, model, RTOL[dtype], grads=True)


OPTIMIZERS = {
    "sgd_momentum": (
        lambda: fb.SGD(lr=0.1, momentum=0.9),
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
    ),
    "adam": (lambda: fb.Adam(lr=0.01), lambda p: torch.optim.Adam(p, lr=0.01)),
}


@backends
@dtypes
@pytest.mark.parametrize(
    "kind,optimizer",
    [(kind, "sgd_momentum") for kind in STACKS] + [(kind, "adam") for kind in LIVE_STACKS],
)
def test_ten_optimizer_steps_match_torch(kind, optimizer, dtype, backend, rng):
    net = stack_net(kind, dtype, backend)
    model = torch_by_hand(net)
    make_fb, make_torch = OPTIMIZERS[optimizer]
    opt, topt = make_fb(), make_torch(model.parameters())
    for step in range(10):
        X, T = data(rng, 6 + step, dtype)  # a new batch of a new size each step
        topt.zero_grad()
        want = torch_loss(model, X, T, training=True)
        want.backward()
        topt.step()
        assert net.train_step(X, T, opt) == pytest.approx(want.item(), rel=RTOL[dtype])
    assert_params_match_torch(net, model, RTOL[dtype])
    X, _ = data(rng, 7, dtype)
    model.eval()
    with torch.no_grad():
        assert_close_scaled(net.predict(X), model(t(X)).numpy(), RTOL[dtype])


@backends
@dtypes
@pytest.mark.parametrize("kind", STACKS)
def test_fit_without_shuffle_matches_torch_over_the_same_batches(kind, dtype, backend, rng):
    net = stack_net(kind, dtype, backend)
    model = torch_by_hand(net)
    topt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    X, T = data(rng, 23, dtype)  # batches of 7, 7, 7 and 2 rows
    Xv, Tv = data(rng, 6, dtype)
    history = net.fit(
        X,
        T,
        epochs=3,
        batch_size=7,
        optimizer=fb.SGD(lr=0.05, momentum=0.9),
        shuffle=False,
        validation_data=(Xv, Tv),
    )
    losses, val_losses = [], []
    for _ in range(3):
        total = 0.0
        for start in range(0, 23, 7):
            x, y = X[start : start + 7], T[start : start + 7]
            topt.zero_grad()
            loss = torch_loss(model, x, y, training=True)
            loss.backward()
            topt.step()
            total += len(x) * loss.item()
        losses.append(total / 23)
        with torch.no_grad():
            val_losses.append(torch_loss(model, Xv, Tv, training=False).item())
    np.testing.assert_allclose(history.loss, losses, rtol=RTOL[dtype])
    np.testing.assert_allclose(history.val_loss, val_losses, rtol=RTOL[dtype])
    assert_params_match_torch(net, model, RTOL[dtype])


@backends
@dtypes
def test_running_stats_after_several_train_steps_match_torch(dtype, backend, rng):
    net = stack_net("both", dtype, backend)
    model = net.to_torch()
    opt, topt = fb.SGD(lr=0.05), torch.optim.SGD(model.parameters(), lr=0.05)
    for rows in (2, 5, 17, 3):
        X, T = data(rng, rows, dtype)
        topt.zero_grad()
        torch_loss(model, X, T, training=True).backward()
        topt.step()
        net.train_step(X, T, opt)
        assert_running_stats_match_torch(net, model, RTOL[dtype])


# ---- dropout --------------------------------------------------------------------------


def twin_without(net, drop=fb.Dropout) -> fb.Network:
    """``net`` without its dropout layers, with the same parameters."""
    layers = [
        type(layer)(layer.in_features, layer.out_features)
        if isinstance(layer, fb.Dense)
        else type(layer)()
        for layer in net.layers
        if not isinstance(layer, drop)
    ]
    twin = fb.Network(layers, fb.MSELoss(), dtype=net.dtype, backend=net.backend)
    twin.params[...] = net.params
    return twin


@backends
@dtypes
def test_dropout_of_p_zero_is_the_identity_in_training(dtype, backend, rng):
    layers = [fb.Dense(IN, 7), fb.Tanh(), fb.Dropout(0.0), fb.Dense(7, OUT)]
    net = fb.Network(layers, fb.MSELoss(), dtype=dtype, backend=backend, seed=0)
    plain = twin_without(net)
    X, T = data(rng, 9, dtype)
    assert net.backward(X, T) == plain.backward(X, T)
    np.testing.assert_array_equal(net.grads, plain.grads)
    opt, opt_plain = fb.SGD(lr=0.1, momentum=0.9), fb.SGD(lr=0.1, momentum=0.9)
    for _ in range(3):
        assert net.train_step(X, T, opt) == plain.train_step(X, T, opt_plain)
    np.testing.assert_array_equal(net.params, plain.params)


@backends
@dtypes
def test_dropout_is_the_identity_in_inference(dtype, backend, rng):
    net = stack_net("dropout", dtype, backend)
    plain = twin_without(net)
    X, T = data(rng, 9, dtype)
    for _ in range(2):  # and the same every time: no pass is counted
        np.testing.assert_array_equal(net.forward(X), plain.forward(X))
        np.testing.assert_array_equal(net.predict(X), plain.predict(X))
        assert net.loss(X, T) == plain.loss(X, T)
        assert net.evaluate(X, T)["loss"] == plain.evaluate(X, T)["loss"]
    assert net._core.passes == 0


def identity_dropout_net(p, n, dtype, backend, seed=5):
    """Dense(n, n) holding the identity, then Dropout(p), with a summed MSE: the loss of a
    backward pass on targets 0 is the sum of the squared dropout outputs."""
    dense = fb.Dense(n, n)
    dense.W, dense.b = np.eye(n), np.zeros(n)
    return fb.Network(
        [dense, fb.Dropout(p)], fb.MSELoss(reduction="sum"), dtype=dtype, backend=backend, seed=seed
    )


@backends
@dtypes
@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_zeroes_about_p_and_scales_the_kept_by_one_over_one_minus_p(p, dtype, backend):
    rows, n = 200, 53
    net = identity_dropout_net(p, n, dtype, backend)
    ones = np.ones((rows, n), dtype)
    loss = net.backward(ones, np.zeros((rows, n), dtype))
    # Every output is 0 or 1 / (1 - p); dL/dz = 2 y / (1 - p) where kept, so column j's
    # db is 2 k_j / (1 - p)^2 for its k_j kept rows.
    scale = (1 - p) ** 2 / 2
    kept = net.layers[0].db * scale
    np.testing.assert_allclose(kept, np.round(kept), atol=RTOL[dtype] * rows)
    kept = np.round(kept)
    assert np.all((kept >= 0) & (kept <= rows))
    assert loss == pytest.approx(kept.sum() / (1 - p) ** 2, rel=RTOL[dtype])
    dropped = 1 - kept.sum() / (rows * n)
    # Five standard deviations of a binomial fraction: fails by chance once in ~3.5 million.
    assert abs(dropped - p) <= 5 * np.sqrt(p * (1 - p) / (rows * n))
    # dW = X.T @ dL/dz: with rows of ones, every row of dW is db
    assert_close_scaled(net.layers[0].dW, np.tile(net.layers[0].db, (n, 1)), RTOL[dtype])


@backends
@dtypes
def test_dropout_masks_are_those_of_ops_dropout_with_the_network_key(dtype, backend, rng):
    p, n, seed = 0.35, 7, 9
    net = identity_dropout_net(p, n, dtype, backend, seed=seed)
    key_seed = dropout_seed(seed)
    for pass_index in range(3):
        X = rng.standard_normal((13, n)).astype(dtype)
        key = reference.dropout_key(key_seed, 1, pass_index)
        y = ops.dropout(X, p, key)
        dz = ops.dropout_backward(2 * y, p, key)
        assert net.backward(X, np.zeros_like(X)) == pytest.approx(
            float(np.sum(y.astype(np.float64) ** 2)), rel=RTOL[dtype]
        )
        assert_close_scaled(net.layers[0].db, dz.sum(axis=0), RTOL[dtype])
        assert_close_scaled(net.layers[0].dW, X.T @ dz, RTOL[dtype])
        assert net._core.passes == pass_index + 1


def trajectory(backend, dtype, seed, rng_seed=3, steps=4, epochs=2):
    """Parameters, state and losses of a dropout network after ``steps`` train_steps and
    ``epochs`` shuffled epochs of fit, all from ``seed``."""
    net = stack_net("all", dtype, backend, seed=seed)
    rng = np.random.default_rng(rng_seed)
    opt = fb.SGD(lr=0.05, momentum=0.9)  # not Adam: see LIVE_STACKS
    X, T = data(rng, 20, dtype)  # batches of 6, 6, 6 and 2 rows
    losses = [net.train_step(X[i : i + 5], T[i : i + 5], opt) for i in range(steps)]
    losses += net.fit(X, T, epochs=epochs, batch_size=6, optimizer=opt).loss
    return net, np.array(losses)


@backends
def test_same_seed_gives_the_same_masks_and_trajectory(backend):
    a, losses_a = trajectory(backend, "float64", seed=4)
    b, losses_b = trajectory(backend, "float64", seed=4)
    np.testing.assert_array_equal(losses_a, losses_b)
    np.testing.assert_array_equal(a.params, b.params)
    np.testing.assert_array_equal(a._core.state, b._core.state)


@backends
def test_different_seeds_give_different_masks(backend, rng):
    a = stack_net("dropout", "float64", backend, seed=1)
    b = stack_net("dropout", "float64", backend, seed=2)
    b.params[...] = a.params  # only the masks differ
    X, T = data(rng, 17, "float64")
    assert a.backward(X, T) != b.backward(X, T)
    assert not np.array_equal(a.grads, b.grads)
    # and a network's successive passes draw different masks
    a.backward(X, T)
    first = a.grads.copy()
    a.backward(X, T)
    assert not np.array_equal(a.grads, first)


@dtypes
def test_cpu_and_numpy_backends_follow_the_same_dropout_trajectory(dtype):
    rtol = 1e-12 if dtype == "float64" else RTOL[dtype]
    cpu, losses_cpu = trajectory("cpu", dtype, seed=6)
    ref, losses_ref = trajectory("numpy", dtype, seed=6)
    np.testing.assert_allclose(losses_cpu, losses_ref, rtol=rtol)
    assert_close_scaled(cpu.params, ref.params, rtol)
    assert_close_scaled(cpu._core.state, ref._core.state, rtol)
    assert cpu._core.passes == ref._core.passes


# ---- gradcheck ------------------------------------------------------------------------


@backends
@pytest.mark.parametrize("kind", ["dropout", "layernorm", "rmsnorm", "batchnorm", "all"])
def test_gradcheck_of_networks_with_each_layer_and_it_leaves_them_unchanged(kind, backend, rng):
    net = stack_net(kind, "float64", backend, seed=2)
    X, T = data(rng, 8, "float64")
    net.train_step(X, T, fb.SGD(lr=0.1))  # a pass counted, running statistics moved
    net.backward(X, T)
    frozen = Frozen(net)
    assert fb.gradcheck(net, X, T) < 1e-6
    frozen.assert_unchanged()


# ---- persistence ----------------------------------------------------------------------


def trained(backend, dtype="float64", rng=None):
    net = stack_net("all", dtype, backend, seed=3)
    X, T = data(np.random.default_rng(1) if rng is None else rng, 12, dtype)
    net.fit(X, T, epochs=2, batch_size=4, optimizer=fb.SGD(lr=0.1, momentum=0.5))
    return net


def assert_same_network(a, b, rng, rtol=0.0):
    """Same layers, settings, parameters and state; predictions equal within ``rtol`` of
    the largest (0: bitwise, for the same backend)."""
    assert [layer.config() for layer in a.layers] == [layer.config() for layer in b.layers]
    for la, lb in zip(a.layers, b.layers):
        assert repr(la) == repr(lb)
    np.testing.assert_array_equal(a.params, b.params)
    np.testing.assert_array_equal(a._core.state, b._core.state)
    assert_same_stats(running_stats(a), running_stats(b))
    X, _ = data(rng, 6, str(a.dtype))
    if rtol == 0:
        np.testing.assert_array_equal(b.predict(X), a.predict(X))
    else:  # outputs near 0 by cancellation hold to rtol of the largest
        assert_close_scaled(b.predict(X), a.predict(X), rtol)


@backends
@dtypes
def test_save_and_load_keep_running_stats_and_settings(tmp_path, dtype, backend, rng):
    net = trained(backend, dtype)
    assert running_stats(net)[0][0].any()  # training moved them
    net.save(tmp_path / "net.npz")
    loaded = fb.Network.load(tmp_path / "net.npz")
    assert loaded.backend == backend and loaded.dtype == net.dtype
    assert_same_network(net, loaded, rng)
    other = "numpy" if backend == "cpu" else "cpu"
    assert_same_network(net, fb.Network.load(tmp_path / "net.npz", backend=other), rng, RTOL[dtype])


@backends
@dtypes
def test_pickle_keeps_running_stats_and_settings(dtype, backend, rng):
    net = trained(backend, dtype)
    copy = pickle.loads(pickle.dumps(net))
    assert copy.backend == backend
    assert_same_network(net, copy, rng)
    # the copy's running statistics are its own
    X, T = data(rng, 5, dtype)
    copy.backward(X, T)
    assert not np.array_equal(copy._core.state, net._core.state)


# ---- BatchNorm refuses 1-row training batches ----------------------------------------


@backends
@dtypes
def test_batchnorm_refuses_a_one_row_training_batch_before_changing_anything(dtype, backend, rng):
    net = stack_net("all", dtype, backend)
    opt = fb.SGD(lr=0.1, momentum=0.9)
    X, T = data(rng, 8, dtype)
    net.train_step(X, T, opt)  # a velocity, a pass and moved statistics to keep
    frozen = Frozen(net, opt)
    calls = {
        "backward": lambda: net.backward(X[:1], T[:1]),
        "train_step": lambda: net.train_step(X[:1], T[:1], opt),
        "fit, last batch of 1": lambda: net.fit(X, T, epochs=2, batch_size=7, optimizer=opt),
        "fit, shuffled": lambda: net.fit(X, T, epochs=1, batch_size=7, optimizer=opt, shuffle=True),
        "fit, batches of 1": lambda: net.fit(X, T, epochs=1, batch_size=1, optimizer=opt),
        "fit, one row": lambda: net.fit(X[:1], T[:1], epochs=1, batch_size=4, optimizer=opt),
    }
    for call in calls.values():
        with pytest.raises(ValueError, match="BatchNorm.*at least 2 rows"):
            call()
        frozen.assert_unchanged()
    # inference on one row works, and is that row's inference in a larger batch
    assert_close_scaled(net.predict(X[:1]), net.predict(X)[:1], RTOL[dtype])
    assert np.isfinite(net.loss(X[:1], T[:1]))
    frozen.assert_unchanged()


# ---- description, interop, export ----------------------------------------------------


def test_summary_lists_every_layer_with_its_parameter_count():
    net = stack_net("all")
    lines = []
    net.summary(print_fn=lines.append)
    text = "\n".join(lines)
    want = [
        ("dense_0 (Dense)", 42),
        ("batchnorm_1 (BatchNorm)", 14),
        ("tanh_2 (Tanh)", 0),
        ("dropout_3 (Dropout)", 0),
        ("dense_4 (Dense)", 24),
        ("layernorm_5 (LayerNorm)", 6),
        ("rmsnorm_6 (RMSNorm)", 3),
    ]
    rows = [line for line in lines if line.startswith(tuple(name for name, _ in want))]
    assert len(rows) == len(want), text
    for row, (name, count) in zip(rows, want):
        assert row.startswith(name) and row.split()[-1] == str(count), row
    assert f"Total params: {net.n_params}" in text and net.n_params == 89


@backends
@dtypes
def test_to_torch_and_back_keeps_every_layer(dtype, backend, rng):
    net = trained(backend, dtype)
    model = net.to_torch()
    assert [type(m).__name__ for m in model] == [
        "Linear",
        "BatchNorm1d",
        "Tanh",
        "Dropout",
        "Linear",
        "LayerNorm",
        "RMSNorm",
    ]
    back = fb.from_torch(model, fb.MSELoss(), backend=backend)
    assert_same_network(net, back, rng)
    X, _ = data(rng, 7, dtype)
    model.eval()
    with torch.no_grad():
        assert_close_scaled(net.predict(X), model(t(X)).numpy(), RTOL[dtype])


@backends
@dtypes
def test_from_torch_of_a_sequential_with_every_layer_matches_it_in_eval_mode(dtype, backend, rng):
    tdtype = TORCH_DTYPES[dtype]
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(IN, 7, dtype=tdtype),
        torch.nn.LayerNorm(7, eps=1e-4, dtype=tdtype),
        torch.nn.BatchNorm1d(7, eps=1e-3, momentum=0.25, dtype=tdtype),
        torch.nn.Dropout(0.2),
        torch.nn.ReLU(),
        torch.nn.Linear(7, OUT, dtype=tdtype),
        torch.nn.RMSNorm(OUT, dtype=tdtype),
    )
    with torch.no_grad():
        for m in (model[1], model[2], model[6]):
            m.weight.uniform_(0.5, 1.5)
        for m in (model[1], model[2]):
            m.bias.normal_()
        model[2].running_mean.normal_()
        model[2].running_var.uniform_(0.5, 2)
    net = fb.from_torch(model, fb.MSELoss(), backend=backend)
    assert [repr(layer) for layer in net.layers[1:4]] == [
        "LayerNorm(7, eps=0.0001)",
        "BatchNorm(7, eps=0.001, momentum=0.25)",
        "Dropout(p=0.2)",
    ]
    assert repr(net.layers[-1]) == "RMSNorm(3, eps=None)"
    X, _ = data(rng, 9, dtype)
    model.eval()
    with torch.no_grad():
        assert_close_scaled(net.predict(X), model(t(X)).numpy(), RTOL[dtype])


@backends
@dtypes
@pytest.mark.parametrize("opset", [13, 17, 18])
def test_onnx_export_runs_as_predict(tmp_path, opset, dtype, backend, rng):
    onnx = pytest.importorskip("onnx", reason="onnx is not installed")
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    net = trained(backend, dtype)
    path = tmp_path / "net.onnx"
    net.to_onnx(path, opset=opset)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    for rows in (1, 7, 33):
        X, _ = data(rng, rows, dtype)
        got = session.run(None, {"input": X})[0]
        assert got.dtype == net.dtype
        assert_close_scaled(got, net.predict(X), 1e-5 if dtype == "float32" else 1e-9)


# ---- sample weights and gradient clipping --------------------------------------------


@dtypes
def test_sample_weight_with_these_layers_matches_the_numpy_backend(dtype, rng):
    X, T = data(rng, 20, dtype)
    w = rng.uniform(0, 2, 20)
    w[[3, 11]] = 0
    results = []
    for backend in BACKENDS:
        net = stack_net("all", dtype, backend, seed=8)
        history = net.fit(
            X, T, epochs=2, batch_size=6, optimizer=fb.SGD(lr=0.1, momentum=0.9), sample_weight=w
        )
        results.append((net, history))
    (cpu, h_cpu), (ref, h_ref) = results
    rtol = 1e-10 if dtype == "float64" else RTOL[dtype]
    np.testing.assert_allclose(h_cpu.loss, h_ref.loss, rtol=rtol)
    assert_close_scaled(cpu.params, ref.params, rtol)
    assert_close_scaled(cpu._core.state, ref._core.state, rtol)
    # the weights mattered
    plain = stack_net("all", dtype, "cpu", seed=8)
    plain.fit(X, T, epochs=2, batch_size=6, optimizer=fb.SGD(lr=0.1, momentum=0.9))
    assert not np.allclose(plain.params, cpu.params)


@dtypes
def test_max_grad_norm_with_these_layers_matches_the_numpy_backend(dtype, rng):
    X, T = data(rng, 10, dtype)
    nets = [stack_net("all", dtype, backend, seed=9) for backend in BACKENDS]
    opts = [fb.SGD(lr=0.1, momentum=0.9, max_grad_norm=0.05) for _ in BACKENDS]
    for net in nets:
        net.backward(X, T)
        assert np.linalg.norm(net.grads) > 0.5  # so the clipping acts
    for _ in range(4):
        for net, opt in zip(nets, opts):
            net.train_step(X, T, opt)
    (cpu, ref) = nets
    rtol = 1e-10 if dtype == "float64" else RTOL[dtype]
    assert_close_scaled(cpu.params, ref.params, rtol)
    assert_close_scaled(cpu._core.state, ref._core.state, rtol)
    # the clipping acted: without it the same steps end elsewhere
    free, opt = stack_net("all", dtype, "cpu", seed=9), fb.SGD(lr=0.1, momentum=0.9)
    for _ in range(4):
        free.train_step(X, T, opt)
    assert not np.allclose(free.params, cpu.params, rtol=1e-3)


@pytest.mark.parametrize(
    "layer",
    [fb.Dense(3, 4), fb.LayerNorm(4), fb.RMSNorm(4), fb.BatchNorm(4), fb.Dropout(0.5), fb.ReLU()],
    ids=repr,
)
def test_a_layers_tensors_are_defined_once_by_the_core_plan(layer):
    """A layer's parameter and state shapes are the ones the core's plan lays out for it
    (fastbp._core.layer_tensors), in the order of the network's flat buffers."""
    params, state = fb._core.layer_tensors(layer.core_spec(4, np.float64))
    assert layer.param_shapes() == params and layer.state_shapes() == state
    layers = [layer] if isinstance(layer, fb.Dense) else [fb.Dense(3, 4), layer]
    net = fb.Network(layers, fb.MSELoss())
    core_params, core_state = net._core.layout[-1]
    assert [(name, shape) for name, _, shape in core_params] == list(params.items())
    assert [(name, shape) for name, _, shape in core_state] == list(state.items())
    if isinstance(layer, fb.RMSNorm):  # a row norm without a shift: its scale alone
        assert list(params) == ["W"] and not hasattr(layer, "b")
