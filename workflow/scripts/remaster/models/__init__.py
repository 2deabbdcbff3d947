"""The one model loader: spandrel models (and ncnn conversions, RIFE) loaded safely, a precision proven per
step, the device chosen and claimed, fast paths patched; everything that runs a model goes through here."""

from .. import lazy_surface

_SURFACE = {
    "load_model": "loading", "load_chain": "loading", "load_chain_steps": "loading", "check_chain": "check",
    "ModelsReport": "check", "CheckedStep": "check",
    "Chain": "loading", "run_tiled": "loading",
    "Device": "devices",
    "claim": "claims", "job_device": "claims",
    "load_ifnet": "rife",
    "make_models": "bundled",
}
__all__ = sorted(_SURFACE)
__getattr__, __dir__ = lazy_surface(__name__, _SURFACE)
