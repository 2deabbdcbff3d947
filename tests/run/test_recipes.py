"""The recipes in config/recipes/ are valid configs, name only bundled models, and stay recipes (no disc)."""

from __future__ import annotations

import pytest
import yaml
from snakemake.utils import validate

from support.workflow import REPO

RECIPES = sorted((REPO / "config" / "recipes").glob("*.yaml"))
BUNDLED = {"realesr-animevideov3-x4.safetensors", "DAT_light_x2.safetensors", "realesrgan-x4plus.safetensors"}


def test_the_three_recipes_are_there():
    assert {p.stem for p in RECIPES} == {"live-action", "animation", "tape"}


@pytest.mark.unit
@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_each_recipe_validates_against_the_schema(recipe):
    settings = yaml.safe_load(recipe.read_text())
    assert isinstance(settings, dict) and settings, f"{recipe}: empty"
    # a recipe says how to treat a kind of picture, never which disc: the user's own file adds that
    assert not {"source", "output", "discs"} & set(settings), f"{recipe}: names a disc"
    config = {"source": "my_disc/VIDEO_TS", "output": "my_disc.mkv", **settings}
    validate(config, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))
    for step in settings["models"]:
        path = step if isinstance(step, str) else step["path"]
        assert path.startswith("resources/models/") and path.split("/")[-1] in BUNDLED, f"{recipe}: {path}"


@pytest.mark.unit
def test_a_recipe_and_a_disc_file_make_one_run_config():
    """`snakemake --configfile config/recipes/tape.yaml my_disc.yaml`: the settings come from both files."""
    from remaster.run.settings import frontend_settings

    recipe = yaml.safe_load((REPO / "config" / "recipes" / "tape.yaml").read_text())
    config = {**recipe, "source": "capture.mkv", "output": "capture-remaster.mkv"}
    assert frontend_settings(config).cleanup == recipe.get("cleanup", "none")
