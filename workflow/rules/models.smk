rule check_models:
    """Every model of the chain loaded once, its facts recorded for the report (the onstart check fails a bad file first)."""
    input:
        models=model_files,
    output:
        report=f"{RESULTS}/check_models/models.json",
    log:
        f"{LOGS}/check_models/check_models.log",
    localrule: True
    conda:
        ENV
    params:
        # compared by Snakemake: any change to the chain redoes this cheap check; it is no input of the
        # shard rules (an ancient() input there hid their own rerun triggers), the onstart check guards them
        chain=per_disc(
            lambda s: [
                {
                    "path": str(step.path),
                    "precision": step.precision,
                    "tile": step.tile,
                }
                for step in s.upscale.models
            ]
        ),
        # the run-wide tile, like device and batch_size, is how to run: a change plans no job (the onstart
        # check still tries it at every start); tests/test_sheet.py pins this
        checked=per_disc(lambda s: [s.upscale.scale, s.upscale.precision]),
        settings=per_disc(lambda s: s.upscale),
    script:
        "../scripts/check_models.py"
