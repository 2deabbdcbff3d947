"""Generators for small synthetic DVD test discs.

Every generator takes an output directory, writes a few seconds of MPEG-2 video in a DVD
program stream (``-f dvd``, 720x480 NTSC or 720x576 PAL) with AC3 audio, and returns the
path(s) it wrote.  The picture is a slow pan over one of the real photographs shipped in
``workflow/resources/demo/photos`` so that field-based statistics see genuine motion and
detail.  The facts each disc is built to have (frame counts, field order, bars) are the
module constants below, so tests can compare the analysis against the truth.
"""

from __future__ import annotations

import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

PHOTOS = Path(__file__).resolve().parents[2] / "workflow" / "resources" / "demo" / "photos"

NTSC_RATE = Fraction(30000, 1001)
FILM_RATE = Fraction(24000, 1001)
PAL_RATE = Fraction(25)

TELECINE_FILM_FRAMES = 96  # 4.0 s of 23.976 film; a multiple of 4 so the 3:2 cadence closes
TELECINE_VIDEO_FRAMES = TELECINE_FILM_FRAMES * 5 // 4
PAL_FRAMES = 75  # 3 s of 25i
BFF_FRAMES = 90  # 3 s of 29.97i
RIP_MAIN_FRAMES = 90  # 3 s of 29.97p split over three VOBs
AUDIO_DELAY = 0.3  # seconds the audio of the BFF capture starts after the video
PROGRESSIVE_FRAMES = 60
LETTERBOX_BAR = 60  # rows of black above and below the 16:9 picture inside a 4:3 NTSC frame
CHAPTERS = (0.0, 1.5, 3.0)  # chapter starts of the dvdauthor main title, on GOP boundaries
MAIN_SECONDS = 4.5
TRAILER_SECONDS = 1.5


def _run(ffmpeg: str, args: list[str]) -> None:
    # -nostdin: a generator run from pytest must never wait on the terminal
    cmd = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {result.stderr.strip()}")


def _pan(photo: str, rate: Fraction, width: int, height: int, speed: int,
         frames: int = 200) -> tuple[list[str], str]:
    """Input args and a filter that pans a width x height window over an enlarged photo
    for `frames` frames, `speed` pixels a frame to the right."""
    src = ["-framerate", str(rate), "-loop", "1", "-i", str(PHOTOS / photo)]
    # enlarge to cover the whole sweep; the slow vertical bob gives the field statistics
    # vertical motion as well as horizontal
    graph = (
        f"scale={width + speed * (frames + 2)}:{height * 3 // 2}:force_original_aspect_ratio=increase,"
        f"crop={width}:{height}:"
        f"x='n*{speed}':y='{height // 8}+{height // 12}*sin(n/9)'"
    )
    return src, graph


def _tone(seconds: float, freq: int) -> list[str]:
    return ["-f", "lavfi", "-i", f"sine=frequency={freq}:sample_rate=48000:duration={seconds}"]


def ntsc_telecine(out_dir: Path, *, ffmpeg: str = "ffmpeg") -> Path:
    """NTSC hard-telecined film: 96 frames of 23.976p run through 3:2 pulldown to 120 frames
    of 29.97i (TFF), encoded interlaced and *flagged 16:9 although the picture is 4:3*."""
    out = Path(out_dir) / "ntsc_telecine.vob"
    src, pan = _pan("rocket.jpg", FILM_RATE, 640, 480, 5, TELECINE_FILM_FRAMES)
    _run(ffmpeg, [
        *src, *_tone(5.0, 440),
        "-filter_complex", f"[0:v]{pan},scale=720:480,setsar=8/9,"
        f"trim=end_frame={TELECINE_FILM_FRAMES},telecine=first_field=top:pattern=23,setfield=tff[v]",
        "-map", "[v]", "-map", "1:a", "-target", "ntsc-dvd", "-b:v", "4000k",
        "-flags", "+ilme+ildct", "-top", "1", "-aspect", "16:9", "-shortest", str(out),
    ])
    return out


