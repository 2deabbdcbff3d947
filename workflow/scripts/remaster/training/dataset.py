"""Paired training frames from two releases of the same content (a DVD and a Blu-ray, a VHS and a DVD).

1. Fingerprints: every frame of both videos as a 32×24 grey thumbnail (zero mean, unit norm).
2. Timing: the low-quality release's time t_lr maps to the high-quality one's as t_hr = ratio·t_lr + offset;
   `ratio` is tried among the usual speed-ups (1, 25/23.976 for PAL, 24/23.976), `offset` over every
   high-quality frame step in ±max_offset seconds; the pair that makes the most frames match wins.
3. Frames: spread evenly, skipping black frames and near-duplicates of frames already taken.
4. Geometry: the high-quality frame is resized to scale × the low one, then shifted by whole pixels
   (±search, at high resolution) to the shift whose downscale correlates best with the low frame; pairs
   below `min_correlation` are rejected (a cut, a different edit, a subtitle burnt into one release).
5. out/{train,val}/{lr,hr}/NAME.png with matching names, and out/alignment.json with what was found.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from ..run import media
from ..run.errors import RemasterError
from .degrade import validation_names

THUMB = (32, 24)
# content speed-ups between releases: none, PAL 4% speed-up of film, 24 fps film released at 23.976
RATIOS = {"1": Fraction(1), "25/23.976": Fraction(25 * 1001, 24000), "24/23.976": Fraction(24 * 1001, 24000)}


@dataclass(frozen=True)
class Timing:
    ratio: str  # a key of RATIOS
    offset: float  # seconds: t_hr = ratio·t_lr + offset
    score: float  # mean correlation of the matched thumbnails
    fps_lr: float
    fps_hr: float

    def hr_frame(self, lr_frame: int) -> int:
        return int(round((float(RATIOS[self.ratio]) * lr_frame / self.fps_lr + self.offset) * self.fps_hr))


def video_info(path: Path) -> tuple[float, int, int]:
    """(frames per second, width, height) of the first video stream."""
    streams = media.ffprobe_json(path, "-select_streams", "v:0").get("streams") or []
    if not streams:
        raise RemasterError(f"{path}: no video stream; check train.lr_source / train.hr_source")
    stream = streams[0]
    return float(media.fraction(stream["r_frame_rate"])), int(stream["width"]), int(stream["height"])


def _decode(path: Path, width: int, height: int, pix_fmt: str, channels: int, vf: str = "") -> np.ndarray:
    scale = f"scale={width}:{height}:flags=area"
    cmd = media.ffmpeg_args("-i", media.input_path(path), "-map", "0:v:0", "-vf", f"{vf}{scale},format={pix_fmt}",
                            "-fps_mode", "passthrough", "-f", "rawvideo", "pipe:1")
    raw = subprocess.run(cmd, capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width, channels)


def fingerprints(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(normalised thumbnails as (frames, 768) float32, mean brightness per frame in [0, 1])."""
    thumbs = _decode(path, *THUMB, "gray", 1).reshape(-1, THUMB[0] * THUMB[1]).astype(np.float32) / 255
    brightness = thumbs.mean(axis=1)
    centred = thumbs - brightness[:, None]
    norms = np.linalg.norm(centred, axis=1, keepdims=True)
    return centred / np.maximum(norms, 1e-6), brightness


