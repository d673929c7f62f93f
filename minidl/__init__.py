"""minidl — a from-scratch educational deep-learning framework (NumPy/CuPy autograd, C++/CUDA kernels).

Start with ``minidl/autograd.py`` (the autograd engine), then ``minidl/functional`` (the ops),
``minidl/nn`` (layers) and ``minidl/optim`` (optimizers). ``python -m minidl.tour`` trains
small models and writes an HTML report.
"""
from . import functional  # noqa: F401  (attaches the Tensor operators)
from . import kernels, nn, optim, train  # noqa: F401
from . import ops  # noqa: F401  (detection ops: boxes, nms, roi_pool, roi_align)
from .backend import cuda_available, manual_seed
from .autograd import Function, Tensor, enable_grad, is_grad_enabled, no_grad, override_backward, tensor

__version__ = "0.1.0"

__all__ = ["Tensor", "Function", "tensor", "no_grad", "enable_grad", "is_grad_enabled",
           "override_backward", "manual_seed", "cuda_available", "functional", "__version__"]
