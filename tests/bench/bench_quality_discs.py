"""The quality benchmark's discs: DVDs authored with mpeg2enc, mplex and dvdauthor from footage whose truth
is known, one for each kind of picture the front end tells apart.

The truth is a camera-like move (pan, vertical bob) over a real photograph at twice the DVD's square-pixel
size (1536x1152 for PAL 4:3, 1280x960 for NTSC 4:3), in RGB, the photograph at its own resolution inside
the scoring window (see truth_graph). Mastering scales it to 720 wide
with Lanczos and converts it with the BT.601 matrix to limited-range 4:2:0, as a DVD master is made; the
kinds then differ in how the pictures are coded:

- pal_film: 25p progressive (PAL film, each picture once);
- ntsc_hard: 23.976 film telecined 3:2 into 29.97i (FFmpeg's telecine), coded interlaced;
- ntsc_soft: 23.976 film coded progressive with repeat-first-field flags (mpeg2enc -p);
- video: 50p truth woven into 25i top-field-first (interlaced camera video);
- tape: 25p with a VHS-like capture's damage (remaster.training.degrade: soft luma, 4:1:1-like chroma with
  bleed, line jitter and head-switching, noise) before MPEG-2.
The truth is kept only inside a scoring window (WINDOW) so that the costly models run on a small crop.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[2] / "workflow" / "scripts")]

from support.authoring import dvdauthor, marker_audio  # noqa: E402
from support.discs import PHOTOS  # noqa: E402

SECONDS = 2.0  # long enough for the front end's detectors (idet, the cadence finder)


@dataclass(frozen=True)
class Kind:
    name: str
    system: str  # pal | ntsc
    truth_rate: Fraction
    coding: str  # progressive | hard | soft | interlaced
    photo: str
    speed: int  # truth pixels a truth frame
    tape: bool = False
    cel: bool = False  # the photograph drawn as cel animation: flat colours, dark outlines
    description: str = ""

    @property
    def dvd_size(self) -> tuple[int, int]:
        return (720, 576) if self.system == "pal" else (720, 480)

    @property
    def truth_size(self) -> tuple[int, int]:
        # twice the DVD's 4:3 square-pixel geometry (768x576 or 640x480)
        return (1536, 1152) if self.system == "pal" else (1280, 960)

    @property
    def crop(self) -> tuple[int, int, int, int]:
        """The scoring window in DVD pixels (W, H, X, Y): 192x144 square pixels in the picture's middle."""
        return (180, 144, 270, 216) if self.system == "pal" else (216, 144, 252, 168)

    @property
    def window(self) -> tuple[int, int, int, int]:
        """The same window in truth pixels (W, H, X, Y): 384x288."""
        w, h, x, y = self.crop
        sar = Fraction(16, 15) if self.system == "pal" else Fraction(8, 9)
        return int(w * sar * 2), h * 2, int(x * sar * 2), y * 2

    @property
    def truth_frames(self) -> int:
        return int(SECONDS * self.truth_rate)


KINDS = {k.name: k for k in (
    Kind("pal_film", "pal", Fraction(25), "progressive", "astronaut.png", 6, description="PAL film, 25p"),
    Kind("ntsc_hard", "ntsc", Fraction(24000, 1001), "hard", "rocket.jpg", 6,
         description="NTSC film, hard 3:2 pulldown (29.97i)"),
    Kind("ntsc_soft", "ntsc", Fraction(24000, 1001), "soft", "coffee.png", 6, cel=True,
         description="NTSC animation (cel-drawn), soft pulldown (RFF flags)"),
    Kind("video", "pal", Fraction(50), "interlaced", "rocket.jpg", 4, description="interlaced video, 25i from 50p"),
    Kind("tape", "pal", Fraction(25), "progressive", "rocket.jpg", 5, tape=True,
         description="VHS-like capture, 25p"),
)}


def _ffmpeg() -> str:
    from remaster.run import media
    return media.tool("ffmpeg")


