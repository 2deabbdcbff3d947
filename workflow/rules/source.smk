rule concat_vobs:
    """Join VTS_xx_1..N.VOB in play order (never the menu VOB VTS_xx_0)."""
    input:
        vobs=lambda wildcards: [
            str(part) for part in MASTERS[wildcards.disc].source.parts
        ],
    output:
        title=f"{RESULTS}/concat_vobs/title.vob",
    log:
        f"{LOGS}/concat_vobs.log",
    conda:
        ENV
    script:
        "../scripts/concat_vobs.py"


rule probe_source:
    """Streams, frame count and times, geometry, languages, chapters: what every later step relies on."""
    input:
        title=title_file,
    output:
        probe=PROBE,
        frames=f"{RESULTS}/probe_source/frames.txt",
    log:
        f"{LOGS}/probe_source.log",
    conda:
        ENV
    params:
        parts=lambda wildcards: [str(p) for p in MASTERS[wildcards.disc].source.parts],
        source=per_disc(lambda s: s.source),
    script:
        "../scripts/probe_source.py"


rule extract_audio:
    """Every audio track, stream-copied (never re-encoded), into one Matroska audio file."""
    input:
        title=title_file,
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
    """Every subtitle stream (DVD VobSub as is), stream-copied into one Matroska file."""
    input:
        title=title_file,
    output:
        subtitles=f"{RESULTS}/extract_subtitles/subtitles.mks",
    log:
        f"{LOGS}/extract_subtitles.log",
    conda:
        ENV
    script:
        "../scripts/extract_subtitles.py"
