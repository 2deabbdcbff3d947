"""The run's masters: a sheet of discs and titles (a TSV read with pandas), or today's single `source`/`output`.

One row of the `discs:` sheet is one master, or one master per episode with `title_number: all`. Its columns
are `source`, `output` and any per-disc config key; an empty cell takes the run's value. Each master gets a
`disc` name, the `{disc}` wildcard of every rule and the name of its folders results/<disc>/, logs/<disc>/.
Nothing here imports torch or runs ffmpeg: the sheet is read at parse time in every job.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pandas as pd
import yaml

from ..disc import dvd
from ..disc.dvd import Title
from ..disc.source import Source, resolve_source
from .errors import RemasterError
from .settings import Settings, from_config


def run_keys(schema: dict) -> frozenset[str]:
    """The keys that belong to the whole run, never to one disc of it: marked `x-run-wide` in the schema."""
    return frozenset(key for key, spec in schema["properties"].items() if spec.get("x-run-wide"))


@dataclass(frozen=True)
class Master:
    """One master of the run: its disc name (the `{disc}` wildcard), where it comes from and goes to."""

    disc: str
    row: int  # line of the sheet (1 is the header); 0 for a plain config
    output: Path
    title: int | None  # DVD title number; None: the source's own choice (the main title, or a file)
    config: dict  # the run's config with this row's values over it
    settings: Settings
    source: Source


def disc_name(text: str) -> str:
    """A name for folders and wildcards, from an output's name: letters, digits, . _ - only."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "disc"


def list_titles(video_ts: Path) -> list[Title]:
    """Every title of a DVD folder as a player plays it (remaster.dvd), a one-line error for damaged IFOs."""
    try:
        return dvd.list_titles(Path(video_ts))
    except dvd.DiscError as error:
        raise RemasterError(str(error)) from None


def _sectors(title: Title) -> set[tuple[int, int]]:
    return {(cell.first_sector, cell.last_sector) for cell in title.cells}


def episodes(titles: list[Title], min_seconds: float) -> list[Title]:
    """The episode-like titles: not shorter than `min_seconds`, and not a "play all" title.

    A "play all" title plays cells that two or more other titles of its title set play one by one; its
    cells are the union of theirs.
    """
    chosen = []
    for title in titles:
        if title.duration < min_seconds:
            continue
        mine = _sectors(title)
        parts = [o for o in titles if o.number != title.number and o.vts == title.vts and o.cells
                 and _sectors(o) < mine]
        if len(parts) >= 2 and set().union(*(_sectors(o) for o in parts)) == mine:
            continue
        chosen.append(title)
    return chosen


def _types(spec: dict) -> set[str]:
    types = {spec["type"]} if isinstance(spec.get("type"), str) else set(spec.get("type") or ())
    for option in spec.get("oneOf") or ():
        types |= _types(option)
    return types


def _cell(text: str, spec: dict):
    """A sheet cell as the config value it spells: numbers, booleans and [lists] read as YAML.

    A key that can only be text stays text (YAML 1.1 would read 4:3 as the number 243).
    """
    if _types(spec) == {"string"}:
        return text
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def read_sheet(path: Path, known: dict[str, dict]) -> list[tuple[int, dict]]:
    """The sheet's rows as (line number, {column: value}) with empty cells left out; a bad column stops."""
    path = Path(path)
    if not path.is_file():
        raise RemasterError(f"discs: {path}: sheet not found (a tab-separated file, one row per master)")
    try:
        frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, comment="#", skip_blank_lines=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise RemasterError(f"discs: {path}: not a tab-separated sheet: {str(error).splitlines()[0]}") from None
    columns = [str(c).strip() for c in frame.columns]
    for number, column in enumerate(columns, start=1):
        if column not in known:
            nearest = difflib.get_close_matches(column, sorted(known), n=1, cutoff=0.6)
            hint = f"did you mean '{nearest[0]}'?" if nearest else "see config/README.md for the per-disc keys"
            first = 2 if len(frame) else 1
            raise RemasterError(f"discs: {path}: row {first}, column {number} '{column}': not a per-disc key; "
                                f"{hint}")
    for required in ("source", "output"):
        if required not in columns:
            raise RemasterError(f"discs: {path}: row 1 (the header) has no '{required}' column")
    rows = []
    # line numbers as a text editor shows them: the header is line 1 (comment and blank lines are skipped)
    lines = [n for n, line in enumerate(path.read_text().splitlines(), start=1)
             if line.strip() and not line.lstrip().startswith("#")]
    for index, values in enumerate(frame.itertuples(index=False)):
        line = lines[index + 1] if index + 1 < len(lines) else index + 2
        row = {}
        for column, value in zip(columns, values):
            value = str(value).strip()
            if value:
                row[column] = value if column in ("source", "output") else _cell(value, known[column])
        for required in ("source", "output"):
            if required not in row:
                raise RemasterError(f"discs: {path}: row {line}: column '{required}' is empty")
        rows.append((line, row))
    if not rows:
        raise RemasterError(f"discs: {path}: the sheet has no rows (one row per master under the header)")
    return rows


