"""Config and input functions of the training rules (train.smk); no rules here."""

from remaster.run.settings import TrainSettings

TRAIN = config["train"]
TRAIN_RESULTS = "results/train"
TRAIN_LOGS = "logs/train"
# the shipped photographs, when train.clean_frames is left empty
DEMO_PHOTOS = str(Path(workflow.basedir) / "workflow" / "resources" / "demo" / "photos")


def release_pair(wildcards):
    """The two releases `dataset` pairs; an error naming the keys when they are not set."""
    if not (TRAIN["lr_source"] and TRAIN["hr_source"]):
        raise WorkflowError(
            "train.lr_source and train.hr_source: set both to pair two releases (docs/training.md)"
        )
    return {"lr": TRAIN["lr_source"], "hr": TRAIN["hr_source"]}


def training_pairs(wildcards):
    """`dataset`'s pairs when two releases are given (or data: dataset), else `degrade`'s."""
    source = TRAIN["data"]
    if source == "auto":
        source = "dataset" if TRAIN["lr_source"] and TRAIN["hr_source"] else "degrade"
    return f"{TRAIN_RESULTS}/{source}"
