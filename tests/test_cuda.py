"""The CUDA backend: what the build reports, the clear error without a GPU, and, on a
machine with one, every op of backend "cuda" against backend "cpu" through whole
networks (forward, loss, gradients, SGD variants, fit with and without a progress bar,
parameter access, save/load, divergence), and networks with Dropout, LayerNorm, RMSNorm
and BatchNorm (gradients, running statistics, train_step, fit, predict)."""

from __future__ import annotations

import ctypes
import re
import sys

import numpy as np
import pytest

import fastbp as fb
from fastbp import _core
from fbhelpers import (
    ARCHS,
    LOSSES,
    TrainingState,
    assert_close_scaled,
    backend_rtol,
    core_divergence,
    dense_layers,
    exploding,
    make_data,
    make_net,
    train_until_divergence,
)

INFO = fb.build_info()
needs_gpu = pytest.mark.skipif(
    not INFO["cuda_available"], reason=f"CUDA backend not usable here: {INFO['cuda_status']}"
)
# Archs crossing the GEMM's 128-wide tiles and its 8-deep k slices, plus the usual ones.
GPU_ARCHS = ARCHS + (((130, 257, 9), 200), ((5, 300, 129, 3), 131))


# ---- what runs everywhere -----------------------------------------------------------


def test_build_info_reports_cuda():
    assert isinstance(INFO["cuda_status"], str) and INFO["cuda_status"]
    if INFO["cuda_available"]:
        assert INFO["cuda_compiled"]
        assert isinstance(INFO["cuda_device"], str) and INFO["cuda_device"]
    else:
        assert INFO["cuda_device"] is None
    assert fb.cuda_available() is INFO["cuda_available"]


def nvidia_driver_installed() -> bool:
    """Whether the NVIDIA driver's library (which the CUDA runtime loads) is here."""
    try:
        ctypes.CDLL("nvcuda.dll" if sys.platform == "win32" else "libcuda.so.1")
    except OSError:
        return False
    return True


@pytest.mark.skipif(
    not INFO["cuda_compiled"] or nvidia_driver_installed(),
    reason="needs the CUDA backend compiled and no NVIDIA driver installed",
)
def test_without_a_driver_the_status_says_no_driver_was_found():
    assert INFO["cuda_status"].startswith("no NVIDIA driver found (this build needs CUDA ")
    assert "insufficient" not in INFO["cuda_status"]
    with pytest.raises(RuntimeError, match="no NVIDIA driver found"):
        make_net((2, 1), backend="cuda")


@pytest.mark.skipif(INFO["cuda_available"], reason="a CUDA device is present")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cuda_backend_without_device_raises_with_reason(dtype):
    reason = "compiled but" if INFO["cuda_compiled"] else "built without the CUDA backend"
    with pytest.raises(RuntimeError, match=reason):
        fb.Network(
            [fb.Dense(2, 3), fb.ReLU(), fb.Dense(3, 1)],
            fb.MSELoss(),
            dtype=dtype,
            backend="cuda",
            seed=0,
        )


@pytest.mark.skipif(INFO["cuda_available"], reason="a CUDA device is present")
def test_core_cuda_network_without_device_raises():
    why = re.escape(INFO["cuda_status"]) if INFO["cuda_compiled"] else "built without"
    with pytest.raises(RuntimeError, match=f"backend 'cuda'.*{why}"):
        _core.Network32(
            [_core.LayerSpec(_core.LayerKind.Dense, 2, 3)],
            _core.Loss.MSE,
            _core.Reduction.Mean,
            backend="cuda",
        )


# ---- CPU against CUDA, on a GPU -----------------------------------------------------


def pair(widths, act, loss, dtype, seed=0):
    """The same network on backends cpu and cuda, from the same seed."""
    return tuple(
        make_net(widths, act, loss, dtype, backend, seed=seed) for backend in ("cpu", "cuda")
    )


def assert_same_params(cpu, gpu, rtol, what="params"):
    for i, (a, b) in enumerate(zip(dense_layers(cpu), dense_layers(gpu))):
        for name in ("W", "b") if what == "params" else ("dW", "db"):
            assert_close_scaled(
                getattr(b, name), getattr(a, name), rtol, err_msg=f"layer {i} {name}"
            )


