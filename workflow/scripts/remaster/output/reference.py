"""The master against a better release of the same title (`reference:`, e.g. a Blu-ray remux): VMAF and PSNR
per shard, beside what a player makes of the same frames, and before/after/reference crops.

1. Timing: the prepared title's thumbnails against the reference's (remaster.training.dataset's
   `fingerprints` and `find_timing`: a speed-up ratio and an offset). The master's frame m is the prepared
   title's frame m // factor (interpolate.factor) and is shown at time m / (prepared fps × factor); the
   reference frame is the one shown at that time.
2. Frames: the master, the prepared title (scaled with Lanczos: the "before", what a player shows) and the
   reference are decoded once each, in order, cropped to the part of the picture both show (the framing:
   scale and offset per axis, found from edge profiles of a few matched pairs) and scaled to that part's
   size in the reference, no taller than MAX_HEIGHT lines, with each file's own colour matrix.
3. Scores per shard of the prepared title's shard table, on up to WINDOWS runs of WINDOW consecutive
   prepared frames spread over the shard (VMAF needs neighbouring frames; a film is not scored frame by
   frame): VMAF, luma PSNR and SSIM from libvmaf (remaster.output.quality), for the master and the player.
   With interpolate.factor > 1 the master's frames at the source's times are scored (every factor-th).
"""

from __future__ import annotations

import subprocess
from dataclasses import asdict, dataclass, replace
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..run import media
from ..run.errors import RemasterError
from ..run.records import Prepared, Shard
from ..training import dataset
from . import quality

# the scoring size: the reference's, capped (vmaf_v0.6.1 is a 1080p model; 4K costs four times as much)
MAX_HEIGHT = 1080
WINDOW = 30  # consecutive master frames per run scored
WINDOWS = 5  # runs per shard
CROP = 192  # side of each crop shown in the report, at the scoring size
# a thumbnail match below this says the releases differ (framing, edit): measured 0.90-1.00 on the same
# clip at two sizes and codecs, 0.72 on the same test pattern framed differently
LOW_MATCH = 0.8
# an edge-profile match below this says the framing found is unreliable: 0.85-0.92 measured on the same
# picture cropped differently, 0.41 on pictures that differ
LOW_FRAMING_MATCH = 0.6


@dataclass(frozen=True)
class ShardScore:
    """One shard's scores against the reference; `player_*` score the prepared title scaled with Lanczos."""

    shard: str
    first_frame: int  # master frame
    frames: int  # master frames scored
    reference_first: int  # reference frame matched to the first scored master frame
    vmaf: float
    psnr: float
    ssim: float
    player_vmaf: float
    player_psnr: float
    player_ssim: float

    def as_dict(self) -> dict:
        return asdict(self)


COLUMNS = list(ShardScore.__dataclass_fields__)


@dataclass(frozen=True)
class Comparison:
    """What compare found: the timing, the scoring size (w, h), the scores per shard and the crops."""

    timing: dataset.Timing
    size: tuple[int, int]
    scores: list[ShardScore]
    crops: list[np.ndarray]
    framing: Framing | None = None


def scoring_size(width: int, height: int, max_height: int = MAX_HEIGHT) -> tuple[int, int]:
    """The reference's size, scaled down to `max_height` lines when taller (even sides)."""
    if height > max_height:
        width, height = width * max_height / height, max_height
    return int(round(width / 2)) * 2, int(round(height / 2)) * 2


def master_timing(prepared_prints: np.ndarray, reference_prints: np.ndarray, prepared_fps: float,
                  reference_fps: float, factor: int = 1, *, max_offset: float = 60.0) -> dataset.Timing:
    """The timing of the master's frames on the reference: found on the prepared title's frames, then
    restated for the master's rate (prepared fps × factor), so `hr_frame(m)` is master frame m's match."""
    timing = dataset.find_timing(prepared_prints, reference_prints, prepared_fps, reference_fps,
                                 max_offset=max_offset)
    return replace(timing, fps_lr=prepared_fps * factor)


