"""The run's settings, built once from the validated Snakemake config (no torch imported here)."""

from __future__ import annotations

import copy
import functools
import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .errors import RemasterError

MODEL_SUFFIXES = {".safetensors", ".pth", ".ckpt"}
SCHEMA = Path(__file__).resolve().parents[3] / "schemas" / "config.schema.yaml"


@functools.cache
def _schema() -> dict:
    return yaml.safe_load(SCHEMA.read_text())


def default(key: str):
    """The schema's default of a key (`encoder.crf` for a nested one): the one place a default lives."""
    spec = _schema()
    for part in key.split("."):
        spec = spec["properties"][part]
    value = spec["default"]
    return tuple(value) if isinstance(value, list) else value


def _auto_default(key: str, cast):
    value = default(key)
    return None if value in (None, "auto") else cast(value)


@dataclass(frozen=True)
class ModelStep:
    """One step of the model chain, with its own options (None / auto: the chain-wide setting)."""

    path: Path
    precision: str = "auto"  # auto | fp32 | fp16 | bf16
    tile: int | None = None  # source pixels of this step's input; 0 whole frames
    tile_overlap: int | None = None

    def staleness_key(self) -> str | dict:
        """What of this step changes its pixels: the file and an explicit precision (tiles are seamless)."""
        if self.precision == "auto":
            return str(self.path)
        return {"path": str(self.path), "precision": self.precision}


@dataclass(frozen=True)
class EncoderSettings:
    codec: str = default("encoder.codec")
    crf: int = default("encoder.crf")
    preset: str | int = default("encoder.preset")
    pix_fmt: str = default("encoder.pix_fmt")
    extra_args: tuple[str, ...] = default("encoder.extra_args")


@dataclass(frozen=True)
class TemporalSettings:
    """The temporal-stability stage after the model chain (docs/temporal.md); strength 0 turns it off."""

    strength: float = float(default("temporal.strength"))  # TemporalFix's 0..3: a blend of its weights
    weights: Path = Path(default("temporal.weights"))  # the bundled temporalfix_s{0..3}.safetensors

    @property
    def enabled(self) -> bool:
        return self.strength > 0

    @property
    def context(self) -> int:
        """Frames read beyond each side of a shard: TemporalFix sees 3 each side (models/temporalfix.py)."""
        return 3 if self.enabled else 0

    def files(self) -> list[str]:
        """The weight files the stage reads at this strength (none when off)."""
        if not self.enabled:
            return []
        strengths = sorted({math.floor(self.strength), math.ceil(self.strength)})
        return [str(self.weights / f"temporalfix_s{n}.safetensors") for n in strengths]

    def staleness_key(self) -> dict:
        return {"strength": self.strength, "weights": str(self.weights)}


@dataclass(frozen=True)
class UpscaleSettings:
    """What decides the upscaled pixels (a change makes shards stale) and how to run (it does not)."""

    models: tuple[ModelStep, ...]
    scale: float | None = _auto_default("scale", float)  # None: the product of the chain's scales
    device: str = default("device")
    precision: str = default("precision")
    batch_size: int | None = _auto_default("batch_size", int)
    tile: int = default("tile")
    tile_overlap: int = default("tile_overlap")
    queue_frames: int = 8
    compile: bool = default("compile")  # torch.compile the chain; speed only, like device and batch_size
    form: str = default("upscaled_form")  # how the upscaled shard is stored: compact (x264 near-lossless) or lossless (FFV1)
    temporal: TemporalSettings = field(default_factory=TemporalSettings)  # the stage after the chain
    jobs_per_device: int = default("gpu_jobs_per_device")  # GPU jobs that may share one GPU (run-wide; speed only)

    def staleness_key(self) -> dict:
        """The settings that change the upscaled frames; a rule's params, so a change reruns the shards.

        Not `form`: a shard already stored in the other form holds the same model output (within the compact
        form's 50 dB), and switching the storage must not cost the GPU hours of every shard already done."""
        key = {"models": [step.staleness_key() for step in self.models], "scale": self.scale}
        # only when on: turning the stage on redoes every shard, leaving it off redoes none
        return {**key, "temporal": self.temporal.staleness_key()} if self.temporal.enabled else key


INTERPOLATION_SUFFIXES = {".pkl", ".pth", ".ckpt", ".safetensors"}


