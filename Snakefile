"""remaster: a disc (VIDEO_TS, VOBs or any video file) becomes an upscaled HD master.

Run:     snakemake --cores all --resources gpu=1
Preview: snakemake -n
"""

import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("8.0")

# the package next to the rule scripts; scripts get this path from Snakemake, the Snakefile needs it too
sys.path.insert(0, str(Path(workflow.basedir) / "workflow" / "scripts"))


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/source.smk"
include: "workflow/rules/frames.smk"
include: "workflow/rules/upscale.smk"
include: "workflow/rules/encode.smk"
include: "workflow/rules/mux.smk"


localrules:
    all,
    probe,


rule all:
    default_target: True
    input:
        MASTER,
        # the upscaled shards are kept (GPU-hours each): a deleted one is redone, and all after it
        upscaled_shards,


rule probe:
    """Just the probe: afterwards `snakemake -n` shows every shard of the plan."""
    input:
        PROBE,