@needs_gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("act", ["sigmoid", "relu", "tanh", "identity"])
@pytest.mark.parametrize("widths,batch", GPU_ARCHS)
def test_forward_loss_backward_match_cpu(widths, batch, act, loss, dtype, rng):
    cpu, gpu = pair(widths, act, loss, dtype)
    X, T = make_data(widths, loss, batch, rng, dtype)
    rtol = backend_rtol(dtype)
    assert_close_scaled(gpu.forward(X), cpu.forward(X), rtol)
    assert gpu.loss(X, T) == pytest.approx(cpu.loss(X, T), rel=rtol)
    assert gpu.backward(X, T) == pytest.approx(cpu.backward(X, T), rel=rtol)
    assert_same_params(cpu, gpu, rtol, what="grads")


@needs_gpu
def test_activation_without_dense_before_it(rng):
    """Standalone activation steps (act_forward / act_backward kernels)."""
    nets = [
        fb.Network(
            [fb.Dense(6, 9), fb.Tanh(), fb.ReLU(), fb.Dense(9, 4), fb.Sigmoid()],
            fb.MSELoss(),
            backend=b,
            seed=3,
        )
        for b in ("cpu", "cuda")
    ]
    X, T = make_data((6, 4), "mse_mean", 37, rng, "float32")
    assert nets[1].backward(X, T) == pytest.approx(nets[0].backward(X, T), rel=1e-4)
    assert_same_params(*nets, 1e-4, what="grads")


@needs_gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_cross_entropy_gradient_of_huge_logits_matches_cpu(dtype):
    """Logits of 1e17: softmax must be exp(x - max) / sum, since lse = max + log(sum)
    loses log(sum) to rounding there (exp(x - lse) would give [0, 1, 0] for row 0).
    Dense(3, 3) with W = I and b = 0 passes X through as the logits, so db is the sum
    of the rows' logit gradients and dW = X^T times them."""
    X = np.array([[1e17, 1e17, 0.0], [0.0, 1e17, 1e17]], dtype=dtype)
    labels = np.array([0, 2])
    per_row = np.array([[-0.5, 0.5, 0.0], [0.0, 0.5, -0.5]])  # softmax - one-hot
    nets = {}
    for backend in ("cpu", "cuda"):
        net = fb.Network(
            [fb.Dense(3, 3)],
            fb.SoftmaxCrossEntropyLoss(reduction="sum"),
            dtype=dtype,
            backend=backend,
        )
        net.layers[0].W, net.layers[0].b = np.eye(3), np.zeros(3)
        net.backward(X, labels)
        nets[backend] = net.layers[0]
    for backend, layer in nets.items():
        np.testing.assert_allclose(
            layer.db, per_row.sum(axis=0), rtol=1e-6, atol=0, err_msg=backend
        )
        assert_close_scaled(layer.dW, X.astype(np.float64).T @ per_row, 1e-6, err_msg=backend)
    assert_close_scaled(nets["cuda"].db, nets["cpu"].db, backend_rtol(dtype))
    assert_close_scaled(nets["cuda"].dW, nets["cpu"].dW, backend_rtol(dtype))


SGD_CONFIGS = [
    dict(lr=0.1),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01),
    dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.001),
]


@needs_gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("config", SGD_CONFIGS)
def test_train_step_and_sgd_step_match_cpu(config, dtype, rng):
    widths = (5, 300, 129, 3)
    cpu, gpu = pair(widths, "tanh", "ce_labels", dtype)
    opts = [fb.SGD(**config), fb.SGD(**config)]
    rtol = 1e-3 if dtype == "float32" else 1e-9  # float32 rounding grows over steps
    for step in range(5):
        X, T = make_data(widths, "ce_labels", 64, rng, dtype)
        if step % 2:  # backward then SGD.step: the sgd kernel on its own
            assert gpu.backward(X, T) == pytest.approx(cpu.backward(X, T), rel=rtol)
            for net, opt in zip((cpu, gpu), opts):
                opt.step(net)
        else:
            got, want = (net.train_step(X, T, opt) for net, opt in zip((cpu, gpu), opts))
            assert got == pytest.approx(want, rel=rtol)
    assert_same_params(cpu, gpu, rtol)
    state = [opt.state_for(net).velocity for net, opt in zip((cpu, gpu), opts)]
    _ = gpu.layers[0].W  # a read brings the GPU's momentum buffer back too
    if config.get("momentum"):
        assert_close_scaled(state[1], state[0], rtol)


