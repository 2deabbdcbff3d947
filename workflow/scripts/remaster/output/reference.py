"""The master against a better release of the same title (`reference:`, e.g. a Blu-ray remux): VMAF and PSNR
per shard, beside what a player makes of the same frames, and before/after/reference crops.

1. Timing: the prepared title's thumbnails against the reference's (remaster.training.dataset's
   `fingerprints` and `find_timing`: a speed-up ratio and an offset). The master's frame m is the prepared
   title's frame m // factor (interpolate.factor) and is shown at time m / (prepared fps × factor); the
   reference frame is the one shown at that time.
2. Frames: the master, the prepared title (scaled with Lanczos: the "before", what a player shows) and the
   reference are decoded once each, in order, at one common size: the reference's, no taller than
   MAX_HEIGHT lines, with each file's own colour matrix. Both releases are assumed to frame the same
   picture (the same crop); a different framing shows as a low timing match and low scores.
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

    def __init__(self, path: Path, size: tuple[int, int], wanted: list[range] | None = None, step: int = 1):
        self.path, self.size = Path(path), size
        width, height = size
        scale = f"scale={width}:{height}:flags=lanczos+accurate_rnd+full_chroma_int,format=rgb24"
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
            crops: int = 3, max_offset: float = 60.0, work: Path | None = None, log=None
            ) -> Comparison:
    """The timing, one ShardScore per shard with a frame inside the reference, and up to `crops`
    before|after|reference images spread over the title."""
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
    size = scoring_size(ref_w, ref_h)
    # the frames each video must give: the scored runs, their prepared frames, their reference matches
    spans = [span for shard in prepared.shards for span in scored_frames(shard, factor)]
    matches = [[timing.hr_frame(n) for n in span if timing.hr_frame(n) >= 0] for span in spans]
    readers = {
        "master": FrameReader(master, size, spans, step=factor),
        "before": FrameReader(prepared_file, size, [range(s.start // factor, (s.stop - 1) // factor + 1)
                                                    for s in spans]),
        "reference": FrameReader(reference, size, [range(m[0], m[-1] + 1) for m in matches if m]),
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
    return Comparison(timing, size, scores, images)


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


def reference_page(disc: str, reference: Path, timing: dataset.Timing, scores: list[ShardScore],
                   size: tuple[int, int], crops: list[str]) -> str:
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
        ["scored at", f"{size[0]}×{size[1]} (the reference's size, at most {MAX_HEIGHT} lines)"],
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
