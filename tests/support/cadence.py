"""Makers of small discs for every picture cadence a DVD can hold, made as real discs are made.

Soft telecine comes from mjpegtools' ``mpeg2enc -f 8 -p`` (23.976 progressive pictures with
repeat-first-field flags; FFmpeg's encoder cannot write those flags) multiplexed with ``mplex -f 8``;
hard telecine from FFmpeg's ``telecine``; truly interlaced video from ``tinterlace`` of 59.94p
motion; PAL phase-shifted film from ``phase=mode=t``.  Each maker also returns or writes the
lossless source pictures, so a test can say which source picture each output frame shows.
"""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np

from .discs import FILM_RATE, NTSC_RATE, PAL_RATE, _pan, _run

SOFT_FILM_FRAMES = 48  # 2.0 s of 23.976 film, 60 frames once the pulldown flags are honoured
MIXED_SOFT_FRAMES = 22  # film frames of the soft part; 55 fields leave the 3:2 phase mid-cycle
MIXED_HARD_FRAMES = 28  # film frames of the hard-telecined part after the cadence break
HYBRID_FILM_FRAMES = 40  # 50 telecined frames of film …
HYBRID_VIDEO_FRAMES = 40  # … then 40 frames (80 fields) of interlaced video
PAL_PHASE_FRAMES = 50  # 2 s of 25p
SMALL_FRAMES = 120  # the 88x72 progressive clip
SOFT_HYBRID_FILM_FRAMES = 20  # film coded with pulldown flags (25 frames shown) …
SOFT_HYBRID_VIDEO_FRAMES = 20  # … then 20 frames (40 fields) of interlaced video
SHORT_FILM_FRAMES = 16  # film (20 frames shown) before 60 frames of video: 5% repeated fields, under 15%
SHORT_FILM_VIDEO_FRAMES = 60


def _film(out: Path, ffmpeg: str, frames: int, *, photo: str = "rocket.jpg", first: int = 0,
          rate: Fraction = FILM_RATE, size: tuple[int, int] = (720, 480), speed: int = 6) -> Path:
    """`frames` lossless progressive pictures of a pan (frames `first`… of it), yuv420p."""
    src, pan = _pan(photo, rate, size[0], size[1], speed, first + frames)
    _run(ffmpeg, [*src, "-vf", f"{pan},trim=start_frame={first},setpts=PTS-STARTPTS,format=yuv420p",
                  "-frames:v", str(frames), "-c:v", "ffv1", "-f", "nut", str(out)])
    return out


def _mpeg2enc(ffmpeg: str, source: Path, out: Path, *, pulldown: bool, vf: str = "",
              interlaced: str = "p") -> Path:
    """Encode `source` (via a y4m pipe) with mpeg2enc in DVD mode; `pulldown` writes RFF flags."""
    y4m = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(source),
           *(["-vf", vf] if vf else []), "-pix_fmt", "yuv420p", "-f", "yuv4mpegpipe", "-"]
    enc = ["mpeg2enc", "-v", "0", "-f", "8", "-a", "2", "-b", "7000", "-q", "3", "-o", str(out)]
    if pulldown:
        enc.append("-p")
    else:
        # the y4m header tells mpeg2enc the field order of hard-telecined or interlaced input
        enc += ["-I", "0" if interlaced == "p" else "1", "-z", interlaced]
    with subprocess.Popen(y4m, stdout=subprocess.PIPE) as producer:
        result = subprocess.run(enc, stdin=producer.stdout, capture_output=True, text=True)
        producer.stdout.close()
    if producer.returncode or result.returncode:
        raise RuntimeError(f"mpeg2enc {out.name}: {result.stderr.strip()[-300:]}")
    return out


def _mplex(elementary: list[Path], out: Path) -> Path:
    # -M: a joined stream has a sequence end between its parts; keep one program, not one file per part
    result = subprocess.run(["mplex", "-v", "0", "-f", "8", "-M", "-o", str(out), *map(str, elementary)],
                            capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"mplex {out.name}: {result.stderr.strip()[-300:]}")
    return out