def cel_photo(name: str) -> Path:
    """The photograph drawn as cel animation (flat areas of 20 colours, dark outlines where they meet), as
    anime DVDs hold it; written once into the temporary folder."""
    import tempfile

    from PIL import Image, ImageFilter

    out = Path(tempfile.gettempdir()) / f"remaster-bench-cel-{Path(name).stem}.png"
    if out.is_file():
        return out
    photo = Image.open(PHOTOS / name).convert("RGB").filter(ImageFilter.ModeFilter(7))
    flat = np.asarray(photo.quantize(colors=20, dither=Image.Dither.NONE).convert("RGB").filter(ImageFilter.ModeFilter(5)))
    index = flat.astype(np.int32) @ np.array([65536, 256, 1])
    edges = np.zeros(index.shape, bool)
    edges[1:] |= index[1:] != index[:-1]
    edges[:, 1:] |= index[:, 1:] != index[:, :-1]
    lines = Image.fromarray((edges * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.6))
    ink = np.asarray(lines, dtype=np.float32)[..., None] / 255 * 0.85
    drawn = (flat * (1 - ink) + 20 * ink).astype(np.uint8)
    partial = out.with_name(out.name + ".partial.png")
    Image.fromarray(drawn).save(partial)
    partial.replace(out)
    return out


MARGIN = 32  # truth pixels of native detail around the scoring window


def truth_graph(kind: Kind) -> tuple[list[str], str]:
    """ffmpeg input args and the filter giving the truth's frames at the truth's size and rate.

    The photographs are smaller than a truth frame (600x400 for 1536x1152), and a photograph enlarged to
    fill it would be a soft truth that any upscale matches. So the picture around the scoring window is
    the photograph enlarged (it moves, for the front end's detectors), and the window and a margin round it
    hold the photograph at its own resolution, panned and bobbed as a camera moves."""
    from PIL import Image

    width, height = kind.truth_size
    frames = kind.truth_frames
    w, h, x, y = kind.window
    inner_w, inner_h = w + 2 * MARGIN, h + 2 * MARGIN
    photo = cel_photo(kind.photo) if kind.cel else PHOTOS / kind.photo
    photo_w, photo_h = Image.open(photo).size
    if photo_w < inner_w or photo_h < inner_h:
        raise ValueError(f"{kind.photo}: {photo_w}x{photo_h} is smaller than the {inner_w}x{inner_h} window")
    speed = min(kind.speed, (photo_w - inner_w) / frames)
    bob = (photo_h - inner_h) / 2
    src = ["-framerate", str(kind.truth_rate), "-loop", "1", "-i", str(photo)]
    graph = (f"split[a][b];"
             f"[a]scale={width + kind.speed * (frames + 2)}:{height * 5 // 4}:force_original_aspect_ratio=increase,"
             f"crop={width}:{height}:x='n*{kind.speed}':y='{height // 16}+{height // 24}*sin(n/11)'[bg];"
             f"[b]crop={inner_w}:{inner_h}:x='floor(n*{speed:.4f})':y='floor({bob:.1f}+{bob * 0.8:.1f}*sin(n/9))'[fg];"
             f"[bg][fg]overlay={x - MARGIN}:{y - MARGIN},trim=end_frame={frames}")
    return src, graph


