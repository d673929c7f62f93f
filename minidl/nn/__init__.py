"""minidl.nn — layers as Modules (PyTorch's names, arguments and weight layouts)."""
from . import init
from .conv import Conv2d, ConvTranspose2d
from .fusion import fuse_norm_relu
from .layers import (Dropout, Flatten, Identity, LeakyReLU, Linear, ModuleList, ReLU, Sequential,
                     Sigmoid, Tanh)
from .inspect import capture_activations, forward_until, layer_outputs
from .module import CheckpointError, Module, Parameter, load_npz, save_npz
from .norm import BatchNorm2d, ConditionalInstanceNorm2d, InstanceNorm2d
from .pool import (AdaptiveMaxPool2d, AvgPool2d, MaxPool2d, MaxUnpool2d, SpatialPyramidPooling,
                   Upsample)
from .recurrent import GRU, LSTM, RNN, Embedding, GRUCell, LSTMCell, RNNCell