def soft_telecine(out_dir: Path, *, ffmpeg: str = "ffmpeg") -> tuple[Path, Path]:
    """(disc VOB, lossless film frames): 48 film frames coded progressive with pulldown flags."""
    out_dir = Path(out_dir)
    film = _film(out_dir / "soft_film.nut", ffmpeg, SOFT_FILM_FRAMES)
    m2v = _mpeg2enc(ffmpeg, film, out_dir / "soft.m2v", pulldown=True)
    return _mplex([m2v], out_dir / "soft_telecine.vob"), film


def mixed_telecine(out_dir: Path, *, ffmpeg: str = "ffmpeg") -> tuple[Path, Path]:
    """(disc VOB, lossless film frames): a soft-telecined segment joined to a hard-telecined one.

    The soft part's 22 film frames are 55 fields, so the hard part's 3:2 cadence starts half a
    cycle out of step: a fixed 1-in-5 decimation drops a real picture or keeps a repeat there.
    """
    out_dir = Path(out_dir)
    total = MIXED_SOFT_FRAMES + MIXED_HARD_FRAMES
    film = _film(out_dir / "mixed_film.nut", ffmpeg, total)
    soft = _mpeg2enc(ffmpeg, film, out_dir / "mixed_soft.m2v", pulldown=True,
                     vf=f"trim=end_frame={MIXED_SOFT_FRAMES}")
    hard = _mpeg2enc(ffmpeg, film, out_dir / "mixed_hard.m2v", pulldown=False, interlaced="t",
                     vf=f"trim=start_frame={MIXED_SOFT_FRAMES},setpts=PTS-STARTPTS,"
                        "telecine=first_field=top:pattern=23,setfield=tff")
    joined = out_dir / "mixed.m2v"
    joined.write_bytes(soft.read_bytes() + hard.read_bytes())
    return _mplex([joined], out_dir / "mixed_telecine.vob"), film


def hybrid(out_dir: Path, *, ffmpeg: str = "ffmpeg", film_frames: int = HYBRID_FILM_FRAMES,
           video_frames: int = HYBRID_VIDEO_FRAMES) -> tuple[Path, Path, Path]:
    """(disc VOB, lossless film frames, lossless 59.94p video pictures): hard-telecined film
    (40 frames → 50) followed by 40 frames of interlaced video woven from 80 pictures."""
    out_dir = Path(out_dir)
    film = _film(out_dir / "hybrid_film.nut", ffmpeg, film_frames)
    video = _film(out_dir / "hybrid_video.nut", ffmpeg, 2 * video_frames, photo="coffee.png",
                  rate=Fraction(60000, 1001), speed=4)
    out = out_dir / "hybrid.vob"
    _run(ffmpeg, [
        "-i", str(film), "-i", str(video), "-filter_complex",
        "[0:v]telecine=first_field=top:pattern=23,setfield=tff,setsar=1,setpts=N/(30000/1001)/TB[f];"
        "[1:v]tinterlace=mode=interleave_top,setfield=tff,setsar=1,setpts=N/(30000/1001)/TB[v];"
        "[f][v]concat=n=2:v=1:a=0,setsar=8/9[out]",
        "-map", "[out]", "-target", "ntsc-dvd", "-b:v", "6000k", "-flags", "+ilme+ildct", "-top", "1",
        "-aspect", "4:3", str(out)])
    return out, film, video


def soft_hybrid(out_dir: Path, *, ffmpeg: str = "ffmpeg") -> tuple[Path, Path, Path]:
    """(disc VOB, lossless film frames, lossless 59.94p video pictures): 20 film frames coded with
    pulldown flags (mpeg2enc -p, 25 frames shown) joined to 20 frames of interlaced video (mpeg2enc
    of 40 pictures woven with tinterlace): the common anime/TV case."""
    out_dir = Path(out_dir)
    film = _film(out_dir / "soft_hybrid_film.nut", ffmpeg, SOFT_HYBRID_FILM_FRAMES)
    video = _film(out_dir / "soft_hybrid_video.nut", ffmpeg, 2 * SOFT_HYBRID_VIDEO_FRAMES, photo="coffee.png",
                  rate=Fraction(60000, 1001), speed=4)
    soft = _mpeg2enc(ffmpeg, film, out_dir / "soft_hybrid_film.m2v", pulldown=True)
    woven = _mpeg2enc(ffmpeg, video, out_dir / "soft_hybrid_video.m2v", pulldown=False, interlaced="t",
                      vf="tinterlace=mode=interleave_top,setfield=tff,setsar=1")
    joined = out_dir / "soft_hybrid.m2v"
    joined.write_bytes(soft.read_bytes() + woven.read_bytes())
    return _mplex([joined], out_dir / "soft_hybrid.vob"), film, video


