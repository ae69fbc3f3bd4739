"""The CUDA backend: what the build reports, the clear error without a GPU, and, on a
machine with one, every op of backend "cuda" against backend "cpu" through whole
networks (forward, loss, gradients, SGD variants, fit with and without a progress bar,
parameter access, save/load)."""

from __future__ import annotations

import numpy as np
import pytest

import fastbp as fb
from fastbp import _core
from fbhelpers import (ARCHS, LOSSES, assert_close_scaled, backend_rtol, dense_layers,
                       make_data, make_net)

INFO = fb.build_info()
needs_gpu = pytest.mark.skipif(not INFO["cuda_available"],
                               reason=f"CUDA backend not usable here: {INFO['cuda_status']}")
# Archs crossing the GEMM's 128-wide tiles and its 8-deep k slices, plus the usual ones.
GPU_ARCHS = ARCHS + (((130, 257, 9), 200), ((5, 300, 129, 3), 131))


# ---- what runs everywhere -----------------------------------------------------------

def test_build_info_reports_cuda():
    assert INFO["cuda_compiled"] is hasattr(_core, "CudaNetwork32")
    assert INFO["cuda_compiled"] is hasattr(_core, "CudaNetwork64")
    assert isinstance(INFO["cuda_status"], str) and INFO["cuda_status"]
    if INFO["cuda_available"]:
        assert INFO["cuda_compiled"]
        assert isinstance(INFO["cuda_device"], str) and INFO["cuda_device"]
    else:
        assert INFO["cuda_device"] is None
    assert fb.cuda_available() is INFO["cuda_available"]


@pytest.mark.skipif(INFO["cuda_available"], reason="a CUDA device is present")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cuda_backend_without_device_raises_with_reason(dtype):
    reason = "compiled but" if INFO["cuda_compiled"] else "built without the CUDA backend"
    with pytest.raises(RuntimeError, match=reason):
        fb.Network([fb.Dense(2, 3), fb.ReLU(), fb.Dense(3, 1)], fb.MSELoss(), dtype=dtype,
                   backend="cuda", seed=0)


@pytest.mark.skipif(INFO["cuda_available"] or not INFO["cuda_compiled"],
                    reason="needs the CUDA backend compiled and no device")
def test_core_cuda_network_without_device_raises():
    with pytest.raises(RuntimeError, match="backend 'cuda'"):
        _core.CudaNetwork32([(True, 2, 3, _core.Act.Identity)], _core.Loss.MSE,
                            _core.Reduction.Mean)


# ---- CPU against CUDA, on a GPU -----------------------------------------------------

def pair(widths, act, loss, dtype, seed=0):
    """The same network on backends cpu and cuda, from the same seed."""
    return tuple(make_net(widths, act, loss, dtype, backend, seed=seed)
                 for backend in ("cpu", "cuda"))


def assert_same_params(cpu, gpu, rtol, what="params"):
    for i, (a, b) in enumerate(zip(dense_layers(cpu), dense_layers(gpu))):
        for name in (("W", "b") if what == "params" else ("dW", "db")):
            assert_close_scaled(getattr(b, name), getattr(a, name), rtol,
                                err_msg=f"layer {i} {name}")


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
    nets = [fb.Network([fb.Dense(6, 9), fb.Tanh(), fb.ReLU(), fb.Dense(9, 4), fb.Sigmoid()],
                       fb.MSELoss(), backend=b, seed=3) for b in ("cpu", "cuda")]
    X, T = make_data((6, 4), "mse_mean", 37, rng, "float32")
    assert nets[1].backward(X, T) == pytest.approx(nets[0].backward(X, T), rel=1e-4)
    assert_same_params(*nets, 1e-4, what="grads")


SGD_CONFIGS = [dict(lr=0.1), dict(lr=0.05, momentum=0.9),
               dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01),
               dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.001)]


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
    histories = [net.fit(X, T, epochs=3, batch_size=32, optimizer=fb.SGD(lr=0.05, momentum=0.9),
                         validation_data=(Xv, Tv), progress=sliced) for net in (cpu, gpu)]
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
        net.layers[0].W = W            # assignment
        net.layers[2].b[...] = 0.5     # in-place write through the view
    assert_close_scaled(gpu.forward(X), cpu.forward(X), 1e-5)
    cpu.backward(X, T)
    gpu.backward(X, T)
    for net in (cpu, gpu):
        net.layers[2].dW[...] *= 2     # edited gradients are what SGD.step uses
    opt_c.step(cpu)
    opt_g.step(gpu)
    assert_same_params(cpu, gpu, 1e-5)


@needs_gpu
def test_switching_optimizers_keeps_each_momentum_buffer(rng):
    cpu, gpu = pair((4, 8, 2), "tanh", "mse_mean", "float64")
    X, T = make_data((4, 2), "mse_mean", 16, rng, "float64")
    opts = {net: (fb.SGD(lr=0.1, momentum=0.9), fb.SGD(lr=0.05, momentum=0.5)) for net in (cpu, gpu)}
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
        net.train_step(np.full((4, 3), np.nan, np.float32), np.zeros((4, 2), np.float32),
                       fb.SGD(lr=0.1, momentum=0.9))
    snap.assert_unchanged()