def windows(first: int, end: int, window: int | None = None, count: int | None = None) -> list[range]:
    """Up to `count` (WINDOWS) runs of `window` (WINDOW) consecutive frames spread evenly over [first, end);
    the whole span when it is no longer than they are together."""
    window, count = window or WINDOW, count or WINDOWS
    length = end - first
    if length <= window * count:
        return [range(first, end)] if length > 0 else []
    starts = np.linspace(first, end - window, count).round().astype(int)
    return [range(int(s), int(s) + window) for s in starts]


def scored_frames(shard: Shard, factor: int = 1) -> list[range]:
    """The master frames of a shard that are scored, as runs: the windows of its prepared frames, each at
    its master frame (× factor). With interpolation, only the master's frames at the source's times: the
    frames between them have no counterpart in a player's picture nor, at the source's rate, in the
    reference."""
    return [range(w.start * factor, w.stop * factor, factor) for w in windows(shard.start, shard.end)]


@dataclass(frozen=True)
class Framing:
    """Where the master's picture lies in the reference's, per axis as fractions of each one's own size:
    reference x = left + scale_x · master x (y likewise); `match` is the mean profile correlation."""

    scale_x: float = 1.0
    left: float = 0.0
    scale_y: float = 1.0
    top: float = 0.0
    match: float = 1.0

    def boxes(self) -> tuple[tuple[float, float, float, float], tuple[float, float, float, float]]:
        """The part both show, as (x0, y0, x1, y1) fractions of the master's picture and of the reference's."""
        def axis(offset: float, scale: float) -> tuple[float, float, float, float]:
            start, end = max(0.0, offset), min(1.0, offset + scale)
            return (start - offset) / scale, (end - offset) / scale, start, end

        mx0, mx1, rx0, rx1 = axis(self.left, self.scale_x)
        my0, my1, ry0, ry1 = axis(self.top, self.scale_y)
        return (mx0, my0, mx1, my1), (rx0, ry0, rx1, ry1)


def pixel_box(box: tuple[float, float, float, float], width: int, height: int) -> tuple[int, int, int, int]:
    """A fractional box as a crop (x, y, w, h) in whole pixels of a `width`×`height` picture."""
    x0, y0 = int(round(box[0] * width)), int(round(box[1] * height))
    x1, y1 = int(round(box[2] * width)), int(round(box[3] * height))
    return x0, y0, max(2, x1 - x0), max(2, y1 - y0)


# the framings searched: scale 0.8-1.25 (a 704-wide DVD picture, a crop, overscan), offsets of ±15%; coarse on
# 256-sample edge profiles, then fine around the best on 1024 samples
SCALES, OFFSETS, SAMPLES = np.arange(0.80, 1.2501, 0.01), np.arange(-0.15, 0.1501, 1 / 256), 256
FINE_SCALES, FINE_OFFSETS, FINE_SAMPLES = np.arange(-0.01, 0.01001, 0.001), np.arange(-2 / 256, 2.01 / 256, 1 / 2048), 1024


def _profile(grey: np.ndarray, axis: int, samples: int) -> np.ndarray:
    """The edge profile of a frame along one axis: |d/dx| of the mean over the other axis, `samples` long."""
    edges = np.abs(np.diff(grey.mean(axis=axis)))
    return np.interp(np.linspace(0, 1, samples), np.linspace(0, 1, len(edges)), edges)


def _fit_axis(master: list[np.ndarray], reference: list[np.ndarray], scales: np.ndarray, offsets: np.ndarray
              ) -> tuple[float, float, float]:
    """(scale, offset, correlation) under which the reference's profiles, sampled at offset + scale·t, best
    match the master's (t in [0, 1]), averaged over the pairs."""
    t = np.linspace(0, 1, len(master[0]))
    best = (-2.0, 1.0, 0.0)
    for scale in scales:
        positions = offsets[:, None] + scale * t[None, :]
        inside = (positions >= 0) & (positions <= 1)
        weight = np.maximum(inside.sum(axis=1), 1)[:, None]
        total = np.zeros(len(offsets))
        for mine, theirs in zip(master, reference):
            a = np.where(inside, mine[None, :], 0.0)
            b = np.where(inside, np.interp(positions, t, theirs), 0.0)
            a = np.where(inside, a - a.sum(axis=1, keepdims=True) / weight, 0.0)
            b = np.where(inside, b - b.sum(axis=1, keepdims=True) / weight, 0.0)
            norm = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
            total += (a * b).sum(axis=1) / np.maximum(norm, 1e-9)
        total /= max(1, len(master))
        # at least half of the master's picture must lie inside the reference's
        total[inside.mean(axis=1) < 0.5] = -2.0
        index = int(total.argmax())
        if total[index] > best[0]:
            best = (float(total[index]), float(scale), float(offsets[index]))
    return best[1], best[2], best[0]


