"""Synthetic degradations: clean frames become low-quality frames through physically-motivated effects.

A pipeline is a list of effects applied in order, each a name or a one-key mapping of name to parameters,
as in the config (docs/training.md):

    [downscale: {factor: 2}, blur: {sigma: 0.6}, chroma: {subsample: 2, bleed: 1}, jpeg: {quality: [40, 80]}]

Any number may be given as [low, high]: it is drawn per frame (uniformly), so a dataset spans a range of
damage. Every frame gets its own random generator seeded by (seed, the frame's name), so the same seed and
the same clean frames give the same dataset byte for byte, whatever order or process makes them.
Images are float32 RGB arrays (H, W, 3) in [0, 1]; only numpy and Pillow are used (MPEG-2 through ffmpeg).
"""

from __future__ import annotations

import io
import subprocess
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from ..run import media
from ..run.errors import RemasterError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
# BT.601, the matrix of SD video, for the effects that happen in YCbCr on tape and disc
_KR, _KB = 0.299, 0.114


# --- helpers ---------------------------------------------------------------------------------------------


def _value(param, rng: np.random.Generator) -> float:
    """A number, or a uniform draw from [low, high]."""
    if isinstance(param, (list, tuple)):
        low, high = (float(x) for x in param)
        return float(rng.uniform(low, high))
    return float(param)


def to_float(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0


def to_image(array: np.ndarray) -> Image.Image:
    return Image.fromarray((np.clip(array, 0, 1) * 255.0 + 0.5).astype(np.uint8))


def gaussian_kernel(sigma: float) -> np.ndarray:
    radius = max(1, int(3 * sigma + 0.5))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / max(sigma, 1e-6)) ** 2)
    return (taps / taps.sum()).astype(np.float32)


def convolve_axis(array: np.ndarray, kernel: np.ndarray, axis: int) -> np.ndarray:
    """1-D convolution along `axis` with edge-reflecting borders."""
    radius = len(kernel) // 2
    pad = [(0, 0)] * array.ndim
    pad[axis] = (radius, radius)
    padded = np.pad(array, pad, mode="reflect" if array.shape[axis] > radius else "edge")
    out = np.zeros_like(array)
    length = array.shape[axis]
    for tap, weight in enumerate(kernel):
        out += weight * np.take(padded, range(tap, tap + length), axis=axis)
    return out


def gaussian_blur(array: np.ndarray, sigma_x: float, sigma_y: float | None = None) -> np.ndarray:
    sigma_y = sigma_x if sigma_y is None else sigma_y
    if sigma_x > 0:
        array = convolve_axis(array, gaussian_kernel(sigma_x), axis=1)
    if sigma_y > 0:
        array = convolve_axis(array, gaussian_kernel(sigma_y), axis=0)
    return array


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = _KR * r + (1 - _KR - _KB) * g + _KB * b
    return np.stack([y, (b - y) / (2 * (1 - _KB)), (r - y) / (2 * (1 - _KR))], axis=-1)


def ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
    y, cb, cr = ycc[..., 0], ycc[..., 1], ycc[..., 2]
    r = y + 2 * (1 - _KR) * cr
    b = y + 2 * (1 - _KB) * cb
    g = (y - _KR * r - _KB * b) / (1 - _KR - _KB)
    return np.stack([r, g, b], axis=-1)


