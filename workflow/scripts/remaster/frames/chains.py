"""A loaded chain made ready to run: known slow paths patched, torch.compile when asked (its kernels kept
for the title's next shard), and the chain's name for log lines and errors.

`prepare_chain` is what the shard job (and the benchmark, to time the same chain) calls on a chain before
its first frame; calling it again on its result changes nothing.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from pathlib import Path

import torch

from ..models import fastpaths
from ..models.loading import Chain, all_finite


class CompiledChain:
    """A chain whose forward runs through `torch.compile`; same attributes, same outputs to fp tolerance."""

    compiled = True

    def __init__(self, chain: Chain):
        self.chain = chain
        # the checks stay outside the compiled graph: a data-dependent branch would break it; static shapes:
        # one graph for the shard's one batch shape (the memory probe runs the plain chain, not this)
        self.forward = torch.compile(chain.forward, dynamic=False)

    steps = property(lambda self: self.chain.steps)
    device = property(lambda self: self.chain.device)
    dtype = property(lambda self: self.chain.dtype)
    scale = property(lambda self: self.chain.scale)
    min_size = property(lambda self: self.chain.min_size)

    def __call__(self, batch: torch.Tensor, tile: int = 0, overlap: int = 16) -> torch.Tensor:
        out = self.forward(batch, tile=tile, overlap=overlap)
        # inf/NaN: the batch again through the plain chain, a failing half step at fp32 (Chain.recover)
        return out if all_finite(out) else self.chain.recover(batch, tile, overlap)


# what torch.compile's errors say when the machine cannot build its kernels (no C++ compiler for the CPU's,
# no Triton or no CUDA compiler for the GPU's)
_NO_COMPILER = ("InvalidCxxCompiler", "No working C++ compiler", "Cannot find a working triton", "CppCompileError",
                "ptxas", "No module named 'triton'", "Python.h: No such file")


def compiler_missing(error: BaseException) -> str | None:
    """The one-line reason when `error` is torch.compile failing to build kernels on this machine, else None."""
    text = f"{type(error).__name__}: {error}"
    if not any(mark in text for mark in _NO_COMPILER):
        return None
    first = next((line.strip() for line in str(error).splitlines() if any(m in line for m in _NO_COMPILER)),
                 text.splitlines()[0])
    return " ".join(first.split())[:200]


def _user_compile_cache() -> str | None:
    """$TORCHINDUCTOR_CACHE_DIR as the user set it (Inductor writes its own default there once it runs)."""
    value = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    try:
        from torch._inductor.runtime.cache_dir_utils import default_cache_dir
    except ImportError:  # a torch without this layout: any value counts as the user's
        return value
    return value if value and os.path.abspath(value) != os.path.abspath(default_cache_dir()) else None


@contextmanager
def compile_cache(folder: Path | None):
    """torch.compile's kernels (Inductor's FX graph cache, Triton's binaries) kept in `folder`, so the next
    shard's job, a new process, loads them instead of compiling again (Inductor's default, a folder in /tmp,
    is private to one node, often to one cluster job). A $TORCHINDUCTOR_CACHE_DIR of the user's wins."""
    if folder is None or _user_compile_cache():
        yield
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    before = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(Path(folder).absolute())
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)
        else:
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = before


def chain_name(chain) -> str:
    return " → ".join(str(getattr(getattr(step, "architecture", None), "name", type(step).__name__))
                      for step in chain.steps)


def prepare_chain(chain, *, compile: bool, log: logging.Logger):
    """The chain as the engine runs it: known slow paths patched (in place), compiled if asked.

    Calling it again on its own result changes nothing, so a caller may prepare a chain once and reuse it.
    """
    for patch in fastpaths.apply(chain):
        log.info("fast path: %s", patch)
    if compile and not getattr(chain, "compiled", False):
        return CompiledChain(chain)
    return chain
