"""Convert ncnn `.param`/`.bin` pairs of Compact (SRVGGNetCompact) and ESRGAN (RRDBNet) models to state
dicts spandrel loads.

`python -m remaster.models.ncnn MODEL.param OUT.safetensors` converts one (MODEL.bin next to it).
"""

from __future__ import annotations

import struct
import sys
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


# --- ESRGAN (RRDBNet), and the converter's front door --------------------------------------------------

ESRGAN_LAYERS = {"Input", "Convolution", "Split", "Concat", "Eltwise", "BinaryOp", "Interp"}


def esrgan_state_dict(param_path: Path, bin_path: Path) -> tuple[dict[str, torch.Tensor], int]:
    """Read an ncnn ESRGAN (RRDBNet, as Real-ESRGAN exports it); return BasicSR-named weights and the scale.

    The convolutions come in network order: conv_first, 15 per RRDB block (3 dense blocks of 5), conv_body,
    then conv_up1, conv_up2, conv_hr, conv_last; each nearest ×2 upsampling is an Interp layer.
    """
    layers = _layers(Path(param_path))
    kinds = {kind for kind, _, _ in layers}
    if not kinds <= ESRGAN_LAYERS:
        raise NcnnError(f"{param_path}: layers {sorted(kinds - ESRGAN_LAYERS)} are not part of an ESRGAN x4 model "
                        "(×1/×2 ESRGANs start with a pixel-unshuffle, which this converter does not read)")
    blob = Path(bin_path).read_bytes()
    offset = 0
    convs = []
    scale = 1.0
    for kind, _name, options in layers:
        if kind == "Interp":
            scale *= float(options.get(1, 1))
        if kind != "Convolution":
            continue
        out_channels, kernel = int(options[0]), int(options.get(1, 1))
        weight_count = int(options[6])
        weight, offset = _read_weight(blob, offset, weight_count)
        weight = weight.reshape(out_channels, weight_count // (out_channels * kernel * kernel), kernel, kernel)
        bias = None
        if int(options.get(5, 0)):
            bias, offset = _read_raw(blob, offset, out_channels)
        convs.append((torch.from_numpy(weight), None if bias is None else torch.from_numpy(bias)))
    if offset != len(blob):
        raise NcnnError(f"{bin_path}: {len(blob) - offset} bytes left over; the .bin does not match the .param")
    blocks, rest = divmod(len(convs) - 6, 15)
    if rest or blocks < 1 or scale != 4:
        raise NcnnError(f"{param_path}: {len(convs)} convolutions and ×{scale:g} do not make an ESRGAN x4 model")
    names = ["conv_first"]
    names += [f"body.{b}.rdb{r}.conv{c}" for b in range(blocks) for r in (1, 2, 3) for c in range(1, 6)]
    names += ["conv_body", "conv_up1", "conv_up2", "conv_hr", "conv_last"]
    state: dict[str, torch.Tensor] = {}
    for name, (weight, bias) in zip(names, convs, strict=True):
        state[f"{name}.weight"] = weight
        if bias is not None:
            state[f"{name}.bias"] = bias
    return state, round(scale)


def convert(param_path: Path, bin_path: Path | None = None) -> tuple[dict[str, torch.Tensor], int, str]:
    """Any ncnn model this module reads: (spandrel state dict, the ncnn graph's scale, the kind found)."""
    param_path = Path(param_path)
    bin_path = Path(bin_path) if bin_path else param_path.with_suffix(".bin")
    if not bin_path.is_file():
        raise NcnnError(f"{bin_path}: the .bin weights next to {param_path.name} are missing")
    kinds = {kind for kind, _, _ in _layers(param_path)}
    if "PReLU" in kinds:
        state, scale = compact_state_dict(param_path, bin_path)
        return state, scale, "Compact"
    if "Concat" in kinds and "Eltwise" in kinds:
        state, scale = esrgan_state_dict(param_path, bin_path)
        return state, scale, "ESRGAN"
    raise NcnnError(f"{param_path}: not a Compact or ESRGAN ncnn model (layers: {', '.join(sorted(kinds))}); "
                    "SPAN and other ncnn graphs are not converted")


def io_names(param_path: Path) -> tuple[str, str]:
    """The graph's input and output blob names (for running it with the ncnn runtime)."""
    lines = [line.split() for line in Path(param_path).read_text().split("\n")[2:] if line.split()]
    first = next(fields for fields in lines if fields[0] == "Input")
    return first[4], lines[-1][4 + int(lines[-1][2])]


def run_ncnn(param_path: Path, bin_path: Path, image: np.ndarray) -> np.ndarray:
    """Run an ncnn model on one CHW float32 RGB image in [0, 1] on the CPU, in fp32 (for verification)."""
    import ncnn as ncnn_runtime

    net = ncnn_runtime.Net()
    for flag in ("use_vulkan_compute", "use_fp16_packed", "use_fp16_storage", "use_fp16_arithmetic",
                 "use_bf16_storage", "use_int8_inference"):
        if hasattr(net.opt, flag):
            setattr(net.opt, flag, False)
    if net.load_param(str(param_path)) != 0 or net.load_model(str(bin_path)) != 0:
        raise NcnnError(f"{param_path}: the ncnn runtime could not load it")
    source, target = io_names(param_path)
    extractor = net.create_extractor()
    extractor.input(source, ncnn_runtime.Mat(np.ascontiguousarray(image, dtype=np.float32)))
    status, out = extractor.extract(target)
    if status != 0:
        raise NcnnError(f"{param_path}: the ncnn runtime failed ({status})")
    return np.array(out)


def main(argv: list[str] | None = None) -> int:
    import argparse

    from safetensors.torch import save_file
    from spandrel import ModelLoader

    parser = argparse.ArgumentParser(prog="python -m remaster.models.ncnn",
                                     description="Convert an ncnn Compact or ESRGAN model to .safetensors.")
    parser.add_argument("param", type=Path, help="MODEL.param (its MODEL.bin next to it)")
    parser.add_argument("out", type=Path, help="OUT.safetensors")
    args = parser.parse_args(argv)
    if args.out.suffix != ".safetensors":
        parser.error(f"{args.out}: the output must end in .safetensors")
    try:
        state, graph_scale, kind = convert(args.param)
    except (NcnnError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    state = {key: value.contiguous() for key, value in state.items()}
    descriptor = ModelLoader().load_from_state_dict(dict(state))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f".{args.out.name}.partial")
    save_file(state, str(tmp))
    tmp.replace(args.out)
    print(f"{args.out}: {descriptor.architecture.name} ×{descriptor.scale} (from ncnn {kind})")
    if graph_scale != descriptor.scale:
        print(f"note: the ncnn graph resizes the ×{descriptor.scale} network's output to ×{graph_scale}; "
              f"set scale: {graph_scale} in your config for the same result")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
