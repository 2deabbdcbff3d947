"""Tiny clips in the forms people keep their video in: every common rate in MKV, MP4, AVI, MPEG-TS and VOB,
made with Debian's ffmpeg (x264, Xvid, MPEG-2) as a capture tool or a ripper would make them."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

SIZE = "160x120"
SECONDS = 0.6


@dataclass(frozen=True)
class Clip:
    """One test source: its name (the master's), rate, container and the encoder arguments making it."""

    name: str
    rate: str  # ffmpeg's -r form; "vfr" for a variable-rate clip
    container: str
    video: tuple[str, ...]
    audio: tuple[str, ...]
    suffix: str


X264 = ("-c:v", "libx264", "-preset", "fast", "-bf", "3", "-pix_fmt", "yuv420p")  # B-frames, as rips have
AAC = ("-c:a", "aac", "-b:a", "96k")
CLIPS = [
    Clip("r23976_mkv", "24000/1001", "matroska", X264, AAC, "mkv"),
    Clip("r24_mkv", "24", "matroska", X264, AAC, "mkv"),
    Clip("r25_ts", "25", "mpegts", X264, AAC, "ts"),  # AAC with ADTS headers
    # Xvid-style MPEG-4 Part 2 in AVI: packed B-frames, as DivX/Xvid rips store them
    Clip("r2997_avi", "30000/1001", "avi", ("-c:v", "libxvid", "-bf", "2", "-q:v", "4"),
         ("-c:a", "libmp3lame", "-b:a", "128k"), "avi"),
    Clip("r30_mp4", "30", "mp4", X264, AAC, "mp4"),
    Clip("r50_mkv", "50", "matroska", X264, ("-c:a", "ac3", "-b:a", "192k"), "mkv"),
    Clip("r5994_ts", "60000/1001", "mpegts", ("-c:v", "mpeg2video", "-q:v", "4", "-bf", "2"),
         ("-c:a", "mp2", "-b:a", "192k"), "ts"),
    Clip("r60_mp4", "60", "mp4", X264, AAC, "mp4"),
    Clip("vfr_mkv", "vfr", "matroska", X264, AAC, "mkv"),
]


def make_clip(folder: Path, clip: Clip) -> Path:
    """Write `clip` into `folder`; a variable-rate clip is 30 fps with every third frame of its first half
    dropped (steps of 33 and 67 ms), as a phone or screen recorder writes."""
    out = folder / f"{clip.name}.{clip.suffix}"
    rate = "30" if clip.rate == "vfr" else clip.rate
    video = ["-f", "lavfi", "-i", f"testsrc2=size={SIZE}:rate={rate}:duration={SECONDS}"]
    vf = ["-vf", "select='gte(n\\,9)+mod(n\\,3)'", "-fps_mode", "vfr"] if clip.rate == "vfr" else []
    audio = ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={SECONDS}"]
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *video, *audio, *vf, *clip.video, *clip.audio,
                    "-f", clip.container, str(out)], check=True)
    return out


