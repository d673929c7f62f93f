"""minidl.functional — every differentiable op, as ``torch.nn.functional`` users expect.

Each op is one Function (forward + backward side by side) in the file named after its
family; this module only gathers the public names.
"""
from .activation import leaky_relu, log_softmax, relu, sigmoid, softmax, tanh
from .conv import conv2d, conv2d_naive, conv_transpose2d
from .dropout import dropout
from .elementwise import abs, add, div, exp, log, mul, neg, pow, sqrt, sub
from .select import clamp, clip, maximum, minimum, where
from .interpolate import interpolate
from .loss import (binary_cross_entropy_with_logits, cross_entropy, l1_loss, mse_loss,
                   multi_margin_loss, nll_loss, smooth_l1_loss, temporal_softmax_cross_entropy)
from .matmul import gram, linear, matmul
from .methods import attach as _attach
from .norm import batch_norm, conditional_instance_norm, instance_norm
from .pool import adaptive_max_pool2d, avg_pool2d, max_pool2d
from .unpool import max_unpool2d, unpool_bed_of_nails, unpool_nearest
from .recurrent import embedding, gru_cell, lstm_cell, rnn_cell, split_steps
from .reduce import argmax, argmin, max, mean, min, std, sum, var
from .shape import (broadcast_to, cat, concat, expand, flatten, getitem, pad, permute, reshape,
                    squeeze, stack, transpose, unsqueeze)

_attach()
