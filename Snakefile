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


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/models.smk"
include: "workflow/rules/source.smk"
include: "workflow/rules/frames.smk"
include: "workflow/rules/upscale.smk"
include: "workflow/rules/interpolate.smk"
include: "workflow/rules/encode.smk"
include: "workflow/rules/mux.smk"
include: "workflow/rules/preview.smk"
include: "workflow/rules/verify.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/train.smk"


onstart:
    check_models_at_start()


localrules:
    all,
    plan,
    preview,


rule all:
    default_target: True
    input:
        MASTER,
        # the upscaled shards are kept (GPU-hours each): a deleted one is redone, and all after it
        upscaled_shards,
        # checked against the source (a failed check stops the run), with its before/after and report pages
        rules.verify_master.output,
        rules.preview.output,
        rules.summarize_run.output,
        # what each model of the chain is (architecture, scale, precisions), for the report
        rules.check_models.output,


rule plan:
    """Probe, decide and prepare the title: afterwards `snakemake -n` shows every shard of the run."""
    input:
        PREPARED,
