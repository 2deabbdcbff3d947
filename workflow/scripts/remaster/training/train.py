"""Training a spandrel-loadable upscaler on paired frames: a small loop of our own over PyTorch.

Why not traiNNer-redux, neosr or BasicSR: none is on PyPI as a usable package (they are cloned repositories
with their own YAML dialects and pinned dependencies, and traiNNer-redux downloads VGG weights for its
perceptual loss); remaster needs one architecture, one loss and resumable checkpoints, which fit in this
file and run offline, on the CPU in tests and on one GPU for real. Their models load in `models:` too.

Loss: L1 on pixels plus `perceptual_weight` × an edge loss, L1 between the Sobel gradients of output and
target (`perceptual: edge`, the default), or L1 between the features of a fixed, seeded random
convolutional network (`perceptual: random`). Both need no downloaded weights; the edge loss is the default
because it is predictable: it rewards sharp, well-placed edges (what L1 alone averages away) and nothing else.

Data: dataset/{train,val}/{lr,hr}/NAME.png (made by remaster.dataset or remaster.degrade), every image held
in memory, random patches with flips and 90° turns. Batches are drawn from a generator seeded by
(seed, iteration), so a resumed run draws exactly the batches the uninterrupted one would have.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..run.errors import RemasterError
from ..run.files import partial_path
from ..run.settings import TrainSettings

ARCHES = ("compact",)
__all__ = ["ARCHES", "TrainSettings", "train"]


# --- data --------------------------------------------------------------------------------------------------


def load_pairs(folder: Path, scale: int) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """(lr, hr, name) for every NAME.png present in both folder/lr and folder/hr, checked to be scale× apart."""
    folder = Path(folder)
    names = sorted(p.name for p in (folder / "lr").glob("*.png")) if (folder / "lr").is_dir() else []
    pairs = []
    for name in names:
        hr_path = folder / "hr" / name
        if not hr_path.is_file():
            continue
        lr = np.asarray(Image.open(folder / "lr" / name).convert("RGB"))
        hr = np.asarray(Image.open(hr_path).convert("RGB"))
        if hr.shape[0] != lr.shape[0] * scale or hr.shape[1] != lr.shape[1] * scale:
            raise RemasterError(f"{hr_path}: {hr.shape[1]}x{hr.shape[0]} is not ×{scale} of its LR frame "
                                f"{lr.shape[1]}x{lr.shape[0]}; check train.scale against the dataset")
        pairs.append((lr, hr, Path(name).stem))
    return pairs


def sample_batch(pairs, batch: int, patch: int, scale: int, rng: np.random.Generator
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Random aligned patches (LR patch/scale, HR patch), randomly flipped and turned; NCHW float in [0, 1]."""
    lr_side = patch // scale
    lrs, hrs = [], []
    for _ in range(batch):
        lr, hr, _ = pairs[rng.integers(len(pairs))]
        side = min(lr_side, lr.shape[0], lr.shape[1])
        top, left = rng.integers(lr.shape[0] - side + 1), rng.integers(lr.shape[1] - side + 1)
        lr_patch = lr[top:top + side, left:left + side]
        hr_patch = hr[top * scale:(top + side) * scale, left * scale:(left + side) * scale]
        turns, flip = int(rng.integers(4)), bool(rng.integers(2))
        lr_patch, hr_patch = np.rot90(lr_patch, turns), np.rot90(hr_patch, turns)
        if flip:
            lr_patch, hr_patch = lr_patch[:, ::-1], hr_patch[:, ::-1]
        lrs.append(np.ascontiguousarray(lr_patch))
        hrs.append(np.ascontiguousarray(hr_patch))

    def stack(arrays):
        return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float().div_(255)

    return stack(lrs), stack(hrs)


# --- model and losses ------------------------------------------------------------------------------------


def build_model(settings: TrainSettings) -> torch.nn.Module:
    if settings.arch not in ARCHES:
        raise RemasterError(f"train.arch: {settings.arch!r} is not supported ({', '.join(ARCHES)})")
    from spandrel.architectures.Compact import Compact

    return Compact(num_feat=settings.num_feat, num_conv=settings.num_conv, upscale=settings.scale)


def sobel(images: torch.Tensor) -> torch.Tensor:
    """Horizontal and vertical Sobel gradients of every channel."""
    kx = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]], device=images.device, dtype=images.dtype) / 8
    kernel = torch.stack([kx, kx.T]).unsqueeze(1).repeat(images.shape[1], 1, 1, 1)
    return F.conv2d(F.pad(images, (1, 1, 1, 1), mode="replicate"), kernel, groups=images.shape[1])


class RandomFeatures(torch.nn.Module):
    """A fixed, seeded random conv network (3 layers, strided): features that respond to texture at
    several scales, without the downloaded VGG weights a classic perceptual loss needs."""

    def __init__(self, seed: int = 0):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        shapes = [(16, 3), (32, 16), (64, 32)]
        self.weights = torch.nn.ParameterList(
            torch.nn.Parameter(torch.randn(out, inp, 3, 3, generator=generator) / math.sqrt(inp * 9),
                               requires_grad=False) for out, inp in shapes)

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        features, x = [], images
        for index, weight in enumerate(self.weights):
            x = F.leaky_relu(F.conv2d(x, weight, stride=1 if index == 0 else 2, padding=1), 0.2)
            features.append(x)
        return features