@needs_gpu
@pytest.mark.parametrize("sliced", [False, True], ids=["one_call", "sliced"])
@pytest.mark.parametrize("loss", ["mse_mean", "ce_labels", "ce_probs", "bce"])
def test_fit_matches_cpu(loss, sliced, rng, request):
    """``sliced``: with a (recording) progress bar, so each epoch of 10 batches runs as 10
    core calls, the momentum buffer carried on the GPU from one call to the next."""
    if sliced:
        request.getfixturevalue("recording_bars")
    widths = (7, 33, 17, 3)
    cpu, gpu = pair(widths, "relu", loss, "float64", seed=1)
    X, T = make_data(widths, loss, 301, rng, "float64")
    Xv, Tv = make_data(widths, loss, 50, rng, "float64")
    histories = [
        net.fit(
            X,
            T,
            epochs=3,
            batch_size=32,
            optimizer=fb.SGD(lr=0.05, momentum=0.9),
            validation_data=(Xv, Tv),
            progress=sliced,
        )
        for net in (cpu, gpu)
    ]
    np.testing.assert_allclose(histories[1].loss, histories[0].loss, rtol=1e-9)
    np.testing.assert_allclose(histories[1].val_loss, histories[0].val_loss, rtol=1e-9)
    assert_same_params(cpu, gpu, 1e-9)


@needs_gpu
def test_parameter_writes_reach_the_gpu(rng):
    cpu, gpu = pair((4, 8, 2), "tanh", "mse_mean", "float32")
    X, T = make_data((4, 2), "mse_mean", 16, rng, "float32")
    opt_c, opt_g = fb.SGD(lr=0.1), fb.SGD(lr=0.1)
    cpu.train_step(X, T, opt_c)
    gpu.train_step(X, T, opt_g)
    W = rng.standard_normal((4, 8)).astype(np.float32)
    for net in (cpu, gpu):
        net.layers[0].W = W  # assignment
        net.layers[2].b[...] = 0.5  # in-place write through the view
    assert_close_scaled(gpu.forward(X), cpu.forward(X), 1e-5)
    cpu.backward(X, T)
    gpu.backward(X, T)
    for net in (cpu, gpu):
        net.layers[2].dW[...] *= 2  # edited gradients are what SGD.step uses
    opt_c.step(cpu)
    opt_g.step(gpu)
    assert_same_params(cpu, gpu, 1e-5)


@needs_gpu
def test_flat_buffers_are_host_copies_synced_with_the_gpu(rng):
    cpu, gpu = pair((4, 8, 2), "tanh", "mse_mean", "float64")
    X, T = make_data((4, 2), "mse_mean", 16, rng, "float64")
    new = rng.standard_normal(cpu.n_params)
    for net in (cpu, gpu):
        net.params[...] = new  # written through the flat host copy
        assert np.shares_memory(net.layers[0].W, net.params)
    assert_close_scaled(gpu.forward(X), cpu.forward(X), 1e-10)
    for net in (cpu, gpu):
        net.train_step(X, T, fb.SGD(lr=0.1))
    assert_close_scaled(gpu.params, cpu.params, 1e-10)  # a read brings the GPU's values
    assert_close_scaled(gpu.grads, cpu.grads, 1e-10)
    np.testing.assert_array_equal(
        gpu.grads,
        np.concatenate([a.ravel() for layer in dense_layers(gpu) for a in (layer.dW, layer.db)]),
    )


@needs_gpu
def test_switching_optimizers_keeps_each_momentum_buffer(rng):
    cpu, gpu = pair((4, 8, 2), "tanh", "mse_mean", "float64")
    X, T = make_data((4, 2), "mse_mean", 16, rng, "float64")
    opts = {
        net: (fb.SGD(lr=0.1, momentum=0.9), fb.SGD(lr=0.05, momentum=0.5)) for net in (cpu, gpu)
    }
    for i in range(6):
        for net in (cpu, gpu):
            net.train_step(X, T, opts[net][i % 2])
    assert_same_params(cpu, gpu, 1e-10)


@needs_gpu
def test_save_and_load_a_gpu_network(tmp_path, rng):
    cpu, gpu = pair((4, 8, 2), "tanh", "mse_mean", "float32")
    X, T = make_data((4, 2), "mse_mean", 16, rng, "float32")
    gpu.train_step(X, T, fb.SGD(lr=0.1))
    gpu.save(tmp_path / "net.npz")
    for backend in ("cuda", "cpu"):
        back = fb.Network.load(tmp_path / "net.npz", backend=backend)
        assert back.backend == backend
        np.testing.assert_array_equal(back._core.params, gpu._core.params)
        assert_close_scaled(back.forward(X), gpu.forward(X), 1e-5)


