"""Frames through the models: the shard engine (decode, batches on the device, encode) with its parts
(ffmpeg commands, memory budget, the Runner and its out-of-memory recovery, conversions, chain preparation),
how a shard is cut from the prepared title, and frame interpolation."""

from .. import lazy_surface

_SURFACE = {
    "upscale_file": "engine", "Runner": "runner",
    "plan_cut": "shards", "cut_input_args": "shards",
    "interpolate_file": "interpolate",
}
__all__ = sorted(_SURFACE)
__getattr__, __dir__ = lazy_surface(__name__, _SURFACE)