@dataclass(frozen=True)
class InterpolateSettings:
    """Frame interpolation after the upscale (factor 1: off); device, precision and batch as the upscale's."""

    factor: int = default("interpolate.factor")
    model: Path | None = None  # RIFE IFNet 4.6: Practical-RIFE's flownet.pkl or a .safetensors conversion
    scene_threshold: float = default("interpolate.scene_threshold")  # luma histogram distance (0..1) above which a pair is a cut: no blending
    drop_duplicates: bool = default("interpolate.drop_duplicates")
    duplicate_threshold: float = default("interpolate.duplicate_threshold")  # mean absolute luma difference (0..1) below which a frame is a repeat
    scale: float = float(default("interpolate.scale"))  # RIFE's flow scale: 0.5 estimates the flow at half size (4K frames)
    device: str = default("device")
    precision: str = default("precision")
    batch_size: int | None = _auto_default("batch_size", int)
    jobs_per_device: int = default("gpu_jobs_per_device")  # (run-wide)

    @property
    def enabled(self) -> bool:
        return self.factor > 1

    def staleness_key(self) -> dict:
        """What changes the interpolated frames; a rule's params, so a change reruns the interpolation."""
        if not self.enabled:
            return {"factor": 1}
        return {"factor": self.factor, "model": str(self.model), "scene_threshold": self.scene_threshold,
                "drop_duplicates": self.drop_duplicates, "duplicate_threshold": self.duplicate_threshold,
                "scale": self.scale}


@dataclass(frozen=True)
class FrontEndSettings:
    """Overrides of the front end's decisions; `auto` (None here) lets the probe decide."""

    scan: str = default("scan")  # auto | progressive | telecine | phase_shifted | interlaced | hybrid
    field_order: str = default("field_order")  # auto | tff | bff
    deinterlace_rate: str = default("deinterlace_rate")  # field (50/59.94 fps) | frame (25/29.97 fps)
    display_aspect: str = default("display_aspect")  # auto | "4:3" | "16:9" | any W:H
    fps: str = default("fps")  # auto | the source's true frame rate, e.g. "24000/1001"
    audio_languages: tuple[str, ...] = default("audio_languages")
    subtitle_languages: tuple[str, ...] = default("subtitle_languages")
    crop: str = default("crop")  # none | auto | W:H:X:Y
    target_height: int | None = _auto_default("target_height", int)
    title: str | None = _auto_default("title", str)
    vfr: bool = default("vfr")  # hybrid titles: real per-frame timestamps (False: constant field rate, film in 3:2)
    cleanup: str = default("cleanup")  # a frontend.cleanup preset, run before crop and resize


@dataclass(frozen=True)
class Settings:
    source: str | tuple[str, ...]
    output: Path
    shard_frames: int
    upscale: UpscaleSettings
    encoder: EncoderSettings = field(default_factory=EncoderSettings)
    frontend: FrontEndSettings = field(default_factory=FrontEndSettings)
    interpolate: InterpolateSettings = field(default_factory=InterpolateSettings)
    title_number: int | str = default("title_number")  # auto (the main feature) | the disc's title number; VIDEO_TS only
    angle: int = default("angle")  # the angle of a multi-angle title
    reference: Path | None = None  # a better release of the title to score the master against; None: none


def _title_number(value) -> int | str:
    if str(value) == "auto":
        return "auto"
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if number < 1:
        raise RemasterError(f"title_number: {value!r} must be auto or a title number (1, 2, …)")
    return number


def with_defaults(config: dict, schema: dict | None = None) -> dict:
    """`config` with the schema's default for every key it leaves out (nested mappings too).

    The schema is the only place a default lives: Snakemake's validation fills them in the same way, and
    this fills them for a config built by hand (a sheet row, a test).
    """
    schema = _schema() if schema is None else schema
    filled = dict(config)
    for key, spec in (schema.get("properties") or {}).items():
        if key not in filled and "default" in spec:
            filled[key] = copy.deepcopy(spec["default"])
        if spec.get("type") == "object" and isinstance(filled.get(key), dict):
            filled[key] = with_defaults(filled[key], spec)
    return filled


def _auto(value, cast):
    return None if value in (None, "auto") else cast(value)


def model_steps(models) -> tuple[ModelStep, ...]:
    """The chain from the config's `models:` (one path, or a list of paths / {path: ...} mappings)."""
    if isinstance(models, (str, Path)):
        models = [models]
    steps = []
    for entry in models or []:
        options = dict(entry) if isinstance(entry, dict) else {"path": entry}
        path = Path(options.pop("path"))
        if path.suffix.lower() not in MODEL_SUFFIXES:
            raise RemasterError(
                f"{path}: not a model file remaster loads (.safetensors, .pth, .ckpt); "
                "TorchScript .pt files run code when loaded and are refused"
            )
        unknown = sorted(set(options) - {"precision", "tile", "tile_overlap"})
        if unknown:
            raise RemasterError(f"models: {path}: unknown option {unknown[0]} (path, precision, tile, tile_overlap)")
        steps.append(ModelStep(
            path,
            precision=str(options.get("precision", "auto")),
            tile=None if options.get("tile") is None else int(options["tile"]),
            tile_overlap=None if options.get("tile_overlap") is None else int(options["tile_overlap"]),
        ))
    if not steps:
        raise RemasterError("models: is empty; list at least one model file (.safetensors or .pth)")
    return tuple(steps)


