"""Small random-weight builds of every architecture spandrel (and spandrel-extra-arches) can load, for the
architecture matrix (tests/test_arch_matrix.py). Each entry: a name and a function returning the module.

The configurations are the smallest each architecture's detection in spandrel still recognises (after
spandrel's own tests/test_<Arch>.py), so the whole matrix runs in minutes on two CPU cores.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

# architectures not in the matrix, and why
NOT_BUILT = {
    "LaMa": "inpainting: takes an image and a mask (MaskedImageModelDescriptor), not a remaster step",
    "MAT": "inpainting: takes an image and a mask (MaskedImageModelDescriptor), not a remaster step",
    "AuraSR": "a GigaGAN upscaler whose smallest detectable build needs a style network of its own; not built",
}

# builds that spandrel loads but whose code cannot run an odd frame even at fp32 (spandrel faults, reported
# in docs/models.md): the run path must refuse them at start-up, with one line, instead of mid-shard
REFUSED = {
    "SPAN grey x4 (1 in, 1 out)": "SPAN subtracts a 3-channel rgb_mean from a grey input",
    "MMRealSR x2": "size_requirements lack multiple_of: pixel_unshuffle asserts on odd sizes",
    "IPT x1": "its patch code views a padded odd frame with .view: 'view size is not compatible'",
}

# minutes each on two CPU cores (512×512 face models, a 27M-parameter codebook): run with
# REMASTER_MATRIX_SLOW=1
SLOW = {"GFPGAN", "CodeFormer", "AdaCode"}


def _cls(arch: str, name: str | None = None, extra: bool = False):
    package = "spandrel_extra_arches" if extra else "spandrel"
    return getattr(importlib.import_module(f"{package}.architectures.{arch}"), name or arch)


def _swin(arch: str, **extra):
    def build():
        return _cls(arch)(img_size=16, window_size=8, embed_dim=24, depths=[2, 2], num_heads=[2, 2], **extra)
    return build


BUILDS: dict[str, Callable] = {
    # convolutional upscalers
    "Compact x2": lambda: _cls("Compact")(num_feat=8, num_conv=2, upscale=2),
    "Compact grey x1 (1 in, 1 out)": lambda: _cls("Compact")(num_in_ch=1, num_out_ch=1, num_feat=8, num_conv=2,
                                                            upscale=1),
    "Compact RGBA x2 (4 in, 4 out)": lambda: _cls("Compact")(num_in_ch=4, num_out_ch=4, num_feat=8, num_conv=2,
                                                            upscale=2),
    "ESRGAN x1": lambda: _cls("ESRGAN")(num_filters=8, num_blocks=1, scale=1),
    "ESRGAN x2": lambda: _cls("ESRGAN")(num_filters=8, num_blocks=1, scale=2),
    "ESRGAN x4": lambda: _cls("ESRGAN")(num_filters=8, num_blocks=1, scale=4),
    "ESRGAN x8": lambda: _cls("ESRGAN")(num_filters=8, num_blocks=1, scale=8),
    "ESRGAN grey in, RGB out x2": lambda: _cls("ESRGAN")(in_nc=1, out_nc=3, num_filters=8, num_blocks=1, scale=2),
    "ESRGAN RGBA x4 (4 in, 4 out)": lambda: _cls("ESRGAN")(in_nc=4, out_nc=4, num_filters=8, num_blocks=1, scale=4),
    "SwiftSRGAN x2": lambda: _cls("SwiftSRGAN")(num_channels=8, num_blocks=1, upscale_factor=2),
    "SPAN x2": lambda: _cls("SPAN")(num_in_ch=3, num_out_ch=3, feature_channels=8, upscale=2),
    "SPAN grey x4 (1 in, 1 out)": lambda: _cls("SPAN")(num_in_ch=1, num_out_ch=1, feature_channels=8, upscale=4),
    "RealCUGAN x2": lambda: _cls("RealCUGAN", "UpCunet2x")(in_channels=3, out_channels=3),
    "RealCUGAN x3": lambda: _cls("RealCUGAN", "UpCunet3x")(in_channels=3, out_channels=3),
    "SAFMN x2": lambda: _cls("SAFMN")(dim=8, n_blocks=1, ffn_scale=2.0, upscaling_factor=2),
    "SAFMNBCIE x2": lambda: _cls("SAFMNBCIE")(dim=8, n_blocks=1, num_layers=1, upscaling_factor=2),
    "DCTLSA x2": lambda: _cls("DCTLSA")(nf=20, num_modules=6, upscale=2, num_head=5),
    "PLKSR x2": lambda: _cls("PLKSR")(dim=16, n_blocks=2, upscaling_factor=2),
    "RealPLKSR x2": lambda: _cls("PLKSR", "RealPLKSR")(dim=16, n_blocks=2, upscaling_factor=2),
    "MoSR x2": lambda: _cls("MoSR")(n_block=1, dim=16, upscale=2),
    "MoESR x2": lambda: _cls("MoESR")(dim=16, n_blocks=1, n_block=1, scale=2, upsample_dim=16),
    "RCAN x2": lambda: _cls("RCAN")(scale=2, n_resgroups=1, n_resblocks=1, n_feats=16, reduction=4),
    "OmniSR x2": lambda: _cls("OmniSR")(num_feat=16, block_num=1, up_scale=2),
    "SeemoRe x2": lambda: _cls("SeemoRe")(scale=2, num_experts=2, num_layers=1, embedding_dim=16),
    "DITN x2": lambda: _cls("DITN")(dim=8, ITL_blocks=1, SAL_blocks=1, upscale=2),
    "MMRealSR x2": lambda: _cls("MMRealSR")(num_in_ch=3, num_out_ch=3, scale=2, num_feat=16, num_block=1),
    "CRAFT x2": lambda: _cls("CRAFT")(embed_dim=12, depths=[1], num_heads=[2], upscale=2),
    # transformers with shifted windows (the mask-dtype fault)
    "SwinIR x2": _swin("SwinIR", upscale=2, upsampler="pixelshuffle"),
    "SwinIR x1 denoise": _swin("SwinIR", upscale=1),
    "Swin2SR x2": _swin("Swin2SR", upscale=2, upsampler="pixelshuffledirect"),
    "HAT x2": lambda: _cls("HAT")(img_size=16, window_size=8, embed_dim=24, depths=(1,), num_heads=(2,),
                                  compress_ratio=3, squeeze_factor=8, upscale=2, upsampler="pixelshuffle"),
    "DRCT x2": lambda: _cls("DRCT")(img_size=16, window_size=8, embed_dim=24, depths=(1,), num_heads=(2,), gc=8,
                                    upscale=2, upsampler="pixelshuffle"),
    "ATD x2": lambda: _cls("ATD")(img_size=16, embed_dim=24, depths=(2, 2), num_heads=(2, 2), num_tokens=16,
                                  category_size=64, upscale=2, upsampler="pixelshuffledirect"),
    "RGT x2": lambda: _cls("RGT")(img_size=16, embed_dim=24, depth=[1], num_heads=[2], upscale=2),
    "DAT x2": lambda: _cls("DAT")(img_size=16, embed_dim=24, depth=[1], num_heads=[2], upscale=2),
    "GRL x2": lambda: _cls("GRL")(embed_dim=16, depths=[1], num_heads_window=[1], num_heads_stripe=[1],
                                  upscale=2, upsampler="pixelshuffle"),
    "FDAT x2": lambda: _cls("FDAT")(embed_dim=16, num_groups=1, depth_per_group=1, num_heads=2, scale=2,
                                    mid_dim=16),
    "IPT x1": lambda: _cls("IPT")(patch_size=24, n_feats=24, num_layers=1),
    # restoration at ×1
    "SCUNet": lambda: _cls("SCUNet")(config=[1, 1, 1, 1, 1, 1, 1]),
    "FBCNN": lambda: _cls("FBCNN")(),
    "Uformer": lambda: _cls("Uformer")(embed_dim=4, depths=[1, 1, 1, 1, 1, 1, 1, 1, 1]),
    "KBNet": lambda: _cls("KBNet", "KBNet_s")(width=8, middle_blk_num=1, enc_blk_nums=[1, 1, 1, 1],
                                             dec_blk_nums=[1, 1, 1, 1]),
    "NAFNet": lambda: _cls("NAFNet")(width=8, middle_blk_num=1, enc_blk_nums=[1, 1], dec_blk_nums=[1, 1]),
    "FFTformer": lambda: _cls("FFTformer")(dim=8, num_blocks=[1, 1, 1], num_refinement_blocks=1),
    "MixDehazeNet": lambda: _cls("MixDehazeNet")(embed_dims=[8, 16, 32, 16, 8], depths=[1, 1, 1, 1, 1]),
    "DRUNet": lambda: _cls("DRUNet")(in_nc=4, out_nc=3),
    "DnCNN grey (1 in, 1 out)": lambda: _cls("DnCNN")(in_nc=1, out_nc=1, nc=16, nb=17, act_mode="BR"),
    "RetinexFormer": lambda: _cls("RetinexFormer")(n_feat=8, stage=1, num_blocks=[1, 1, 1]),
    "HVICIDNet": lambda: _cls("HVICIDNet")(channels=[8, 8, 16, 32], heads=[1, 1, 2, 2]),
    "RestoreFormer": lambda: _cls("RestoreFormer")(n_embed=256, embed_dim=32, ch=32),
    "GFPGAN": lambda: _cls("GFPGAN")(),
    # spandrel-extra-arches
    "SRFormer x2": lambda: _cls("SRFormer", extra=True)(img_size=16, window_size=8, embed_dim=24, depths=(1,),
                                                       num_heads=(2,), upscale=2, upsampler="pixelshuffle"),
    "DDColor (grey in, colour out)": lambda: _cls("DDColor", extra=True)(
        encoder_name="convnext-t", nf=512, num_output_channels=2, last_norm="Spectral", num_queries=8,
        num_scales=3, dec_layers=1),
    "CodeFormer": lambda: _cls("CodeFormer", extra=True)(dim_embd=256, n_layers=1),
    "Restormer": lambda: _cls("Restormer", extra=True)(dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1,
                                                       heads=[1, 1, 1, 1]),
    "MPRNet": lambda: _cls("MPRNet", extra=True)(n_feat=8, scale_unetfeats=4, scale_orsnetfeats=4, num_cab=1),
    "MIRNet2": lambda: _cls("MIRNet2", extra=True)(n_feat=32),
    "M3SNet": lambda: _cls("M3SNet", extra=True)(width=8, enc_blk_nums=[1, 1, 1, 1], dec_blk_nums=[1, 1, 1, 1]),
    "FeMaSR": lambda: _cls("FeMaSR", extra=True)(codebook_params=[[32, 64, 16]], gt_resolution=64),
    "AdaCode": lambda: _cls("AdaCode", extra=True)(codebook_params=[[32, 64, 16]], gt_resolution=64),
}
