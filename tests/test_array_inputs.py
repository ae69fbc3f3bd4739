"""Inputs from other array libraries: the buffer protocol and DLPack, read without a copy
when already of the network's dtype and contiguous."""

from __future__ import annotations

import numpy as np

from fbhelpers import make_net


class DLPackOnly:
    """An array that speaks only DLPack, as some libraries' arrays do."""

    def __init__(self, array):
        self._array = array

    def __dlpack__(self, **kwargs):
        return self._array.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._array.__dlpack_device__()


def test_dlpack_and_buffer_inputs_are_not_copied(rng):
    net = make_net((3, 2), dtype="float32")
    X = rng.standard_normal((4, 3)).astype(np.float32)
    want = net.predict(X)
    for wrapped in (DLPackOnly(X), memoryview(X)):
        assert np.shares_memory(net._inputs(wrapped), X)
        np.testing.assert_array_equal(net.predict(wrapped), want)


def test_other_dtypes_are_converted(rng):
    net = make_net((3, 2), dtype="float32")
    X = rng.standard_normal((4, 3))
    np.testing.assert_allclose(net.predict(DLPackOnly(X)), net.predict(X.astype(np.float32)))