@needs_gpu
def test_gradcheck_on_gpu_network(rng):
    net = make_net((3, 5, 2), "tanh", "mse_mean", "float64", "cuda", seed=0)
    X, T = make_data((3, 2), "mse_mean", 6, rng, "float64")
    assert fb.gradcheck(net, X, T) < 1e-6


@needs_gpu
def test_bad_input_raises_before_reaching_the_gpu(snapshot):
    net = make_net((3, 5, 2), "tanh", "mse_mean", "float32", "cuda", seed=0)
    snap = snapshot(net)
    with pytest.raises(ValueError, match="NaN"):
        net.train_step(
            np.full((4, 3), np.nan, np.float32),
            np.zeros((4, 2), np.float32),
            fb.SGD(lr=0.1, momentum=0.9),
        )
    snap.assert_unchanged()


# ---- divergence, as on the CPU (tests/training/test_divergence.py) ---------------------------


def cancelling(backend, dtype):
    """Dense(2, 2), Dense(2, 1) with all-ones weights, and a batch whose inputs near the
    dtype's largest value cancel in the first layer: the loss is exactly 1 but the first
    layer's dW overflows, on any backend."""
    net = fb.Network([fb.Dense(2, 2), fb.Dense(2, 1)], fb.MSELoss(), dtype=dtype, backend=backend)
    reset_cancelling(net)
    big = np.finfo(dtype).max / 1.2
    return net, np.array([[big, -big]], dtype=dtype), np.ones((1, 1), dtype=dtype)


def reset_cancelling(net):
    net.layers[0].W, net.layers[1].W = np.ones((2, 2)), np.ones((2, 1))
    net.layers[0].b, net.layers[1].b = np.zeros(2), np.zeros(1)


def assert_same_state(cpu, gpu, opts, rtol):
    assert_same_params(cpu, gpu, rtol)
    _ = gpu.layers[0].W  # a read brings the GPU's momentum buffer back too
    assert_close_scaled(
        opts["cuda"].state_for(gpu).velocity, opts["cpu"].state_for(cpu).velocity, rtol
    )


@needs_gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_train_step_divergence_matches_cpu(dtype):
    """The exploding run diverges at the same train_step on both backends, for the same
    kind of reason; on the GPU too the failing step changes nothing."""
    failed = {}
    for backend in ("cpu", "cuda"):
        net, X, T, opt = exploding(backend, dtype)
        step, e, before = train_until_divergence(net, X, T, opt)
        found = re.search(
            rf"train_step {step}: (the loss is|a gradient is NaN or inf "
            r"\(d[Wb] of Dense layer \d of 2)",
            str(e),
        )
        assert found, str(e)
        TrainingState(net, opt).assert_equal(before)
        failed[backend] = step, found[1]
    assert failed["cuda"] == failed["cpu"]


@needs_gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_first_train_step_divergence_then_training_matches_cpu(dtype, rng):
    """A first step (momentum not yet initialised) that diverges: the same message as on
    the CPU, nothing changed, and later steps start the momentum afresh on both."""
    nets, messages = {}, {}
    opts = {backend: fb.SGD(lr=0.05, momentum=0.9) for backend in ("cpu", "cuda")}
    for backend, opt in opts.items():
        net, X, T = nets[backend] = cancelling(backend, dtype)
        with pytest.raises(FloatingPointError) as info:
            net.train_step(X, T, opt)
        messages[backend] = str(info.value)
        state = TrainingState(net, opt)
        assert state.steps == 0 and not state.buffers["velocity"].any()
        np.testing.assert_array_equal(state.params[0][0], np.ones((2, 2)))
    assert messages["cuda"] == messages["cpu"]
    assert (
        "train_step 1: a gradient is NaN or inf (dW of Dense layer 1 of 2; loss 1)"
        in messages["cuda"]
    )
    X, T = make_data((2, 1), "mse_mean", 16, rng, dtype)
    for _ in range(3):
        for backend, (net, _, _) in nets.items():
            net.train_step(X, T, opts[backend])
    assert_same_state(nets["cpu"][0], nets["cuda"][0], opts, backend_rtol(dtype))