def pal_phase_shifted(out_dir: Path, *, ffmpeg: str = "ffmpeg") -> tuple[Path, Path]:
    """(disc VOB, lossless 25p film frames): PAL film whose fields are one field out of step."""
    out_dir = Path(out_dir)
    film = _film(out_dir / "pal_film.nut", ffmpeg, PAL_PHASE_FRAMES, photo="chelsea.png", rate=PAL_RATE,
                 size=(720, 576))
    out = out_dir / "pal_phase.vob"
    _run(ffmpeg, ["-i", str(film), "-vf", "phase=mode=t,setfield=tff,setsar=16/15", "-target", "pal-dvd",
                  "-b:v", "6000k", "-flags", "+ilme+ildct", "-top", "1", "-aspect", "4:3", str(out)])
    return out, film


def small_progressive(out_dir: Path, *, ffmpeg: str = "ffmpeg") -> Path:
    """The issue's clip: 120 frames of a real progressive pan at 29.97, scaled to 88x72, lossless."""
    out = Path(out_dir) / "small_progressive.mkv"
    src, pan = _pan("astronaut.png", NTSC_RATE, 720, 576, 3, SMALL_FRAMES)
    _run(ffmpeg, [*src, "-vf", f"{pan},scale=88:72:flags=bicubic,format=yuv420p", "-frames:v",
                  str(SMALL_FRAMES), "-c:v", "ffv1", str(out)])
    return out


def full_range_capture(out_dir: Path, *, ffmpeg: str = "ffmpeg") -> Path:
    """A full-range (0-255, tagged pc) progressive capture: a pan whose darks reach 0 and lights 255."""
    out = Path(out_dir) / "full_range.mkv"
    src, pan = _pan("coffee.png", NTSC_RATE, 320, 240, 2, 30)
    # stretch the picture over the full range, then store it as full-range BT.601 4:2:0
    _run(ffmpeg, [*src, "-vf", f"{pan},normalize=blackpt=black:whitept=white:smoothing=0,"
                  "scale=out_color_matrix=bt601:out_range=pc,format=yuv420p", "-frames:v", "30",
                  "-color_range", "pc", "-c:v", "ffv1", str(out)])
    return out


def stored_luma_range(video: Path, *, ffmpeg: str = "ffmpeg") -> tuple[int, int]:
    """The lowest and highest luma code values stored in `video`, read without any range conversion."""
    cmd = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(video), "-map", "0:v:0",
           "-vf", "extractplanes=y", "-f", "rawvideo", "-"]
    raw = np.frombuffer(subprocess.run(cmd, capture_output=True, check=True).stdout, np.uint8)
    return int(raw.min()), int(raw.max())


def luma_frames(video: Path, *, ffmpeg: str = "ffmpeg", size: tuple[int, int] = (96, 64),
                vf: str = "") -> np.ndarray:
    """Every frame of `video` as small float32 luma pictures, shape (frames, height, width)."""
    chain = ",".join(f for f in (vf, f"scale={size[0]}:{size[1]}:flags=area", "format=gray") if f)
    cmd = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(video), "-map", "0:v:0",
           "-vf", chain, "-fps_mode", "passthrough", "-f", "rawvideo", "-"]
    raw = subprocess.run(cmd, capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, size[1], size[0]).astype(np.float32)


def best_matches(frames: np.ndarray, reference: np.ndarray) -> list[int]:
    """For each frame, the index of the reference picture it is closest to (mean squared error)."""
    errors = ((frames[:, None] - reference[None]) ** 2).mean(axis=(2, 3))
    return [int(i) for i in errors.argmin(axis=1)]
