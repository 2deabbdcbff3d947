"""remaster: turn old video into clean HD masters with AI upscalers.

The package holds the logic; `workflow/scripts/*.py` are thin Snakemake adapters over it. Its folders follow
the workflow, in the order a title goes through them:

    disc/      reading discs and files: the DVD's IFOs, the title read off it, VOB lists, subtitles, probe
    frontend/  what the picture is and what to do about it: scan, cadence, geometry, colour -> the plan,
               and the prepared title cut into shards
    models/    the one model loader: spandrel, precision proven per step, devices, GPU claims, fast paths
    frames/    frames through the models: the shard engine, shard cutting, interpolation
    output/    encode, mux, verify the master; the flicker meter, the report, the preview
    run/       what every step shares: settings, the sheet of discs, typed records, files, logs, pre-flight
    training/  training an upscaler on one's own footage (dataset, degrade, train)

Each subpackage's `__init__` names its public surface; it is imported lazily, so that a rule file importing
`remaster.run` or `remaster.frames.shards` at parse time never imports torch. Nothing here imports Snakemake.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"


def lazy_surface(package: str, surface: dict[str, str]):
    """`__getattr__` and `__dir__` for a subpackage whose public names live in its modules.

    `surface` maps a public name to the module (relative to `package`) that defines it; the module is
    imported on first use, so importing the subpackage costs nothing.
    """

    def __getattr__(name: str):
        if name not in surface:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{surface[name]}"), name)

    def __dir__() -> list[str]:
        return sorted(surface)

    return __getattr__, __dir__
