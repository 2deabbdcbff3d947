rule read_title:
    """One DVD title as a player plays it: its PGC's cells, one angle (FFmpeg's dvdvideo), stream-copied."""
    input:
        vobs=lambda wildcards: [
            str(part) for part in MASTERS[wildcards.disc].source.parts
        ],
    output:
        title=f"{RESULTS}/read_title/title.mkv",
        disc=f"{RESULTS}/read_title/disc.json",
    log:
        f"{LOGS}/read_title.log",
    conda:
        ENV
    params:
        kind=lambda wildcards: MASTERS[wildcards.disc].source.kind,
        folder=lambda wildcards: str(MASTERS[wildcards.disc].source.folder or ""),
        title_number=per_disc(lambda s: s.title_number),
        angle=per_disc(lambda s: s.angle),
    script:
        "../scripts/read_title.py"


use rule read_title as join_vobs with:
    output:
        title=f"{RESULTS}/join_vobs/title.vob",
        disc=f"{RESULTS}/join_vobs/disc.json",
    log:
        f"{LOGS}/join_vobs.log",
    params:
        kind="vobs",
        folder=lambda wildcards: str(MASTERS[wildcards.disc].source.folder or ""),
        title_number="auto",
        angle=1,


rule probe_source:
    """Streams, frame count and times, geometry, languages, chapters: what every later step relies on."""
    input:
        title=title_file,
        disc=disc_record,
    output:
        probe=PROBE,
        frames=f"{RESULTS}/probe_source/frames.txt",
    log:
        f"{LOGS}/probe_source.log",
    conda:
        ENV
    params:
        parts=lambda wildcards: [str(p) for p in MASTERS[wildcards.disc].source.parts],
    script:
        "../scripts/probe_source.py"


rule extract_audio:
    """Every audio track, stream-copied (LPCM losslessly to FLAC), into one Matroska audio file."""
    input:
        title=title_file,
        probe=PROBE,
    output:
        audio=f"{RESULTS}/extract_audio/audio.mka",
    log:
        f"{LOGS}/extract_audio.log",
    conda:
        ENV
    script:
        "../scripts/extract_audio.py"


rule plan_disc:
    """The front end's decisions (scan, fields, rate, geometry, crop, colour, languages, chapters), with evidence."""
    input:
        title=title_file,
        probe=PROBE,
    output:
        plan=PLAN,
    log:
        f"{LOGS}/plan_disc.log",
    conda:
        ENV
    params:
        frontend=per_disc(lambda s: asdict(s.frontend)),
        scale=per_disc(lambda s: s.upscale.scale),
        source=per_disc(lambda s: s.source),
        disc=lambda wildcards: wildcards.disc,
    script:
        "../scripts/plan_disc.py"


checkpoint prepare_title:
    """The title made progressive, square-pixel and constant-rate, once, losslessly; its shard table is fixed here."""
    input:
        title=title_file,
        probe=PROBE,
        frames=rules.probe_source.output.frames,
        plan=PLAN,
    output:
        prepared=f"{RESULTS}/prepare_title/prepared.mkv",
        facts=PREPARED,
    log:
        f"{LOGS}/prepare_title.log",
    benchmark:
        f"{BENCHMARKS}/prepare_title.tsv"
    conda:
        ENV
    threads: 4
    params:
        retime=per_disc(lambda s: s.frontend.fps != "auto"),
        # the shard table is written once, here, and read by every later step
        shard_frames=SHARD_FRAMES,
    script:
        "../scripts/prepare_title.py"


rule extract_subtitles:
    """Every subtitle stream (VobSub with palette, forced flag) and closed captions, in one Matroska file."""
    input:
        title=title_file,
        probe=PROBE,
    output:
        subtitles=f"{RESULTS}/extract_subtitles/subtitles.mks",
    log:
        f"{LOGS}/extract_subtitles.log",
    conda:
        ENV
    script:
        "../scripts/extract_subtitles.py"
