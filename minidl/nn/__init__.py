"""minidl.nn — layers as Modules (PyTorch's names, arguments and weight layouts)."""
from . import init
from .layers import (Dropout, Flatten, Identity, LeakyReLU, Linear, ModuleList, ReLU, Sequential,
                     Sigmoid, Tanh)
from .inspect import capture_activations, forward_until
from .module import Module, Parameter
