"""The picture's shape: black bars found over the title, and the square-pixel size the models are given."""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

from .measure import duration, ffmpeg_log, frame_metadata, sample_windows, window_args


def detect_crop(video: Path | str, *, ffmpeg: str = "ffmpeg", windows: int = 6,
                window_seconds: float = 5.0, min_bar: int = 4) -> tuple[int, int, int, int] | None:
    """Crop (w, h, x, y) that removes black bars, or None when there are none.

    ``cropdetect`` keeps the largest non-black area it sees (``reset=0``) in each of
    ``windows`` windows spread over the title; the union over windows is the crop, so a
    dark scene cannot eat into the picture.  Bars thinner than ``min_bar`` pixels (edge
    noise, half-lines) are ignored.  Dimensions are even so 4:2:0 chroma stays aligned.
    """
    spans = sample_windows(duration(video, ffmpeg=ffmpeg), windows=windows, seconds=window_seconds)
    width = height = None
    boxes = []
    for start, length in spans:
        cmd = [ffmpeg, "-hide_banner", "-nostdin", "-nostats", *window_args(start, length),
               "-i", str(video), "-map", "0:v:0", "-vf",
               "cropdetect=limit=24:round=2:reset=0,metadata=mode=print", "-f", "null", "-"]
        stderr = ffmpeg_log(cmd)
        if m := re.search(r"Video: .*?, (\d{2,5})x(\d{2,5})", stderr):
            width, height = int(m.group(1)), int(m.group(2))
        frames = [f for f in frame_metadata(stderr) if "cropdetect.w" in f]
        if frames:
            last = frames[-1]
            w, h, x, y = (int(last[f"cropdetect.{k}"]) for k in "whxy")
            # an all-black window (fade, logo gap) gives an empty or inverted box
            if w > 0 and h > 0:
                boxes.append((x, y, x + w, y + h))
    if not boxes or width is None:
        return None
    x1, y1 = min(b[0] for b in boxes), min(b[1] for b in boxes)
    x2, y2 = max(b[2] for b in boxes), max(b[3] for b in boxes)
    # bars must be real on at least one side to be worth a crop
    if max(x1, y1, width - x2, height - y2) < min_bar:
        return None
    x1, y1 = x1 - x1 % 2, y1 - y1 % 2
    w, h = (x2 - x1) - (x2 - x1) % 2, (y2 - y1) - (y2 - y1) % 2
    return w, h, x1, y1


def _even(value: Fraction) -> int:
    """Nearest even integer (halves round up), at least 2."""
    return max(2, int(value / 2 + Fraction(1, 2)) * 2)


def square_geometry(width: int, height: int, sar: Fraction, *, display_aspect: Fraction | None = None,
                    target_height: int | None = None, scale: int = 1) -> tuple[int, int]:
    """Square-pixel (w, h) to resize the (cropped) picture to before a ×``scale`` model.

    The display aspect is ``display_aspect`` when given (the disc's flag overruled) or
    width·sar/height.  Without ``target_height`` the height is kept: 720×480 at 4:3 gives
    640×480, 720×576 at 16:9 gives 1024×576.  With it, the height is target_height/scale so
    the model's output is target_height tall: 16:9 with 1080 and ×2 gives 960×540.  Both
    dimensions are even.
    """
    if width <= 0 or height <= 0 or sar <= 0 or scale < 1:
        raise ValueError(f"bad geometry {width}x{height} sar {sar} scale {scale}")
    aspect = Fraction(display_aspect) if display_aspect else Fraction(width) * Fraction(sar) / height
    out_h = Fraction(target_height, scale) if target_height else Fraction(height)
    return _even(out_h * aspect), _even(out_h)
