"""Every synthetic degradation: the same seed gives the same picture, and each does what it says."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from remaster.run.errors import RemasterError
from remaster.training import degrade
from support.workflow import REPO

PHOTO = REPO / "workflow" / "resources" / "demo" / "photos" / "astronaut.png"


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return degrade.to_float(Image.open(PHOTO).resize((128, 96), Image.LANCZOS))


def run(effect: str, image: np.ndarray, seed: int = 0, **params) -> np.ndarray:
    return degrade.EFFECTS[effect](image.copy(), np.random.default_rng(seed), **params)


def detail(image: np.ndarray) -> float:
    """Mean absolute difference between horizontal neighbours: high-frequency energy."""
    return float(np.abs(np.diff(image, axis=1)).mean())


def saturation(image: np.ndarray) -> float:
    lab = degrade.rgb_to_lab(image)
    return float(np.hypot(lab[..., 1], lab[..., 2]).mean())


CASES = {
    "downscale": {"factor": 2},
    "blur": {"sigma": [0.5, 1.5]},
    "jpeg": {"quality": [10, 30]},
    "mpeg2": {"qscale": 20},
    "interlace": {"mode": "comb", "motion": [2, 4]},
    "chroma": {"subsample": 4, "bleed": 2, "shift": [1, 2]},
    "grain": {"strength": 0.08, "size": 1.0},
    "scratches": {"count": 6, "width": 1.5, "intensity": 0.8},
    "dust": {"count": 20, "size": 2},
    "fade": {"amount": [0.4, 0.6]},
    "vhs": {"lines": 16, "offset": 20, "noise": 0.2, "jitter": 0.8},
}


@pytest.mark.parametrize("effect", sorted(CASES))
def test_same_seed_same_output_and_the_picture_changes(effect, image):
    first, again = run(effect, image, **CASES[effect]), run(effect, image, **CASES[effect])
    assert np.array_equal(first, again)
    assert first.dtype == np.float32 and first.min() >= 0 and first.max() <= 1
    if first.shape == image.shape:
        assert np.abs(first - image).mean() > 1e-3


@pytest.mark.parametrize("effect", ["grain", "scratches", "dust", "vhs"])
def test_another_seed_other_damage(effect, image):
    assert not np.array_equal(run(effect, image, 0, **CASES[effect]), run(effect, image, 1, **CASES[effect]))


def test_downscale_halves_the_size_and_keeps_the_brightness(image):
    small = run("downscale", image, factor=2)
    assert small.shape == (48, 64, 3)
    assert abs(small.mean() - image.mean()) < 0.01


def test_blur_removes_detail_more_as_sigma_grows(image):
    assert detail(image) > detail(run("blur", image, sigma=0.7)) > detail(run("blur", image, sigma=2.0))
    assert abs(run("blur", image, sigma=2.0).mean() - image.mean()) < 0.01


def test_jpeg_and_mpeg2_lose_more_at_lower_quality(image):
    def error(out):
        return float(np.abs(out - image).mean())

    assert error(run("jpeg", image, quality=10)) > error(run("jpeg", image, quality=90)) > 0
    assert error(run("mpeg2", image, qscale=28)) > error(run("mpeg2", image, qscale=2)) > 0


def test_interlace_comb_moves_odd_lines_and_linedouble_repeats_lines(image):
    combed = run("interlace", image, mode="comb", motion=3)
    assert np.array_equal(combed[0::2], image[0::2]) and not np.array_equal(combed[1::2], image[1::2])
    doubled = run("interlace", image, mode="linedouble")
    assert np.array_equal(doubled[0::2], doubled[1::2])
    with pytest.raises(RemasterError, match="interlace mode"):
        run("interlace", image, mode="sideways")


def test_chroma_keeps_luma_and_smears_colour(image):
    out = run("chroma", image, subsample=4, bleed=2)
    before, after = degrade.rgb_to_ycbcr(image), degrade.rgb_to_ycbcr(out)
    assert np.abs(after[..., 0] - before[..., 0]).mean() < 0.01  # clipping aside, brightness is untouched
    assert detail(after[..., 1:]) < 0.6 * detail(before[..., 1:])


def test_grain_is_zero_mean_noise_of_the_given_strength(image):
    out = run("grain", image, strength=0.05, size=0.0)
    diff = out - image
    assert abs(diff.mean()) < 0.005
    assert 0.01 < diff.std() < 0.06


def test_scratches_are_thin_vertical_lines(image):
    out = run("scratches", image, count=4, width=1.0, intensity=1.0, angle=0.0)
    changed = np.abs(out - image).max(axis=2) > 0.1
    columns = changed.mean(axis=0)
    assert columns.max() > 0.4  # a scratch runs down most of the frame
    assert (columns > 0.2).mean() < 0.25  # in few columns


def test_dust_marks_small_specks(image):
    changed = (np.abs(run("dust", image, count=10, size=2) - image).max(axis=2) > 0.1).mean()
    assert 0 < changed < 0.1


def test_fade_desaturates_shifts_to_red_and_lifts_blacks(image):
    out = run("fade", image, amount=0.5, contrast=0.3)
    assert saturation(out) < 0.8 * saturation(image)
    assert degrade.rgb_to_lab(out)[..., 0].min() > degrade.rgb_to_lab(image)[..., 0].min() + 5
    assert degrade.rgb_to_lab(out)[..., 1].mean() > 0.5 * degrade.rgb_to_lab(image)[..., 1].mean()


def test_lab_round_trip(image):
    assert np.abs(degrade.lab_to_rgb(degrade.rgb_to_lab(image)) - image).max() < 2e-3


def test_vhs_tears_the_bottom_lines(image):
    out = run("vhs", image, lines=16, offset=20, noise=0.2, jitter=0.0)
    bottom, top = np.abs(out[-4:] - image[-4:]).mean(), np.abs(out[:40] - image[:40]).mean()
    assert bottom > 0.05 and top < 1e-6


def test_pipeline_folder_is_reproducible_and_scaled(tmp_path):
    spec = [{"downscale": {"factor": 2}}, {"blur": {"sigma": [0.3, 1.0]}}, "grain", {"jpeg": {"quality": 70}}]
    clean = REPO / "workflow" / "resources" / "demo" / "photos"
    first = degrade.degrade_folder(clean, tmp_path / "a", spec, seed=3, val_fraction=0.25)
    degrade.degrade_folder(clean, tmp_path / "b", spec, seed=3, val_fraction=0.25)
    degrade.degrade_folder(clean, tmp_path / "c", spec, seed=4, val_fraction=0.25)
    assert first == {"images": 4, "val": 1, "scale": 2, "effects": ["downscale", "blur", "grain", "jpeg"]}
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.png"))
    assert len(files) == 8
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
        if "hr" not in name.parts:
            assert (tmp_path / "a" / name).read_bytes() != (tmp_path / "c" / name).read_bytes()
        else:
            lr = Image.open(tmp_path / "a" / name.parent.parent / "lr" / name.name)
            assert Image.open(tmp_path / "a" / name).size == (lr.width * 2, lr.height * 2)


def test_pipeline_errors_name_the_effect():
    with pytest.raises(RemasterError, match="unknown effect 'smudge'"):
        degrade.parse_pipeline(["smudge"])
    with pytest.raises(RemasterError, match="blur"):
        degrade.degrade(np.zeros((8, 8, 3), np.float32), degrade.parse_pipeline([{"blur": {"radius": 1}}]),
                        np.random.default_rng(0))
