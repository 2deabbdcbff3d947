"""Inspecting model files and the start-of-run check: what a file is, and the whole chain proven before a
frame is decoded. `python -m remaster.models inspect FILE...` prints it without running a film."""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from spandrel import ImageModelDescriptor

from ..run.errors import RemasterError
from ..run.records import Record
from ..run.settings import ModelStep
from .loading import DTYPE_NAMES, EXTRA_ARCHES, choose_device, licence, load_chain_steps, load_model
from .precision import supported_precisions


def describe(descriptor: ImageModelDescriptor, path: Path | None = None) -> dict:
    """What a user wants to know about a model file, as plain JSON-able values."""
    size = descriptor.size_requirements
    return {
        "file": str(path) if path is not None else None,
        "architecture": descriptor.architecture.name,
        "architecture_id": descriptor.architecture.id,
        "purpose": descriptor.purpose,
        "scale": descriptor.scale,
        "input_channels": descriptor.input_channels,
        "output_channels": descriptor.output_channels,
        "parameters": sum(p.numel() for p in descriptor.model.parameters()),
        "precisions": supported_precisions(descriptor),
        "size_requirements": {"minimum": size.minimum, "multiple_of": size.multiple_of, "square": size.square},
        "tiling": descriptor.tiling.name.lower(),
        "tags": list(descriptor.tags),
        "licence": licence(descriptor),
        "extra_arches_installed": EXTRA_ARCHES,
    }


@dataclass(frozen=True)
class CheckedStep(Record):
    """One step of the chain as the start-up check found it: the file's facts (`describe`), the step's own
    options as configured, and the precision the run path proved on `proven_on`."""

    what = "checked model step"

    file: str
    architecture: str
    architecture_id: str
    purpose: str
    scale: int
    input_channels: int
    output_channels: int
    parameters: int
    precisions: tuple[str, ...]  # what the architecture claims
    size_requirements: dict  # minimum, multiple_of, square
    tiling: str
    tags: tuple[str, ...]
    licence: str
    extra_arches_installed: bool
    options: dict  # the step's own precision, tile, tile_overlap (None: the run's)
    proven_precision: str
    proven_on: str


@dataclass(frozen=True)
class ModelsReport(Record):
    """What check_models writes (`check_models/models.json`) for the report: every step checked, the chain's
    scale and the scale the master is made at (`scale` from the config, else the chain's)."""

    what = "models report"

    steps: tuple[CheckedStep, ...]
    chain_scale: int
    scale: float


def check_chain(steps: list[ModelStep], scale: float | None = None, precision: str = "auto", tile: int = 0, *,
                device: str = "cpu", log: logging.Logger | None = None) -> ModelsReport:
    """Load every step through the run path and prove it before a frame is decoded.

    Each step runs one odd-sized frame at the precisions it would try on a GPU, proven on the CPU by default
    (so Snakemake's own process never opens a CUDA context that would hold GPU memory for the whole run;
    each GPU job proves again on its own device), falling back with a logged reason. Raises a one-line
    RemasterError naming the file: unreadable or unrecognised, a precision it cannot run, channels remaster
    cannot chain, a tile below its minimum, or a `scale` beyond the chain's.
    """
    report, loaded = [], []
    for number, step in enumerate(steps, start=1):
        descriptor = load_model(step.path)
        asked, where = (step.precision, f"models[{number}].precision") if step.precision != "auto" else (precision, "precision")
        if asked != "auto" and asked not in supported_precisions(descriptor):
            raise RemasterError(f"{step.path}: {where}: {asked} is not supported by "
                                f"{descriptor.architecture.name} (it runs {', '.join(supported_precisions(descriptor))})")
        if descriptor.input_channels not in (1, 3, 4) or descriptor.output_channels not in (1, 3, 4):
            raise RemasterError(f"{step.path}: {descriptor.architecture.name} takes {descriptor.input_channels} and "
                                f"gives {descriptor.output_channels} channels; remaster chains grey, RGB or RGBA "
                                "models only")
        step_tile = tile if step.tile is None else step.tile
        if step_tile and descriptor.size_requirements.minimum > step_tile:
            raise RemasterError(f"{step.path}: tile: {step_tile} is below the model's minimum size "
                                f"{descriptor.size_requirements.minimum}; use a bigger tile")
        entry = describe(descriptor, step.path)
        entry["options"] = {"precision": step.precision, "tile": step.tile, "tile_overlap": step.tile_overlap}
        report.append(entry)
        loaded.append(descriptor)
    chain_scale = math.prod(entry["scale"] for entry in report)
    if scale is not None and scale > chain_scale:
        files = " → ".join(Path(entry["file"]).name for entry in report)
        raise RemasterError(f"scale: asks ×{scale:g} but the chain ({files}) gives ×{chain_scale}; "
                            f"lower scale or add a model")
    # the run path itself, on this machine's device; without a GPU, the GPU's precisions proven on the CPU
    torch_device = choose_device(device)
    chain = load_chain_steps(steps, device=torch_device, precision=precision, tile=tile, log=log,
                             as_gpu=torch_device.type == "cpu", loaded=loaded)
    checked = tuple(CheckedStep.from_dict({**entry, "proven_precision": DTYPE_NAMES[run.dtype],
                                           "proven_on": str(torch_device)})
                    for entry, run in zip(report, chain.runs, strict=True))
    del chain
    return ModelsReport(checked, chain_scale, scale if scale is not None else chain_scale)


def _format(info: dict) -> str:
    size = info["size_requirements"]
    needs = [f"minimum {size['minimum']}px"] if size["minimum"] > 1 else []
    needs += [f"multiple of {size['multiple_of']}"] if size["multiple_of"] > 1 else []
    needs += ["square"] if size["square"] else []
    lines = [
        f"{info['file']}",
        f"  architecture  {info['architecture']} ({info['purpose']}; {', '.join(info['tags']) or 'no tags'})",
        f"  scale         ×{info['scale']}",
        f"  channels      {info['input_channels']} in, {info['output_channels']} out"
        + ("  (colorizer: keeps the source's luma, adds chroma)" if info["input_channels"] == 1 and info["output_channels"] == 3 else ""),
        f"  parameters    {info['parameters']:,}",
        f"  precisions    {', '.join(info['precisions'])}",
        f"  size          {', '.join(needs) or 'any'} (spandrel pads to fit); tiling {info['tiling']}",
        f"  licence       {info['licence']}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m remaster.models", description="Inspect spandrel model files.")
    commands = parser.add_subparsers(dest="command", required=True)
    inspect = commands.add_parser("inspect", help="print architecture, scale, parameters, precisions, licence")
    inspect.add_argument("files", type=Path, nargs="+")
    inspect.add_argument("--json", action="store_true", help="one JSON object per file")
    args = parser.parse_args(argv)
    status = 0
    for path in args.files:
        try:
            info = describe(load_model(path), path)
        except RemasterError as error:
            print(f"error: {error}", file=sys.stderr)
            status = 1
            continue
        print(json.dumps(info) if args.json else _format(info))
    return status


if __name__ == "__main__":
    raise SystemExit(main())