def make_loss(settings: TrainSettings, device: torch.device):
    """loss(output, target) → (total, l1) tensors."""
    features = RandomFeatures(settings.seed).to(device) if settings.perceptual == "random" else None
    if settings.perceptual not in ("edge", "random", "none"):
        raise RemasterError(f"train.perceptual: {settings.perceptual!r} unknown (edge, random, none)")

    def loss(output: torch.Tensor, target: torch.Tensor):
        l1 = F.l1_loss(output, target)
        if settings.perceptual == "edge":
            extra = F.l1_loss(sobel(output), sobel(target))
        elif features is not None:
            extra = sum(F.l1_loss(a, b) for a, b in zip(features(output), features(target), strict=True))
        else:
            return l1, l1
        return l1 + settings.perceptual_weight * extra, l1

    return loss


# --- metrics ----------------------------------------------------------------------------------------------


def psnr(output: torch.Tensor, target: torch.Tensor) -> float:
    mse = float(F.mse_loss(output, target))
    return 100.0 if mse == 0 else 10 * math.log10(1.0 / mse)


def ssim(output: torch.Tensor, target: torch.Tensor) -> float:
    """SSIM of the BT.601 luma with an 11-pixel Gaussian window (σ 1.5), as in Wang et al. 2004."""
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=output.dtype, device=output.device).view(1, 3, 1, 1)
    x, y = (output * weights).sum(1, keepdim=True), (target * weights).sum(1, keepdim=True)
    taps = torch.exp(-0.5 * ((torch.arange(11, dtype=x.dtype, device=x.device) - 5) / 1.5) ** 2)
    window = (taps / taps.sum()).view(1, 1, 1, 11)

    def smooth(t):
        return F.conv2d(F.conv2d(t, window), window.transpose(2, 3))

    mx, my = smooth(x), smooth(y)
    vx, vy, cov = smooth(x * x) - mx**2, smooth(y * y) - my**2, smooth(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    value = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return float(value.mean())


def _tensor(image: np.ndarray, device) -> torch.Tensor:
    return torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float().div(255).to(device)


def bicubic(lr: torch.Tensor, scale: int) -> torch.Tensor:
    return F.interpolate(lr, scale_factor=scale, mode="bicubic", align_corners=False).clamp(0, 1)


@torch.no_grad()
def evaluate(model, pairs, scale: int, device) -> dict:
    """Mean PSNR (RGB) and SSIM (luma) of the model and of plain bicubic over the validation pairs, with
    `scale` pixels shaved off every border (the usual super-resolution convention)."""
    totals = {"psnr": 0.0, "ssim": 0.0, "bicubic_psnr": 0.0, "bicubic_ssim": 0.0}
    model.eval()
    for lr, hr, _ in pairs:
        lr_t, hr_t = _tensor(lr, device), _tensor(hr, device)
        shave = (slice(None), slice(None), slice(scale, -scale), slice(scale, -scale))
        for prefix, output in (("", model(lr_t).clamp(0, 1)), ("bicubic_", bicubic(lr_t, scale))):
            totals[f"{prefix}psnr"] += psnr(output[shave], hr_t[shave])
            totals[f"{prefix}ssim"] += ssim(output[shave], hr_t[shave])
    model.train()
    return {key: round(value / max(len(pairs), 1), 4) for key, value in totals.items()}


# --- the loop ---------------------------------------------------------------------------------------------


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def learning_rate(settings: TrainSettings, iteration: int) -> float:
    """Cosine decay from the configured rate to 1% of it, after a short warm-up."""
    warmup = min(100, settings.iterations // 10)
    if iteration < warmup:
        return settings.learning_rate * (iteration + 1) / warmup
    progress = (iteration - warmup) / max(settings.iterations - warmup, 1)
    return settings.learning_rate * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def latest_checkpoint(folder: Path) -> Path | None:
    found = sorted(Path(folder).glob("iter_*.pt"))
    return found[-1] if found else None


def export_safetensors(state: dict, path: Path) -> None:
    """The weights as .safetensors (written under a temporary name, renamed when whole)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_path(path)
    save_file({key: value.detach().cpu().contiguous() for key, value in state.items()}, str(tmp))
    tmp.replace(path)


def train(dataset: Path, output: Path, workdir: Path, settings: TrainSettings, *, log=None) -> dict:
    """Train, checkpointing to workdir/checkpoints/ every `checkpoint_every` iterations (resuming from the
    latest one found), validate each checkpoint into workdir/metrics.tsv, and export the checkpoint with the
    best validation PSNR to `output` (.safetensors, loadable by spandrel). Returns the summary."""
    dataset, workdir = Path(dataset), Path(workdir)
    train_pairs = load_pairs(dataset / "train", settings.scale)
    val_pairs = load_pairs(dataset / "val", settings.scale)
    if not train_pairs:
        raise RemasterError(f"{dataset}/train: no lr/hr pairs; run `snakemake dataset` or `snakemake degrade` first")
    if not val_pairs:
        val_pairs = train_pairs[:1]  # tiny datasets: validation on a training image beats none
    device = pick_device(settings.device)
    torch.manual_seed(settings.seed)
    model = build_model(settings).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.learning_rate, betas=(0.9, 0.99))
    loss_fn = make_loss(settings, device)
    checkpoints = workdir / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    metrics_path = workdir / "metrics.tsv"
    start, history = 0, []
    resume = latest_checkpoint(checkpoints)
    if resume is not None:
        saved = torch.load(resume, map_location=device, weights_only=True)
        if _identity(saved["settings"]) != _identity(asdict(settings)):
            # other weights-deciding settings: these checkpoints belong to another model, set them aside
            aside = workdir / f"checkpoints.{time.strftime('%Y%m%d-%H%M%S')}"
            checkpoints.rename(aside)
            checkpoints.mkdir()
            if log:
                log.info("checkpoints of other settings moved to %s; starting over", aside)
            saved = None
    if resume is not None and saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        start, history = int(saved["iteration"]), list(saved["history"])
        if log:
            log.info("resuming from %s (iteration %d)", resume.name, start)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else None
    running, began, done = [], time.monotonic(), 0
    model.train()
    for iteration in range(start, settings.iterations):
        rng = np.random.default_rng([settings.seed, iteration])
        lr_batch, hr_batch = sample_batch(train_pairs, settings.batch, settings.patch, settings.scale, rng)
        lr_batch, hr_batch = lr_batch.to(device, non_blocking=True), hr_batch.to(device, non_blocking=True)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(settings, iteration)
        if autocast is not None:
            with autocast:
                total, l1 = loss_fn(model(lr_batch).float(), hr_batch)
        else:
            total, l1 = loss_fn(model(lr_batch), hr_batch)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        running.append(float(l1.detach()))
        done += 1
        number = iteration + 1
        if number % settings.checkpoint_every == 0 or number == settings.iterations:
            elapsed = time.monotonic() - began
            row = {"iteration": number, "l1": round(float(np.mean(running)), 5), **evaluate(model, val_pairs,
                   settings.scale, device), "iterations_per_s": round(done / max(elapsed, 1e-9), 2)}
            history.append(row)
            running = []
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "iteration": number,
                        "settings": asdict(settings), "history": history}, checkpoints / f"iter_{number:08d}.pt")
            _write_metrics(metrics_path, history)
            if log:
                log.info("iteration %d: L1 %.4f, validation PSNR %.2f dB (bicubic %.2f), SSIM %.4f (bicubic %.4f), "
                         "%.1f it/s", number, row["l1"], row["psnr"], row["bicubic_psnr"], row["ssim"],
                         row["bicubic_ssim"], row["iterations_per_s"])
    if not history:
        raise RemasterError(f"train: nothing trained (iterations {settings.iterations}); raise train.iterations")
    best = max(history, key=lambda row: row["psnr"])
    saved = torch.load(checkpoints / f"iter_{best['iteration']:08d}.pt", map_location="cpu", weights_only=True)
    export_safetensors(saved["model"], output)
    _write_metrics(metrics_path, history)
    if log:
        log.info("exported iteration %d (validation PSNR %.2f dB) to %s", best["iteration"], best["psnr"], output)
    return {"best": best, "history": history, "device": str(device)}


def _identity(settings: dict) -> dict:
    """The settings a checkpoint must share to be resumed: more iterations or another device may continue."""
    return {key: value for key, value in json.loads(json.dumps(settings)).items()
            if key not in ("iterations", "checkpoint_every", "device")}


def _write_metrics(path: Path, history: list[dict]) -> None:
    columns = list(history[0])
    lines = ["\t".join(columns)] + ["\t".join(str(row[c]) for c in columns) for row in history]
    tmp = partial_path(path)
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    """`python -m remaster.training.train PAIRS OUT.safetensors [--iterations N …]`: train outside Snakemake
    (benchmarks, experiments); PAIRS holds train/{lr,hr} and val/{lr,hr}."""
    import argparse
    import logging
    import tempfile

    parser = argparse.ArgumentParser(prog="python -m remaster.training.train", description=main.__doc__)
    parser.add_argument("pairs", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--workdir", type=Path, help="checkpoints and metrics (default: a temporary folder)")
    for name, default in asdict(TrainSettings()).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(default), default=default)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    settings = TrainSettings(**{name: getattr(args, name) for name in TrainSettings.__dataclass_fields__})
    with tempfile.TemporaryDirectory() as scratch:
        summary = train(args.pairs, args.output, args.workdir or Path(scratch), settings,
                        log=logging.getLogger("train"))
    print(json.dumps({"device": summary["device"], **summary["best"]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
