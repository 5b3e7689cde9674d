import os

import rfattn  # noqa: F401  (first: it pins torch's CPU kernels before any of them runs)
import pytest
import torch

os.environ.setdefault("MPLBACKEND", "Agg")
torch.set_default_dtype(torch.float64)


@pytest.fixture
def gen():
    from rfattn.core import generator

    return lambda *stream: generator(0, "tests", *stream)