@needs_gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sgd_step_after_overflowed_backward_matches_cpu(dtype, rng):
    """backward then SGD.step on the cancelling batch, with a momentum buffer already on
    the GPU: the CPU's error, nothing changed, and the next steps match the CPU's."""
    opts = {backend: fb.SGD(lr=0.05, momentum=0.9) for backend in ("cpu", "cuda")}
    nets, messages = {}, {}
    X, T = make_data((2, 1), "mse_mean", 16, rng, dtype)
    for backend, opt in opts.items():
        net, X_big, T_big = cancelling(backend, dtype)
        nets[backend] = net
        net.backward(X, T)
        opt.step(net)
        reset_cancelling(net)  # the velocity stays as the first step left it
        before = TrainingState(net, opt)
        assert net.backward(X_big, T_big) == 1
        with pytest.raises(FloatingPointError) as info:
            opt.step(net)
        messages[backend] = str(info.value)
        TrainingState(net, opt).assert_equal(before)
    assert messages["cuda"] == messages["cpu"]
    assert (
        "optimizer step 2: a gradient is NaN or inf (dW of Dense layer 1 of 2" in messages["cuda"]
    )
    for _ in range(3):
        for backend, net in nets.items():
            net.backward(X, T)
            opts[backend].step(net)
    assert_same_state(nets["cpu"], nets["cuda"], opts, backend_rtol(dtype))


@needs_gpu
def test_nonfinite_loss_with_finite_gradients_is_refused_on_gpu(snapshot):
    """The loss overflows (1e400) while the gradients (2e200) are finite: SGD.step, whose
    loss check runs on the host, and train_step, whose check runs on the GPU, refuse it."""
    X, T = np.ones((1, 1)), np.zeros((1, 1))
    nets = [
        fb.Network([fb.Dense(1, 1)], fb.MSELoss(), dtype="float64", backend="cuda") for _ in "ab"
    ]
    for net in nets:
        net.layers[0].W = [[1e200]]
    snap = snapshot(nets[0])
    assert nets[0].backward(X, T) == np.inf
    assert np.isfinite(nets[0].layers[0].dW).all()
    with pytest.raises(FloatingPointError, match=r"optimizer step 1: the loss is inf;"):
        fb.SGD(lr=0.1, momentum=0.9).step(nets[0])
    with pytest.raises(FloatingPointError, match=r"train_step 1: the loss is inf;"):
        nets[1].train_step(X, T, fb.SGD(lr=0.1, momentum=0.9))
    snap.assert_unchanged()


@needs_gpu
def test_fit_divergence_matches_cpu():
    """fit stops at the CPU's epoch and step, keeping the epoch's earlier batches and
    not the failing one (float64, so the two runs agree to rounding)."""
    stops, states = {}, {}
    for backend in ("cpu", "cuda"):
        net, X, T, opt = exploding(backend, "float64")
        with pytest.raises(FloatingPointError) as info:
            net.fit(X, T, epochs=200, batch_size=5, optimizer=opt, shuffle=False)
        stops[backend] = re.search(r"epoch (\d+), step (\d+): \w+", str(info.value))[0]
        states[backend] = TrainingState(net, opt)
    assert stops["cuda"] == stops["cpu"]
    cpu, gpu = states["cpu"], states["cuda"]
    assert gpu.steps == cpu.steps
    for (w, b), (w_cpu, b_cpu) in zip(gpu.params, cpu.params):
        assert_close_scaled(w, w_cpu, 1e-6)
        assert_close_scaled(b, b_cpu, 1e-6)
    assert_close_scaled(gpu.buffers["velocity"], cpu.buffers["velocity"], 1e-6)


@needs_gpu
@pytest.mark.parametrize("call", ["train_step", "train_epoch", "step"])
def test_core_cuda_network_reports_the_step_of_the_call(call):
    """As test_divergence.py::test_core_reports_the_step_of_the_call, on the CUDA Network64."""
    error = core_divergence(call, "float64", backend="cuda")
    assert error.step == (2 if call == "train_epoch" else 0)
    assert error.reason.startswith("a gradient is NaN or inf (dW of Dense layer 1 of 1")