def find_framing(master: list[np.ndarray], reference: list[np.ndarray]) -> Framing:
    """The framing of matched frame pairs (RGB, any sizes): scale and offset per axis from edge profiles."""
    greys = [[quality.luma(f) for f in frames] for frames in (master, reference)]
    fitted = []
    for axis in (0, 1):
        coarse = [[_profile(g, axis, SAMPLES) for g in group] for group in greys]
        scale, offset, _ = _fit_axis(*coarse, SCALES, OFFSETS)
        fine = [[_profile(g, axis, FINE_SAMPLES) for g in group] for group in greys]
        fitted.append(_fit_axis(*fine, scale + FINE_SCALES, offset + FINE_OFFSETS))
    (scale_x, left, match_x), (scale_y, top, match_y) = fitted
    return Framing(scale_x, left, scale_y, top, round((match_x + match_y) / 2, 4))


def title_framing(prepared_file: Path, reference: Path, spans: list[range], timing: dataset.Timing, factor: int,
                  reference_size: tuple[int, int], pairs: int = 5, width: int = 512) -> Framing:
    """The framing of the title, from `pairs` prepared frames spread over the scored ones and their
    reference matches (the prepared title frames the picture as the master does); the identity when the
    fit is within a pixel of the prepared frame or half a percent of it, per axis (no resampling for noise)."""
    scored = [n // factor for span in spans for n in span if timing.hr_frame(n) >= 0]
    if not scored:
        return Framing()
    chosen = sorted({scored[i] for i in np.linspace(0, len(scored) - 1, pairs + 2).round().astype(int)[1:-1]})
    _, prepared_w, prepared_h = dataset.video_info(prepared_file)
    frames = []
    for path, numbers, (w, h) in ((prepared_file, chosen, (prepared_w, prepared_h)),
                                  (reference, [timing.hr_frame(p * factor) for p in chosen], reference_size)):
        reader = FrameReader(path, (width, max(2, int(round(width * h / w / 2)) * 2)),
                             [range(n, n + 1) for n in numbers])
        try:
            frames.append([reader.frame(n) for n in sorted(set(numbers))])
        finally:
            reader.close()
    if any(f is None for group in frames for f in group) or len(frames[0]) != len(frames[1]):
        return Framing()
    found = find_framing(*frames)
    # an axis within a pixel of the prepared frame (or half a percent) of the identity is taken as it
    if max(abs(found.scale_x - 1), abs(found.left)) <= max(0.005, 1 / prepared_w):
        found = replace(found, scale_x=1.0, left=0.0)
    if max(abs(found.scale_y - 1), abs(found.top)) <= max(0.005, 1 / prepared_h):
        found = replace(found, scale_y=1.0, top=0.0)
    return found


def merged(spans: list[range]) -> list[range]:
    """Ranges of frame numbers, sorted, with overlapping or touching ones joined."""
    out: list[range] = []
    for span in sorted((s for s in spans if len(s)), key=lambda s: s.start):
        if out and span.start <= out[-1].stop:
            out[-1] = range(out[-1].start, max(out[-1].stop, span.stop))
        else:
            out.append(span)
    return out


class FrameReader:
    """A video's frames in order as RGB at `size` (scaled with Lanczos and the file's colour matrix);
    `frame(n)` for non-decreasing n decodes forward to frame n (None past the end).

    With `wanted` (ranges of frame numbers) ffmpeg's select passes only those frames on to the scaler and
    the pipe: every frame is still decoded, but a film's unscored frames cost no conversion and no copy."""

    def __init__(self, path: Path, size: tuple[int, int], wanted: list[range] | None = None, step: int = 1,
                 crop: tuple[int, int, int, int] | None = None):
        self.path, self.size = Path(path), size
        width, height = size
        scale = f"scale={width}:{height}:flags=lanczos+accurate_rnd+full_chroma_int,format=rgb24"
        if crop is not None:  # (x, y, w, h) in the file's pixels: the part of the picture both releases show
            scale = f"crop={crop[2]}:{crop[3]}:{crop[0]}:{crop[1]}:exact=1,{scale}"
        self._wanted = merged(wanted) if wanted is not None else None
        if self._wanted is not None:
            terms = "+".join(f"between(n,{span.start},{span.stop - 1})" for span in self._wanted) or "0"
            # every step-th frame (runs start on a multiple of step)
            terms = f"({terms})*not(mod(n,{step}))" if step > 1 else terms
            scale = f"select='{terms}',{scale}"
        self._numbers = (n for span in self._wanted for n in range(span.start, span.stop, step)) \
            if self._wanted is not None else None
        cmd = media.ffmpeg_args("-i", media.input_path(path), "-map", "0:v:0", "-vf", scale, "-fps_mode",
                                "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1")
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self._bytes = width * height * 3
        self._number, self._last = -1, None

    @property
    def position(self) -> int:
        """The number of the frame read last (-1 before the first)."""
        return self._number

    def frame(self, number: int) -> np.ndarray | None:
        if number < self._number:
            raise ValueError(f"{self.path}: frame {number} asked after frame {self._number}")
        while self._number < number:
            data = self._proc.stdout.read(self._bytes)
            if len(data) < self._bytes:
                return None
            self._number = self._number + 1 if self._numbers is None else next(self._numbers)
            self._last = np.frombuffer(data, np.uint8).reshape(self.size[1], self.size[0], 3)
        if self._number != number:
            raise ValueError(f"{self.path}: frame {number} was not among the frames selected")
        return self._last

    def close(self) -> None:
        self._proc.stdout.close()
        self._proc.kill()
        self._proc.wait()


def _crop(frame: np.ndarray, side: int = CROP) -> np.ndarray:
    """The centre of a frame, `side` pixels square (or the whole frame when smaller)."""
    height, width = frame.shape[:2]
    side_h, side_w = min(side, height), min(side, width)
    top, left = (height - side_h) // 2, (width - side_w) // 2
    return frame[top:top + side_h, left:left + side_w]


def side_by_side(before: np.ndarray, after: np.ndarray, reference: np.ndarray, gap: int = 4) -> np.ndarray:
    """Before | after | reference crops of one frame, with white gaps between."""
    crops = [_crop(f) for f in (before, after, reference)]
    height = crops[0].shape[0]
    spacer = np.full((height, gap, 3), 255, np.uint8)
    return np.concatenate([crops[0], spacer, crops[1], spacer, crops[2]], axis=1)


def compare(master: Path, prepared_file: Path, prepared: Prepared, reference: Path, *, factor: int = 1,
            crops: int = 3, max_offset: float = 60.0, work: Path | None = None, log=None,
            framing: Framing | None = None) -> Comparison:
    """The timing, one ShardScore per shard with a frame inside the reference, and up to `crops`
    before|after|reference images spread over the title. `framing`: the releases' framing when known (else
    found from the frames)."""
    reference = Path(reference)
    if not reference.is_file():
        raise RemasterError(f"reference: {reference}: no such file; give a video file of the same title "
                            "(e.g. a Blu-ray remux) or leave reference empty")
    try:
        reference_fps, ref_w, ref_h = dataset.video_info(reference)
    except (subprocess.CalledProcessError, RemasterError, KeyError, ValueError):
        raise RemasterError(f"reference: {reference}: not a video file ffprobe reads") from None
    prepared_fps = float(Fraction(prepared.fps))
    prepared_prints, _ = dataset.fingerprints(prepared_file)
    reference_prints, _ = dataset.fingerprints(reference)
    timing = master_timing(prepared_prints, reference_prints, prepared_fps, reference_fps, factor,
                           max_offset=max_offset)
    if log:
        log.info("timing: reference time = %s × master time %+.3f s (thumbnail match %.3f)", timing.ratio,
                 timing.offset, timing.score)
        if timing.score < LOW_MATCH:
            log.warning("%s: thumbnail match %.2f is low: the releases may frame or edit the picture differently, "
                        "and the scores then say little", reference, timing.score)
    # the frames each video must give: the scored runs, their prepared frames, their reference matches
    spans = [span for shard in prepared.shards for span in scored_frames(shard, factor)]
    matches = [[timing.hr_frame(n) for n in span if timing.hr_frame(n) >= 0] for span in spans]
    if framing is None:
        framing = title_framing(prepared_file, reference, spans, timing, factor, (ref_w, ref_h))
    master_box, reference_box = framing.boxes()
    if log:
        log.info("framing: the master's x %.3f-%.3f, y %.3f-%.3f is the reference's x %.3f-%.3f, y %.3f-%.3f "
                 "(profile match %.3f)", master_box[0], master_box[2], master_box[1], master_box[3],
                 reference_box[0], reference_box[2], reference_box[1], reference_box[3], framing.match)
        if framing.match < LOW_FRAMING_MATCH:
            log.warning("%s: edge-profile match %.2f is low: the framing found is unreliable", reference,
                        framing.match)
    _, master_w, master_h = dataset.video_info(master)
    _, prepared_w, prepared_h = dataset.video_info(prepared_file)
    reference_crop = pixel_box(reference_box, ref_w, ref_h)
    size = scoring_size(reference_crop[2], reference_crop[3])
    readers = {
        "master": FrameReader(master, size, spans, step=factor, crop=pixel_box(master_box, master_w, master_h)),
        "before": FrameReader(prepared_file, size, [range(s.start // factor, (s.stop - 1) // factor + 1)
                                                    for s in spans],
                              crop=pixel_box(master_box, prepared_w, prepared_h)),
        "reference": FrameReader(reference, size, [range(m[0], m[-1] + 1) for m in matches if m],
                                 crop=reference_crop),
    }
    # crops of `crops` frames spread evenly over the frames that are scored (decoded anyway)
    scored = [n for span in spans for n in span if timing.hr_frame(n) >= 0]
    crop_frames = {scored[i] for i in np.linspace(0, len(scored) - 1, crops + 2).round().astype(int)[1:-1]} \
        if crops and scored else set()
    scores, images = [], []
    try:
        for shard in prepared.shards:
            score, shown = _score_shard(shard, readers, timing, factor, crop_frames, work)
            images.extend(shown)
            if score is not None:
                scores.append(score)
                if log:
                    log.info("shard %s: VMAF %.2f PSNR %.2f dB (player %.2f / %.2f dB) over %d frames", shard.name,
                             score.vmaf, score.psnr, score.player_vmaf, score.player_psnr, score.frames)
            elif log:
                log.warning("shard %s: no frame of it lies inside the reference", shard.name)
    finally:
        for reader in readers.values():
            reader.close()
    if not scores:
        raise RemasterError(f"reference: {reference}: no master frame matches a reference frame (timing "
                            f"{timing.ratio}, offset {timing.offset:+.2f} s); is it the same title?")
    return Comparison(timing, size, scores, images, framing)


def _score_shard(shard: Shard, readers: dict[str, FrameReader], timing: dataset.Timing, factor: int,
                 crop_frames: set[int], work: Path | None) -> tuple[ShardScore | None, list[np.ndarray]]:
    runs = []
    shown = []
    for span in scored_frames(shard, factor):
        master, before, ref, first_ref = [], [], [], None
        for number in span:
            match = timing.hr_frame(number)
            if match < 0:
                continue
            after = readers["master"].frame(number)
            prior = readers["before"].frame(number // factor)
            truth = readers["reference"].frame(match)
            if after is None or prior is None or truth is None:
                break
            first_ref = match if first_ref is None else first_ref
            master.append(after)
            before.append(prior)
            ref.append(truth)
            if number in crop_frames:
                shown.append(side_by_side(prior, after, truth))
        if master:
            truth = np.stack(ref)
            runs.append((len(master), first_ref, quality.libvmaf_scores(np.stack(master), truth, work),
                         quality.libvmaf_scores(np.stack(before), truth, work)))
    if not runs:
        return None, shown
    frames = sum(r[0] for r in runs)

    def mean(which: int, metric: int) -> float:
        return round(sum(r[0] * r[which][metric] for r in runs) / frames, 3)

    return ShardScore(shard=shard.name, first_frame=shard.start * factor, frames=frames,
                      reference_first=runs[0][1], vmaf=mean(2, 0), psnr=mean(2, 1), ssim=mean(2, 2),
                      player_vmaf=mean(3, 0), player_psnr=mean(3, 1), player_ssim=mean(3, 2)), shown


def to_tsv(scores: list[ShardScore]) -> str:
    """The per-shard scores as a TSV table (one row per shard)."""
    from .report import tsv

    return tsv(COLUMNS, [[getattr(s, c) for c in COLUMNS] for s in scores])


def overall(scores: list[ShardScore]) -> dict:
    """Frame-weighted means over every scored shard."""
    frames = sum(s.frames for s in scores)
    metrics = [c for c in COLUMNS if c not in ("shard", "first_frame", "frames", "reference_first")]
    return {"frames": frames, **{m: round(sum(getattr(s, m) * s.frames for s in scores) / frames, 3)
                                 for m in metrics}}


def _framing_text(framing: Framing) -> str:
    low = (" — low: the framing found is unreliable, and the scores say little"
           if framing.match < LOW_FRAMING_MATCH else "")
    return _framing_boxes(framing) + low


def _framing_boxes(framing: Framing) -> str:
    (mx0, my0, mx1, my1), (rx0, ry0, rx1, ry1) = framing.boxes()
    if (mx0, my0, mx1, my1) == (rx0, ry0, rx1, ry1) == (0.0, 0.0, 1.0, 1.0):
        return f"the same picture (edge-profile match {framing.match:.3f})"
    return (f"the master's x {mx0:.1%}–{mx1:.1%}, y {my0:.1%}–{my1:.1%} is the reference's x {rx0:.1%}–{rx1:.1%}, "
            f"y {ry0:.1%}–{ry1:.1%}: only that part is scored (edge-profile match {framing.match:.3f})")


def reference_page(disc: str, reference: Path, timing: dataset.Timing, scores: list[ShardScore],
                   size: tuple[int, int], crops: list[str], framing: Framing | None = None) -> str:
    """The report page: how the reference was aligned, the scores per shard, and the crops (by file name)."""
    import html

    from .report import page, table

    total = overall(scores)
    about = table(["property", "value"], [
        ["reference", str(reference)],
        ["timing", f"reference time = {timing.ratio} × master time {timing.offset:+.3f} s"],
        ["thumbnail match", f"{timing.score:.3f}" + (" (low: the releases may frame or edit the picture "
                                                     "differently; the scores then say little)"
                                                     if timing.score < LOW_MATCH else "")],
        ["framing", _framing_text(framing or Framing())],
        ["scored at", f"{size[0]}×{size[1]} (the reference's size for the part both show, at most {MAX_HEIGHT} lines)"],
        ["frames scored", f"{total['frames']} (up to {WINDOWS} runs of {WINDOW} frames per shard)"],
    ])
    summary = table(["", "VMAF", "PSNR (dB)", "SSIM"], [
        ["master", total["vmaf"], total["psnr"], total["ssim"]],
        ["player (prepared title, Lanczos)", total["player_vmaf"], total["player_psnr"], total["player_ssim"]],
    ])
    shards = table(COLUMNS, [[getattr(s, c) for c in COLUMNS] for s in scores])
    # the crops are the report's figures beside this page (a page cannot link to another report item)
    images = "".join(f"<li>{html.escape(name)}</li>" for name in crops)
    return page(f"{disc}: the master against the reference", ("Alignment", about), ("Overall", summary),
                ("Per shard", shards), ("Before | after | reference (centre crops, the figures beside this page)",
                 f"<ul>{images}</ul>" if images else "<p>none</p>"))
