"""What the picture is and what to do about it: scan type, cadence, geometry and colour are measured (each
with its evidence) into one plan, and the title is prepared and cut into shards by it."""

from .. import lazy_surface

_SURFACE = {
    "make_plan": "plan", "summary": "plan",
    "detect_scan": "scan", "ScanDecision": "scan",
    "cadence_map": "cadence", "cadence_sections": "cadence",
    "detect_crop": "geometry", "square_geometry": "geometry",
    "Colour": "colour",
    "prepare_title": "prepare",
}
__all__ = sorted(_SURFACE)
__getattr__, __dir__ = lazy_surface(__name__, _SURFACE)