def truth_window(kind: Kind, count: int | None = None) -> np.ndarray:
    """The truth's frames inside the scoring window, RGB uint8 (count×H×W×3)."""
    src, graph = truth_graph(kind)
    w, h, x, y = kind.window
    raw = subprocess.run([_ffmpeg(), "-v", "error", "-nostdin", *src, "-vf", f"{graph},crop={w}:{h}:{x}:{y},format=rgb24",
                          "-frames:v", str(count or kind.truth_frames), "-f", "rawvideo", "pipe:1"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3)


MASTER = "scale={w}:{h}:flags=lanczos+accurate_rnd+full_chroma_int:out_color_matrix=bt601:out_range=tv"


def _sd_rgb(kind: Kind) -> np.ndarray:
    src, graph = truth_graph(kind)
    w, h = kind.dvd_size
    raw = subprocess.run([_ffmpeg(), "-v", "error", "-nostdin", *src, "-vf",
                          f"{graph},scale={w}:{h}:flags=lanczos+accurate_rnd+full_chroma_int,format=rgb24",
                          "-f", "rawvideo", "pipe:1"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3)


def tape_damage(frames: np.ndarray, seed: int = 0) -> np.ndarray:
    """A VHS-like capture of SD RGB frames: soft luma, narrow bleeding chroma, jittered lines, noise."""
    from remaster.training import degrade

    out = []
    for n, frame in enumerate(frames):
        rng = np.random.default_rng(seed * 1000 + n)
        image = frame.astype(np.float32) / 255
        image = degrade.blur(image, rng, sigma=1.1, sigma_y=0.6)
        image = degrade.chroma(image, rng, subsample=4, vertical=1, bleed=2.5, shift=1.0)
        image = degrade.vhs(image, rng, lines=6, offset=12.0, noise=0.15, jitter=0.4)
        image = degrade.grain(image, rng, strength=0.035, size=1.0, colour=0.4)
        out.append((np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8))
    return np.stack(out)


def _y4m(kind: Kind) -> bytes:
    """The DVD's pictures as a y4m stream for mpeg2enc (BT.601, limited range, 4:2:0)."""
    w, h = kind.dvd_size
    master = MASTER.format(w=w, h=h)
    coding = {"progressive": "", "soft": "",
              "hard": ",telecine=first_field=top:pattern=23,setfield=tff",
              "interlaced": ",tinterlace=mode=interleave_top,setfield=tff"}[kind.coding]
    tail = ["-pix_fmt", "yuv420p", "-strict", "-1", "-f", "yuv4mpegpipe", "pipe:1"]
    if kind.tape:
        frames = tape_damage(_sd_rgb(kind))
        cmd = [_ffmpeg(), "-v", "error", "-nostdin", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
               "-framerate", str(kind.truth_rate), "-i", "pipe:0",
               "-vf", "scale=out_color_matrix=bt601:out_range=tv:flags=accurate_rnd+full_chroma_int", *tail]
        return subprocess.run(cmd, input=frames.tobytes(), capture_output=True, check=True).stdout
    src, graph = truth_graph(kind)
    cmd = [_ffmpeg(), "-v", "error", "-nostdin", *src, "-vf", f"{graph},{master}{coding}", *tail]
    return subprocess.run(cmd, capture_output=True, check=True).stdout


def author(kind: Kind, work: Path) -> Path:
    """Author `kind`'s DVD in `work`; return its VIDEO_TS (reused when already there)."""
    video_ts = work / "DVD" / "VIDEO_TS"
    if (video_ts / "VTS_01_1.VOB").is_file():
        return video_ts
    work.mkdir(parents=True, exist_ok=True)
    video = work / "video.m2v"
    frame_rate = {"pal": "3", "ntsc": "4"}[kind.system]
    enc = ["mpeg2enc", "-v", "0", "-f", "8", "-a", "2", "-b", "6000", "-q", "5", "-n", kind.system[0],
           "-o", str(video)]
    if kind.coding == "soft":
        enc += ["-F", "1", "-p"]
    elif kind.coding in ("hard", "interlaced"):
        enc += ["-F", frame_rate, "-I", "1", "-z", "t"]
    else:
        enc += ["-F", frame_rate, "-I", "0"]
    result = subprocess.run(enc, input=_y4m(kind), capture_output=True)
    if result.returncode != 0:
        raise RuntimeError(f"mpeg2enc {kind.name}: {result.stderr.decode(errors='replace')[-400:]}")
    audio = marker_audio(work / "audio.ac3", SECONDS + 0.5, 0.5, "ac3")
    program = work / "title.mpg"
    subprocess.run(["mplex", "-v", "0", "-f", "8", "-o", str(program), str(video), str(audio)], check=True,
                   capture_output=True)
    if kind.system == "pal":
        return _dvdauthor_pal(work, program)
    return dvdauthor(work, [[(program, "0")]], audio=[("ac3", "en")])


def _dvdauthor_pal(work: Path, program: Path) -> Path:
    import os
    import shutil

    dest = work / "DVD"
    shutil.rmtree(dest, ignore_errors=True)
    xml = work / "dvd.xml"
    xml.write_text(f'<dvdauthor dest="{dest}"><vmgm/><titleset><titles><video format="pal" aspect="4:3"/>'
                   f'<audio format="ac3" lang="en"/><pgc><vob file="{program}" chapters="0"/></pgc>'
                   "</titles></titleset></dvdauthor>\n")
    subprocess.run(["dvdauthor", "-x", str(xml)], check=True, capture_output=True, env={**os.environ, "VIDEO_FORMAT": "PAL"})
    return dest / "VIDEO_TS"
