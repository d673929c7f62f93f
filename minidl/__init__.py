"""minidl — a from-scratch educational deep-learning framework (NumPy/CuPy autograd, C++/CUDA kernels).

Start with ``minidl/autograd.py`` (the autograd engine), then ``minidl/functional`` (the ops),
``minidl/nn`` (layers) and ``minidl/optim`` (optimizers). ``python -m minidl.tour`` trains
small models and writes an HTML report.

Two process-wide settings, made on import unless you made them first. OpenMP's threads wait
*briefly*: minidl's C++ kernels run on OpenMP's threads and its matrix products on OpenBLAS's
threads — two thread pools on the same cores. By default OpenMP keeps its threads spinning for
milliseconds after every kernel, and they take the cores the next BLAS call needs (and the other
way round): one FCN training step took 140 ms instead of 44 ms on 2 cores (docs/performance.md).
Passive threads (``OMP_WAIT_POLICY=PASSIVE``) sleep as soon as a kernel ends, and waking them
costs every kernel tens of microseconds; so GNU OpenMP's threads spin for ``GOMP_SPINCOUNT=10000``
turns (~0.1 ms: long enough to catch the next kernel of a backward pass, too short to hold a
core through a matrix product) and then sleep — the FCN's epoch 0.44 → 0.40 s (docs/conv.md,
Threads). Set either variable yourself to choose otherwise. OpenMP reads them when it loads, so
they apply only if no other library (PyTorch, say) loaded OpenMP first in this process. And
glibc's allocator keeps freed memory for the next array instead of returning it to the kernel
(``minidl/_memory.py``: a training step's arrays were new pages every step, ~900 page faults
per FCN step).
"""
import os

# (before minidl._C and OpenMP load; an explicit spin count overrides the policy in GNU OpenMP,
# and other OpenMP runtimes read only the policy)
if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["GOMP_SPINCOUNT"] = "10000"
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from ._memory import keep_freed_memory

keep_freed_memory()

from . import functional  # noqa: F401  (attaches the Tensor operators)
from . import kernels, nn, optim, train  # noqa: F401
from . import ops  # noqa: F401  (detection ops: boxes, nms, roi_pool, roi_align)
from .backend import cuda_available, manual_seed
from .autograd import Function, Tensor, enable_grad, is_grad_enabled, no_grad, override_backward, tensor

__version__ = "0.1.0"

__all__ = ["Tensor", "Function", "tensor", "no_grad", "enable_grad", "is_grad_enabled",
           "override_backward", "manual_seed", "cuda_available", "functional", "__version__"]
