"""Convert ncnn `.param`/`.bin` pairs of Compact (SRVGGNetCompact) models to state dicts spandrel loads."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import torch

FP16_TAG = 0x01306B47  # ncnn marks a float16 weight blob with this 4-byte tag
FP32_TAG = 0


class NcnnError(ValueError):
    """An ncnn model that this converter cannot read."""


def _layers(param_path: Path) -> list[tuple[str, str, dict[int, str]]]:
    lines = param_path.read_text().split("\n")
    if not lines or lines[0].strip() != "7767517":
        raise NcnnError(f"{param_path}: not an ncnn .param file (bad magic line)")
    layers = []
    for line in lines[2:]:
        fields = line.split()
        if not fields:
            continue
        kind, name, n_in, n_out = fields[0], fields[1], int(fields[2]), int(fields[3])
        options = {}
        for item in fields[4 + n_in + n_out :]:
            key, _, value = item.partition("=")
            options[int(key)] = value
        layers.append((kind, name, options))
    return layers


def _read_weight(blob: bytes, offset: int, count: int) -> tuple[np.ndarray, int]:
    (tag,) = struct.unpack_from("<I", blob, offset)
    offset += 4
    if tag == FP16_TAG:
        data = np.frombuffer(blob, dtype="<f2", count=count, offset=offset).astype(np.float32)
        size = count * 2
        return data, offset + ((size + 3) // 4) * 4
    if tag == FP32_TAG:
        data = np.frombuffer(blob, dtype="<f4", count=count, offset=offset)
        return data.copy(), offset + count * 4
    raise NcnnError(f"unsupported ncnn weight storage tag {tag:#x} (quantised models are not supported)")


def _read_raw(blob: bytes, offset: int, count: int) -> tuple[np.ndarray, int]:
    data = np.frombuffer(blob, dtype="<f4", count=count, offset=offset)
    return data.copy(), offset + count * 4


def compact_state_dict(param_path: Path, bin_path: Path) -> tuple[dict[str, torch.Tensor], int]:
    """Read an ncnn Compact model; return its spandrel state dict and the ncnn graph's own scale.

    The graph's scale can differ from the network's: realesr-animevideov3-x2 is a ×4 network followed by a
    bicubic ×0.5 resize, which the returned scale (2) reports so the caller can resize after the model.
    """
    blob = Path(bin_path).read_bytes()
    offset = 0
    state: dict[str, torch.Tensor] = {}
    body_index = 0
    in_channels = 3
    graph_scale = 1.0
    for kind, name, options in _layers(Path(param_path)):
        if kind == "Convolution":
            out_channels, kernel = int(options[0]), int(options.get(1, 1))
            weight_count = int(options[6])
            in_ch = weight_count // (out_channels * kernel * kernel)
            weight, offset = _read_weight(blob, offset, weight_count)
            state[f"body.{body_index}.weight"] = torch.from_numpy(weight.reshape(out_channels, in_ch, kernel, kernel))
            if int(options.get(5, 0)):
                bias, offset = _read_raw(blob, offset, out_channels)
                state[f"body.{body_index}.bias"] = torch.from_numpy(bias)
            in_channels = out_channels
            body_index += 1
        elif kind == "PReLU":
            slope, offset = _read_raw(blob, offset, int(options[0]))
            state[f"body.{body_index}.weight"] = torch.from_numpy(slope)
            body_index += 1
        elif kind == "ReLU" or kind == "LeakyReLU":
            raise NcnnError(f"{param_path}: layer {name} ({kind}) is not a Compact PReLU; only PReLU Compact models convert")
        elif kind == "Interp":
            graph_scale *= float(options.get(1, 1))
        elif kind not in {"Input", "Split", "PixelShuffle", "BinaryOp"}:
            raise NcnnError(f"{param_path}: layer {name} of type {kind} is not part of a Compact model")
    if offset != len(blob):
        raise NcnnError(f"{bin_path}: {len(blob) - offset} bytes left over; the .bin does not match the .param")
    del in_channels
    return state, round(graph_scale)
