"""Clean-up before the upscale: named presets of FFmpeg 8's restoration filters.

A model enlarges whatever it is given, MPEG-2 blocks and tape noise included, and per-frame models turn
noise into shimmer. A preset runs in the prepared title's filter chain after IVTC/deinterlace (the filters
then see whole progressive pictures) and before crop and resize. Which preset suits which kind of disc is
measured by tests/bench/bench_quality.py against a known truth (docs/benchmarks.md); the `cleanup` key's
default is the one that measurement supports.
"""

from __future__ import annotations

from ..run.errors import RemasterError

# name → FFmpeg filter (empty: nothing). Strengths are for 8-bit SD: light enough to keep film grain's
# texture where a model can use it, strong enough to take MPEG-2 ringing and tape noise off.
PRESETS: dict[str, str] = {
    "none": "",
    # MPEG-2's 8×8 block edges, smoothed only where the step across an edge is small (real edges stay)
    "deblock": "deblock=filter=strong:block=8",
    # fast spatio-temporal low-pass: tape noise and chroma noise (luma 3/2.25, chroma 4/3)
    "hqdn3d": "hqdn3d=3:4:2.25:3",
    # non-local means: keeps edges better than hqdn3d; slower (about 1 s a 720x576 frame on one core)
    "nlmeans": "nlmeans=s=2:p=7:r=9",
    # block-matching 3D, basic estimate: the strongest and slowest of FFmpeg's denoisers
    "bm3d": "bm3d=sigma=3:block=8:bstep=4:group=8:estim=basic",
}


def cleanup_filter(name: str) -> str:
    """The FFmpeg filter of preset `name` ('' for none); an unknown name is an error naming the choices."""
    try:
        return PRESETS[name]
    except KeyError:
        raise RemasterError(f"cleanup: {name!r} is not a preset; choose one of {', '.join(PRESETS)}") from None
