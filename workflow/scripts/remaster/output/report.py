"""What the run report shows, as small self-contained HTML pages and TSV tables.

The probe's summary (the front end's decisions), per-shard timings from the benchmark files and the
upscale logs, the verification, the flicker measure and the disk used. Snakemake's report embeds the
pages (`report()` outputs); the TSV files are for scripts and spreadsheets.
"""

from __future__ import annotations

import html
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the report pages import no front end at run time
    from ..disc.probe import Probe
    from ..frontend.plan import Plan
    from .verify import Verification

STYLE = """<style>
body{font-family:system-ui,sans-serif;margin:1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#f0f0f0}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.fail{color:#b00020;font-weight:bold}.ok{color:#0a7d20}
</style>"""


def _cell(value) -> str:
    if value is None:
        return "<td>–</td>"
    if isinstance(value, bool):
        return f'<td class="{"ok" if value else "fail"}">{"pass" if value else "FAIL"}</td>'
    if isinstance(value, (int, float)):
        return f'<td class="num">{html.escape(f"{value:,}" if isinstance(value, int) else f"{value:,.4g}")}</td>'
    return f"<td>{html.escape(str(value))}</td>"


def table(columns: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def page(title: str, *sections: tuple[str, str]) -> str:
    """A whole HTML document: a title, then (heading, html) sections."""
    parts = [f"<h2>{html.escape(heading)}</h2>{content}" for heading, content in sections]
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>{STYLE}"
            f"</head><body><h1>{html.escape(title)}</h1>{''.join(parts)}</body></html>\n")


def tsv(columns: list[str], rows: list[list]) -> str:
    def cell(value) -> str:
        return "NA" if value is None else str(value)

    return "\n".join(["\t".join(columns), *("\t".join(cell(v) for v in row) for row in rows)]) + "\n"


# --- the probe ---------------------------------------------------------------------------------------

def probe_page(probe: Probe, *, disc: str, shard_frames: int, shards: int, models: list[str],
               scale: float | None, plan: Plan, facts: dict | None = None) -> str:
    video = probe.video
    rows = [
        ["title file", probe.title_file],
        ["read from", ", ".join(probe.source_parts) or probe.title_file],
        ["frames", probe.frame_count],
        ["frame rate", video.fps],
        ["duration (s)", round(video.duration, 3)],
        ["stored size", f"{video.width}×{video.height} {video.codec} {video.pix_fmt}"],
        ["aspect", f"SAR {video.sar}, DAR {video.dar}"],
        ["field order", video.field_order],
        ["colour", f"{video.color_space} / {video.color_primaries} / {video.color_transfer}, "
                   f"range {video.color_range}"],
        ["shards", f"{shards} of up to {shard_frames} frames"],
        ["model chain", " → ".join(Path(m).name for m in models)],
        ["scale", "the chain's own" if scale is None else f"×{scale:g}"],
    ]
    sections = [("Source", table(["property", "value"], rows))]
    decisions = [[name, _short(d.value), d.source, d.evidence, d.override] for name, d in plan.decisions.items()]
    sections.append(("The front end's decisions",
                     table(["decision", "value", "from", "evidence", "config key to override"], decisions)))
    shown = {k: v for k, v in plan.as_dict().items() if k not in ("decisions", "scan_evidence", "audio", "subtitles")}
    sections.append(("Plan", table(["key", "value"], [[k, _short(v)] for k, v in shown.items()])))
    if facts:
        sections.append(("Prepared title (what the models get)",
                         table(["key", "value"], [[k, v] for k, v in facts.items()])))
    audio = [[n, a.codec, a.channels, a.sample_rate, a.language or "–", round(a.start_time, 4)]
             for n, a in enumerate(probe.audio)]
    sections.append(("Audio tracks (copied bit for bit)",
                     table(["track", "codec", "channels", "rate", "language", "start (s)"], audio)
                     if audio else "<p>none</p>"))
    subtitles = [[n, s.codec, s.language or "–"] for n, s in enumerate(probe.subtitles)]
    if subtitles:
        sections.append(("Subtitles", table(["track", "codec", "language"], subtitles)))
    chapters = [[n + 1, round(c.start, 3), c.title or ""] for n, c in enumerate(probe.chapters)]
    sections.append(("Chapters", table(["chapter", "start (s)", "title"], chapters) if chapters else "<p>none</p>"))
    return page(f"{disc}: what the probe found", *sections)


