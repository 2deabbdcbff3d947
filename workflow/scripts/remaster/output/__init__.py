"""The master: shards encoded, muxed with every audio track, subtitle and chapter, verified against the source;
the flicker meter, the run's report and the preview."""

from .. import lazy_surface

_SURFACE = {
    "encode_command": "encode",
    "mux_command": "mux",
    "verify_master": "verify", "Verification": "verify",
    "FlickerMeter": "flicker",
    "make_preview": "preview",
}
__all__ = sorted(_SURFACE)
__getattr__, __dir__ = lazy_surface(__name__, _SURFACE)
