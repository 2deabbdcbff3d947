"""What every step shares: the settings built once from the config, the sheet of discs, the typed records
steps hand each other, atomic files, logs, ffmpeg/ffprobe calls, the pre-flight checks and disk estimates."""

from .. import lazy_surface

_SURFACE = {
    "RemasterError": "errors",
    "Settings": "settings", "from_config": "settings", "with_defaults": "settings", "default": "settings",
    "Master": "sheet", "masters": "sheet", "disc_name": "sheet", "run_keys": "sheet",
    "Prepared": "records", "ShardResult": "records", "Shard": "records", "shard_table": "records",
    "read_json": "records", "write_json": "records",
    "atomic_output": "files", "partial_path": "files",
    "step_logger": "logs",
    "tool": "media", "run": "media", "ffprobe_json": "media",
}
__all__ = sorted(_SURFACE)
__getattr__, __dir__ = lazy_surface(__name__, _SURFACE)
