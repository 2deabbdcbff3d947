rule check_models:
    """Every model of the chain loaded once, its facts recorded for the report (the onstart check fails a bad file first)."""
    input:
        models=[str(step.path) for step in SETTINGS.upscale.models],
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
        chain=[
            {"path": str(step.path), "precision": step.precision, "tile": step.tile}
            for step in SETTINGS.upscale.models
        ],
        checked=[
            SETTINGS.upscale.scale,
            SETTINGS.upscale.precision,
            SETTINGS.upscale.tile,
        ],
        settings=SETTINGS.upscale,
    script:
        "../scripts/check_models.py"
