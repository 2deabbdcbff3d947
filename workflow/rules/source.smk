rule read_title:
    """One DVD title as a player plays it (its PGC's cells, one angle; dvdvideo), or the VOB files joined."""
    input:
        vobs=[str(part) for part in SOURCE.parts],
    output:
        title=f"{RESULTS}/read_title/{SOURCE.title_name}",
    log:
        f"{LOGS}/read_title.log",
    conda:
        ENV
    params:
        kind=SOURCE.kind,
        title_number=SETTINGS.title_number,
        angle=SETTINGS.angle,
    script:
        "../scripts/read_title.py"


rule probe_source:
    """Streams, frame count and times, geometry, languages, chapters: what every later step relies on."""
    input:
        title=title_file(),
    output:
        probe=PROBE,
        frames=f"{RESULTS}/probe_source/frames.txt",
    log:
        f"{LOGS}/probe_source.log",
    conda:
        ENV
    params:
        parts=[str(part) for part in SOURCE.parts],
        source=SETTINGS.source,
        title_number=SETTINGS.title_number,
        angle=SETTINGS.angle,
    script:
        "../scripts/probe_source.py"


rule extract_audio:
    """Every audio track, stream-copied (LPCM losslessly to FLAC), into one Matroska audio file."""
    input:
        title=title_file(),
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
        title=title_file(),
        probe=PROBE,
    output:
        plan=PLAN,
    log:
        f"{LOGS}/plan_disc.log",
    conda:
        ENV
    params:
        frontend=asdict(SETTINGS.frontend),
        scale=SETTINGS.upscale.scale,
        source=SETTINGS.source,
        disc=DISC,
    script:
        "../scripts/plan_disc.py"


checkpoint prepare_title:
    """The title made progressive, square-pixel and constant-rate, once, losslessly; shards are cut from it."""
    input:
        title=title_file(),
        probe=PROBE,
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
        retime=SETTINGS.frontend.fps != "auto",
    script:
        "../scripts/prepare_title.py"


rule extract_subtitles:
    """Every subtitle stream (VobSub with palette, forced flag) and closed captions, in one Matroska file."""
    input:
        title=title_file(),
        probe=PROBE,
    output:
        subtitles=f"{RESULTS}/extract_subtitles/subtitles.mks",
    log:
        f"{LOGS}/extract_subtitles.log",
    conda:
        ENV
    script:
        "../scripts/extract_subtitles.py"