def find_timing(lr_prints: np.ndarray, hr_prints: np.ndarray, fps_lr: float, fps_hr: float, *,
                ratios=tuple(RATIOS), max_offset: float = 60.0, samples: int = 400,
                usable: np.ndarray | None = None) -> Timing:
    """The (ratio, offset) under which the most sampled low-quality frames look like their high-quality match."""
    usable = np.ones(len(lr_prints), bool) if usable is None else usable
    candidates = np.flatnonzero(usable)
    if len(candidates) == 0:
        raise RemasterError("dataset: the low-quality release has no frames that are not black")
    picked = candidates[np.linspace(0, len(candidates) - 1, min(samples, len(candidates))).astype(int)]
    times = picked / fps_lr
    steps = int(round(max_offset * fps_hr))
    best = None
    for name in ratios:
        ratio = float(RATIOS[name])
        base = np.round(ratio * times * fps_hr).astype(int)
        for shift in range(-steps, steps + 1):
            index = base + shift
            inside = (index >= 0) & (index < len(hr_prints))
            if inside.sum() < max(8, len(picked) // 4):
                continue
            score = float(np.einsum("ij,ij->i", lr_prints[picked[inside]], hr_prints[index[inside]]).mean())
            # frames falling outside the other release count as misses, so a tiny overlap cannot win
            score *= inside.mean()
            if best is None or score > best[0]:
                best = (score, name, shift / fps_hr)
    if best is None:
        raise RemasterError("dataset: the two releases do not overlap in time; check train.lr_source / hr_source")
    return Timing(ratio=best[1], offset=best[2], score=best[0], fps_lr=fps_lr, fps_hr=fps_hr)


def pick_frames(lr_prints: np.ndarray, brightness: np.ndarray, count: int, *, duplicate: float = 0.97,
                usable: np.ndarray | None = None) -> list[int]:
    """Up to `count` frames spread over the release: never black, never a near-duplicate (thumbnail
    correlation above `duplicate`) of a frame already picked."""
    usable = (brightness > 0.06) if usable is None else usable
    candidates = np.flatnonzero(usable)
    picked: list[int] = []
    # golden-ratio order: every prefix of it is spread evenly over the release
    spread = ((np.arange(len(candidates)) * 0.6180339887) % 1.0 * len(candidates)).astype(int)
    for frame in dict.fromkeys([*candidates[spread].tolist(), *candidates.tolist()]):
        if len(picked) >= count:
            break
        if picked and float((lr_prints[picked] @ lr_prints[frame]).max()) > duplicate:
            continue
        picked.append(int(frame))
    return sorted(picked)


def read_frames(path: Path, frames: list[int], width: int, height: int) -> dict[int, np.ndarray]:
    """Full-size RGB frames by number (decoded once, in order, keeping only those asked for)."""
    wanted = sorted(set(frames))
    out: dict[int, np.ndarray] = {}
    frame_bytes = width * height * 3
    cmd = media.ffmpeg_args("-i", media.input_path(path), "-map", "0:v:0", "-fps_mode", "passthrough",
                            "-pix_fmt", "rgb24", "-f", "rawvideo", "pipe:1")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        number, position = 0, 0
        while position < len(wanted):
            data = proc.stdout.read(frame_bytes)
            if len(data) < frame_bytes:
                break
            if number == wanted[position]:
                out[number] = np.frombuffer(data, np.uint8).reshape(height, width, 3)
                position += 1
            number += 1
    finally:
        proc.stdout.close()
        proc.kill()
        proc.wait()
    return out


def _grey(rgb: np.ndarray) -> np.ndarray:
    return (rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)) / 255


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / max(np.sqrt((a * a).sum() * (b * b).sum()), 1e-9))


