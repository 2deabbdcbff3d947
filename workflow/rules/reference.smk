# before | after | reference crops per master compared with a reference release
REFERENCE_CROPS = 3


rule compare_reference:
    """The master against a better release of its title (reference:): VMAF/PSNR per shard, crops."""
    input:
        master=master_file,
        reference=reference_file,
        prepared=rules.prepare_title.output.prepared,
        facts=PREPARED,
    output:
        html=report(
            f"{RESULTS}/compare_reference/reference.html",
            caption="../report/reference.rst",
            category="{disc}",
            subcategory="3. Verification",
            labels={"page": "against the reference"},
        ),
        tsv=report(
            f"{RESULTS}/compare_reference/reference.tsv",
            caption="../report/reference.rst",
            category="{disc}",
            subcategory="3. Verification",
            labels={"page": "reference scores per shard (TSV)"},
        ),
        crops=report(
            expand(
                f"{RESULTS}/compare_reference/crop_{{n}}.png",
                n=range(1, REFERENCE_CROPS + 1),
                allow_missing=True,
            ),
            caption="../report/reference_crops.rst",
            category="{disc}",
            subcategory="3. Verification",
            labels={"figure": "before | after | reference"},
        ),
    log:
        f"{LOGS}/compare_reference.log",
    benchmark:
        f"{BENCHMARKS}/compare_reference.tsv"
    conda:
        ENV
    threads: 2
    resources:
        mem_mb=4000,
        runtime=240,
    params:
        factor=per_disc(lambda s: s.interpolate.factor),
    script:
        "../scripts/compare_reference.py"
