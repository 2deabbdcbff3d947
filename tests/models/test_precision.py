"""The precision proof shared by the networks that are not spandrel steps (RIFE, TemporalFix)."""

from __future__ import annotations

import logging

import pytest
import torch

from remaster.models.precision import first_that_matches
from remaster.run.errors import RemasterError

FRAME = torch.linspace(0, 1, 64).reshape(1, 1, 8, 8)


def runs(outputs: dict):
    """A stand-in network whose output at each precision is given (an exception is raised)."""

    def run(dtype: torch.dtype) -> torch.Tensor:
        out = outputs.get(dtype, FRAME)
        if isinstance(out, Exception):
            raise out
        return out

    return run


@pytest.mark.unit
def test_the_first_precision_that_runs_like_fp32_is_kept(caplog):
    candidates = [torch.float16, torch.bfloat16, torch.float32]
    nan = FRAME.clone()
    nan[0, 0, 0, 0] = float("nan")
    with caplog.at_level(logging.WARNING):
        chosen = first_that_matches(runs({torch.float16: nan, torch.bfloat16: FRAME + 1 / 1024}), candidates,
                                    what="net", log=logging.getLogger("test"))
    assert chosen == torch.bfloat16 and "net at fp16 (its output holds inf or NaN)" in caplog.text
    drifting = first_that_matches(runs({torch.float16: RuntimeError("no kernel"), torch.bfloat16: FRAME * 0.5}),
                                  candidates, what="net")
    assert drifting == torch.float32


@pytest.mark.unit
def test_a_named_precision_that_fails_is_a_one_line_error():
    with pytest.raises(RemasterError, match=r"net at fp16 \(no kernel\); use interpolate.precision: auto or fp32"):
        first_that_matches(runs({torch.float16: RuntimeError("no kernel")}), [torch.float16], what="net",
                           explicit=True, key="interpolate.precision")
