"""The embedded demo disc: a few seconds of DVD-like MPEG-2 made from real photographs.

`python -m remaster.demo OUT_DIR` writes OUT_DIR/VIDEO_TS with a menu VOB (VTS_01_0.VOB, to be ignored),
the title split over VTS_01_1.VOB and VTS_01_2.VOB as a DVD splits it, two AC3 tracks, and a short
second title set (VTS_02) that is not the main title.
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image

from .run import media

PHOTOS = Path(__file__).resolve().parents[2] / "resources" / "demo" / "photos"
SECTOR = 2048


def pan_frames(count: int, size: tuple[int, int] = (640, 480), photos_dir: Path = PHOTOS):
    """Square-pixel frames panning slowly across the photographs, one photo after another."""
    photos = [Image.open(p).convert("RGB") for p in sorted(photos_dir.iterdir()) if p.suffix in (".png", ".jpg")]
    per_photo = max(1, -(-count // len(photos)))
    width, height = size
    for index in range(count):
        photo = photos[(index // per_photo) % len(photos)]
        step = (index % per_photo) / max(per_photo - 1, 1)
        crop_w = min(photo.width, photo.height * width // height) * 4 // 5
        crop_h = crop_w * height // width
        left = int((photo.width - crop_w) * step)
        top = int((photo.height - crop_h) * (0.3 + 0.4 * step))
        yield photo.resize((width, height), Image.BICUBIC, box=(left, top, left + crop_w, top + crop_h))


def write_program_stream(path: Path, frames: int, *, fps: str = "30000/1001", storage=(720, 480),
                         display="4:3", audio_tracks: int = 2) -> None:
    """Encode anamorphic MPEG-2 (stored 720×480, shown 4:3) with AC3 tracks into an MPEG program stream."""
    numerator, denominator = (int(x) for x in fps.split("/"))
    seconds = frames * denominator / numerator
    audio_inputs: list[str] = []
    for track in range(audio_tracks):
        tone = f"sine=frequency={330 + 110 * track}:sample_rate=48000:duration={seconds:.3f}"
        audio_inputs += ["-f", "lavfi", "-i", tone]
    maps = ["-map", "0:v"] + [arg for t in range(audio_tracks) for arg in ("-map", f"{t + 1}:a")]
    cmd = media.ffmpeg_args(
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{storage[0]}x{storage[1]}", "-framerate", fps, "-i", "pipe:0",
        *audio_inputs, *maps,
        "-vf", "scale=out_color_matrix=bt601:out_range=tv,format=yuv420p",
        "-c:v", "mpeg2video", "-b:v", "6M", "-maxrate", "9M", "-bufsize", "1835k", "-g", "15", "-bf", "2",
        "-aspect", display, "-color_primaries", "smpte170m", "-color_trc", "smpte170m", "-colorspace", "smpte170m",
        "-c:a", "ac3", "-b:a", "192k", "-ac", "2", "-f", "dvd", str(path),
    )
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    square = (storage[1] * 4 // 3, storage[1]) if display == "4:3" else (storage[1] * 16 // 9, storage[1])
    for frame in pan_frames(frames, square):
        proc.stdin.write(np.asarray(frame.resize(storage, Image.BICUBIC)).tobytes())
    proc.stdin.close()
    if proc.wait() != 0:
        raise RuntimeError(f"making {path} failed: {proc.stderr.read().decode(errors='replace')[-400:]}")


def split_vobs(stream: Path, parts: list[Path]) -> None:
    """Cut a program stream at sector boundaries into VOB parts, as DVD authoring does at 1 GiB."""
    data = stream.read_bytes()
    sectors = len(data) // SECTOR
    cuts = [round(sectors * k / len(parts)) * SECTOR for k in range(len(parts))] + [len(data)]
    for part, begin, end in zip(parts, cuts, cuts[1:]):
        part.write_bytes(data[begin:end])


def make_disc(out_dir: Path, *, frames: int = 60, vob_parts: int = 2) -> Path:
    """Write a VIDEO_TS folder with a split main title, a menu VOB and a short extra title; return it."""
    video_ts = Path(out_dir) / "VIDEO_TS"
    video_ts.mkdir(parents=True, exist_ok=True)
    main = video_ts / "title.mpg"
    write_program_stream(main, frames)
    split_vobs(main, [video_ts / f"VTS_01_{n}.VOB" for n in range(1, vob_parts + 1)])
    main.unlink()
    write_program_stream(video_ts / "VTS_01_0.VOB", 8, audio_tracks=1)  # a menu: never part of the title
    write_program_stream(video_ts / "VTS_02_1.VOB", 10, audio_tracks=1)  # an extra: not the main title
    return video_ts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--frames", type=int, default=60)
    args = parser.parse_args()
    print(make_disc(args.out_dir, frames=args.frames))


if __name__ == "__main__":
    main()
