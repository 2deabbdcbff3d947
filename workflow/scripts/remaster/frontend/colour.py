"""Colour: which matrix, primaries, transfer and range the source holds, and what the master is given."""

from __future__ import annotations

# ffprobe's tag values the colorspace filter understands, per property
_KNOWN = {
    "colorspace": {"bt709", "fcc", "bt470bg", "smpte170m", "smpte240m"},
    "color_primaries": {"bt709", "bt470m", "bt470bg", "smpte170m", "smpte240m", "film", "bt2020"},
    "color_trc": {"bt709", "bt470m", "bt470bg", "gamma22", "gamma28", "smpte170m", "smpte240m", "linear"},
}
_PROBE_KEYS = {"colorspace": "color_space", "color_primaries": "color_primaries", "color_trc": "color_transfer"}
_FILTER_KEYS = {"colorspace": "space", "color_primaries": "primaries", "color_trc": "trc"}


def colour_tags(height: int, probe_stream: dict) -> dict:
    """Input (BT.601) and output (BT.709) colour properties, and the filter between them.

    Input properties come from the stream's tags (an ffprobe stream dict) when they are
    set to something meaningful, else from the system the height implies: 480 lines is
    NTSC (smpte170m throughout), 576 is PAL (bt470bg matrix and primaries, smpte170m
    transfer).  Keys are FFmpeg's output option names so ``-colorspace`` etc. can be
    built from them; ``filter`` is the ``colorspace`` filter that converts in to out.
    """
    pal = height in (576, 288) or (height not in (480, 240) and height > 500)
    defaults = ({"colorspace": "bt470bg", "color_primaries": "bt470bg", "color_trc": "smpte170m"} if pal else
                {"colorspace": "smpte170m", "color_primaries": "smpte170m", "color_trc": "smpte170m"})
    colour_in, from_tags = {}, []
    for key, default in defaults.items():
        tag = str(probe_stream.get(_PROBE_KEYS[key]) or "")
        colour_in[key] = tag if tag in _KNOWN[key] else default
        if tag in _KNOWN[key]:
            from_tags.append(key)
    colour_in["color_range"] = "pc" if probe_stream.get("color_range") in ("pc", "jpeg") else "tv"
    colour_out = {"colorspace": "bt709", "color_primaries": "bt709", "color_trc": "bt709", "color_range": "tv"}
    parts = [f"{_FILTER_KEYS[k]}={colour_out[k]}" for k in _FILTER_KEYS]
    parts += [f"i{_FILTER_KEYS[k]}={colour_in[k]}" for k in _FILTER_KEYS]
    parts += ["range=tv", f"irange={colour_in['color_range']}"]
    return {
        "system": "pal" if pal else "ntsc",
        "in": colour_in,
        "out": colour_out,
        "from_tags": from_tags,
        "filter": "colorspace=" + ":".join(parts),
    }