def _validate(config: dict, schema: dict, where: str) -> None:
    try:
        jsonschema.validate(config, schema)
    except jsonschema.ValidationError as error:
        key = ".".join(str(p) for p in error.absolute_path) or "?"
        raise RemasterError(f"{where}, column '{key}': {error.message}") from None


def _master(disc: str, row: int, config: dict, title: int | None) -> Master:
    config = {**config, "title_number": "auto" if title is None else title}
    settings = from_config(config)
    # read_title reads the title (title_number, angle) from the IFOs: the source is the whole folder
    return Master(disc, row, settings.output, title, config, settings, resolve_source(settings.source))


def masters(config: dict, schema: dict) -> dict[str, Master]:
    """The run's masters by disc name, from the `discs:` sheet or from `source`/`output` (a sheet of one)."""
    base = {k: v for k, v in config.items() if k != "discs"}
    if not config.get("discs"):
        for key in ("source", "output"):
            if key not in config:
                raise RemasterError(f"config: no '{key}' and no 'discs' sheet; give source and output (one disc) "
                                    "or discs: a sheet of them (config/README.md)")
        rows = [(0, {})]
        sheet = None
    else:
        sheet = Path(str(config["discs"]))
        per_disc = {k: v for k, v in schema["properties"].items() if k not in run_keys(schema)}
        rows = read_sheet(sheet, per_disc)
    found: dict[str, Master] = {}
    outputs: dict[Path, str] = {}
    for line, row in rows:
        where = f"discs: {sheet}: row {line}" if sheet else "config"
        merged = {**base, **row}
        _validate(merged, schema, where)
        number = merged.get("title_number", "auto")
        if number == "all":
            folder = Path(str(merged["output"]))
            if folder.suffix.lower() == ".mkv":
                raise RemasterError(f"{where}: title_number all makes one master per title: output must be a "
                                    f"folder, not {folder}")
            source = Path(str(merged["source"]))
            if not source.is_dir():
                raise RemasterError(f"{where}: title_number all needs a VIDEO_TS folder as source, not {source}")
            chosen = episodes(list_titles(source), float(config["min_title_seconds"]))
            if not chosen:
                raise RemasterError(f"{where}: {source}: no title of {config['min_title_seconds']} s or more "
                                    "(min_title_seconds)")
            made = [_master(disc_name(f"{folder.name}_title_{t.number:02d}"), line,
                            {**merged, "output": str(folder / f"title_{t.number:02d}.mkv")}, t.number)
                    for t in chosen]
        else:
            title = None if number in (None, "auto") else int(number)
            if title is not None and Path(str(merged["source"])).is_dir():
                numbers = [t.number for t in list_titles(Path(str(merged["source"])))]
                if title not in numbers:
                    raise RemasterError(f"{where}: {merged['source']} has no title {title} (titles {numbers})")
            try:
                made = [_master(disc_name(Path(str(merged["output"])).stem), line, merged, title)]
            except RemasterError as error:
                raise RemasterError(f"{where}: {error}" if sheet else str(error)) from None
        for master in made:
            if master.disc in found:
                raise RemasterError(f"{where}: master {master.output} has the same name '{master.disc}' as "
                                    f"{found[master.disc].output} (row {found[master.disc].row}); rename one")
            if master.output in outputs:
                raise RemasterError(f"{where}: output {master.output} is also row {found[outputs[master.output]].row}'s")
            found[master.disc] = master
            outputs[master.output] = master.disc
    return found
