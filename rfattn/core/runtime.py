"""Device, dtype, seeds, memory and progress: the runtime choices every study shares.

Seeds are explicit: a random stream is named by ``(seed, *stream)`` and drawn on the CPU with a
torch generator seeded through :class:`numpy.random.SeedSequence`, so the same config and seed
give the same numbers on every device.
"""

from __future__ import annotations

import logging
import os
import sys
import zlib

import numpy as np
import torch
from tqdm import tqdm

from .checks import ConfigError, choice, seed_value

DTYPES = {"float64": torch.float64, "float32": torch.float32}


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """The torch device a ``device`` setting names.

    Parameters
    ----------
    device : str or torch.device
        ``auto`` (CUDA when present, else CPU), ``cpu``, ``cuda`` or ``cuda:K`` (must exist).

    Returns
    -------
    torch.device
    """
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if isinstance(device, str) and device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device is {device!r} but CUDA is not available; use auto or cpu")
        return torch.device(device)
    raise ConfigError(f"device must be one of auto, cpu, cuda, cuda:K (got {device!r})")


def resolve_dtype(dtype: str | torch.dtype = "float64") -> torch.dtype:
    """The torch dtype a ``dtype`` setting names.

    Parameters
    ----------
    dtype : str or torch.dtype
        ``float64`` (default, used for every theory check) or ``float32``.

    Returns
    -------
    torch.dtype
    """
    if isinstance(dtype, torch.dtype):
        if dtype not in DTYPES.values():
            raise ConfigError(f"dtype must be one of {', '.join(DTYPES)} (got {dtype})")
        return dtype
    return DTYPES[choice("dtype", dtype, list(DTYPES))]


def _stream_key(part) -> int:
    if isinstance(part, str):
        return zlib.crc32(part.encode())
    if isinstance(part, (int, np.integer)) and not isinstance(part, bool) and part >= 0:
        return int(part)
    raise ConfigError(f"each stream name must be a string or an integer >= 0 (got {part!r})")


def generator(seed: int, *stream) -> torch.Generator:
    """A CPU generator for the random stream named ``(seed, *stream)``.

    Different stream names give statistically independent streams (SeedSequence spawning);
    the same name always gives the same stream, on every device (draws are made on the CPU and
    moved).

    Parameters
    ----------
    seed : int
        The job's seed, >= 0.
    *stream : str or int
        The stream's name, for example ``("rfa", "train")`` or ``("demo", "heads", 256)``;
        integers must be >= 0.

    Returns
    -------
    torch.Generator
        A seeded CPU generator.
    """
    seed = seed_value("seed", seed)
    words = np.random.SeedSequence([int(seed), *(_stream_key(s) for s in stream)]).generate_state(2)
    gen = torch.Generator(device="cpu")
    gen.manual_seed(int(words[0]) << 31 ^ int(words[1]))
    return gen


def available_memory(device: torch.device) -> int:
    """Bytes that can be allocated now on ``device`` (free GPU memory, or MemAvailable)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def progress(iterable, desc: str, total: int | None = None):
    """tqdm progress bar on interactive terminals, silent elsewhere (CI, Hydra workers,
    notebooks: the plain bar, so that no widget warning lands in an executed cell)."""
    return tqdm(iterable, desc=desc, total=total, disable=None, leave=False, file=sys.stderr)


def get_logger(name: str) -> logging.Logger:
    """The package logger; Hydra configures its handlers when running under a Hydra app."""
    return logging.getLogger(name)


def sgd_step(parameters, lr: float) -> None:
    r"""One plain gradient step :math:`\theta \leftarrow \theta - \eta \nabla_\theta`, in place,
    and the gradients cleared: ``torch.optim.SGD(lr=lr).step(); zero_grad()`` to the last bit
    (no momentum, no weight decay), without that class's import of ``torch._dynamo`` (about 2 s
    per process, paid again by every sweep).

    Parameters
    ----------
    parameters : iterable of Tensor
        Leaf tensors; those without a gradient are left as they are.
    lr : float
        The step size :math:`\eta`.

    Returns
    -------
    None
    """
    with torch.no_grad():
        for p in parameters:
            if p.grad is not None:
                p.add_(p.grad, alpha=-lr)
                p.grad = None
