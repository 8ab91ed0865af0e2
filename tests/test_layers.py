"""The layer table: one row per registered type, expected values written as arithmetic.

Every row is also built as the real PyTorch module and checked against it (shape, weights,
biases, buffers, and MACs against torch.utils.flop_counter), where torch is installed, and
against every counting convention's tool (tests/test_conventions.py). Adding a layer type is
one class in cnncalc/layers/ and one row here (docs/spec.md, "Adding a layer type").
"""

import math
from pathlib import Path

import pytest

from cnncalc import CnncalcError, to_torch
from cnncalc.analysis import analyze
from cnncalc.layers import REGISTRY, Convention, ElementWise, Layer, counting, register, rules
from cnncalc.layers.base import REQUIRED, missing_declarations
from cnncalc.layers.counting import DEFAULT_RULES, nothing
from cnncalc.layers.reference import markdown_table
from cnncalc.records import record
from cnncalc.spec import parse_text

# (yaml item, input [C, ...], output [C, ...], weights, biases, buffers, MACs)
LAYER_TABLE = {
    "conv": [
        (
            "conv: {out: 96, kernel: 11, stride: 4}",
            [3, 227, 227],
            [96, 55, 55],
            (11 * 11 * 3) * 96,
            96,
            0,
            55 * 55 * 96 * (11 * 11 * 3),
        ),
        (
            # TensorFlow's 'same' at stride 2: ceil(224/2) = 112 (padding 0 + 1)
            "conv: {out: 8, kernel: 3, stride: 2, padding: tf_same}",
            [3, 224, 224],
            [8, 112, 112],
            (3 * 3 * 3) * 8,
            8,
            0,
            112 * 112 * 8 * (3 * 3 * 3),
        ),
        (
            "conv: {out: 8, kernel: 3, padding: same, dilation: 2, bias: false}",
            [4, 9, 9],
            [8, 9, 9],
            3 * 3 * 4 * 8,
            0,
            0,
            9 * 9 * 8 * (3 * 3 * 4),
        ),
        (
            "conv: {out: 32, kernel: 3, padding: 1, groups: 32}",
            [32, 8, 8],
            [32, 8, 8],
            3 * 3 * 1 * 32,
            32,
            0,
            8 * 8 * 32 * (3 * 3 * 1),
        ),  # depthwise
        ("conv1d: {out: 4, kernel: 5, stride: 2}", [2, 20], [4, 8], 5 * 2 * 4, 4, 0, 8 * 4 * (5 * 2)),
        (
            "conv3d: {out: 2, kernel: [1, 3, 3], padding: [0, 1, 1]}",
            [3, 4, 6, 6],
            [2, 4, 6, 6],
            (1 * 3 * 3 * 3) * 2,
            2,
            0,
            4 * 6 * 6 * 2 * (1 * 3 * 3 * 3),
        ),
    ],
    # timm's BlurPool2d (TResNet's anti-aliasing): the binomial filter [1, 2, 1]/4 outer itself, one per
    # channel, a buffer [C, 1, 3, 3]; (18 - 3)/2 + 1 = 8, each output 3*3 taps of its own channel
    "blur_pool": [
        ("blur_pool: {kernel: 3, stride: 2}", [8, 18, 18], [8, 8, 8], 0, 0, 8 * 3 * 3, 8 * 8 * 8 * (3 * 3)),
        # (9 - 5 + 2*2)/2 + 1 = 5
        (
            "blur_pool: {kernel: 5, stride: 2, padding: 2, persistent: false}",
            [4, 9, 9],
            [4, 5, 5],
            0,
            0,
            4 * 5 * 5,
            5 * 5 * 4 * (5 * 5),
        ),
    ],
    # ViT's class token: torch.cat([cls_token.expand(N, -1, -1), x], 1), the token [1, 1, D] a parameter
    "class_token": [
        ("class_token", [49, 192], [1 + 49, 192], 1 * 192, 0, 0, 0),  # ViT-Ti/16 at 112: 7*7 patches
        ("class_token: {tokens: 2, init: 0.5}", [4, 8], [2 + 4, 8], 2 * 8, 0, 0, 0),  # a class and a register token
    ],
    # nn.Unfold: each window a column; VOLO-D1's outlook attention at 28x28: (28 - 3 + 2*1)//2 + 1 = 14
    "im2col": [
        ("im2col: {kernel: 3, padding: 1, stride: 2}", [192, 28, 28], [192 * 3 * 3, 14 * 14], 0, 0, 0, 0),
        # dilated: H (7 - 2*(2-1) - 1)/1 + 1 = 5, W (8 - 2*(3-1) - 1)/1 + 1 = 4
        ("im2col: {kernel: [2, 3], dilation: 2}", [2, 7, 8], [2 * 2 * 3, 5 * 4], 0, 0, 0, 0),
    ],
    # nn.Fold: the columns summed back; VOLO-D1's, 1728 = 192*3*3 rows, 196 = 14*14 windows of 28x28
    "col2im": [
        ("col2im: {output_size: 28, kernel: 3, padding: 1, stride: 2}", [1728, 196], [1728 // 9, 28, 28], 0, 0, 0, 0),
        # 2x2 windows of 5x6: (5-2+1)*(6-2+1) = 20 columns of 2*2*2 rows
        ("col2im: {output_size: [5, 6], kernel: 2}", [8, 20], [8 // 4, 5, 6], 0, 0, 0, 0),
    ],
    # x.max(dim)[0]: VOLO-D1's aux head, the largest of 14*14 tokens' 1000 logits
    "max": [
        ("max: 1", [14 * 14, 1000], [1000], 0, 0, 0, 0),
        ("max: {dim: -1, keepdim: true}", [4, 5, 6], [4, 5, 1], 0, 0, 0, 0),
    ],
    # NFNet's ScaledStdConv2d: the filters standardised in forward, times a gain per filter
    "std_conv": [
        (
            "std_conv: {out: 16, kernel: 3, stride: 2, padding: 1, gain: true, scale: 0.19245}",
            [3, 32, 32],
            [16, 16, 16],
            (3 * 3 * 3) * 16 + 16,  # the filters and the gain [16, 1, 1, 1]
            16,
            0,
            16 * 16 * 16 * (3 * 3 * 3),
        ),
        ("std_conv: {out: 8, kernel: 1, bias: false}", [4, 5, 5], [8, 5, 5], 4 * 8, 0, 0, 5 * 5 * 8 * 4),  # StdConv2d
    ],
    "conv_transpose": [
        (
            "conv_transpose: {out: 8, kernel: 4, stride: 2, padding: 1}",
            [16, 7, 7],
            [8, 14, 14],
            16 * 8 * 4 * 4,
            8,
            0,
            7 * 7 * 16 * 8 * 4 * 4,
        ),
        (
            "conv_transpose: {out: 4, kernel: 3, stride: 2, padding: 1, output_padding: 1, groups: 2, bias: false}",
            [6, 5, 5],
            [4, 10, 10],
            6 * (4 // 2) * 3 * 3,
            0,
            0,
            5 * 5 * 6 * (4 // 2) * 3 * 3,
        ),
    ],
    "maxpool": [
        ("maxpool: {kernel: 3, stride: 2}", [96, 55, 55], [96, 27, 27], 0, 0, 0, 0),
        ("maxpool: {kernel: 3, stride: 2, ceil_mode: true}", [64, 112, 112], [64, 56, 56], 0, 0, 0, 0),
        ("maxpool: 2", [16, 9], [16, 4], 0, 0, 0, 0),
    ],
    "avgpool": [
        ("avgpool: {kernel: 7, stride: 1}", [1024, 7, 7], [1024, 1, 1], 0, 0, 0, 0),
        (
            "avgpool: {kernel: 3, stride: 2, padding: 1, ceil_mode: true, count_include_pad: false}",
            [8, 10, 10],
            [8, 6, 6],
            0,
            0,
            0,
            0,
        ),
    ],
    "adaptive_avgpool": [("adaptive_avgpool: 7", [512, 14, 14], [512, 7, 7], 0, 0, 0, 0)],
    "adaptive_maxpool": [("adaptive_maxpool: [2, 3]", [8, 9, 9], [8, 2, 3], 0, 0, 0, 0)],
    "global_avgpool": [("global_avgpool", [2048, 7, 7], [2048, 1, 1], 0, 0, 0, 0)],
    "linear": [
        ("linear: 4096", [25088], [4096], 7 * 7 * 512 * 4096, 4096, 0, 7 * 7 * 512 * 4096),
        ("linear: {out: 10, bias: false}", [84], [10], 84 * 10, 0, 0, 84 * 10),
        (
            "linear: {out: 384, channels_last: true}",
            [7, 7, 96],
            [7, 7, 384],
            96 * 384,
            384,
            0,
            7 * 7 * 96 * 384,
        ),  # group A: ConvNeXt's pwconv1
    ],
    "flatten": [
        ("flatten", [512, 7, 7], [7 * 7 * 512], 0, 0, 0, 0),
        ("flatten: {start_dim: 2}", [1, 8, 8], [1, 8 * 8], 0, 0, 0, 0),  # ECA: [N, C, H*W] over positions
        ("flatten: {start_dim: 1, end_dim: 2}", [2, 32, 7, 7], [2 * 32, 7, 7], 0, 0, 0, 0),  # ResNeSt's radix back
    ],
    # issue 18: views and reshapes, axes counted as PyTorch counts them (the batch axis 0)
    "reshape": [
        (
            "reshape: [2, 32, 7, 7]",
            [64, 7, 7],
            [2, 64 // 2, 7, 7],
            0,
            0,
            0,
            0,
        ),  # ResNeSt: view(N, radix, C/radix, H, W)
        ("reshape: [1, -1]", [64, 1, 1], [1, 64 * 1 * 1], 0, 0, 0, 0),  # ECA: y.view(N, 1, -1)
        ("view: [-1, 1, 1]", [1, 64], [64, 1, 1], 0, 0, 0, 0),  # ECA back: view(N, C, 1, 1)
        ("reshape: [8, 3, 4, 5, 4]", [8, 12, 20], [8, 12 // 4, 4, 20 // 4, 4], 0, 0, 0, 0),  # TResNet's space to depth
    ],
    "unsqueeze": [
        ("unsqueeze: [-1, -1]", [64], [64, 1, 1], 0, 0, 0, 0),  # s.unsqueeze(-1).unsqueeze(-1)
        ("unsqueeze: {dim: [2, 3]}", [64], [64, 1, 1], 0, 0, 0, 0),  # s[:, :, None, None]
        ("unsqueeze: 1", [3, 4], [1, 3, 4], 0, 0, 0, 0),
    ],
    # issue 18: HaloNet's relative logits [H, 1, W, w] tiled over the block, x.expand(-1, -1, w, -1, -1)
    "expand": [
        ("expand: [-1, 7, -1, -1]", [8, 1, 8, 7], [8, 7, 8, 7], 0, 0, 0, 0),
        ("expand: {sizes: [3, 4, -1]}", [1, 1, 5], [3, 4, 5], 0, 0, 0, 0),
    ],
    "squeeze": [
        ("squeeze", [64, 1, 1], [64], 0, 0, 0, 0),  # every size-1 axis but the batch
        ("squeeze: -1", [64, 1, 1], [64, 1], 0, 0, 0, 0),  # ECA: y.squeeze(-1)
        ("squeeze: 2", [64, 5, 1], [64, 5, 1], 0, 0, 0, 0),  # an axis that is not 1 stays, as in PyTorch
    ],
    "contiguous": [("contiguous", [3, 4, 4], [3, 4, 4], 0, 0, 0, 0)],
    "scalar": [
        ("scalar: {op: mul, value: 0.17}", [32, 8, 8], [32, 8, 8], 0, 0, 0, 0),  # Inception-ResNet: x * 0.17
        ("scalar: {op: add, value: 3}", [4, 5], [4, 5], 0, 0, 0, 0),  # hard-swish's x + 3
        ("scalar: {op: rsub, value: 1}", [4], [4], 0, 0, 0, 0),  # 1 - x
        ("scalar: {op: pow, value: 2}", [16, 7, 7], [16, 7, 7], 0, 0, 0, 0),  # timm's RmsNorm2d: x.pow(2)
    ],
    "unary": [
        ("unary: rsqrt", [1, 7, 7], [1, 7, 7], 0, 0, 0, 0),  # timm's SimpleNorm: torch.rsqrt(var + eps)
        ("unary: {op: sin}", [32, 32, 16], [32, 32, 16], 0, 0, 0, 0),  # EdgeNeXt's sine position encoding
    ],
    "var": [
        ("var: {dim: -1, keepdim: true}", [56, 56, 32], [56, 56, 1], 0, 0, 0, 0),  # SimpleNorm, channels last
        ("var: {dim: [2, 3], correction: 0}", [8, 4, 4], [8], 0, 0, 0, 0),
    ],
    "amax": [("amax: {dim: 1, keepdim: true}", [64, 7, 7], [1, 7, 7], 0, 0, 0, 0)],  # a max over channels
    # a learned tensor held bare: weights for a product, biases for a sum (by default)
    "parameter": [
        ("parameter: {op: mul, shape: [1]}", [64, 56, 56], [64, 56, 56], 1, 0, 0, 0),  # HGNetV2's scale: one number
        ("parameter: {op: add, shape: [1], bias: true}", [64, 56, 56], [64, 56, 56], 0, 1, 0, 0),  # and its bias
        # gamma.view(-1, 1, 1); then [C] on the last axis of channels-last tokens
        ("parameter: {op: mul, shape: [48], view: [48, 1, 1]}", [48, 56, 56], [48, 56, 56], 48, 0, 0, 0),
        ("parameter: {op: mul, shape: [32]}", [56, 56, 32], [56, 56, 32], 32, 0, 0, 0),
        ("parameter: {op: rsub, shape: [1, 8, 1, 1]}", [8, 3, 3], [8, 3, 3], 8, 0, 0, 0),  # p - x, batch axis 1
        ("parameter: {op: add, shape: [5, 6]}", [1, 6], [5, 6], 5 * 6, 0, 0, 0),  # broadcast: the output grows
        # HaloNet's relative logits q @ rel_k^T: rel_k [2*8 - 1, 16] on q [8, 8, 16], 8*8 positions of 16*15
        ("parameter: {op: linear, shape: [15, 16]}", [8, 8, 16], [8, 8, 15], 15 * 16, 0, 0, 8 * 8 * 16 * 15),
        ("parameter: {op: matmul, shape: [16, 4]}", [5, 16], [5, 4], 16 * 4, 0, 0, 5 * 16 * 4),  # x @ W
    ],
    # vector norms written by hand: nothing any tool counts (linalg_vector_norm, clamp_min, div)
    "normalize": [
        ("normalize: -1", [3136, 48], [3136, 48], 0, 0, 0, 0),  # SwiftFormer: F.normalize(q, dim=-1)
        ("normalize: {dim: 1, p: 1, eps: 1.0e-6}", [64, 7, 7], [64, 7, 7], 0, 0, 0, 0),
    ],
    "vector_norm": [
        ("vector_norm: {dim: [2, 3], keepdim: true}", [64, 56, 56], [64, 1, 1], 0, 0, 0, 0),  # GRN's 2-norm
        ("vector_norm: {dim: 1, p: 1}", [8, 4, 4], [4, 4], 0, 0, 0, 0),
    ],
    # XCiT: a tiling; a sine position encoding
    "repeat": [
        ("repeat: [1, 1, 1]", [128, 28, 28], [128, 28, 28], 0, 0, 0, 0),  # XCiT: pos.repeat(B, 1, 1, 1), a copy
        ("repeat: [2, 1, 3]", [4, 5, 6], [2 * 4, 5, 3 * 6], 0, 0, 0, 0),
    ],
    "sine_position": [
        ("sine_position: 32", [128, 28, 28], [2 * 32, 28, 28], 0, 0, 0, 0),  # XCiT's hidden_dim 32
        ("sine_position: {features: 16, temperature: 100}", [3, 5, 7], [2 * 16, 5, 7], 0, 0, 0, 0),
    ],
    # attention logits + a table gathered by relative position: the table's weights, the index's buffers
    "bias_table": [
        # LeViT-128S's first stage: 4 heads on a 14x14 map, table [4, 14*14], index [196, 196]
        ("bias_table: {heads: 4, grid: [14, 14]}", [4, 196, 196], [4, 196, 196], 4 * (14 * 14), 0, 196 * 196, 0),
        # its downsampling attention: queries every 2nd position, ceil(14/2)^2 = 49 of them
        (
            "bias_table: {heads: 8, grid: [14, 14], stride: 2}",
            [8, 49, 196],
            [8, 49, 196],
            8 * (14 * 14),
            0,
            49 * 196,
            0,
        ),
        # GCViT's RelPosBias on a 7x7 window: table [(2*7-1)*(2*7-1), 3], index flat [49*49]
        (
            "bias_table: {heads: 3, grid: [7, 7], offsets: signed, flat: true, index_name: relative_position_index}",
            [3, 49, 49],
            [3, 49, 49],
            (2 * 7 - 1) * (2 * 7 - 1) * 3,
            0,
            49 * 49,
            0,
        ),
        # TinyViT's bias alone, SDPA's attn_mask: [5 heads, 7*7, 7*7] whatever the input (here q)
        ("bias_table: {heads: 5, grid: [7, 7], add: false}", [5, 49, 32], [5, 49, 49], 5 * 49, 0, 49 * 49, 0),
    ],
    "sum": [
        ("sum: {dim: 1}", [2, 32, 7, 7], [32, 7, 7], 0, 0, 0, 0),  # ResNeSt: the radix axis summed
        ("sum: {dim: [2, 3], keepdim: true}", [8, 4, 4], [8, 1, 1], 0, 0, 0, 0),
    ],
    "mean": [
        ("mean: {dim: [2, 3]}", [64, 7, 7], [64], 0, 0, 0, 0),  # ECA: x.mean((2, 3))
        ("mean: {dim: -1, keepdim: true}", [3, 5, 6], [3, 5, 1], 0, 0, 0, 0),
    ],
    "batchnorm": [
        ("batchnorm", [64, 56, 56], [64, 56, 56], 64, 64, 2 * 64 + 1, 0),  # gamma, beta; mean, var, num_batches_tracked
        # LeViT-128S's LinearNorm: 196 tokens of 256 channels, the norm per channel on the last axis
        ("batchnorm: {channels_last: true}", [196, 256], [196, 256], 256, 256, 2 * 256 + 1, 0),
        ("batchnorm: {affine: false, track_running_stats: false}", [10], [10], 0, 0, 0, 0),
        (
            "batchnorm: {track_running_stats: false}",
            [4, 5, 5],
            [4, 5, 5],
            4,
            4,
            0,
            0,
        ),  # group A: fvcore counts 5 per element (issue 9)
        (
            "batchnorm: {momentum: null}",
            [8, 3, 3],
            [8, 3, 3],
            8,
            8,
            2 * 8 + 1,
            0,
        ),  # group A: a cumulative average (issue 9)
    ],
    "lrn": [("lrn: {size: 5, k: 2}", [96, 27, 27], [96, 27, 27], 0, 0, 0, 0)],
    "dropout": [("dropout: 0.5", [4096], [4096], 0, 0, 0, 0)],
    "identity": [("identity", [3, 4, 4], [3, 4, 4], 0, 0, 0, 0)],
    "relu": [("relu", [64, 8, 8], [64, 8, 8], 0, 0, 0, 0)],
    "leaky_relu": [("leaky_relu: 0.1", [4, 8], [4, 8], 0, 0, 0, 0)],
    "sigmoid": [("sigmoid", [5], [5], 0, 0, 0, 0)],
    "tanh": [("tanh", [5, 2, 2], [5, 2, 2], 0, 0, 0, 0)],
    "elu": [("elu: {alpha: 0.5}", [5, 2, 2], [5, 2, 2], 0, 0, 0, 0)],
    "gelu": [("gelu: {approximate: tanh}", [5, 2, 2], [5, 2, 2], 0, 0, 0, 0)],
    "silu": [("silu", [5, 2, 2], [5, 2, 2], 0, 0, 0, 0)],
    "softmax": [
        ("softmax", [1000], [1000], 0, 0, 0, 0),
        ("softmax: -1", [2, 16, 16], [2, 16, 16], 0, 0, 0, 0),  # attention's scores, over the keys
        ("softmax: {dim: 2}", [3, 5, 4], [3, 5, 4], 0, 0, 0, 0),
    ],
    # group B (issue 10)
    "upsample": [
        ("upsample: 2", [4, 5, 5], [4, 5 * 2, 5 * 2], 0, 0, 0, 0),
        ("upsample: {size: [9, 4], mode: bilinear, align_corners: true}", [3, 5, 7], [3, 9, 4], 0, 0, 0, 0),
        (
            "upsample: {scale_factor: 1.5, mode: bicubic}",
            [2, 5, 7],
            [2, 7, 10],
            0,
            0,
            0,
            0,
        ),  # floor(5*1.5), floor(7*1.5)
        ("upsample: {scale_factor: [2, 3], mode: nearest-exact}", [2, 3, 4], [2, 3 * 2, 4 * 3], 0, 0, 0, 0),
        ("interpolate: {scale_factor: 2.5, mode: linear}", [3, 5], [3, 12], 0, 0, 0, 0),  # floor(12.5)
        ("upsample: {size: 6, mode: trilinear}", [2, 3, 4, 5], [2, 6, 6, 6], 0, 0, 0, 0),
        ("upsample: 3", [2, 4], [2, 4 * 3], 0, 0, 0, 0),
    ],
    "pixel_shuffle": [("pixel_shuffle: 2", [12, 4, 5], [12 // (2 * 2), 4 * 2, 5 * 2], 0, 0, 0, 0)],
    "pixel_unshuffle": [("pixel_unshuffle: {downscale_factor: 3}", [2, 6, 9], [2 * 3 * 3, 6 // 3, 9 // 3], 0, 0, 0, 0)],
    "channel_shuffle": [("channel_shuffle: 3", [6, 4, 4], [6, 4, 4], 0, 0, 0, 0)],
    "pad": [
        ("pad: [1, 2, 3, 4]", [3, 5, 6], [3, 3 + 5 + 4, 1 + 6 + 2], 0, 0, 0, 0),  # last axis first: W 1, 2; H 3, 4
        ("pad: {padding: 2, mode: reflect}", [2, 5], [2, 2 + 5 + 2], 0, 0, 0, 0),
        ("pad: {padding: [0, 1, 1, 0, 2, 2], mode: replicate}", [2, 3, 3, 3], [2, 3 + 2 + 2, 3 + 1, 3 + 1], 0, 0, 0, 0),
        ("pad: {padding: [1, 1, 2, 0], mode: circular}", [2, 4, 4], [2, 2 + 4, 1 + 4 + 1], 0, 0, 0, 0),
        ("pad: {padding: 1, value: 0.5}", [2, 4, 4], [2, 6, 6], 0, 0, 0, 0),
        # timm's 'same' max pooling: F.pad(x, (0, 1, 0, 1), value=-inf) before a 3x3 stride-2 pool (NASNet)
        ("pad: {padding: [0, 1, 0, 1], value: -.inf}", [42, 165, 165], [42, 165 + 1, 165 + 1], 0, 0, 0, 0),
        # issue 18: F.pad's pair after the spatial axes' pads the channels (ResNet-20's option A)
        ("pad: [0, 0, 0, 0, 4, 4]", [16, 16, 16], [4 + 16 + 4, 16, 16], 0, 0, 0, 0),
    ],
    "slice": [
        ("slice: {dim: 1, end: 2}", [6, 4, 4], [2, 4, 4], 0, 0, 0, 0),  # GhostNet: x[:, :k]
        ("slice: {dim: [2, 3], step: 2}", [16, 32, 31], [16, 32 // 2, (31 + 1) // 2], 0, 0, 0, 0),  # x[:, :, ::2, ::2]
        ("slice: {dim: -1, begin: -3, stop: 100}", [2, 8], [2, 3], 0, 0, 0, 0),  # negative and clamped, as PyTorch
        (
            "slice: {dim: [1, 2], begin: [1, 2], end: [null, 9], step: [2, 3]}",
            [7, 9],
            [len(range(1, 7, 2)), len(range(2, 9, 3))],
            0,
            0,
            0,
            0,
        ),
    ],
    "zero_pad": [
        ("zero_pad: [1, 0, 2, 1]", [3, 4, 4], [3, 2 + 4 + 1, 1 + 4], 0, 0, 0, 0),
        # NASNet's nn.ZeroPad2d((-1, 1, -1, 1)): a shift by one, the first row and column cropped
        ("zero_pad: [-1, 1, -1, 1]", [96, 165, 165], [96, -1 + 165 + 1, -1 + 165 + 1], 0, 0, 0, 0),
    ],
    "center_crop": [("center_crop: [4, 3]", [2, 7, 6], [2, 4, 3], 0, 0, 0, 0)],  # from (7-4)//2 = 1 and (6-3)//2 = 1
    "crop": [
        ("crop: [1, 0, 2, 3]", [3, 9, 6], [3, 9 - 2 - 3, 6 - 1 - 0], 0, 0, 0, 0),  # last axis first: W 1, 0; H 2, 3
        ("crop: 1", [2, 5, 4, 4], [2, 5 - 2, 4 - 2, 4 - 2], 0, 0, 0, 0),
    ],
    # group A (issue 10)
    "relu6": [("relu6", [32, 8, 8], [32, 8, 8], 0, 0, 0, 0)],
    "hardswish": [("hardswish", [16, 7, 7], [16, 7, 7], 0, 0, 0, 0)],
    "hardsigmoid": [("hardsigmoid", [16, 1, 1], [16, 1, 1], 0, 0, 0, 0)],
    "mish": [("mish", [5, 2, 2], [5, 2, 2], 0, 0, 0, 0)],
    "prelu": [
        ("prelu", [8, 4, 4], [8, 4, 4], 1, 0, 0, 0),  # one slope
        ("prelu: {num_parameters: 8, init: 0.1}", [8, 4, 4], [8, 4, 4], 8, 0, 0, 0),  # a slope per channel
    ],
    "softplus": [("softplus: {beta: 2, threshold: 10}", [5, 2, 2], [5, 2, 2], 0, 0, 0, 0)],
    "log_softmax": [("log_softmax", [10, 3], [10, 3], 0, 0, 0, 0)],
    "layernorm": [
        ("layernorm", [96, 14, 14], [96, 14, 14], 96, 96, 0, 0),  # ConvNeXt's LayerNorm2d: gamma, beta per channel
        ("layernorm: {over: 1, eps: 0.000001}", [7, 7, 96], [7, 7, 96], 96, 96, 0, 0),  # nn.LayerNorm(96) channels-last
        ("layernorm: {over: 2, bias: false}", [3, 5, 6], [3, 5, 6], 5 * 6, 0, 0, 0),
        ("layernorm: {elementwise_affine: false}", [8, 4], [8, 4], 0, 0, 0, 0),
        ("layernorm", [10], [10], 10, 10, 0, 0),
    ],
    "groupnorm": [
        ("groupnorm: 4", [32, 8, 8], [32, 8, 8], 32, 32, 0, 0),
        ("groupnorm: {groups: 3, affine: false}", [6, 5], [6, 5], 0, 0, 0, 0),
        ("groupnorm: {groups: 2, bias: false}", [4], [4], 4, 0, 0, 0),
    ],
    "instancenorm": [
        ("instancenorm", [16, 8, 8], [16, 8, 8], 0, 0, 0, 0),
        ("instancenorm: {affine: true, track_running_stats: true}", [4, 6], [4, 6], 4, 4, 2 * 4 + 1, 0),
        ("instancenorm: {affine: true, bias: false, momentum: null}", [3, 2, 4, 4], [3, 2, 4, 4], 3, 0, 0, 0),
        ("instancenorm: {track_running_stats: true}", [4, 1, 1], [4, 1, 1], 0, 0, 2 * 4 + 1, 0),  # eval only
    ],
    "stochastic_depth": [
        ("stochastic_depth: 0.1", [96, 14, 14], [96, 14, 14], 0, 0, 0, 0),
        ("stochastic_depth: {p: 0.2, mode: batch}", [8, 4], [8, 4], 0, 0, 0, 0),
        ("stochastic_depth: 0", [8], [8], 0, 0, 0, 0),
    ],
    # measured at import, not derived: what it was given, and only at the input it was traced at
    "traced": [
        (
            "traced: {op: nn.Foo, shape: [4, 6, 6], inputs: [[3, 8, 8]], weights_measured: 108, biases_measured: 4, "
            "buffers_measured: 9, macs_measured: 3888}",
            [3, 8, 8],
            [4, 6, 6],
            108,
            4,
            9,
            3888,
        ),
        ("traced: {op: torch.erf, shape: [5], inputs: [[5]]}", [5], [5], 0, 0, 0, 0),
    ],
    "layer_scale": [
        ("layer_scale", [96, 14, 14], [96, 14, 14], 96, 0, 0, 0),  # gamma [96, 1, 1]
        ("layer_scale: {init: 0.5}", [6], [6], 6, 0, 0, 0),
    ],
    "permute": [
        ("permute: [0, 2, 3, 1]", [96, 7, 5], [7, 5, 96], 0, 0, 0, 0),  # ConvNeXt: channels last
        ("permute: [0, 3, 1, 2]", [7, 5, 96], [96, 7, 5], 0, 0, 0, 0),  # and back
        ("permute: [0, 2, 1]", [3, 8], [8, 3], 0, 0, 0, 0),
    ],
    # end of group A
    # several outputs: the item expands to one row per piece; a one-piece item keeps the table's
    # one-row shape (ShuffleNetV2's two pieces are in tests/test_spec.py)
    "chunk": [("chunk: 1", [6, 4, 4], [6, 4, 4], 0, 0, 0, 0)],
    "split": [
        ("split: {sizes: [6]}", [6, 4, 4], [6, 4, 4], 0, 0, 0, 0),
        ("split: 6", [6, 4, 4], [6, 4, 4], 0, 0, 0, 0),  # torch.split(x, 6): one piece of 6
        ("split: {sizes: 4, dim: -1}", [6, 4, 4], [6, 4, 4], 0, 0, 0, 0),  # along the last axis
    ],
    # issue 18: HaloNet's blocks, x.unfold(2, 6, 4) on 10 rows: (10 - 6) // 4 + 1 = 2 windows of 6
    "unfold": [
        ("unfold: {dim: 2, size: 6, step: 4}", [3, 10, 8], [3, 2, 8, 6], 0, 0, 0, 0),
        ("unfold: {dim: -1, size: 2, step: 2}", [5], [2, 2], 0, 0, 0, 0),  # 5 -> (5 - 2) // 2 + 1 = 2 pairs
    ],
    # issue 18: q, k, v = qkv.unbind(0); a one-index axis keeps the table's one-row shape
    "unbind": [
        ("unbind: 1", [1, 4, 4], [4, 4], 0, 0, 0, 0),  # [1, 4, 4] -> one piece [4, 4]
        ("unbind: {dim: 2}", [6, 1, 4], [6, 4], 0, 0, 0, 0),
    ],
}

# merges need named inputs: (layers yaml, input, output of the last row)
MERGE_TABLE = {
    "add": (
        "- conv: {out: 4, kernel: 3, padding: 1, name: a}\n- conv: {out: 4, kernel: 1, name: b, from: input}\n"
        "- add: {from: [a, b]}",
        [4, 6, 6],
        [4, 6, 6],
    ),
    "concat": (
        "- conv: {out: 4, kernel: 3, padding: 1, name: a}\n- conv: {out: 6, kernel: 1, name: b, from: input}\n"
        "- concat: {from: [a, b]}",
        [3, 6, 6],
        [10, 6, 6],
    ),
    # group B (issue 10): squeeze-excitation's x * scale, a broadcasting add, U-Net's skip crop
    "mul": (
        "- conv: {out: 4, kernel: 3, padding: 1, name: a}\n- global_avgpool\n- conv: {out: 4, kernel: 1}\n- sigmoid: {name: b}\n"
        "- mul: {from: [a, b]}",
        [3, 6, 6],
        [4, 6, 6],
    ),
    # issue 18: SKNet's torch.stack([a, b], dim=1)
    "stack": (
        "- conv: {out: 4, kernel: 3, padding: 1, name: a}\n- conv: {out: 4, kernel: 1, name: b, from: input}\n"
        "- stack: {from: [a, b], dim: 1}",
        [3, 6, 6],
        [2, 4, 6, 6],
    ),
    # PoolFormer's token mixer pool(x) - x; x / its norm
    "sub": (
        "- conv: {out: 4, kernel: 3, padding: 1, name: a}\n- conv: {out: 4, kernel: 1, name: b, from: input}\n"
        "- sub: {from: [a, b]}",
        [3, 6, 6],
        [4, 6, 6],
    ),
    "div": (
        "- conv: {out: 4, kernel: 3, padding: 1, name: a}\n- sum: {dim: 1, keepdim: true, name: b}\n"
        "- div: {from: [a, b]}",
        [3, 6, 6],
        [4, 6, 6],
    ),  # [4, 6, 6] / [1, 6, 6]
    # attention's product: [C, H, W] @ [C, W, W] per sample, H x W outputs per channel, W MACs each
    "matmul": (
        "- conv: {out: 4, kernel: 3, padding: 1, name: a}\n- conv: {out: 4, kernel: 1, name: b, from: input}\n"
        "- matmul: {from: [a, b]}",
        [3, 6, 6],
        [4, 6, 6],
    ),
    # issue 18: F.scaled_dot_product_attention of 2 heads, 16 positions, 4 features:
    # q @ k^T 2*16*16 outputs of 4 MACs + attn @ v 2*16*4 outputs of 16 MACs = 2*16*16*(4 + 4)
    "attention": (
        "- conv: {out: 24, kernel: 1}\n- reshape: [3, 2, 4, 16]\n- permute: [0, 1, 2, 4, 3]\n- contiguous\n"
        "- unbind: {dim: 1, name: qkv}\n- identity: {from: qkv.0, name: a}\n- identity: {from: qkv.1, name: b}\n"
        "- identity: {from: qkv.2, name: c}\n- attention: {from: [a, b, c]}",
        [3, 4, 4],
        [2, 16, 4],
    ),
    "center_crop": (
        "- conv: {out: 4, kernel: 3, name: a}\n- maxpool: {kernel: 2, name: b}\n- center_crop: {from: a, like: b}",
        [3, 11, 10],
        [4, 4, 4],
    ),  # a: 9x8, b: 4x4, from (9-4)//2 = 2, (8-4)//2 = 2
}
# more rows of merge types: (kind, layers yaml, input, output of the last row)
MORE_MERGES = [
    # group B (issue 10): a [C, 1, 1] input broadcast over [C, H, W]
    (
        "add",
        "- conv: {out: 4, kernel: 3, padding: 1, name: a}\n- global_avgpool\n- conv: {out: 4, kernel: 1, name: b}\n"
        "- add: {from: [a, b]}",
        [4, 6, 6],
        [4, 6, 6],
    ),
    # a segmentation head's last step: back to the input's size (torchvision's F.interpolate(size=...))
    (
        "upsample",
        "- conv: {out: 4, kernel: 3, padding: 1, name: b}\n- conv: {out: 4, kernel: 3, stride: 2, name: a, from: input}\n"
        "- upsample: {from: a, like: b, mode: bilinear, align_corners: false}",
        [3, 9, 9],
        [4, 9, 9],
    ),  # a: (9 - 3) // 2 + 1 = 4, then 4x4 -> b's 9x9
]
MORE_MERGES += [
    # MambaOut's torch.cat on channels-last tokens: [7, 7, 5] and [7, 7, 3] on the last axis
    (
        "concat",
        "- permute: {dims: [0, 2, 3, 1], name: a}\n- conv: {out: 3, kernel: 1, from: input}\n"
        "- permute: {dims: [0, 2, 3, 1], name: b}\n- concat: {from: [a, b], dim: -1}",
        [5, 7, 7],
        [7, 7, 8],
    ),
]
MORE_MERGES += [
    # q @ k^T of two heads: q [2 heads, 16 positions, 4] @ k^T [2, 4, 16] -> [2, 16, 16]
    (
        "matmul",
        "- conv: {out: 8, kernel: 1}\n- reshape: [2, 4, 16]\n- permute: [0, 1, 3, 2]\n- contiguous: {name: a}\n"
        "- conv: {out: 8, kernel: 1, from: input}\n- reshape: {shape: [2, 4, 16], name: b}\n- matmul: {from: [a, b]}",
        [3, 4, 4],
        [2, 16, 16],
    ),
]
MORE_MERGES += [
    # issue 18: cross attention, causal, scaled: q [2, 16, 4] from the input, k and v [2, 4, 4] from a
    # stride-2 conv; 2*16*4*(4 + 4) MACs (the mask and the scale do not change them)
    (
        "attention",
        "- conv: {out: 8, kernel: 1}\n- reshape: [2, 4, 16]\n- permute: [0, 1, 3, 2]\n- contiguous: {name: a}\n"
        "- conv: {out: 8, kernel: 1, stride: 2, from: input}\n- reshape: [2, 4, 4]\n- permute: [0, 1, 3, 2]\n- contiguous: {name: b}\n"
        "- conv: {out: 8, kernel: 1, stride: 2, from: input}\n- reshape: [2, 4, 4]\n- permute: [0, 1, 3, 2]\n- contiguous: {name: c}\n"
        "- attention: {from: [a, b, c], is_causal: true, scale: 0.25}",
        [3, 4, 4],
        [2, 16, 4],
    ),
]
MORE_MERGES += [
    # the unfused path PyTorch takes otherwise: q, k, v of one [2, 2] windows-by-heads grid (Twins,
    # NesT), 2*2*4*4*(4 + 4) MACs; and 2 heads whose last axis is not contiguous (a permute), v of 8
    # features: 2*4*4*(4 + 8) MACs
    (
        "attention",
        "- conv: {out: 16, kernel: 1}\n- reshape: [2, 2, 4, 4]\n- identity: {name: a}\n- identity: {name: b}\n"
        "- conv: {out: 16, kernel: 1, from: input}\n- reshape: [2, 2, 4, 4]\n- permute: [0, 2, 1, 3, 4]\n"
        "- identity: {name: c}\n- attention: {from: [a, b, c]}",
        [3, 2, 2],
        [2, 2, 4, 4],
    ),
    (
        "attention",
        "- conv: {out: 8, kernel: 1}\n- reshape: [2, 4, 4]\n- permute: {dims: [0, 1, 3, 2], name: a}\n"
        "- conv: {out: 8, kernel: 1, from: input}\n- reshape: [2, 4, 4]\n- permute: {dims: [0, 1, 3, 2], name: b}\n"
        "- conv: {out: 16, kernel: 1, from: input}\n- reshape: {shape: [2, 4, 8], name: c}\n"
        "- attention: {from: [a, b, c], is_causal: true}",
        [3, 2, 2],
        [2, 4, 8],
    ),
]
MORE_MERGES += [
    # issue 18: an additive mask [1, 16, 16] (a relative position bias, one for both heads) added to
    # the scores [2, 16, 16]: 2*16*16*(4 + 4) MACs, the mask's add not counted (FlopCounterMode's
    # sdpa formula reads q, k and v only; the unfused path's add is no matmul)
    (
        "attention",
        "- conv: {out: 24, kernel: 1}\n- reshape: [3, 2, 4, 16]\n- permute: [0, 1, 2, 4, 3]\n- contiguous\n"
        "- unbind: {dim: 1, name: qkv}\n- identity: {from: qkv.0, name: a}\n- identity: {from: qkv.1, name: b}\n"
        "- identity: {from: qkv.2, name: c}\n- conv: {out: 16, kernel: 1, from: input}\n"
        "- reshape: {shape: [1, 16, 16], name: d}\n- attention: {from: [a, b, c, d], scale: 0.5}",
        [3, 4, 4],
        [2, 16, 4],
    ),
    # multi-query attention (MobileNetV5): q of 2 heads [2, 16, 4], k and v of one head [1, 4, 4] from a
    # stride-2 conv, broadcast over q's heads: 2*16*4*(4 + 4) MACs
    (
        "attention",
        "- conv: {out: 8, kernel: 1}\n- reshape: [2, 4, 16]\n- permute: [0, 1, 3, 2]\n- contiguous: {name: a}\n"
        "- conv: {out: 4, kernel: 1, stride: 2, from: input}\n- reshape: [1, 4, 4]\n- permute: [0, 1, 3, 2]\n"
        "- contiguous: {name: b}\n- conv: {out: 4, kernel: 1, stride: 2, from: input}\n- reshape: [1, 4, 4]\n"
        "- permute: [0, 1, 3, 2]\n- contiguous: {name: c}\n- attention: {from: [a, b, c]}",
        [3, 4, 4],
        [2, 16, 4],
    ),
    # grouped heads (enable_gqa): q of 4 heads [4, 16, 2], k and v of 2 [2, 4, 2], each serving two of
    # q's: 4*16*4*(2 + 2) MACs (q's heads, as FlopCounterMode's sdpa_flop_count)
    (
        "attention",
        "- conv: {out: 8, kernel: 1}\n- reshape: [4, 2, 16]\n- permute: [0, 1, 3, 2]\n- contiguous: {name: a}\n"
        "- conv: {out: 4, kernel: 1, stride: 2, from: input}\n- reshape: [2, 2, 4]\n- permute: [0, 1, 3, 2]\n"
        "- contiguous: {name: b}\n- conv: {out: 4, kernel: 1, stride: 2, from: input}\n- reshape: [2, 2, 4]\n"
        "- permute: [0, 1, 3, 2]\n- contiguous: {name: c}\n- attention: {from: [a, b, c], enable_gqa: true}",
        [3, 4, 4],
        [4, 16, 2],
    ),
]
MERGE_ROWS = [(kind, *row) for kind, row in MERGE_TABLE.items()] + MORE_MERGES

ROWS = [(kind, *row) for kind, rows in LAYER_TABLE.items() for row in rows]


def test_every_registered_type_has_a_row():
    missing = set(REGISTRY) - set(LAYER_TABLE) - set(MERGE_TABLE)
    assert not missing, f"layer types without a row in the layer table: {sorted(missing)}"
    stale = (set(LAYER_TABLE) | set(MERGE_TABLE)) - set(REGISTRY)
    assert not stale, f"rows for types that are not registered: {sorted(stale)}"


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_every_type_declares_its_behaviour_and_every_counting_rule(kind):
    cls = REGISTRY[kind]
    assert missing_declarations(cls) == []
    assert set(cls.counts) == set(Convention) and all(callable(rule) for rule in cls.counts.values())


@pytest.mark.parametrize("left_out", REQUIRED)
def test_a_type_that_leaves_a_member_to_the_base_is_refused(left_out):
    """The base Layer has no silent element-wise default: each of REQUIRED left out is refused."""
    members = {
        "summary": "a test type",
        "output_shape": lambda self, inputs: inputs[0],
        "working": lambda self, inputs, output: [],
        "field_window": lambda self, inputs: None,
        "counts": rules(),
    }
    del members[left_out]
    cls = record(type("HalfDone", (Layer,), members))
    with pytest.raises(TypeError, match=left_out):
        register("half_done")(cls)
    assert "half_done" not in REGISTRY


def test_a_type_missing_a_convention_is_refused():
    cls = record(type("Partial", (ElementWise,), {"counts": {Convention.CNNCALC: nothing}}))
    with pytest.raises(TypeError, match="counts for flopcounter, fvcore, ptflops, thop, torchinfo"):
        register("partial")(cls)
    assert "partial" not in REGISTRY


def test_every_convention_declares_what_a_type_that_does_not_say_counts(monkeypatch):
    """DEFAULT_RULES is written out convention by convention: a new convention is refused (at the
    first type defined) until it says what it counts for the types that do not say."""
    assert set(DEFAULT_RULES) == set(Convention)
    assert all(c.summary for c in Convention)  # what `flops --help` and the docs table say of it
    monkeypatch.setattr(counting, "DEFAULT_RULES", {c: r for c, r in DEFAULT_RULES.items() if c is not Convention.THOP})
    with pytest.raises(TypeError, match="no counting rule for thop"):
        counting.rules(fvcore=nothing)
    assert counting.rules(thop=nothing)[Convention.THOP] is nothing  # a type that answers is fine


def test_rules_refuses_an_unknown_convention():
    with pytest.raises(ValueError, match="fvcor"):
        rules(fvcor=nothing)


def test_element_wise_types_keep_shape_and_positions():
    for kind, cls in REGISTRY.items():
        if issubclass(cls, ElementWise):
            (item, shape_in, shape_out, *_), *_ = LAYER_TABLE[kind]
            assert shape_in == shape_out, kind
            assert one_layer(item, shape_in).nodes[1].layer.field_window([tuple(shape_in)]) is None, kind


SPEC_DOC = Path(__file__).parent.parent / "docs" / "spec.md"
TABLE_START = "<!-- layer table:"
TABLE_END = "<!-- end of layer table -->"


def test_the_docs_layer_table_is_the_registry(regen_golden):
    text = SPEC_DOC.read_text()
    start = text.index("\n", text.index(TABLE_START)) + 1
    end = text.index(TABLE_END)
    if regen_golden:
        SPEC_DOC.write_text(text[:start] + markdown_table() + text[end:])
        text = SPEC_DOC.read_text()
        end = text.index(TABLE_END)
    assert text[start:end] == markdown_table(), (
        "docs/spec.md's layer table is stale: pytest tests/test_layers.py --regen-golden"
    )


def one_layer(item, input_shape):
    return parse_text(f"input: {list(input_shape)}\nlayers:\n  - {item}\n")


@pytest.mark.parametrize("kind, item, shape_in, shape_out, weights, biases, buffers, macs", ROWS)
def test_layer_row(kind, item, shape_in, shape_out, weights, biases, buffers, macs):
    graph = one_layer(item, shape_in)
    assert graph.nodes[1].kind == kind
    row = analyze(graph, explain=True, fields=True).rows[1]
    assert list(row.output_shape) == shape_out
    assert (row.weights, row.biases, row.buffers, row.macs) == (weights, biases, buffers, macs)
    assert row.activations == math.prod(shape_out)
    assert row.working and all(isinstance(line, str) and line for line in row.working)  # --explain
    assert row.field is not None


@pytest.mark.parametrize("kind, layers, shape_in, shape_out", MERGE_ROWS)
def test_merge_row(kind, layers, shape_in, shape_out):
    text = f"input: {shape_in}\nlayers:\n" + "\n".join("  " + line for line in layers.split("\n"))
    rows = analyze(parse_text(text)).rows
    assert rows[-1].type == kind and list(rows[-1].output_shape) == shape_out
    last = layers.split("\n")[-1]  # its inputs as written: `from: [a, b, c, d]`, or `from: a, like: b`
    named = last.split("from: [", 1)[1].split("]")[0].split(", ") if "from: [" in last else ["a", "b"]
    assert rows[-1].inputs == tuple(named) and len(named) >= 2


# ----- against PyTorch ---------------------------------------------------------------------


# A traced row's numbers are measured from the user's model at import (tests/test_import.py checks
# them against that model); its bridge module is a stand-in that holds the counts, not the op.
MEASURED = {"traced"}


@pytest.mark.parametrize(
    "kind, item, shape_in, shape_out, weights, biases, buffers, macs", [r for r in ROWS if r[0] not in MEASURED]
)
def test_layer_row_against_torch(kind, item, shape_in, shape_out, weights, biases, buffers, macs):
    torch = pytest.importorskip("torch")
    from torch.utils.flop_counter import FlopCounterMode

    from cnncalc.torch_bridge import build, leaf_modules, parameter_counts

    model = build(one_layer(item, shape_in)).eval()
    (module,) = leaf_modules(model).values()
    x = torch.randn(2, *shape_in)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        y = model(x)
    assert list(y.shape) == [2, *shape_out]
    assert parameter_counts(module) == (weights, biases, buffers)
    assert counter.get_total_flops() == 2 * 2 * macs  # batch 2, FLOPs = 2 x MACs


# an unfold adds an axis: a rank the spec's `input:` cannot give (per sample: C and 4 more axes)
RANKS_PAST_INPUT = [
    ([3, 4, 4], "unfold: {dim: 2, size: 2, step: 2}"),
    ([3, 4, 4, 4], "unfold: {dim: 2, size: 2, step: 2}"),
    ([6, 4, 4, 4], "unfold: {dim: 1, size: 2, step: 2}"),
]


@pytest.mark.parametrize("kind", sorted({r[0] for r in ROWS} - MEASURED))
def test_every_rank_a_type_accepts_builds_a_module_pytorch_runs(kind):
    """Every table row's layer after an unfold (one axis more than any `input:`): where cnncalc
    accepts the rank, the bridge builds a module and PyTorch runs it or refuses it in one message.
    batchnorm on 4 spatial axes was accepted, then built as nn.BatchNorm4d (found by hypothesis):
    `profile` ended in a traceback and `export` wrote code that does not run."""
    torch = pytest.importorskip("torch")

    for item in {r[1] for r in ROWS if r[0] == kind}:
        for shape_in, unfold in RANKS_PAST_INPUT:
            try:
                graph = parse_text(f"input: {shape_in}\nlayers:\n  - {unfold}\n  - {item}\n")
                analyze(graph)
            except CnncalcError:
                continue  # refused in one message: what cnncalc does not accept
            try:
                with torch.no_grad():
                    to_torch(graph).eval()(torch.randn(2, *shape_in))
            except CnncalcError:
                pass  # PyTorch's refusal of the layout, as one message (lrn's view of an unfold)


def test_batchnorm_refuses_four_spatial_axes_and_normalises_their_last_with_channels_last():
    unfolded = "input: [3, 4, 4, 4]\nlayers:\n  - unfold: {dim: 2, size: 2, step: 2}\n"
    with pytest.raises(CnncalcError, match=r"batchnorm supports 0 to 3 spatial axes \(BatchNorm1d, 2d, 3d\)"):
        analyze(parse_text(unfolded + "  - batchnorm\n"))
    assert analyze(parse_text(unfolded + "  - batchnorm: {channels_last: true}\n")).rows[-1].weights == 2


# ----- group B (issue 10): what is refused, with what message ------------------------------


@pytest.mark.parametrize(
    "layers, shape_in, message",
    [
        (
            "- conv: {out: 4, kernel: 3, name: a}\n- conv: {out: 4, kernel: 1, name: b, from: input}\n- add: {from: [a, b]}",
            [3, 6, 6],
            "add needs shapes that broadcast (spatial axis 1: 4 vs 6)",
        ),
        (
            "- conv: {out: 4, kernel: 1, name: a}\n- conv: {out: 2, kernel: 1, name: b, from: input}\n- mul: {from: [a, b]}",
            [3, 6, 6],
            "mul needs shapes that broadcast (channel: 4 vs 2)",
        ),
        (
            "- conv: {out: 4, kernel: 1, name: a}\n- flatten: {name: b}\n- add: {from: [a, b]}",
            [3, 2, 2],
            "add needs inputs with the same number of axes",
        ),
        ("- upsample: {mode: bilinear, scale_factor: 2}", [3, 8], "upsample mode 'bilinear' needs 2 spatial axis(es)"),
        (
            "- upsample: {mode: nearest, scale_factor: 2, align_corners: true}",
            [3, 8, 8],
            "align_corners is only for the interpolating modes",
        ),
        ("- upsample: {mode: nearest}", [3, 8, 8], "upsample needs exactly one of size, scale_factor and like"),
        (
            "- upsample: {scale_factor: 2, like: input}",
            [3, 8, 8],
            "upsample needs exactly one of size, scale_factor and like",
        ),
        ("- upsample: {mode: cubic, size: 4}", [3, 8, 8], "bad value for 'mode' of upsample"),
        ("- upsample: 0.1", [3, 8, 8], "upsample's output would be empty"),
        ("- pixel_shuffle: 2", [6, 4, 4], "pixel_shuffle needs channels divisible by factor^2 = 4"),
        ("- pixel_unshuffle: 2", [2, 5, 4], "pixel_unshuffle needs H and W divisible by the factor 2"),
        ("- channel_shuffle: 4", [6, 4, 4], "channel_shuffle needs channels divisible by groups 4"),
        ("- pad: {padding: 3, mode: reflect}", [2, 3, 8], "reflect padding must be smaller than the input"),
        ("- pad: [1, 2, 3]", [2, 8, 8], "bad value for 'padding' of pad"),
        ("- pad: [1, 2]", [2, 8, 8], "'padding' has 2 values but the input has 2 spatial axes"),
        ("- pad: {padding: 1, mode: replicate, value: 1}", [2, 8, 8], "'value' is for constant padding only"),
        ("- center_crop: 9", [2, 8, 8], "center_crop cannot crop to a larger size"),
        ("- center_crop", [2, 8, 8], "center_crop needs exactly one of size and like"),
        ("- crop: [3, 3]", [2, 6], "crop would leave nothing"),
        ("- crop: [1, 1]", [2, 6, 6], "'amounts' has 2 values but the input has 2 spatial axes"),
        # torch.unbind of a [B, 4] tensor gives [B] pieces: no axis of a sample left (found by hypothesis:
        # a linear after it raised IndexError)
        ("- unbind\n- linear: {out: 1, channels_last: true}", [4], "unbind would leave no axis besides the batch"),
        # F.pad narrows by the negative amounts before it pads: a length-1 axis cannot lose 2, even
        # with 2 added at the other end (torch: "narrow(): length must be non-negative"; hypothesis)
        ("- pad: {padding: [2, -2], value: 1.0}", [1, 1], "pad crops an axis by more than its size"),
    ],
)
def test_group_b_refusals(layers, shape_in, message):
    text = f"input: {shape_in}\nlayers:\n" + "\n".join("  " + line for line in layers.split("\n"))
    with pytest.raises(CnncalcError) as caught:
        analyze(parse_text(text))
    assert message in str(caught.value)


_TWO = "- conv: {out: 4, kernel: 1, name: a}\n- conv: {out: 4, kernel: 1, name: b, from: input}\n"


@pytest.mark.parametrize(
    "layers, shape_in, message",
    [
        (
            _TWO + "- matmul: {from: [a, b]}",
            [3, 6, 5],
            "matmul needs the first input's last axis to match the second's next-to-last (5 vs 6)",
        ),
        (
            "- conv: {out: 1, kernel: 1, name: a}\n- conv: {out: 4, kernel: 1, name: b, from: input}\n- matmul: {from: [a, b]}",
            [3, 6, 6],
            "matmul needs the same leading axes on both inputs (broadcasting them is not followed)",
        ),
        (
            _TWO + "- reshape: {shape: [24, 6], name: c}\n- matmul: {from: [c, b]}",
            [3, 6, 6],
            "matmul needs two inputs with the same number of axes, at least two",
        ),
        ("- softmax: 0", [3, 4], "softmax over the batch axis (dim 0) is not a per-sample layer"),
        ("- softmax: {dim: -4}", [3, 4], "softmax's dim -4 is out of range for an input [N, 3, 4]"),
    ],
)
def test_matmul_and_softmax_refusals(layers, shape_in, message):
    text = f"input: {shape_in}\nlayers:\n" + "\n".join("  " + line for line in layers.split("\n"))
    with pytest.raises(CnncalcError) as caught:
        analyze(parse_text(text))
    assert message in str(caught.value)


def test_upsample_size_is_floor_of_in_times_scale_as_pytorch():
    """F.interpolate's output size on random sizes and scales, against PyTorch itself."""
    torch = pytest.importorskip("torch")
    for size, scale in [(5, 1.5), (7, 0.3), (9, 1 / 3), (10, 0.7), (3, 2.9999), (11, 1.1)]:
        (out,) = analyze(one_layer(f"upsample: {scale!r}", [1, size])).rows[1].output_shape[1:]
        assert (
            out
            == torch.nn.functional.interpolate(torch.zeros(1, 1, size), scale_factor=scale).shape[-1]
            == math.floor(size * scale)
        )


def test_center_crop_like_reads_its_first_input_field():
    """The crop continues the receptive field of what it crops, not of the layer `like` names."""
    layers, shape_in, _ = MERGE_TABLE["center_crop"]
    text = f"input: {shape_in}\nlayers:\n" + "\n".join("  " + line for line in layers.split("\n"))
    rows = analyze(parse_text(text), fields=True).rows
    conv = rows[1].field
    assert rows[-1].field.size == conv.size and rows[-1].field.start == tuple(
        s + 2 for s in conv.start
    )  # cropped from 2


# group A (issue 10): ConvNeXt's block, written faithfully, against torchvision's CNBlock
CNBLOCK = """
input: [16, 7, 7]
layers:
  - sequential:
      name: features.1
      layers:
        - residual:
            name: "0"
            body:
              - conv: {out: 16, kernel: 7, padding: 3, groups: 16, name: block.0}
              - permute: {dims: [0, 2, 3, 1], name: block.1}
              - layernorm: {over: 1, eps: 0.000001, name: block.2}
              - linear: {out: 64, channels_last: true, name: block.3}
              - gelu: {name: block.4}
              - linear: {out: 16, channels_last: true, name: block.5}
              - permute: {dims: [0, 3, 1, 2], name: block.6}
              - layer_scale: {init: 0.000001, name: layer_scale}
              - stochastic_depth: {p: 0.1, name: stochastic_depth}
"""


def _torchvision_cnblock(torch, dim):
    """torchvision.models.convnext.CNBlock (0.29) as torchvision writes it (torchvision itself is
    not installed here): Permute and StochasticDepth from torchvision.ops, layer_scale a bare
    parameter of the block."""
    from torch import nn

    from cnncalc.torch_bridge.modules import Permute, StochasticDepth

    class CNBlock(nn.Module):
        def __init__(self):
            super().__init__()
            self.block = nn.Sequential(
                nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim, bias=True),
                Permute([0, 2, 3, 1]),
                nn.LayerNorm(dim, eps=1e-6),
                nn.Linear(dim, 4 * dim, bias=True),
                nn.GELU(),
                nn.Linear(4 * dim, dim, bias=True),
                Permute([0, 3, 1, 2]),
            )
            self.layer_scale = nn.Parameter(torch.ones(dim, 1, 1) * 1e-6)
            self.stochastic_depth = StochasticDepth(0.1, "row")

        def forward(self, x):
            result = self.layer_scale * self.block(x)
            return self.stochastic_depth(result) + x

    features = nn.Module()
    features.add_module("1", nn.Sequential(CNBlock()))
    return features


def test_convnext_block_state_dict_loads_into_torchvisions_form():
    torch = pytest.importorskip("torch")
    graph = parse_text(CNBLOCK)
    ours = to_torch(graph).eval()
    theirs = _torchvision_cnblock(torch, 16).eval()
    assert set(ours.state_dict()) == {f"features.{k}" for k in theirs.state_dict()}
    assert "features.1.0.layer_scale" in ours.state_dict()
    theirs.load_state_dict({k.removeprefix("features."): v for k, v in ours.state_dict().items()}, strict=True)
    x = torch.randn(2, 16, 7, 7)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs.get_submodule("1")(x))
    report = analyze(graph)
    assert report.totals.params == sum(p.numel() for p in theirs.parameters())
    assert report.rows[-1].output_shape == (16, 7, 7)


def test_lrn_without_spatial_axes_is_refused():
    """PyTorch's local_response_norm needs [N, C, ...] with a spatial axis (issue 9 item 7)."""
    from cnncalc.errors import CnncalcError

    with pytest.raises(CnncalcError, match="lrn needs an input with spatial axes"):
        analyze(one_layer("lrn", [4]))


def test_instancenorm_on_a_single_position_runs_only_with_running_statistics():
    """Issue 19 (fuzzing): with `track_running_stats: true` PyTorch runs a 1x1 input in eval mode
    (the running statistics normalise it) and refuses it in training; without them it refuses it
    in both modes, each position being normalised by its own value."""
    from cnncalc.errors import CnncalcError

    tracked = one_layer("instancenorm: {track_running_stats: true}", [4, 1, 1])
    assert analyze(tracked).rows[-1].output_shape == (4, 1, 1)
    with pytest.raises(CnncalcError) as caught:
        analyze(one_layer("instancenorm", [4, 1, 1]))
    assert caught.value.message == (
        "instancenorm over a single position: every output would be 0, and PyTorch refuses it "
        "(in eval mode too, without running statistics)"
    )
    assert "track_running_stats: true" in caught.value.hint
    torch = pytest.importorskip("torch")
    x = torch.randn(1, 4, 1, 1)
    assert to_torch(tracked).eval()(x).shape == (1, 4, 1, 1)
    with pytest.raises(CnncalcError, match="PyTorch cannot run row '0' .*Expected more than 1 spatial element"):
        to_torch(tracked).train()(x)  # the bridge names the row PyTorch refuses
    with pytest.raises(ValueError, match="Expected more than 1 spatial element"):
        torch.nn.InstanceNorm2d(4).eval()(x)


def test_fvcore_counts_batch_statistics_as_its_norm_counter():
    """fvcore's batch_norm handler: 2 per element at inference, 5 with batch statistics (issue 9 item 6)."""
    from cnncalc.analysis.conventions import count

    for item, per_element in [
        ("batchnorm", 2),
        ("batchnorm: {track_running_stats: false}", 5),
        ("batchnorm: {affine: false, track_running_stats: false}", 4),
    ]:
        graph = one_layer(item, [4, 5, 5])
        assert count(graph, analyze(graph), Convention.FVCORE).total == per_element * 4 * 5 * 5, item


# end of group A


def test_a_permute_of_six_axes_is_tresnets_space_to_depth():
    """TResNet's stem: x.view(N, C, H/4, 4, W/4, 4).permute(0, 3, 5, 1, 2, 4).reshape(N, 16C, H/4, W/4),
    the spec's rows against the same three calls in torch."""
    torch = pytest.importorskip("torch")
    text = (
        "input: [3, 8, 8]\nlayers:\n  - reshape: [3, 2, 4, 2, 4]\n  - permute: [0, 3, 5, 1, 2, 4]\n"
        "  - reshape: [48, 2, 2]\n"
    )
    graph = parse_text(text)
    assert [r.output_shape for r in analyze(graph).rows[1:]] == [(3, 2, 4, 2, 4), (4, 4, 3, 2, 2), (48, 2, 2)]
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        out = to_torch(graph).eval()(x)
    torch.testing.assert_close(out, x.view(2, 3, 2, 4, 2, 4).permute(0, 3, 5, 1, 2, 4).reshape(2, 48, 2, 2))