_XYZ = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]], np.float32)
_WHITE = _XYZ.sum(axis=1)


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB to CIELAB (D65); L in [0, 100]."""
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((np.clip(rgb, 0, 1) + 0.055) / 1.055) ** 2.4)
    xyz = linear @ _XYZ.T / _WHITE
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    fy = (lab[..., 0] + 16) / 116
    f = np.stack([fy + lab[..., 1] / 500, fy, fy - lab[..., 2] / 200], axis=-1)
    xyz = np.where(f > 0.2069, f**3, (f - 16 / 116) / 7.787) * _WHITE
    linear = np.clip(xyz @ np.linalg.inv(_XYZ).T, 0, 1)
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055).astype(np.float32)


# --- the effects -----------------------------------------------------------------------------------------
# each takes (image, rng, **parameters) and returns a new image; the defaults are mild, DVD-like damage


def downscale(image: np.ndarray, rng: np.random.Generator, factor: int = 2, filter: str = "bicubic") -> np.ndarray:
    """Optics and sampling of a lower-resolution release: size / `factor` (an integer, the model's scale).

    `filter`: bicubic, bilinear, area (box) or lanczos, or `random` (one of them per frame).
    """
    filters = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR, "area": Image.BOX, "lanczos": Image.LANCZOS}
    name = str(rng.choice(sorted(filters))) if filter == "random" else filter
    if name not in filters:
        raise RemasterError(f"degrade: downscale filter {filter!r} unknown ({', '.join(sorted(filters))} or random)")
    height, width = image.shape[:2]
    size = (width // int(factor), height // int(factor))
    channels = [Image.fromarray(image[..., c]).resize(size, filters[name]) for c in range(3)]
    return np.clip(np.stack([np.asarray(ch, dtype=np.float32) for ch in channels], axis=-1), 0, 1)


def blur(image: np.ndarray, rng: np.random.Generator, sigma=0.8, sigma_y=None) -> np.ndarray:
    """Soft lenses and telecine optics: Gaussian blur of `sigma` pixels (`sigma_y` vertically if given)."""
    sx = _value(sigma, rng)
    return gaussian_blur(image, sx, sx if sigma_y is None else _value(sigma_y, rng))


def jpeg(image: np.ndarray, rng: np.random.Generator, quality=75, subsampling: int = 2) -> np.ndarray:
    """Block-DCT compression (8×8 blocks, quantised) through Pillow's JPEG at `quality` (1-95).

    `subsampling`: 0 (4:4:4), 1 (4:2:2) or 2 (4:2:0, as on a DVD).
    """
    buffer = io.BytesIO()
    to_image(image).save(buffer, "JPEG", quality=int(round(_value(quality, rng))), subsampling=int(subsampling))
    return to_float(Image.open(buffer))


def mpeg2(image: np.ndarray, rng: np.random.Generator, qscale=8) -> np.ndarray:
    """A DVD's intra-frame MPEG-2 artefacts: the frame through ffmpeg's mpeg2video at `qscale` (2-31, higher worse)."""
    height, width = image.shape[:2]
    even_w, even_h = width - width % 2, height - height % 2
    frame = (np.clip(image[:even_h, :even_w], 0, 1) * 255 + 0.5).astype(np.uint8)
    q = str(int(round(_value(qscale, rng))))
    encode = media.ffmpeg_args("-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{even_w}x{even_h}", "-i", "pipe:0",
                               "-c:v", "mpeg2video", "-qscale:v", q, "-pix_fmt", "yuv420p", "-f", "mpeg2video",
                               "pipe:1")
    stream = subprocess.run(encode, input=frame.tobytes(), capture_output=True, check=True).stdout
    decode = media.ffmpeg_args("-f", "mpegvideo", "-i", "pipe:0", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1")
    raw = subprocess.run(decode, input=stream, capture_output=True, check=True).stdout
    out = image.copy()
    out[:even_h, :even_w] = np.frombuffer(raw, np.uint8).reshape(even_h, even_w, 3).astype(np.float32) / 255
    return out


def interlace(image: np.ndarray, rng: np.random.Generator, mode: str = "comb", motion=2.0) -> np.ndarray:
    """Interlaced video badly deinterlaced.

    `comb`: the two fields were taken 1/50 s apart while the picture moved `motion` pixels sideways, and were
    woven together (combing on every edge that moved). `linedouble`: one field kept and its lines doubled
    (jagged diagonals, half the vertical detail), as a cheap deinterlacer does. `blend`: both fields averaged
    after moving (ghosting).
    """
    shift = _value(motion, rng)
    moved = _shift_x(image, shift)
    if mode == "comb":
        out = image.copy()
        out[1::2] = moved[1::2]
        return out
    if mode == "linedouble":
        field = image[0::2]
        return np.repeat(field, 2, axis=0)[: image.shape[0]]
    if mode == "blend":
        return 0.5 * (image + moved)
    raise RemasterError(f"degrade: interlace mode {mode!r} unknown (comb, linedouble, blend)")


def _shift_x(image: np.ndarray, shift: float) -> np.ndarray:
    """Sub-pixel horizontal shift (linear interpolation, edge pixels repeated)."""
    width = image.shape[1]
    x = np.clip(np.arange(width, dtype=np.float32) - shift, 0, width - 1)
    left = np.floor(x).astype(int)
    right = np.minimum(left + 1, width - 1)
    frac = (x - left)[None, :, None]
    return image[:, left] * (1 - frac) + image[:, right] * frac


def chroma(image: np.ndarray, rng: np.random.Generator, subsample: int = 2, vertical: int = 1, bleed=1.0,
           shift=0.0) -> np.ndarray:
    """Colour stored at lower resolution than brightness, and smeared: DVD 4:2:0, VHS's narrow chroma band.

    `subsample`/`vertical`: horizontal/vertical chroma decimation (2 and 2 for 4:2:0, 4 and 1 for 4:1:1);
    `bleed`: horizontal Gaussian smear of the chroma in pixels (VHS: 2-4); `shift`: chroma delayed to the
    right by this many pixels (misaligned colour).
    """
    ycc = rgb_to_ycbcr(image)
    height, width = image.shape[:2]
    small = (max(1, width // int(subsample)), max(1, height // int(vertical)))
    for c in (1, 2):
        plane = Image.fromarray(ycc[..., c]).resize(small, Image.BOX).resize((width, height), Image.BILINEAR)
        ycc[..., c] = np.asarray(plane, dtype=np.float32)
    smear = _value(bleed, rng)
    if smear > 0:
        ycc[..., 1:] = gaussian_blur(ycc[..., 1:], smear, 0)
    delay = _value(shift, rng)
    if delay:
        ycc[..., 1:] = _shift_x(ycc[..., 1:], delay)
    return np.clip(ycbcr_to_rgb(ycc), 0, 1)


def grain(image: np.ndarray, rng: np.random.Generator, strength=0.04, size=1.0, colour=0.3) -> np.ndarray:
    """Film grain: silver/dye clumps as blurred Gaussian noise of about `size` pixels.

    `strength` is its standard deviation in midtones (grain shows most in midtones and least in the deepest
    shadows and highlights); `colour` in [0, 1] mixes independent per-channel (dye) grain into the shared
    luminance grain.
    """
    height, width = image.shape[:2]
    amount = _value(strength, rng)
    clump = _value(size, rng)
    mono = rng.standard_normal((height, width, 1), dtype=np.float32)
    dye = rng.standard_normal((height, width, 3), dtype=np.float32)
    noise = (1 - colour) * mono + colour * dye
    if clump > 0.3:
        noise = gaussian_blur(noise, clump) * (clump * 2.0)  # blurring lowers the deviation; keep it near 1
    y = rgb_to_ycbcr(image)[..., :1]
    return np.clip(image + amount * noise * (4 * y * (1 - y)).clip(0.2, 1), 0, 1)


def scratches(image: np.ndarray, rng: np.random.Generator, count=2.0, width=1.5, intensity=0.5,
              angle=1.0) -> np.ndarray:
    """Vertical scratches from the film rubbing on guides: Poisson(`count`) lines per frame, `width` pixels,
    within `angle` degrees of vertical, bright (emulsion scraped to the base) or dark (dirt in the groove).
    """
    height, wide = image.shape[:2]
    out = image.copy()
    rows = np.arange(height, dtype=np.float32)[:, None]
    cols = np.arange(wide, dtype=np.float32)[None, :]
    for _ in range(rng.poisson(_value(count, rng))):
        x0 = rng.uniform(0, wide)
        slope = np.tan(np.radians(rng.uniform(-1, 1) * _value(angle, rng)))
        line_w = max(_value(width, rng), 0.5)
        depth = _value(intensity, rng) * rng.uniform(0.5, 1.0)
        # the depth wavers along the scratch, as the pressure on the film did
        waver = 0.6 + 0.4 * np.sin(rows / rng.uniform(20, 80) + rng.uniform(0, 6.3))
        mask = (np.exp(-0.5 * ((cols - (x0 + slope * rows)) / line_w) ** 2) * depth * waver).astype(np.float32)
        target = 1.0 if rng.random() < 0.6 else 0.0
        out = out * (1 - mask[..., None]) + target * mask[..., None]
    return out


def dust(image: np.ndarray, rng: np.random.Generator, count=4.0, size=2.0, intensity=0.8) -> np.ndarray:
    """Dust and dirt on the print: Poisson(`count`) irregular specks of about `size` pixels, mostly dark
    (dirt on the positive) and some bright (dirt on the negative)."""
    height, width = image.shape[:2]
    out = image.copy()
    for _ in range(rng.poisson(_value(count, rng))):
        radius = max(0.6, _value(size, rng) * rng.uniform(0.5, 1.5))
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        span = int(radius * 3) + 2
        y0, y1 = max(0, int(cy) - span), min(height, int(cy) + span)
        x0, x1 = max(0, int(cx) - span), min(width, int(cx) + span)
        if y0 >= y1 or x0 >= x1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        stretch = rng.uniform(0.5, 2.0)  # specks are rarely round
        dist = np.sqrt(((yy - cy) * stretch) ** 2 + ((xx - cx) / stretch) ** 2)
        mask = np.clip(radius + 0.5 - dist, 0, 1) * _value(intensity, rng)
        target = 0.0 if rng.random() < 0.75 else 1.0
        region = out[y0:y1, x0:x1]
        out[y0:y1, x0:x1] = region * (1 - mask[..., None]) + target * mask[..., None]
    return out


def fade(image: np.ndarray, rng: np.random.Generator, amount=0.3, cast=(8.0, 6.0), contrast=0.15) -> np.ndarray:
    """Faded colour film, done in CIELAB: the dyes lose saturation (`amount` of the chroma gone), the cyan dye
    fades first so the picture drifts to red/magenta (`cast`: a*, b* shift scaled by `amount`), and the blacks
    lift (`contrast`: share of the lightness range lost at the black end)."""
    lab = rgb_to_lab(image)
    loss = _value(amount, rng)
    lab[..., 1:] *= 1 - loss
    lab[..., 1] += loss * float(cast[0])
    lab[..., 2] += loss * float(cast[1])
    lift = _value(contrast, rng)
    lab[..., 0] = lift * 100 * 0.5 + lab[..., 0] * (1 - lift * 0.5)
    return lab_to_rgb(lab)


def vhs(image: np.ndarray, rng: np.random.Generator, lines=8, offset=20.0, noise=0.15, jitter=0.5) -> np.ndarray:
    """VHS head switching and tracking: the bottom `lines` lines (at 480) torn sideways by up to `offset`
    pixels with snow of strength `noise`, and every line jittered sideways by about `jitter` pixels
    (timebase error). Line counts scale with the frame height."""
    height, width = image.shape[:2]
    out = image.copy()
    wobble = rng.standard_normal(height).astype(np.float32) * _value(jitter, rng)
    wobble = np.convolve(wobble, np.ones(3, np.float32) / 3, mode="same")  # neighbouring lines move together
    torn = max(1, int(round(_value(lines, rng) * height / 480)))
    tear = _value(offset, rng)
    for row in range(height):
        shift = wobble[row]
        if row >= height - torn:
            shift += tear * (1 - (height - 1 - row) / torn * 0.5)
        if abs(shift) > 0.05:
            out[row] = _shift_x(image[row][None], shift)[0]
    snow = rng.standard_normal((torn, width, 1)).astype(np.float32) * _value(noise, rng)
    out[height - torn:] = np.clip(out[height - torn:] + snow, 0, 1)
    return out


EFFECTS: dict[str, Callable[..., np.ndarray]] = {
    "downscale": downscale,
    "blur": blur,
    "jpeg": jpeg,
    "mpeg2": mpeg2,
    "interlace": interlace,
    "chroma": chroma,
    "grain": grain,
    "scratches": scratches,
    "dust": dust,
    "fade": fade,
    "vhs": vhs,
}


# --- pipelines --------------------------------------------------------------------------------------------


def parse_pipeline(spec) -> list[tuple[str, dict]]:
    """[(effect, parameters)] from the config's list of names and one-key mappings; unknown names are errors."""
    steps = []
    for entry in spec or []:
        if isinstance(entry, str):
            name, params = entry, {}
        elif isinstance(entry, dict) and len(entry) == 1:
            name, params = next(iter(entry.items()))
            params = dict(params or {})
        else:
            raise RemasterError(f"train.degradations: {entry!r} is not an effect name or a one-key mapping")
        if name not in EFFECTS:
            raise RemasterError(f"train.degradations: unknown effect {name!r} ({', '.join(EFFECTS)})")
        steps.append((name, params))
    return steps


def pipeline_scale(steps: list[tuple[str, dict]]) -> int:
    """The size ratio clean/degraded: the product of the downscale factors (the model's scale)."""
    scale = 1
    for name, params in steps:
        if name == "downscale":
            scale *= int(params.get("factor", 2))
    return scale


def frame_rng(seed: int, name: str) -> np.random.Generator:
    """One frame's generator: depends only on the seed and the frame's name."""
    return np.random.default_rng([int(seed), zlib.crc32(name.encode())])


def degrade(image: np.ndarray, steps: list[tuple[str, dict]], rng: np.random.Generator) -> np.ndarray:
    """The image through every effect in order."""
    for name, params in steps:
        try:
            image = np.clip(EFFECTS[name](image, rng, **params), 0, 1).astype(np.float32)
        except TypeError as error:
            raise RemasterError(f"train.degradations: {name}: {error}") from None
    return image


def clean_images(folder: Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise RemasterError(f"{folder}: clean frames folder not found; check train.clean_frames in your config")
    images = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise RemasterError(f"{folder}: no images (.png, .jpg, .tif …); check train.clean_frames in your config")
    return images


def validation_names(names: list[str], fraction: float) -> set[str]:
    """Every k-th name (in sorted order) for validation: at least one when there are two or more."""
    if len(names) < 2 or fraction <= 0:
        return set()
    count = max(1, round(len(names) * fraction))
    step = len(names) / count
    return {sorted(names)[int(i * step + step / 2)] for i in range(count)}


def degrade_folder(clean: Path, out: Path, spec, *, seed: int = 0, val_fraction: float = 0.1, log=None) -> dict:
    """Write out/{train,val}/{lr,hr}/NAME.png from the clean images: HR is the clean image cropped to a
    multiple of the pipeline's scale, LR its degraded copy. Returns a summary (counts, scale)."""
    steps = parse_pipeline(spec)
    scale = pipeline_scale(steps)
    images = clean_images(clean)
    names = [p.relative_to(clean).with_suffix("").as_posix().replace("/", "_") for p in images]
    val = validation_names(names, val_fraction)
    for path, name in zip(images, names, strict=True):
        hr = to_float(Image.open(path))
        height, width = hr.shape[:2]
        hr = hr[: height - height % scale, : width - width % scale]
        lr = degrade(hr, steps, frame_rng(seed, name))
        split = "val" if name in val else "train"
        for kind, array in (("hr", hr), ("lr", lr)):
            folder = Path(out) / split / kind
            folder.mkdir(parents=True, exist_ok=True)
            to_image(array).save(folder / f"{name}.png")
        if log:
            log.info("%s: %s %dx%d → %dx%d", split, name, hr.shape[1], hr.shape[0], lr.shape[1], lr.shape[0])
    return {"images": len(images), "val": len(val), "scale": scale, "effects": [name for name, _ in steps]}
