"""The run's settings, built once from the validated Snakemake config (no torch imported here)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import RemasterError

MODEL_SUFFIXES = {".safetensors", ".pth", ".ckpt"}


@dataclass(frozen=True)
class ModelStep:
    """One step of the model chain."""

    path: Path


@dataclass(frozen=True)
class EncoderSettings:
    codec: str = "libx265"
    crf: int = 18
    preset: str = "medium"
    pix_fmt: str = "yuv420p10le"
    extra_args: tuple[str, ...] = ()


@dataclass(frozen=True)
class UpscaleSettings:
    """What decides the upscaled pixels (a change makes shards stale) and how to run (it does not)."""

    models: tuple[ModelStep, ...]
    scale: float | None = None  # None: the product of the chain's scales
    device: str = "auto"
    precision: str = "auto"
    batch_size: int | None = None
    tile: int = 0
    tile_overlap: int = 16
    queue_frames: int = 8

    def staleness_key(self) -> dict:
        """The settings that change the upscaled frames; a rule's params, so a change reruns the shards."""
        return {"models": [str(step.path) for step in self.models], "scale": self.scale}


@dataclass(frozen=True)
class Settings:
    source: str | tuple[str, ...]
    output: Path
    shard_frames: int
    upscale: UpscaleSettings
    encoder: EncoderSettings = field(default_factory=EncoderSettings)

    @property
    def disc(self) -> str:
        """A name for the disc's working folders, taken from the output file's name."""
        return re.sub(r"[^A-Za-z0-9._-]+", "_", self.output.stem).strip("._") or "disc"


def _auto(value, cast):
    return None if value in (None, "auto") else cast(value)


def model_steps(models) -> tuple[ModelStep, ...]:
    """The chain from the config's `models:` (one path, or a list of paths / {path: ...} mappings)."""
    if isinstance(models, (str, Path)):
        models = [models]
    steps = []
    for entry in models or []:
        path = Path(entry["path"] if isinstance(entry, dict) else entry)
        if path.suffix.lower() not in MODEL_SUFFIXES:
            raise RemasterError(
                f"{path}: not a model file remaster loads (.safetensors, .pth, .ckpt); "
                "TorchScript .pt files run code when loaded and are refused"
            )
        steps.append(ModelStep(path))
    if not steps:
        raise RemasterError("models: is empty; list at least one model file (.safetensors or .pth)")
    return tuple(steps)


def from_config(config: dict) -> Settings:
    """Build the settings from a config that Snakemake has already validated against the schema."""
    shard_frames = int(config["shard_frames"])
    if shard_frames < 1:
        raise RemasterError(f"shard_frames: {shard_frames} must be a positive number of frames (default 10000)")
    output = Path(config["output"])
    if output.suffix.lower() != ".mkv":
        raise RemasterError(f"output: {output} must end in .mkv (the master is a Matroska file)")
    source = config["source"]
    source = tuple(map(str, source)) if isinstance(source, (list, tuple)) else str(source)
    encoder = dict(config.get("encoder") or {})
    encoder["extra_args"] = tuple(map(str, encoder.get("extra_args") or ()))
    return Settings(
        source=source,
        output=output,
        shard_frames=shard_frames,
        upscale=UpscaleSettings(
            models=model_steps(config["models"]),
            scale=_auto(config.get("scale"), float),
            device=str(config.get("device", "auto")),
            precision=str(config.get("precision", "auto")),
            batch_size=_auto(config.get("batch_size"), int),
            tile=int(config.get("tile", 0)),
            tile_overlap=int(config.get("tile_overlap", 16)),
        ),
        encoder=EncoderSettings(**encoder),
    )