def align_pair(lr: np.ndarray, hr: np.ndarray, scale: int, *, search: int = 3, margin: int = 4
               ) -> tuple[np.ndarray, np.ndarray, float, tuple[int, int]]:
    """The pair cropped to matching geometry: (lr crop, hr crop of exactly scale × its size, correlation,
    (dx, dy) shift in high-resolution pixels). The HR frame is first resized to scale × the LR frame."""
    height, width = lr.shape[:2]
    target = (width * scale, height * scale)
    hr_image = Image.fromarray(hr)
    if hr_image.size != target:
        hr_image = hr_image.resize(target, Image.LANCZOS)
    hr = np.asarray(hr_image)
    margin = max(margin, -(-search // scale) + 1)
    lr_crop = lr[margin:height - margin, margin:width - margin]
    lr_grey = _grey(lr_crop)
    hr_grey = Image.fromarray(_grey(hr))
    crop_w, crop_h = width - 2 * margin, height - 2 * margin
    best = (-2.0, (0, 0))
    for dy in range(-search, search + 1):
        for dx in range(-search, search + 1):
            left, top = margin * scale + dx, margin * scale + dy
            box = (left, top, left + crop_w * scale, top + crop_h * scale)
            small = np.asarray(hr_grey.resize((crop_w, crop_h), Image.BICUBIC, box=box), np.float32)
            score = _correlation(small, lr_grey)
            if score > best[0]:
                best = (score, (dx, dy))
    dx, dy = best[1]
    top, left = margin * scale + dy, margin * scale + dx
    hr_crop = hr[top:top + crop_h * scale, left:left + crop_w * scale]
    return lr_crop, hr_crop, best[0], (dx, dy)


def make_pairs(lr_source: Path, hr_source: Path, out: Path, *, scale: int = 2, pairs: int = 500,
               val_fraction: float = 0.1, max_offset: float = 60.0, search: int = 3,
               min_correlation: float = 0.9, duplicate: float = 0.97, log=None) -> dict:
    """Find the timing, pick frames, align and write the pairs; returns the summary written to alignment.json."""
    lr_source, hr_source, out = Path(lr_source), Path(hr_source), Path(out)
    fps_lr, lr_w, lr_h = video_info(lr_source)
    fps_hr, hr_w, hr_h = video_info(hr_source)
    lr_prints, lr_bright = fingerprints(lr_source)
    hr_prints, _ = fingerprints(hr_source)
    usable = lr_bright > 0.06
    timing = find_timing(lr_prints, hr_prints, fps_lr, fps_hr, max_offset=max_offset, usable=usable)
    if log:
        log.info("timing: t_hr = %s × t_lr %+.3f s (match %.3f); %d and %d frames", timing.ratio, timing.offset,
                 timing.score, len(lr_prints), len(hr_prints))
    # only frames whose match lies inside the other release
    inside = np.array([0 <= timing.hr_frame(i) < len(hr_prints) for i in range(len(lr_prints))])
    chosen = pick_frames(lr_prints, lr_bright, pairs, duplicate=duplicate, usable=usable & inside)
    matches = {frame: timing.hr_frame(frame) for frame in chosen}
    lr_frames = read_frames(lr_source, chosen, lr_w, lr_h)
    hr_frames = read_frames(hr_source, list(matches.values()), hr_w, hr_h)
    kept, rejected = [], []
    for frame in chosen:
        if frame not in lr_frames or matches[frame] not in hr_frames:
            continue
        lr_crop, hr_crop, score, shift = align_pair(lr_frames[frame], hr_frames[matches[frame]], scale, search=search)
        record = {"name": f"{frame:07d}", "lr_frame": frame, "hr_frame": matches[frame], "correlation": round(score, 4),
                  "shift": list(shift)}
        if score < min_correlation:
            rejected.append(record)
            continue
        kept.append((record, lr_crop, hr_crop))
    val = validation_names([record["name"] for record, _, _ in kept], val_fraction)
    for record, lr_crop, hr_crop in kept:
        split = "val" if record["name"] in val else "train"
        record["split"] = split
        for kind, array in (("lr", lr_crop), ("hr", hr_crop)):
            folder = out / split / kind
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.ascontiguousarray(array)).save(folder / f"{record['name']}.png")
    if not kept:
        raise RemasterError(f"dataset: no pair aligned above min_correlation {min_correlation}; are {lr_source} and "
                            f"{hr_source} the same content?")
    summary = {"timing": asdict(timing), "ratio_value": float(RATIOS[timing.ratio]), "scale": scale,
               "pairs": [record for record, _, _ in kept], "rejected": rejected}
    (out / "alignment.json").write_text(json.dumps(summary, indent=2) + "\n")
    if log:
        log.info("%d pairs written (%d for validation), %d rejected below correlation %.2f", len(kept), len(val),
                 len(rejected), min_correlation)
    return summary
