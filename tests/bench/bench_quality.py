"""Quality benchmark with a known truth: is remaster's picture better than a player's?

For every kind of disc the front end tells apart (tests/bench/bench_quality_discs.py: PAL film, NTSC film with
hard and soft pulldown, interlaced video, a VHS-like capture) a DVD is authored with mpeg2enc/mplex/dvdauthor
from footage whose original is known, and each contender's output is scored against that original at its
size, inside a 384x288 window (192x144 square pixels of the DVD, ×2) so that the big models fit a CPU:

- player_bicubic / player_lanczos: what an upscaling player shows: its deinterlacer (bwdif at field rate) or
  film mode (fieldmatch + decimate for hard pulldown; soft pulldown's pictures as coded), BT.601 matrix,
  then bicubic or Lanczos to the truth's size;
- handbrake: HandBrakeCLI (detelecine or bwdif bob, its Lanczos scaler, x264 at RF 4), skipped with its
  reason where HandBrakeCLI is missing;
- remaster <model> [+ cleanup]: the workflow itself (snakemake: probe, plan, prepare, upscale_shard with
  `crop:` to the window and `scale: 2`), read from its lossless upscaled shard;
- recipe:<name>: config/recipes/<name>.yaml on the kind it is for.

Scores (remaster.output.quality): VMAF (libvmaf v0.6.1 in the pinned FFmpeg 8), luma PSNR and SSIM, and the
temporal error: the output's frame-to-frame change against the truth's (shimmer).

    .venv/bin/python tests/bench/bench_quality.py                       # everything (slow on a CPU)
    .venv/bin/python tests/bench/bench_quality.py --kinds tape --rows player_lanczos compact compact+hqdn3d
    .venv/bin/python tests/bench/bench_quality.py --report-only         # table + plot from results.json

Results accumulate in <work>/results.json (a row is redone only with --redo); the table is printed and
written with its plot to docs/ (--docs).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[2] / "workflow" / "scripts")]

import bench_quality_discs as discs  # noqa: E402

from remaster.frontend.cleanup import PRESETS  # noqa: E402
from remaster.output import quality  # noqa: E402
from support.workflow import REPO, snakemake, write_config  # noqa: E402

MODELS = {
    "compact": "realesr-animevideov3-x4.safetensors",  # Real-ESRGAN's anime video Compact ×4
    "dat2": "DAT_light_x2.safetensors",  # DAT-light ×2, PSNR-trained on photographs
    "rrdb": "realesrgan-x4plus.safetensors",  # Real-ESRGAN x4plus, ESRGAN/RRDB ×4, real-world degradations
}
RECIPES = {"pal_film": "live-action", "ntsc_hard": "live-action", "ntsc_soft": "animation", "video": "live-action",
           "tape": "tape"}
FRAMES = 6  # output frames scored per row (the models' cost on 2 CPU cores)


def player_pre(kind: discs.Kind) -> str:
    """A player's filters before scaling: its deinterlacer or film mode, then the scoring window."""
    scan = {"progressive": "", "soft": "", "hard": "fieldmatch=order=tff:combmatch=full,decimate",
            "interlaced": "bwdif=mode=send_field:parity=tff"}[kind.coding]
    return ",".join(f for f in (scan, "crop={}:{}:{}:{}".format(*kind.crop)) if f)


def vob(video_ts: Path) -> Path:
    return video_ts / "VTS_01_1.VOB"


def run_player(kind, video_ts: Path, flags: str, frames: int) -> np.ndarray:
    w, h, _, _ = kind.window
    return quality.decode_rgb(vob(video_ts), (w, h), pre=player_pre(kind), matrix="bt601", flags=flags, frames=frames)


