"""Shared pytest fixtures: seeded generators and the list of devices to run on."""
import numpy as np
import pytest

from minidl import backend

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not backend.cuda_available(), reason="no CUDA GPU (CuPy + device) on this machine"))]


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(params=DEVICES)
def device(request):
    return request.param