def from_config(config: dict) -> Settings:
    """Build the settings from a config that Snakemake has already validated against the schema."""
    config = with_defaults(config)
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
            device=str(config["device"]),
            precision=str(config["precision"]),
            batch_size=_auto(config.get("batch_size"), int),
            tile=int(config["tile"]),
            tile_overlap=int(config["tile_overlap"]),
            compile=bool(config["compile"]),
            form=str(config["upscaled_form"]),
            temporal=TemporalSettings(strength=round(float(config["temporal"]["strength"]), 2),
                                      weights=Path(config["temporal"]["weights"])),
            jobs_per_device=int(config["gpu_jobs_per_device"]),
        ),
        encoder=EncoderSettings(**encoder),
        frontend=frontend_settings(config),
        interpolate=interpolate_settings(config),
        title_number=_title_number(config["title_number"]),
        angle=int(config["angle"]),
        reference=Path(config["reference"]) if config["reference"] else None,
    )


def interpolate_settings(config: dict) -> InterpolateSettings:
    """The `interpolate:` mapping (already validated against the schema); a factor above 1 needs a model."""
    config = with_defaults(config)
    options = dict(config.get("interpolate") or {})
    factor = int(options["factor"])
    model = options.get("model")
    if factor > 1 and not model:
        raise RemasterError(f"interpolate: factor {factor} needs a model: the path of RIFE 4.6's flownet.pkl "
                            "(Practical-RIFE) or a .safetensors conversion")
    if model and Path(model).suffix.lower() not in INTERPOLATION_SUFFIXES:
        raise RemasterError(f"interpolate.model: {model}: not a weights file remaster loads (.pkl, .pth, .ckpt, "
                            ".safetensors); TorchScript files run code when loaded and are refused")
    return InterpolateSettings(
        jobs_per_device=int(config["gpu_jobs_per_device"]),
        factor=factor,
        model=Path(model) if model else None,
        scene_threshold=float(options["scene_threshold"]),
        drop_duplicates=bool(options["drop_duplicates"]),
        duplicate_threshold=float(options["duplicate_threshold"]),
        scale=float(options["scale"]),
        device=str(config["device"]),
        precision=str(config["precision"]),
        batch_size=_auto(config.get("batch_size"), int),
    )


def frontend_settings(config: dict) -> FrontEndSettings:
    """The front-end overrides from the config (already validated against the schema)."""
    config = with_defaults(config)
    return FrontEndSettings(
        scan=str(config["scan"]),
        field_order=str(config["field_order"]),
        deinterlace_rate=str(config["deinterlace_rate"]),
        display_aspect=str(config["display_aspect"]),
        fps=str(config["fps"]),
        audio_languages=tuple(map(str, config.get("audio_languages") or ())),
        subtitle_languages=tuple(map(str, config.get("subtitle_languages") or ())),
        crop=str(config["crop"]),
        target_height=_auto(config.get("target_height"), int),
        title=None if config.get("title") in (None, "", "auto") else str(config["title"]),
        vfr=bool(config["vfr"]),
        cleanup=str(config["cleanup"]),
    )


@dataclass(frozen=True)
class TrainSettings:
    """What is trained and how; every field but `device` is a key of the config's `train:` mapping."""

    arch: str = default("train.arch")
    scale: int = default("train.scale")
    num_feat: int = default("train.num_feat")
    num_conv: int = default("train.num_conv")
    iterations: int = default("train.iterations")
    batch: int = default("train.batch")
    patch: int = default("train.patch")  # high-resolution patch side in pixels
    learning_rate: float = float(default("train.learning_rate"))
    perceptual: str = default("train.perceptual")  # edge | random | none
    perceptual_weight: float = float(default("train.perceptual_weight"))
    checkpoint_every: int = default("train.checkpoint_every")
    seed: int = default("train.seed")
    device: str = default("device")

    @classmethod
    def from_config(cls, train: dict) -> TrainSettings:
        fields = cls.__dataclass_fields__
        return cls(**{key: type(getattr(cls, key))(value) for key, value in train.items() if key in fields})

    @classmethod
    def weights_keys(cls) -> tuple[str, ...]:
        """The `train:` keys the weights depend on (the train rule's params: a change retrains)."""
        return tuple(key for key in cls.__dataclass_fields__ if key != "device")