def run_handbrake(kind, video_ts: Path, work: Path, frames: int) -> np.ndarray | str:
    """HandBrake's output in the window, or why there is none."""
    binary = shutil.which("HandBrakeCLI")
    if not binary:
        return "HandBrakeCLI not installed (Debian: apt-get install handbrake-cli)"
    w, h, x, y = kind.crop
    dvd_w, dvd_h = kind.dvd_size
    out = work / "handbrake.mkv"
    scan = {"progressive": [], "soft": [], "hard": ["--detelecine"], "interlaced": ["--bwdif=bob"]}[kind.coding]
    rate = ["--rate", "50", "--cfr"] if kind.coding == "interlaced" else ["--vfr"]
    cmd = [binary, "-i", str(video_ts.parent), "-t", "1", "-o", str(out), "-f", "av_mkv", "-e", "x264", "-q", "4",
           "--encoder-preset", "medium", "--crop", f"{y}:{dvd_h - y - h}:{x}:{dvd_w - x - w}",
           "--non-anamorphic", "-w", str(kind.window[0]), "-l", str(kind.window[1]), *scan, *rate, "-a", "none"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0 or not out.is_file():
        return f"HandBrakeCLI failed: {result.stderr.strip()[-200:]}"
    return quality.decode_rgb(out, kind.window[:2], frames=frames)


def run_remaster(kind, video_ts: Path, work: Path, models: list[Path], frames: int, extra: dict) -> np.ndarray:
    """The workflow on the disc up to its first upscaled shard (`frames` frames of the window, ×2)."""
    config = {**extra, "source": str(video_ts), "output": "bench.mkv", "models": [str(m) for m in models],
              "scale": 2, "crop": "{}:{}:{}:{}".format(*kind.crop), "shard_frames": frames, "keep_upscaled": True,
              "upscaled_form": "lossless", "device": "cpu"}
    write_config(work, **config)
    shard = work / "results" / "bench" / "upscale_shard" / "0000.mkv"
    snakemake(work, "--cores", "2", str(shard.relative_to(work)), timeout=7200)
    plan = json.loads((work / "results" / "bench" / "plan_disc" / "plan.json").read_text())
    if plan["model_input"] != [kind.window[0] // 2, kind.window[1] // 2]:
        raise RuntimeError(f"{kind.name}: the plan's model input {plan['model_input']} is not the window's")
    return quality.decode_rgb(shard, kind.window[:2], frames=frames)


def row_config(row: str) -> tuple[list[str], dict]:
    """A remaster row's models and extra config: 'compact', 'rrdb+hqdn3d', 'recipe:tape'."""
    if row.startswith("recipe:"):
        recipe = yaml.safe_load((REPO / "config" / "recipes" / f"{row.split(':', 1)[1]}.yaml").read_text())
        models = recipe.pop("models")
        names = [Path(m if isinstance(m, str) else m["path"]).name for m in models]
        return names, recipe
    model, _, cleanup = row.partition("+")
    if model not in MODELS:
        raise SystemExit(f"{row}: unknown model {model!r} (one of {', '.join(MODELS)})")
    if cleanup and cleanup not in PRESETS:
        raise SystemExit(f"{row}: unknown cleanup {cleanup!r} (one of {', '.join(PRESETS)})")
    return [MODELS[model]], {"cleanup": cleanup or "none"}


def same_row(row: str) -> str | None:
    """The plain row ('rrdb+hqdn3d') a recipe row amounts to, when it sets only a model and a clean-up."""
    if not row.startswith("recipe:"):
        return None
    names, extra = row_config(row)
    model = {file: key for key, file in MODELS.items()}.get(names[0]) if len(names) == 1 else None
    if model is None or set(extra) - {"cleanup", "scale"} or extra.get("scale", 2) != 2:
        return None
    cleanup = extra.get("cleanup", "none")
    return model if cleanup == "none" else f"{model}+{cleanup}"


def measure(kind_name: str, row: str, work: Path, model_dir: Path, frames: int) -> dict:
    kind = discs.KINDS[kind_name]
    kind_work = work / kind_name
    video_ts = discs.author(kind, kind_work / "disc")
    truth = discs.truth_window(kind, frames + 6)
    start = time.monotonic()
    if row in ("player_bicubic", "player_lanczos"):
        output = run_player(kind, video_ts, row.split("_")[1], frames)
    elif row == "handbrake":
        output = run_handbrake(kind, video_ts, kind_work, frames)
        if isinstance(output, str):
            print(f"{kind_name} handbrake: skipped: {output}")
            return {"skipped": output}
    else:
        names, extra = row_config(row)
        # one workflow folder per front-end setting: a model change reruns only the upscale
        folder = kind_work / f"remaster-{extra.get('cleanup', 'none')}-{'-'.join(sorted(extra)) or 'plain'}"
        output = run_remaster(kind, video_ts, folder, [model_dir / n for n in names], frames, extra)
    seconds = time.monotonic() - start
    if len(output) < 2:
        raise RuntimeError(f"{kind_name} {row}: only {len(output)} frames came out")
    scores = quality.score(output[:frames], truth, work=work)
    return {**scores.as_dict(), "seconds": round(seconds, 1)}


def default_rows() -> list[str]:
    cleanups = [f"compact+{p}" for p in PRESETS if p not in ("none", "bm3d")]
    return ["player_bicubic", "player_lanczos", "handbrake", "compact", *cleanups, "dat2", "rrdb", "compact+bm3d"]


def table(results: dict) -> list[str]:
    rows = sorted({row for by_row in results.values() for row in by_row}, key=_row_order)
    lines = ["| kind | output | VMAF | PSNR dB | SSIM | temporal error | frames | s |", "|---|---|---|---|---|---|---|---|"]
    for kind in (k for k in discs.KINDS if k in results):
        base = results[kind].get("player_lanczos", {})
        for row in rows:
            r = results[kind].get(row)
            if r is None:
                continue
            if "skipped" in r:
                lines.append(f"| {kind} | {row} | skipped: {r['skipped']} | | | | | |")
                continue
            gain = f" ({r['vmaf'] - base['vmaf']:+.1f})" if base and row != "player_lanczos" else ""
            label = f"{row} (= {r['same_as']})" if "same_as" in r else row
            lines.append(f"| {kind} | {label} | {r['vmaf']:.1f}{gain} | {r['psnr']:.2f} | {r['ssim']:.4f} | "
                         f"{r['temporal']:.2f} | {r['frames']} | {r['seconds']:.0f} |")
    return lines


def _row_order(row: str) -> tuple:
    fixed = ["player_bicubic", "player_lanczos", "handbrake", *MODELS]
    return (fixed.index(row) if row in fixed else len(fixed) + row.startswith("recipe:"), row)


def plot(results: dict, out: Path) -> Path:
    """VMAF against temporal error per kind (one panel each), as a PNG (matplotlib, else Pillow)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return _plot_pillow(results, out)
    kinds = [k for k in discs.KINDS if k in results]
    figure, axes = plt.subplots(1, len(kinds), figsize=(4 * len(kinds), 4), squeeze=False)
    for axis, kind in zip(axes[0], kinds):
        for row, r in results[kind].items():
            if "vmaf" in r:
                axis.scatter(r["temporal"], r["vmaf"])
                axis.annotate(row, (r["temporal"], r["vmaf"]), fontsize=7)
        axis.set_title(kind)
        axis.set_xlabel("temporal error")
        axis.set_ylabel("VMAF")
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    return out


def _plot_pillow(results: dict, out: Path) -> Path:
    """The plot drawn with Pillow (matplotlib is not in the venv): a bar per output, VMAF, per kind."""
    from PIL import Image, ImageDraw

    kinds = [k for k in discs.KINDS if k in results]
    rows = sorted({row for k in kinds for row, r in results[k].items() if "vmaf" in r}, key=_row_order)
    import colorsys

    palette = [tuple(int(255 * c) for c in colorsys.hsv_to_rgb(n / max(len(rows), 1), 0.75, 0.85 - 0.3 * (n % 2)))
               for n in range(len(rows))]
    bar, gap, left, top, height = 9, 18, 60, 30, 300
    width = left + len(kinds) * (len(rows) * bar + gap) + 240
    image = Image.new("RGB", (width, top + height + 60), "white")
    draw = ImageDraw.Draw(image)
    low, high = 0.0, 100.0

    def y_of(value: float) -> float:
        return top + height * (1 - (min(max(value, low), high) - low) / (high - low))

    for tick in range(0, 101, 10):
        draw.line([(left - 5, y_of(tick)), (width - 240, y_of(tick))], fill=(220, 220, 220))
        draw.text((10, y_of(tick) - 6), f"{tick}", fill="black")
    draw.text((10, 5), "VMAF against the truth, per kind (bars: outputs, VMAF 0-100; black tick: temporal error, 0-10)", fill="black")
    x = left
    for kind in kinds:
        for n, row in enumerate(rows):
            r = results[kind].get(row)
            if r and "vmaf" in r:
                draw.rectangle([x, y_of(r["vmaf"]), x + bar - 2, top + height], fill=palette[n % len(palette)])
                tick = y_of(10 * r["temporal"])
                draw.line([(x, tick), (x + bar - 2, tick)], fill="black", width=2)
            x += bar
        draw.text((x - len(rows) * bar, top + height + 8), kind, fill="black")
        x += gap
    for n, row in enumerate(rows):
        draw.rectangle([width - 230, top + 14 * n, width - 220, top + 14 * n + 10], fill=palette[n % len(palette)])
        draw.text((width - 214, top + 14 * n - 1), row, fill="black")
    image.save(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kinds", nargs="+", default=list(discs.KINDS), choices=list(discs.KINDS))
    parser.add_argument("--rows", nargs="+", default=None,
                        help="player_bicubic player_lanczos handbrake <model>[+<cleanup>] recipe:<name> "
                             "(default: players, HandBrake, every model, Compact with every clean-up); "
                             "'recipes' adds each kind's recipe")
    parser.add_argument("--frames", type=int, default=FRAMES)
    parser.add_argument("--work", type=Path, default=Path("/tmp/remaster-bench-quality"))
    parser.add_argument("--models", type=Path, default=REPO / "resources" / "models")
    parser.add_argument("--redo", action="store_true", help="measure rows already in results.json again")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--docs", type=Path, default=None, help="write quality-table.md and quality.png here")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    store = args.work / "results.json"
    results = json.loads(store.read_text()) if store.is_file() else {}
    if not args.report_only:
        # rows outer, kinds inner: the cheap rows of every kind come first
        for row in list(args.rows or default_rows()):
            for kind in args.kinds:
                name = f"recipe:{RECIPES[kind]}" if row == "recipes" else row
                if name in results.get(kind, {}) and not args.redo:
                    continue
                same = same_row(name)
                if same in results.get(kind, {}):
                    # a recipe that is a measured row (same model, same clean-up) is not run twice
                    results[kind][name] = {**results[kind][same], "same_as": same}
                else:
                    print(f"{kind} {name} …", flush=True)
                    results.setdefault(kind, {})[name] = measure(kind, name, args.work, args.models, args.frames)
                store.write_text(json.dumps(results, indent=1))
                print(f"  {results[kind][name]}", flush=True)
    lines = table(results)
    print("\n".join(lines))
    if args.docs:
        args.docs.mkdir(parents=True, exist_ok=True)
        (args.docs / "quality-table.md").write_text("\n".join(lines) + "\n")
        print(f"plot: {plot(results, args.docs / 'quality.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