def film_reference(out_dir: Path, *, ffmpeg: str = "ffmpeg") -> Path:
    """The 96 progressive film frames of :func:`ntsc_telecine` before pulldown, lossless."""
    out = Path(out_dir) / "film_reference.nut"
    src, pan = _pan("rocket.jpg", FILM_RATE, 640, 480, 5, TELECINE_FILM_FRAMES)
    _run(ffmpeg, [*src, "-vf", f"{pan},scale=720:480,setsar=8/9", "-frames:v",
                  str(TELECINE_FILM_FRAMES), "-c:v", "ffv1", str(out)])
    return out


def pal_interlaced_anamorphic(out_dir: Path, *, ffmpeg: str = "ffmpeg") -> Path:
    """PAL 25i TFF camera video, 16:9 anamorphic: 50p 1024x576 motion squeezed to 720x576
    and woven into fields with ``tinterlace=interleave_top``."""
    out = Path(out_dir) / "pal_interlaced.vob"
    src, pan = _pan("chelsea.png", Fraction(50), 1024, 576, 6, 2 * PAL_FRAMES)
    _run(ffmpeg, [
        *src, *_tone(3.0, 330),
        "-filter_complex", f"[0:v]{pan},scale=720:576,setsar=64/45,"
        f"tinterlace=mode=interleave_top,setfield=tff,trim=end_frame={PAL_FRAMES}[v]",
        "-map", "[v]", "-map", "1:a", "-target", "pal-dvd", "-b:v", "5000k",
        "-flags", "+ilme+ildct", "-top", "1", "-aspect", "16:9", "-shortest", str(out),
    ])
    return out


def ntsc_interlaced_bff_late_audio(out_dir: Path, *, ffmpeg: str = "ffmpeg") -> Path:
    """NTSC 29.97i *bottom* field first capture (59.94p motion woven with
    ``interleave_bottom``), 4:3, whose AC3 audio starts 0.3 s after the first video frame."""
    out = Path(out_dir) / "ntsc_bff.vob"
    src, pan = _pan("coffee.png", Fraction(60000, 1001), 640, 480, 4, 2 * BFF_FRAMES)
    _run(ffmpeg, [
        *src, "-itsoffset", str(AUDIO_DELAY), *_tone(2.7, 550),
        "-filter_complex", f"[0:v]{pan},scale=720:480,setsar=8/9,"
        f"tinterlace=mode=interleave_bottom,setfield=bff,trim=end_frame={BFF_FRAMES}[v]",
        "-map", "[v]", "-map", "1:a", "-target", "ntsc-dvd", "-b:v", "5000k",
        "-flags", "+ilme+ildct", "-top", "0", "-aspect", "4:3", str(out),
    ])
    return out


def ntsc_progressive_letterbox(out_dir: Path, *, ffmpeg: str = "ffmpeg") -> Path:
    """NTSC progressive 29.97p, 4:3 frame carrying a 16:9 picture letterboxed with 60-row
    black bars top and bottom (the picture is 720x360)."""
    out = Path(out_dir) / "ntsc_letterbox.vob"
    src, pan = _pan("astronaut.png", NTSC_RATE, 640, 360, 4, PROGRESSIVE_FRAMES)
    _run(ffmpeg, [
        *src, *_tone(2.0, 660),
        "-filter_complex", f"[0:v]{pan},scale=720:360,"
        f"pad=720:480:0:{LETTERBOX_BAR}:black,setsar=8/9,trim=end_frame={PROGRESSIVE_FRAMES}[v]",
        "-map", "[v]", "-map", "1:a", "-target", "ntsc-dvd", "-b:v", "4000k",
        "-aspect", "4:3", "-shortest", str(out),
    ])
    return out


def _program(out: Path, ffmpeg: str, seconds: float, photo: str, languages: int = 1,
             aspect: str = "4:3", chapters: tuple[float, ...] = ()) -> Path:
    """A progressive NTSC VOB with `languages` AC3 tracks, GOPs closed at `chapters`."""
    frames = round(seconds * NTSC_RATE)
    src, pan = _pan(photo, NTSC_RATE, 640, 480, 3, frames)
    tones = [arg for i in range(languages) for arg in _tone(seconds, 440 + 110 * i)]
    maps = [arg for i in range(languages) for arg in ("-map", f"{i + 1}:a")]
    # 15-frame GOPs (0.5 s) so that chapters on half seconds fall on VOBU starts
    keys = ["-g", "15"] if chapters else []
    _run(ffmpeg, [
        *src, *tones, "-filter_complex",
        f"[0:v]{pan},scale=720:480,trim=end_frame={frames}[v]", "-map", "[v]", *maps,
        "-target", "ntsc-dvd", "-b:v", "3000k", "-aspect", aspect, *keys, "-shortest", str(out),
    ])
    return out


