"""Reading discs and files: a DVD's IFOs (titles, cells, languages, palettes), the one title read off it into
a file every later step reads, VOB lists with their clock resets, subtitles and captions, and the probe."""

from .. import lazy_surface

_SURFACE = {
    "Source": "source", "resolve_source": "source",
    "Title": "dvd", "DiscError": "dvd", "list_titles": "dvd", "choose_title": "dvd",
    "read_title": "reader", "Disc": "reader",
    "probe_title": "probe", "Probe": "probe", "DiscFacts": "probe",
    "join_vobs": "voblist", "concat_files": "voblist",
    "extract_subtitles": "subtitles",
}
__all__ = sorted(_SURFACE)
__getattr__, __dir__ = lazy_surface(__name__, _SURFACE)