# --- timings -----------------------------------------------------------------------------------------

def read_benchmark(path: Path) -> dict:
    """The last row of a Snakemake benchmark file as {column: text} ({} when there is none)."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return {}
    if len(lines) < 2:
        return {}
    return dict(zip(lines[0].split("\t"), lines[-1].split("\t")))


def _number(text: str | None) -> float | None:
    try:
        return round(float(text), 2)
    except (TypeError, ValueError):
        return None


TIMING_COLUMNS = ["shard", "frames", "upscale_s", "fps", "device", "precision", "host", "max_rss_mb",
                  "cpu_s", "encode_s"]


def shard_timings(results: list, benchmarks: Path) -> list[list]:
    """One row per shard from its upscale job's ShardResult record, with Snakemake's benchmark and the encode time."""
    rows = []
    for result in results:
        bench = read_benchmark(benchmarks / "upscale_shard" / f"{result.shard}.tsv")
        encode = read_benchmark(benchmarks / "encode_shard" / f"{result.shard}.tsv")
        rows.append([result.shard, result.frames, _number(bench.get("s")) or round(result.seconds, 2),
                     round(result.fps, 2), result.device, result.dtype, result.host or bench.get("host"),
                     _number(bench.get("max_rss")), _number(bench.get("cpu_time")), _number(encode.get("s"))])
    return rows


# --- disk --------------------------------------------------------------------------------------------

def tree_size(path: Path) -> int:
    """Bytes in the files under `path` (or of `path` itself), links not followed."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


DISK_COLUMNS = ["what", "path", "bytes", "GB"]


def disk_usage(results: Path, master: Path) -> list[list]:
    """Each step's folder under results/<disc>, the master, and the total."""
    rows = []
    for folder in sorted(p for p in Path(results).iterdir() if p.is_dir()) if Path(results).is_dir() else []:
        size = tree_size(folder)
        rows.append([folder.name, str(folder), size, round(size / 1e9, 3)])
    if Path(master).is_file():
        size = tree_size(master)
        rows.append(["master", str(master), size, round(size / 1e9, 3)])
    total = sum(row[2] for row in rows)
    rows.append(["total", "", total, round(total / 1e9, 3)])
    try:
        free = shutil.disk_usage(results).free
        rows.append(["free on that disk", "", free, round(free / 1e9, 3)])
    except OSError:
        pass
    return rows


# --- verification and flicker -------------------------------------------------------------------------

def verify_page(verification: Verification) -> str:
    checks = [[c.name, c.ok, _short(c.expected), _short(c.found), "" if c.ok else c.message]
              for c in verification.checks]
    verdict = "<p class='ok'>every check passed</p>" if verification.ok else "<p class='fail'>FAILED</p>"
    sections = [("Checks", verdict + table(["property", "result", "source", "master", "problem"], checks))]
    if verification.source_damage:
        rows = [["–" if d.start is None else f"{d.start:.2f}-{d.end:.2f} s", d.pictures,
                 "the last good picture repeated" if d.start is not None else "not in the master's timeline"]
                for d in verification.source_damage]
        sections.append(("Pictures lost to source damage (expected: logged by prepare_title, not a failure)",
                         table(["where", "pictures", "in the master"], rows)))
    flicker = verification.flicker
    if flicker.shards:
        from .flicker import TSV_COLUMNS

        sections.append(("Temporal stability per shard (mean absolute luma change between frames, 0–255)",
                         table(TSV_COLUMNS, [[getattr(row, c) for c in TSV_COLUMNS] for row in flicker.shards])
                         + table(list(flicker.overall), [list(flicker.overall.values())])))
    return page(f"Verification of {verification.master}", *sections)


def _short(value) -> str:
    text = "–" if value is None else str(value)
    return text if len(text) <= 80 else text[:77] + "…"