@needs_gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(fb._names.ACTIVATIONS))
def test_every_activation_matches_cpu_through_a_network(name, dtype, rng):
    def net(backend):
        act = fb.nn.activations.for_name(name)
        layers = [
            fb.Dense(7, 17),
            act,
            fb.Dense(17, 3),
            act.with_act_settings(),
            fb.nn.activations.for_name(name),
            fb.Dense(3, 2),
        ]
        return fb.Network(layers, fb.MSELoss(), dtype=dtype, backend=backend, seed=5)

    gpu, cpu = net("cuda"), net("cpu")
    X = rng.standard_normal((33, 7)).astype(dtype)
    T = rng.standard_normal((33, 2)).astype(dtype)
    tol = dict(rtol=1e-4, atol=1e-6) if dtype == "float32" else dict(rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(gpu.backward(X, T), cpu.backward(X, T), **tol)
    np.testing.assert_allclose(gpu.grads, cpu.grads, **tol)
    np.testing.assert_allclose(gpu.predict(X), cpu.predict(X), **tol)


# ---- L1 and Huber losses, clipping and the other optimizers on the GPU --------------


@needs_gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "loss",
    [
        fb.L1Loss(),
        fb.L1Loss(reduction="sum"),
        fb.HuberLoss(),
        fb.HuberLoss(delta=0.3, reduction="sum"),
    ],
    ids=repr,
)
def test_l1_and_huber_match_cpu(loss, dtype, rng):
    widths = (5, 300, 129, 3)
    nets = [
        fb.Network(
            [fb.Dense(5, 300), fb.Tanh(), fb.Dense(300, 129), fb.ReLU(), fb.Dense(129, 3)],
            type(loss)(**{k: v for k, v in loss.config().items() if k != "type"}),
            dtype=dtype,
            backend=backend,
            seed=0,
        )
        for backend in ("cpu", "cuda")
    ]
    X, T = make_data(widths, "mse_mean", 131, rng, dtype)
    rtol = 1e-4 if dtype == "float32" else 1e-9
    assert nets[1].loss(X, T) == pytest.approx(nets[0].loss(X, T), rel=rtol)
    assert nets[1].backward(X, T) == pytest.approx(nets[0].backward(X, T), rel=rtol)
    assert_same_params(*nets, rtol, what="grads")
    opts = [fb.SGD(lr=0.05, momentum=0.9), fb.SGD(lr=0.05, momentum=0.9)]
    for net, opt in zip(nets, opts):
        net.fit(X, T, epochs=2, batch_size=32, optimizer=opt, shuffle=False, progress=False)
    assert_same_params(*nets, 1e-3 if dtype == "float32" else 1e-9)


@needs_gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "loss",
    [
        fb.PoissonNLLLoss(),
        fb.PoissonNLLLoss(full=True, reduction="sum"),
        fb.PoissonNLLLoss(log_input=False, full=True, eps=1e-3),
    ],
    ids=repr,
)
def test_poisson_nll_matches_cpu(loss, dtype, rng):
    tail = [] if loss.log_input else [fb.Softplus()]  # rates > 0 without log_input
    nets = [
        fb.Network(
            [fb.Dense(5, 300), fb.Tanh(), fb.Dense(300, 129), fb.ReLU(), fb.Dense(129, 3), *tail],
            type(loss)(**loss.settings, reduction=loss.reduction),
            dtype=dtype,
            backend=backend,
            seed=0,
        )
        for backend in ("cpu", "cuda")
    ]
    X = rng.standard_normal((131, 5)).astype(dtype)
    T = rng.poisson(2.0, (131, 3)).astype(dtype)
    rtol = 1e-4 if dtype == "float32" else 1e-9
    assert nets[1].loss(X, T) == pytest.approx(nets[0].loss(X, T), rel=rtol)
    assert nets[1].backward(X, T) == pytest.approx(nets[0].backward(X, T), rel=rtol)
    assert_same_params(*nets, rtol, what="grads")
    opts = [fb.SGD(lr=0.01, momentum=0.9), fb.SGD(lr=0.01, momentum=0.9)]
    for net, opt in zip(nets, opts):
        net.fit(X, T, epochs=2, batch_size=32, optimizer=opt, shuffle=False, progress=False)
    assert_same_params(*nets, 1e-3 if dtype == "float32" else 1e-9)