def multi_vob_rip(out_dir: Path, *, ffmpeg: str = "ffmpeg") -> Path:
    """A VIDEO_TS folder holding only VOBs, no IFO/BUP: the 3 s main feature (90 frames)
    split across VTS_01_1..3.VOB at 2048-byte sector boundaries (as rippers split at 1 GiB),
    a 1 s extra VTS_02_1.VOB, and menus VIDEO_TS.VOB and VTS_02_0.VOB that are each as big
    as the whole main feature.  Returns the VIDEO_TS folder."""
    video_ts = Path(out_dir) / "rip" / "VIDEO_TS"
    video_ts.mkdir(parents=True, exist_ok=True)
    main = _program(Path(out_dir) / "rip_main.vob", ffmpeg, 3.0, "rocket.jpg")
    _program(video_ts / "VTS_02_1.VOB", ffmpeg, 1.0, "coffee.png")
    # menus bigger than the main feature's VTS would win if a size heuristic counted them
    shutil.copyfile(main, video_ts / "VTS_02_0.VOB")
    shutil.copyfile(main, video_ts / "VIDEO_TS.VOB")
    data = main.read_bytes()
    sectors = len(data) // 2048
    cut1, cut2 = sectors // 3 * 2048, sectors * 2 // 3 * 2048
    for i, chunk in enumerate((data[:cut1], data[cut1:cut2], data[cut2:]), start=1):
        (video_ts / f"VTS_01_{i}.VOB").write_bytes(chunk)
    main.unlink()
    return video_ts


def dvdauthor_disc(out_dir: Path, *, ffmpeg: str = "ffmpeg", dvdauthor: str = "dvdauthor") -> Path:
    """A real DVD-Video VIDEO_TS with IFOs authored by dvdauthor: title 1 (VTS 1) is a 1.5 s
    trailer; title 2 (VTS 2) is the 4.5 s main feature, 16:9, with English and French AC3
    tracks, a German subpicture declaration and chapters at 0, 1.5 and 3.0 s.
    Returns the VIDEO_TS folder."""
    work = Path(out_dir) / "authored"
    work.mkdir(parents=True, exist_ok=True)
    trailer = _program(work / "trailer.vob", ffmpeg, TRAILER_SECONDS, "coffee.png")
    main = _program(work / "main.vob", ffmpeg, MAIN_SECONDS, "rocket.jpg", languages=2,
                    aspect="16:9", chapters=CHAPTERS)
    chapters = ",".join(f"0:{c:04.1f}" for c in CHAPTERS)
    xml = work / "dvd.xml"
    xml.write_text(f"""<dvdauthor dest="{work / 'DVD'}">
  <vmgm />
  <titleset>
    <titles>
      <video format="ntsc" aspect="4:3" />
      <audio lang="en" />
      <pgc><vob file="{trailer}" /></pgc>
    </titles>
  </titleset>
  <titleset>
    <titles>
      <video format="ntsc" aspect="16:9" widescreen="nopanscan" />
      <audio lang="en" />
      <audio lang="fr" />
      <subpicture lang="de" />
      <pgc><vob file="{main}" chapters="{chapters}" /></pgc>
    </titles>
  </titleset>
</dvdauthor>
""")
    # dvdauthor refuses to write into an existing disc tree
    shutil.rmtree(work / "DVD", ignore_errors=True)
    result = subprocess.run([dvdauthor, "-x", str(xml)], capture_output=True, text=True,
                            env={"VIDEO_FORMAT": "NTSC", "PATH": "/usr/bin:/bin"})
    if result.returncode != 0:
        raise RuntimeError(f"dvdauthor -x {xml}: {result.stderr.strip()[-500:]}")
    return work / "DVD" / "VIDEO_TS"
