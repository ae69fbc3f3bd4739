"""fastbp's thread pool registered with threadpoolctl, so that ``threadpool_info()``
lists it and ``threadpool_limits`` (with it the guards of joblib and scikit-learn
against nested parallelism) sets and restores its thread count, as for OpenBLAS or
OpenMP.

threadpoolctl is optional: without it (or with one older than 3.0, which cannot
register controllers) nothing is registered. With it, registering imports it when
fastbp is imported, about a millisecond once ctypes is loaded (NumPy loads it).
threadpoolctl finds a library by its file name among those the process has loaded;
``_core`` is a common name for an extension module, so the controller also asks for
the C symbols fastbp exports for it (``csrc/bindings/module.cpp``).
"""

from __future__ import annotations

from . import _core

#: what threadpoolctl lists fastbp's pool under, and what ``threadpool_limits(user_api=)``
#: names it by
API = "fastbp"


def register_with_threadpoolctl() -> bool:
    """Register fastbp's controller with threadpoolctl, if it is installed; returns
    whether it was."""
    try:
        import threadpoolctl

        base, register = threadpoolctl.LibController, threadpoolctl.register
    except (ImportError, AttributeError):  # not installed, or too old to register
        return False
    register(_controller(base))
    return True


def _controller(base: type) -> type:
    class FastbpController(base):
        """The thread count of fastbp's kernels (``fastbp.get_num_threads``)."""

        user_api = internal_api = API
        filename_prefixes = ("_core",)
        check_symbols = ("fastbp_get_num_threads", "fastbp_set_num_threads")

        def get_num_threads(self) -> int:
            return self.dynlib.fastbp_get_num_threads()

        def set_num_threads(self, num_threads: int) -> None:
            # A limit is "at most": above fastbp's bound (4 x the CPUs), the bound.
            self.dynlib.fastbp_set_num_threads(min(max(num_threads, 1), _core.max_threads()))

        def get_version(self) -> str:
            return _core.__version__

    return FastbpController