@needs_gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("max_norm", [0.01, 1e6])
def test_clipped_sgd_matches_cpu(max_norm, dtype, rng):
    widths = (5, 300, 129, 3)
    cpu, gpu = pair(widths, "tanh", "mse_mean", dtype)
    opts = [fb.SGD(lr=0.1, momentum=0.9, max_grad_norm=max_norm) for _ in range(2)]
    rtol = 1e-3 if dtype == "float32" else 1e-9
    for step in range(4):
        X, T = make_data(widths, "mse_mean", 64, rng, dtype)
        if step % 2:
            gpu.backward(X, T), cpu.backward(X, T)
            for net, opt in zip((cpu, gpu), opts):
                opt.step(net)
        else:
            for net, opt in zip((cpu, gpu), opts):
                net.train_step(X, T, opt)
    assert_same_params(cpu, gpu, rtol)


@needs_gpu
def test_an_infinite_gradient_norm_diverges_on_gpu(snapshot):
    cpu, gpu = pair((2, 3, 1), "identity", "mse_mean", "float64")
    for net in (cpu, gpu):
        opt = fb.SGD(lr=0.1, max_grad_norm=1.0)
        net.backward(np.ones((2, 2)), np.zeros((2, 1)))
        net.grads[:2] = 1e300
        snap = snapshot(net)
        with pytest.raises(FloatingPointError, match="gradient norm is inf"):
            opt.step(net)
        snap.assert_unchanged()


@needs_gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    "make_opt",
    [
        lambda: fb.Adam(lr=0.01, weight_decay=0.1),
        lambda: fb.AdamW(lr=0.01),
        lambda: fb.RMSprop(lr=0.01, momentum=0.9, centered=True, weight_decay=0.01),
        lambda: fb.Adagrad(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1),
        lambda: fb.Adadelta(lr=0.5, rho=0.8, weight_decay=0.01),
        lambda: fb.Adam(lr=0.01, max_grad_norm=0.05),
    ],
    ids=["adam", "adamw", "rmsprop", "adagrad", "adadelta", "adam_clipped"],
)
def test_every_optimizer_matches_cpu(make_opt, dtype, rng):
    widths = (5, 300, 129, 3)
    cpu, gpu = pair(widths, "tanh", "mse_mean", dtype)
    opts = [make_opt(), make_opt()]
    for step in range(4):
        X, T = make_data(widths, "mse_mean", 64, rng, dtype)
        for net, opt in zip((cpu, gpu), opts):
            if step % 2:
                net.backward(X, T)
                opt.step(net)
            else:
                net.train_step(X, T, opt)
    X, T = make_data(widths, "mse_mean", 100, rng, dtype)
    for net, opt in zip((cpu, gpu), opts):
        net.fit(X, T, epochs=2, batch_size=32, optimizer=opt, shuffle=False, progress=False)
    assert_same_params(cpu, gpu, 1e-3 if dtype == "float32" else 1e-9)
    for a, b in zip(opts[0].state_for(cpu).arrays, opts[1].state_for(gpu).arrays):
        np.testing.assert_allclose(
            b,
            a,
            rtol=1e-3 if dtype == "float32" else 1e-9,
            atol=1e-6 if dtype == "float32" else 1e-12,
        )


# ---- Dropout, LayerNorm, RMSNorm and BatchNorm on the GPU ---------------------------

#: Widths of the norm networks: small ones, and ones crossing the GEMM's 128-wide tiles.
NORM_WIDTHS = ((5, 7, 3), (33, 257, 9))


def norm_layers(widths):
    """Dense, BatchNorm, Tanh, Dropout, Dense, LayerNorm, RMSNorm, with random norm
    scales and shifts and running statistics (the same every call)."""
    n_in, hidden, n_out = widths
    rng = np.random.default_rng(3)
    layers = [
        fb.Dense(n_in, hidden),
        fb.BatchNorm(hidden, momentum=0.2),
        fb.Tanh(),
        fb.Dropout(0.3),
        fb.Dense(hidden, n_out),
        fb.LayerNorm(n_out),
        fb.RMSNorm(n_out),
    ]
    for layer in (layers[1], layers[5]):
        layer.W, layer.b = rng.uniform(0.5, 1.5, layer.n), rng.standard_normal(layer.n)
    layers[6].W = rng.uniform(0.5, 1.5, n_out)
    layers[1].running_mean = rng.standard_normal(hidden)
    layers[1].running_var = rng.uniform(0.5, 2, hidden)
    return layers


def norm_pair(widths, dtype, seed=0):
    """The norm network on backends cpu and cuda from the same seed: the same weights and,
    the masks being counter-based, the same dropout masks."""
    return tuple(
        fb.Network(norm_layers(widths), fb.MSELoss(), dtype=dtype, backend=backend, seed=seed)
        for backend in ("cpu", "cuda")
    )


