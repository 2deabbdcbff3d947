"""Training an upscaler on one's own footage: aligned pairs from two releases (dataset), synthetic degradation
of clean frames (degrade), and a resumable training loop whose model spandrel loads (train)."""

from .. import lazy_surface

_SURFACE = {
    "make_pairs": "dataset",
    "degrade_folder": "degrade",
}
__all__ = sorted(_SURFACE)
__getattr__, __dir__ = lazy_surface(__name__, _SURFACE)
