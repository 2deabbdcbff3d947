"""remaster: discs (VIDEO_TS, VOBs or any video file) become upscaled HD masters, a whole sheet in one run.

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
include: "workflow/rules/reference.smk"
include: "workflow/rules/train.smk"


onstart:
    check_models_at_start()


# on a cluster these run where Snakemake runs: extract_shard only reads packet times (a SLURM job each
# would cost more in queueing than its work)
localrules:
    all,
    plan,
    preview,
    preview_title,
    extract_shard,


rule all:
    default_target: True
    input:
        # one master per row of the sheet (per title with title_number: all), each at the user's path
        [str(master.output) for master in MASTERS.values()],
        # every encoded shard (small: the delivery codec): a deleted one is redone, with its upscale when
        # the upscaled shard is gone, and the mux of its master, nothing else
        every_disc(encoded_shards),
        # kept only with keep_upscaled: true (GPU-hours each; ~2 GB per 10,000 HD frames compact, ~8 GB lossless)
        every_disc(upscaled_shards) if KEEP_UPSCALED else [],
        # each checked against its source (a failed check stops that master), with before/after and report pages
        expand(rules.verify_master.output, disc=DISCS),
        expand(rules.preview_title.output, disc=DISCS, n=range(1, PREVIEW_STILLS + 1)),
        expand(rules.summarize_run.output, disc=DISCS),
        # scored against a better release of the title, where reference: names one (none by default)
        expand(rules.compare_reference.output, disc=REFERENCED),
        # what each model of each chain is (architecture, scale, precisions), for the report
        expand(rules.check_models.output, disc=DISCS),


rule plan:
    """Probe, decide and prepare every title: afterwards `snakemake -n` shows every shard of the run."""
    input:
        expand(PREPARED, disc=DISCS),