def norm_data(widths, rows, rng, dtype):
    return (
        rng.standard_normal((rows, widths[0])).astype(dtype),
        rng.standard_normal((rows, widths[-1])).astype(dtype),
    )


def assert_same_norm_state(cpu, gpu, rtol, grads=False):
    """Parameters (or gradients) and running statistics of the two, each flat buffer to
    ``rtol`` of its largest value (a Dense bias before a BatchNorm has a gradient of 0)."""
    assert_close_scaled(
        gpu.grads if grads else gpu.params, cpu.grads if grads else cpu.params, rtol
    )
    for a, b in zip(cpu.layers, gpu.layers):
        if isinstance(a, fb.BatchNorm):
            assert_close_scaled(b.running_mean, a.running_mean, rtol)
            assert_close_scaled(b.running_var, a.running_var, rtol)


@needs_gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("widths", NORM_WIDTHS)
def test_norm_and_dropout_backward_matches_cpu(widths, dtype, rng):
    cpu, gpu = norm_pair(widths, dtype)
    rtol = backend_rtol(dtype)
    for rows in (2, 37, 131):
        X, T = norm_data(widths, rows, rng, dtype)
        assert gpu.backward(X, T) == pytest.approx(cpu.backward(X, T), rel=rtol)
        assert_same_norm_state(cpu, gpu, rtol, grads=True)
        assert_same_norm_state(cpu, gpu, rtol)
        assert_close_scaled(gpu.predict(X), cpu.predict(X), rtol)
        assert gpu.loss(X, T) == pytest.approx(cpu.loss(X, T), rel=rtol)
    assert gpu._core.passes == cpu._core.passes == 3


@needs_gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("widths", NORM_WIDTHS)
def test_norm_and_dropout_train_step_and_fit_match_cpu(widths, dtype, rng):
    cpu, gpu = norm_pair(widths, dtype, seed=2)
    rtol = 1e-3 if dtype == "float32" else 1e-9
    opts = [fb.SGD(lr=0.05, momentum=0.9), fb.SGD(lr=0.05, momentum=0.9)]
    for _ in range(3):
        X, T = norm_data(widths, 33, rng, dtype)
        got, want = (net.train_step(X, T, opt) for net, opt in zip((gpu, cpu), opts))
        assert got == pytest.approx(want, rel=rtol)
    assert_same_norm_state(cpu, gpu, rtol)
    X, T = norm_data(widths, 101, rng, dtype)  # batches of 16, the last of 5
    Xv, Tv = norm_data(widths, 20, rng, dtype)
    histories = [
        net.fit(
            X, T, epochs=2, batch_size=16, optimizer=opt, validation_data=(Xv, Tv), progress=False
        )
        for net, opt in zip((cpu, gpu), opts)
    ]
    np.testing.assert_allclose(histories[1].loss, histories[0].loss, rtol=rtol)
    np.testing.assert_allclose(histories[1].val_loss, histories[0].val_loss, rtol=rtol)
    assert_same_norm_state(cpu, gpu, rtol)
    assert_close_scaled(gpu.predict(Xv), cpu.predict(Xv), rtol)


@needs_gpu
def test_batchnorm_refuses_a_one_row_training_batch_on_gpu(rng):
    _, gpu = norm_pair((5, 7, 3), "float64")
    X, T = norm_data((5, 7, 3), 8, rng, "float64")
    opt = fb.SGD(lr=0.1, momentum=0.9)
    gpu.train_step(X, T, opt)
    before = (gpu.params.copy(), gpu._core.state.copy(), opt.state_for(gpu).velocity.copy())
    for call in (
        lambda: gpu.backward(X[:1], T[:1]),
        lambda: gpu.train_step(X[:1], T[:1], opt),
        lambda: gpu.fit(X, T, epochs=1, batch_size=7, optimizer=opt, progress=False),
    ):
        with pytest.raises(ValueError, match="BatchNorm"):
            call()
        np.testing.assert_array_equal(gpu.params, before[0])
        np.testing.assert_array_equal(gpu._core.state, before[1])
        np.testing.assert_array_equal(opt.state_for(gpu).velocity, before[2])
    assert_close_scaled(gpu.predict(X[:1]), gpu.predict(X)[:1], 1e-12)