def decoded_frames(path: Path) -> list[float]:
    """Times of the frames a player shows (decoded, best-effort), from Debian's ffprobe; a picture decoded
    without a time (a packed-B-frame AVI's last) is shown one usual step after the last timed one."""
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "frame=best_effort_timestamp_time", "-of", "csv=p=0", f"file:{path}"],
                         capture_output=True, text=True, check=True).stdout
    values = [line.strip().rstrip(",") for line in out.splitlines() if line.strip().rstrip(",")]
    timed = sorted(float(v) for v in values if v != "N/A")
    steps = sorted(b - a for a, b in zip(timed, timed[1:]))
    step = steps[len(steps) // 2] if steps else 0.0
    return timed + [timed[-1] + step * k for k in range(1, values.count("N/A") + 1)]


def two_title_disc(folder: Path, frames: int = 24, second_frames: int | None = None) -> Path:
    """A dvdauthor VIDEO_TS whose one title set holds two titles of `frames` (and `second_frames`) NTSC
    frames."""
    import shutil

    from remaster.demo import write_program_stream

    folder.mkdir(parents=True, exist_ok=True)
    vobs = [folder / f"ep{n}.mpg" for n in (1, 2)]
    for vob, count in zip(vobs, (frames, second_frames or frames)):
        write_program_stream(vob, count, storage=(352, 240), audio_tracks=1)
    xml = folder / "dvd.xml"
    xml.write_text(f"""<dvdauthor dest="{folder / 'DVD'}"><vmgm /><titleset><titles>
<video format="ntsc" aspect="4:3" /><audio lang="en" />
<pgc><vob file="{vobs[0]}" /></pgc><pgc><vob file="{vobs[1]}" /></pgc>
</titles></titleset></dvdauthor>
""")
    shutil.rmtree(folder / "DVD", ignore_errors=True)
    subprocess.run(["dvdauthor", "-x", str(xml)], capture_output=True, check=True,
                   env={"VIDEO_FORMAT": "NTSC", "PATH": "/usr/bin:/bin"})
    return folder / "DVD" / "VIDEO_TS"


def dvd_image(video_ts: Path, out: Path) -> Path:
    """A DVD-Video ISO image of a VIDEO_TS folder, as genisoimage -dvd-video writes it (UDF bridge)."""
    import shutil

    root = out.parent / f"{out.stem} root"
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(video_ts, root / "VIDEO_TS")
    subprocess.run(["genisoimage", "-quiet", "-dvd-video", "-V", "MY_DISC", "-o", str(out), str(root)], check=True)
    shutil.rmtree(root)
    return out


REMUX_FILM_FRAMES = 48  # soft-telecined film: 60 frames shown by a player, 48 pictures


def dvdvideo_remux(work: Path) -> Path:
    """A title remuxed as `ffmpeg -f dvdvideo … -c copy` (and MakeMKV) writes it: MPEG-2 with its pulldown
    flags (soft telecine from mpeg2enc -p), AC3 in English, a VobSub track in French with its palette in
    the track's private data, two chapters."""
    from . import authoring, cadence

    work.mkdir(parents=True, exist_ok=True)
    film = cadence._film(work / "film.nut", "ffmpeg", REMUX_FILM_FRAMES)
    m2v = cadence._mpeg2enc("ffmpeg", film, work / "soft.m2v", pulldown=True)
    ac3 = authoring.marker_audio(work / "sound.ac3", REMUX_FILM_FRAMES * 1001 / 24000, 0.5, "ac3")
    mpg = work / "soft.mpg"
    subprocess.run(["mplex", "-v", "0", "-f", "8", "-o", str(mpg), str(m2v), str(ac3)], check=True,
                   capture_output=True)
    with_subs = authoring.add_subpictures(mpg, work, [[(False, 0.2, 1.2)]])
    video_ts = authoring.dvdauthor(work, [[(with_subs, "0,1.0")]], audio=[("ac3", "en")], subtitles=["fr"],
                                   palette=True)
    out = work / "title 1.mkv"
    subprocess.run([_ffmpeg8(), "-nostdin", "-v", "error", "-y", "-f", "dvdvideo", "-title", "1", "-i", str(video_ts),
                    "-map", "0", "-c", "copy", f"file:{out}"], check=True, capture_output=True)
    return out


def _ffmpeg8() -> str:
    """The pinned FFmpeg 8 (Debian's 5.1 has no dvdvideo demuxer)."""
    from remaster.run import media

    return media.tool("ffmpeg")


def ps_capture(folder: Path) -> Path:
    """An MPEG-2 program stream as a capture card or a DVD recorder writes it: 29.97 fps, MP2 sound."""
    out = folder / "capture.mpg"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc2=size=352x240:rate=30000/1001:duration={SECONDS}", "-f", "lavfi", "-i",
                    f"sine=frequency=440:sample_rate=48000:duration={SECONDS}", "-c:v", "mpeg2video", "-q:v", "4",
                    "-bf", "2", "-c:a", "mp2", "-b:a", "192k", "-f", "vob", str(out)], check=True)
    return out
