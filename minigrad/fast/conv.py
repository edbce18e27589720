"""The fast tier's convolution: see simple.py's Conv2d for the maths, read as kh*kw shifted GEMMs.

Optimisations made (each measured on VGG16; docs/performance.md):
- im2col: the kh*kw shifted copies stacked into one patch matrix, so the kh*kw GEMMs over C become
  one GEMM over C*kh*kw (BLAS / cuBLAS); the data movement is a compiled kernel (cpu_kernels.py,
  gpu_kernels.py);
- chunks: a few images, or a band of rows of one image, at a time, so that the patch matrix and the
  GEMM result stay within a budget of elements: ``IM2COL_BUDGET`` (within a core's L2 cache) when the
  weights need no gradient, ``TRAIN_COLS_BUDGET`` when they do, at most ``COLS_BUDGET``;
- with fewer images than threads, an image split between the threads by channels where bands would
  not keep them busy or would each read all the weights (by_channels.py);
- scratch buffers (memory.py) for the patch matrices and GEMM results, reused by every chunk and layer;
- the patch matrices kept for the weight gradient when training (``KEEP_COLS_LIMIT``);
- bias and ReLU (``F.conv2d(..., relu=True)``) fused into the pass that unpacks the GEMM result, the
  ReLU rule into the pass that packs the gradient;
- Winograd for 3x3 stride-1 convolutions with enough channels (``WINOGRAD_MIN_CHANNELS``) and tiles
  (``WINOGRAD_MIN_TILES``): F(4x4, 3x3) where the batch has many tiles of 4x4 output that fit the
  output well (``WINOGRAD4_MIN_TILES``, ``WINOGRAD4_MAX_WORK``: VGG16's layers from 224x224 to 56x56 at
  batch 1, ResNet-50's at 56x56), F(2x2, 3x3) elsewhere, each with its own chunk budget;
- 1x1 unpadded convolutions (ResNet's bottlenecks and shortcuts) as plain GEMMs on the input, with
  no patch matrix; a stride subsamples the input first; on the CPU the GEMM writes straight into
  blocks of the output, each finished while in cache (pointwise.py);
- an inference-mode batch norm folded into the convolution (``scale``: models/blocks.py, ``fold_bn``)
  as a scale per output channel, applied in the output pass;
- a residual block's addition (``residual``) fused into its last 1x1 convolution's output pass;
- the chunks spread over the engine's threads, one whole chunk per thread (parallel.py);
- the weight gradient computed transposed, ``(cols @ g.T).T``, a form the BLAS runs faster.
"""
import threading
from functools import partial

import numpy as np

from .. import relu_rules
from ..backend import get_array_module
from ..tensor import Function
from . import by_channels, parallel, pointwise, winograd
from . import relu as relu_op
from .kernels import for_one_thread
from .memory import scratch
from .plan import chunk_budget

#: elements of the patch matrix, or of the GEMM's output if larger, of one chunk (float32: 16 MB).
#: Larger chunks mean fewer, larger GEMMs; smaller ones bound memory (VGG16's conv1_2 alone needs 29M
#: for one 224x224 image).
COLS_BUDGET = 2**22

#: the CPU's budget of an im2col convolution whose weights need no gradient (inference, saliency, class
#: models): a chunk's patch matrix (float32: 1 MB) stays in the core's L2 cache (1 MB on this project's
#: benchmark machine) between im2col, which writes it, and the GEMM, which reads it, and so does its
#: gradient between the GEMM and col2im. Measured on 2 threads (one process each, medians of 12,
#: forward / forward + input gradient in ms) at batch 40 (class models of the shapes network), in
#: chunks of ``COLS_BUDGET`` -> of 2**18: 3->16 at 64x64 3.3 / 7.8 -> 2.5 / 5.7; 16->16 at 64x64
#: 13.5 / 30.3 -> 9.7 / 19.3; 32->32 at 32x32 11.5 / 25.5 -> 7.3 / 14.1; and at batch 1 VGG16's
#: conv1_1 4.3 / 10.2 -> 2.7 / 6.3 (chunks of 2**16 and 2**17 were slower again on the 64x64 layers).
#: Not where an image has more output channels than pixels (VGG16's conv5 at 14x14): there the weights
#: outweigh the patch matrix, and each band would read them again (one thread, CPU time, forward /
#: input gradient: 13.3-14.3 / 13.9-14.1 ms a layer in bands of 2**18, 10.8-12.9 / 10.4-11.1 in one
#: chunk), so those keep ``COLS_BUDGET``.
IM2COL_BUDGET = 2**18

#: the CPU's budget when the weights need a gradient (training): the backward's GEMMs and col2im go over
#: each chunk again, and smaller chunks stay nearer the core. Measured on one thread (the shapes
#: network's layers at batch 64, forward + backward, medians of 8, one core busy with another process):
#: 16->16 at 64x64 283 ms with COLS_BUDGET, 238 with 2**19; 32->32 at 32x32 167 and 143; 64->64 at
#: 16x16 115 and 106 (2**18: 215, 151, 109; 2**20: 238, 171, 111).
TRAIN_COLS_BUDGET = 2**19

#: when the weights need a gradient (training), the forward keeps its patch matrices for the backward
#: if they hold at most this many elements in all (float32: 256 MB); otherwise the backward redoes them.
KEEP_COLS_LIMIT = 64 * 2**20


def _chunks(n_images, k, oh, ow, budget=None, parts=1, min_rows=1):
    """The chunks (n0, n1, oy0, oy1) whose arrays of k rows (patch matrices, GEMM outputs) fit the
    budget (default COLS_BUDGET; a GPU's: plan.py): several whole images when one fits, else bands of
    output rows of one image (at least ``min_rows`` rows each). At least ``parts`` chunks when there
    are enough rows (one per thread, parallel.py)."""
    budget = budget or COLS_BUDGET
    if k * oh * ow <= budget and n_images >= parts:
        nb = min(budget // (k * oh * ow), n_images // parts)
        return [(n0, min(n0 + nb, n_images), 0, oh) for n0 in range(0, n_images, nb)]
    bands = -(-parts // n_images)                                          # per image, for parts in all
    rows = max(1, min_rows, min(budget // (k * ow), -(-oh // bands)))
    return [(n, n + 1, oy0, min(oy0 + rows, oh)) for n in range(n_images) for oy0 in range(0, oh, rows)]


#: 3x3 stride-1 convolutions whose weights need no gradient (inference, saliency, class models) go by
#: Winograd (winograd.py) on the CPU when both channel counts are at least this. With
#: fewer channels its 16 GEMMs, each summing over C terms, run too slowly to pay for the transforms.
#: VGG16's 64-channel layers were no faster with the chunks of ``COLS_BUDGET``, but are with the
#: smaller ones of ``WINOGRAD_SMALL_BUDGET`` (docs/performance.md). 0: never.
WINOGRAD_MIN_CHANNELS = 64

#: the chunk budget (elements) of a Winograd convolution with fewer than ``WINOGRAD_WIDE`` channels
#: (in or out): its 16 GEMMs are thin (64 rows), and a smaller chunk keeps the transformed tiles V
#: and the GEMMs' output M nearer the core (float32: 4 MB) between the transforms
#: and the GEMMs; the wider layers keep ``COLS_BUDGET``. Measured on one thread at batch 1 (medians
#: of 7, one core busy with another process), forward / forward + input gradient in ms:
#: 64->64 at 224x224 by im2col 110-123 / 192-212, by Winograd with 2**22 67 / 141, with 2**20
#: 49-59 / 98-129, with 2**18 47-55 / 119-134; 64->128 at 112x112: 37 / 71, 25 / 58, 22-23 / 53-56,
#: 24-26 / 55-67.
WINOGRAD_SMALL_BUDGET = 2**20
WINOGRAD_WIDE = 128


#: ... and when the batch has at least this many tiles (2x2 blocks of output): Winograd's 16 GEMMs are
#: (O, C) @ (C, tiles), too thin below that. VGG16's conv5 layers (14x14, 49 tiles an image) at
#: batch 1 took 0.91 of the forward's CPU time by im2col instead (1 thread, 3 rounds).
WINOGRAD_MIN_TILES = 196

#: Winograd goes by F(4x4, 3x3) (36 GEMMs over 6x6 tiles) instead of F(2x2, 3x3) (16 over 4x4 tiles)
#: when the batch has at least this many tiles of 4x4 output (``_winograd_block``); None: never.
#: Its filters are 2.25 times as many numbers, transformed at every call (37.7 MB of float32 for
#: 512 -> 512), so it needs many tiles to pay. Measured at batch 1, forward / input gradient in ms,
#: F(2x2) -> F(4x4) (1 thread: CPU time; 2 threads: wall time; medians of 3 runs of 15, other
#: processes busy on both cores): 256->256 at 56x56 (196 tiles) 22.9 / 23.3 -> 19.7 / 19.8 on 1
#: thread, 24.6 / 25.1 -> 22.1 / 22.4 on 2; 512->512 at 28x28 (49 tiles) 25.7 / 25.8 -> 24.3 / 24.4
#: on 1 thread but 28.0 / 28.0 -> 30.1 / 31.1 on 2, and 256->512 13.4 / 14.1 -> 13.6 / 14.5 and
#: 15.1 / 15.8 -> 17.2 / 18.2; 512->512 at 28x28 at batch 4 (196 tiles) 90.8 / 90.5 -> 79.8 / 73.3
#: on 1 thread (medians of 9).
WINOGRAD4_MIN_TILES = 196

#: ... and when its GEMMs then do at most this fraction of F(2x2, 3x3)'s multiply-adds: 9/16 where
#: 4x4 blocks tile the output exactly, 0.73 at 14x14 (a row of 4 tiles covers 16 columns, 2 of
#: them cropped), where F(4x4) was no faster at batch 16 (1 thread CPU time, medians of 9, forward /
#: input gradient): 256->256 29.0 / 29.4 ms by F(2x2), 33.2 / 32.8 by F(4x4); 512->512 98.2 / 95.7
#: and 96.3 / 96.2.
WINOGRAD4_MAX_WORK = 0.65

#: the chunk budget (elements) of an F(4x4, 3x3) convolution with fewer than ``WINOGRAD4_WIDE``
#: channels (in or out), as ``WINOGRAD_SMALL_BUDGET`` for F(2x2, 3x3); the wider layers keep
#: ``COLS_BUDGET``. Measured on one thread at batch 1 (CPU time, medians of 7, the other core busy),
#: forward / input gradient in ms with 2**18, 2**19, 2**20, 2**22: 64->64 at 224x224 24.1 / 24.3,
#: 23.5 / 25.1, 29.6 / 30.7, 30.4 / 31.8; 64->128 at 112x112 10.6 / 13.1, 9.8 / 13.4, 13.0 / 17.5,
#: 14.5 / 18.8; 128->128 at 112x112 19.2 / 18.5, 20.7 / 22.5, 23.7 / 24.8, 24.6 / 25.0; 256->256 at
#: 56x56 27.8 / 28.6, 24.2 / 23.9, 20.5 / 20.6, 19.4 / 19.4.
WINOGRAD4_SMALL_BUDGET = 2**19
WINOGRAD4_WIDE = 256


#: 1x1 unpadded convolutions go by plain GEMMs on the input (pointwise.py), without the patch
#: matrix, which for them is a copy of the input (subsampled by the stride). False: by im2col like the
#: others (to compare the two; measured on ResNet-50's 1x1 layers, docs/performance.md).
POINTWISE_GEMM = True


def _winograd_budget(w, m):
    """The chunk budget of a Winograd F(m x m, 3x3) convolution with weights w: smaller for the thin ones."""
    small, wide = (WINOGRAD_SMALL_BUDGET, WINOGRAD_WIDE) if m == 2 else (WINOGRAD4_SMALL_BUDGET, WINOGRAD4_WIDE)
    return min(small, COLS_BUDGET) if min(w.shape[:2]) < wide else COLS_BUDGET


def _winograd_applies(x, w, stride, padding):
    """Whether the convolution of x with w goes by Winograd (either block size) when its weights need no
    gradient: a 3x3 stride-1 convolution on the CPU with enough channels and tiles of 2x2 output."""
    tiles = x.shape[0] * ((x.shape[2] + 2 * padding[0] - 1) // 2) * ((x.shape[3] + 2 * padding[1] - 1) // 2)
    return (WINOGRAD_MIN_CHANNELS > 0 and get_array_module(x) is np and w.shape[2:] == (3, 3)
            and stride == (1, 1) and max(padding) <= 2 and min(w.shape[:2]) >= WINOGRAD_MIN_CHANNELS
            and tiles >= WINOGRAD_MIN_TILES)


def _winograd_block(n_images, out_h, out_w):
    """The output block size m of the Winograd F(m x m, 3x3) that computes a convolution with this many
    images and output pixels (where ``_winograd_applies``): 4 with at least ``WINOGRAD4_MIN_TILES``
    tiles of 4x4 output in the batch and at most ``WINOGRAD4_MAX_WORK`` of F(2x2)'s multiply-adds in
    its GEMMs, else 2. The input gradient's convolution asks with its own output, the input's size."""
    tiles2 = n_images * -(-out_h // 2) * -(-out_w // 2)                   # 2x2 blocks of output
    tiles4 = n_images * -(-out_h // 4) * -(-out_w // 4)                   # 4x4 blocks
    if WINOGRAD4_MIN_TILES is None or tiles4 < WINOGRAD4_MIN_TILES:
        return 2
    return 4 if 36 * tiles4 <= WINOGRAD4_MAX_WORK * 16 * tiles2 else 2


def _winograd(x, w, b, padding, relu, m, scale=None, flip=False):
    """The 3x3 stride-1 convolution of x with w (with ``flip``: with w turned by 180 degrees and its
    channels swapped, the input gradient's) by Winograd F(m x m, 3x3)."""
    O, C = w.shape[:2]
    U = winograd.filters(w, flip, m, out=scratch(np, "filters", ((m + 2) ** 2, O, C), w.dtype))  # (n*n, O, C)
    if flip:
        U = U.transpose(0, 2, 1)                                           # (n*n, C, O)
    chunks = partial(_chunks, x.shape[0], budget=_winograd_budget(w, m), parts=parallel.parts(np))
    return winograd.conv(np.ascontiguousarray(x), U, b, padding, relu, chunks, scale)


class Conv2d(Function):
    """2-D cross-correlation by im2col + GEMM, a chunk of images at a time (bounded memory).

    out[n, o, y, x] = b[o] + sum_{c,i,j} w[o, c, i, j] * x[n, c, y*sh + i - ph, x*sw + j - pw]

    The simple tier (simple.py: Conv2d) does one GEMM per kernel tap (i, j) over a shifted copy of x.
    Here the kh*kw shifted copies are stacked into one patch matrix (im2col), so the kh*kw GEMMs
    become one. For a chunk of nb images (or a band of rows of one image), with P its output pixels
    per image and K = C*kh*kw:
        cols (K, nb*P) = im2col(x)     y (O, nb*P) = W (O, K) @ cols     out[n, o, p] = y[o, n*P + p] + b[o]
    and backwards, with g packed the same way as y:
        dW += g (O, nb*P) @ cols.T      dcols (K, nb*P) = W.T @ g      dx = col2im(dcols)

    With ``relu=True`` the ReLU is fused into the unpacking pass, and backwards its rule (the one in
    force, exactly as the separate ReLU op would apply it) into the pass that packs g. Under
    ``relu_rules.observe`` it is applied apart instead, so that the observers see the ReLU's arrays.

    When the weights need no gradient and the convolution is 3x3, stride 1, with enough channels
    (``_winograd_applies``), forward and input gradient go by Winograd instead (winograd.py), each by
    F(4x4, 3x3) or F(2x2, 3x3) as its own output's size asks (``_winograd_block``).

    ``scale`` (O,): an inference-mode batch norm folded in (``fold_bn``), out = scale[o] * conv + b[o],
    applied in the pass that unpacks the GEMM (on a GPU it is folded into the weights here instead).
    ``r`` (shaped like the output, 1x1 convolutions on the CPU only): a residual block's shortcut,
    added in the same pass before the ReLU; backwards it gets the gradient that leaves the ReLU.
    """

    @staticmethod
    def forward(ctx, x, w, b=None, r=None, stride=(1, 1), padding=(0, 0), relu=False, scale=None):
        xp, kernels = get_array_module(x), for_one_thread(x)        # serial kernels: one chunk a thread
        x = xp.ascontiguousarray(x)
        if scale is not None and xp is not np:                            # GPU: a pass over the weights is cheap
            w, scale = w * scale[:, None, None, None], None
        ctx.scale = scale
        N, C, H, W = x.shape
        O, _, kh, kw = w.shape
        (sh, sw), (ph, pw) = stride, padding
        oh, ow = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
        P, Kc = oh * ow, C * kh * kw
        geometry = (kh, kw, sh, sw, ph, pw)
        bias = b if b is not None else xp.zeros(O, x.dtype)
        ctx.geometry, ctx.out_size, ctx.relu, ctx.cols = geometry, (oh, ow), relu, []
        ctx.winograd = not ctx.needs_input_grad[1] and _winograd_applies(x, w, stride, padding)
        ctx.pointwise = POINTWISE_GEMM and (kh, kw, ph, pw) == (1, 1, 0, 0)
        if ctx.pointwise:                                                  # 1x1: a GEMM on x itself
            out = pointwise.forward(x, w, bias, stride, relu, kernels, scale, r)
            ctx.save_for_backward(x, w, out if relu else None)
            return out
        if r is not None:
            raise ValueError("Conv2d: a residual is fused into 1x1 unpadded convolutions only")
        extra = () if scale is None else (scale,)                          # the GPU's kernels take no scale
        if ctx.winograd:
            ctx.winograd_block = _winograd_block(N, oh, ow)                # (for the tests: which block ran)
            out = _winograd(x, w, bias, padding, relu, ctx.winograd_block, scale)
            ctx.save_for_backward(x, w, out if relu else None)
            return out
        w2 = xp.ascontiguousarray(w).reshape(O, Kc)                        # (O, K)
        out = xp.empty((N, O, P), x.dtype)                                 # (N, O, P)
        keep = ctx.needs_input_grad[1] and N * Kc * P <= KEEP_COLS_LIMIT
        small = TRAIN_COLS_BUDGET if ctx.needs_input_grad[1] else IM2COL_BUDGET if O <= P else COLS_BUDGET
        budget = chunk_budget(xp) or min(small, COLS_BUDGET)
        ctx.chunks = _chunks(N, max(Kc, O), oh, ow, budget, parallel.parts(xp), min_rows=kh)  # cols, y in budget
        ctx.cols = [None] * len(ctx.chunks) if keep else []
        if not ctx.needs_input_grad[1] and by_channels.applies(xp, N, O, P):
            by_channels.forward(x, w2, bias, relu, geometry, (oh, ow), out, extra)
            out = out.reshape(N, O, oh, ow)
            ctx.save_for_backward(x, w, out if relu else None)
            return out

        def forward_chunk(c):
            n0, n1, oy0, oy1 = ctx.chunks[c]
            width = (n1 - n0) * (oy1 - oy0) * ow                           # nb*P (or a band's pixels)
            cols = xp.empty((Kc, width), x.dtype) if keep else scratch(xp, "cols", (Kc, width), x.dtype)
            kernels.im2col(x, n0, oy0, *geometry, oy1 - oy0, ow, cols)          # (K, nb*P)
            if keep:
                ctx.cols[c] = cols
            if n1 - n0 == 1 and oy1 - oy0 == oh:                           # one whole image: GEMM into out
                xp.matmul(w2, cols, out=out[n0])                           # (O, P)
                kernels.gemm_out_to_nchw(out[n0], bias, relu, 0, 0, out[n0:n1], *extra)  # bias (+ ReLU) in place
            else:                                                          # (O, nb*P) -> out[n0:n1, :, band]
                y = xp.matmul(w2, cols, out=scratch(xp, "gemm", (O, width), x.dtype))
                kernels.gemm_out_to_nchw(y, bias, relu, n0, oy0 * ow, out, *extra)
        parallel.for_each(forward_chunk, range(len(ctx.chunks)), xp)
        out = out.reshape(N, O, oh, ow)                                    # (N, O, oh, ow)
        ctx.save_for_backward(x, w, out if relu else None)
        return out

    @staticmethod
    def backward(ctx, g):
        x, w, y = ctx.saved
        xp, kernels = get_array_module(x), for_one_thread(x)        # serial kernels: one chunk a thread
        kh, kw, sh, sw, ph, pw = ctx.geometry
        N, C = x.shape[:2]
        oh, ow = ctx.out_size
        O = w.shape[0]
        P, Kc = oh * ow, C * kh * kw
        if ctx.pointwise:
            return _pointwise_backward(ctx, x, w, relu_op.backward(y, g) if ctx.relu else g)
        fused_relu = ctx.relu
        if ctx.scale is not None:                                          # a folded batch norm
            w, g, fused_relu = _unscaled(ctx, w, y, g)
        if ctx.winograd:
            # Only dx (the weights need no gradient): the convolution of g with the filters turned by
            # 180 degrees, input and output channels swapped, padding 2 - p; Winograd again.
            if fused_relu:
                g = relu_op.backward(y, g)
            m = _winograd_block(N, *x.shape[2:])                            # dx's size: x's
            dx = _winograd(g, w, xp.zeros(C, x.dtype), (2 - ph, 2 - pw), False, m, flip=True
                           ) if ctx.needs_input_grad[0] else None
            need_b = len(ctx.needs_input_grad) > 2 and ctx.needs_input_grad[2]
            return dx, None, (g.sum(axis=(0, 2, 3)) if need_b else None)
        rule = kernels.NO_RELU
        if fused_relu and relu_rules._observers:                             # observers want the ReLU's own
            g = relu_op.backward(y, g)                                        # arrays: go through it apart
        elif fused_relu:                                                   # else fused into the packing
            rule = relu_rules.code()
        g = xp.ascontiguousarray(g).reshape(N, O, P)                       # (N, O, P)
        y = y.reshape(N, O, P) if rule != kernels.NO_RELU else g
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        need_b = len(ctx.needs_input_grad) > 2 and ctx.needs_input_grad[2]
        w2 = xp.ascontiguousarray(w).reshape(O, Kc)                        # (O, K)
        # Bands of one image scatter into the rows they share with the next band, so the even bands
        # run first, then the odd ones (bands of at least kh rows: band b and b + 2 share none).
        band, bands_before = [], {}                                        # each chunk's band number in its image
        for n0, *_ in ctx.chunks:
            band.append(bands_before.get(n0, 0))
            bands_before[n0] = band[-1] + 1
        odd, parts = sum(b % 2 for b in band), parallel.parts(xp)
        if need_x and not (need_w or need_b) and ((0 < odd < parts and len(by_channels.groups(C, parts)) > odd)
                                                  or by_channels.applies(xp, N, O, P)):
            return by_channels.input_gradient(ctx, x, w2, g, y, rule, kernels), None, None   # more threads busy
        dx = xp.zeros_like(x) if need_x else None
        sums = {}                                                          # thread -> its [dW, db] sums

        def backward_chunk(c):
            n0, n1, oy0, oy1 = ctx.chunks[c]
            width = (n1 - n0) * (oy1 - oy0) * ow                           # nb*P (or a band's pixels)
            if n1 - n0 == 1 and rule == kernels.NO_RELU:
                gp = g[n0, :, oy0 * ow:oy1 * ow]                           # (O, P): a view, already packed
            else:                                                          # (O, nb*P), packed like y,
                gp = scratch(xp, "gemm", (O, width), g.dtype)              # through the ReLU's rule
                kernels.nchw_to_gemm(g, y, rule, n0, oy0 * ow, gp)
            mine = sums.get(threading.get_ident())
            if mine is None:
                mine = sums[threading.get_ident()] = [xp.zeros_like(w2) if need_w else None,
                                                      xp.zeros(O, g.dtype) if need_b else None]
            if need_b:
                mine[1] += gp.sum(axis=1)
            if need_w:
                if ctx.cols:
                    cols = ctx.cols[c]                                     # kept by the forward
                else:
                    cols = scratch(xp, "cols", (Kc, width), x.dtype)       # (K, nb*P)
                    kernels.im2col(x, n0, oy0, *ctx.geometry, oy1 - oy0, ow, cols)
                # dW = g @ cols.T, computed transposed: OpenBLAS ran cols @ g.T at 63-72 GFLOP/s against
                # 41 for g @ cols.T (16->16, chunks of 3640 columns, one thread; 32->32: 86 and 59)
                mine[0] += (cols @ gp.T).T                                 # ((K, nb*P) @ (nb*P, O)).T
            if need_x:                                                     # (cols, if scratch, is used up)
                dcols = xp.matmul(w2.T, gp, out=scratch(xp, "cols", (Kc, width), x.dtype))   # (K, nb*P)
                kernels.col2im(dcols, n0, oy0, *ctx.geometry, oy1 - oy0, ow, dx)  # (K, nb*P) -> dx[n0:n1]
        for parity in (0, 1):
            parallel.for_each(backward_chunk, [c for c in range(len(ctx.chunks)) if band[c] % 2 == parity], xp)
        dw2 = sum(mine[0] for mine in sums.values()) if need_w else None
        db = sum(mine[1] for mine in sums.values()) if need_b else None
        ctx.cols = []                                                      # free them
        return dx, (dw2.reshape(w.shape) if need_w else None), db


def _unscaled(ctx, w, y, g, fused_relu=None):
    """Back through a folded scale (out = scale * conv(x, w) + ...): (w', g', fused_relu) such that
    the plain backward of w' and g' gives dx, and whether the fused ReLU is still to be applied
    (``fused_relu``: whether it is to be applied to g at all; default ``ctx.relu``). The weights are
    scaled when they are smaller than g (a pass over them), else g, after the ReLU's rule (which
    looks at the sign of the gradient arriving from above)."""
    if any(ctx.needs_input_grad[1:3]):                                    # weights, bias (the residual may)
        raise RuntimeError("Conv2d: a folded batch norm's convolution cannot give weight gradients")
    s = ctx.scale
    if fused_relu is None:
        fused_relu = ctx.relu
    if w.size <= g.size:
        return w * s[:, None, None, None], g, fused_relu
    g = relu_op.backward(y, g) if fused_relu else g.copy()                   # a fresh array: scaled in place
    g *= s[:, None, None]
    return w, g, False


def _pointwise_backward(ctx, x, w, g):
    """A 1x1 convolution's gradients, g already through the fused ReLU's rule: the bias's and the
    residual's (g itself) here, before a folded scale (``_unscaled``: W's rows or g's channels,
    whichever is smaller), then dx and dW by pointwise.backward."""
    need_b = len(ctx.needs_input_grad) > 2 and ctx.needs_input_grad[2]
    need_r = len(ctx.needs_input_grad) > 3 and ctx.needs_input_grad[3]
    g = get_array_module(g).ascontiguousarray(g)
    dr = g if need_r else None                                             # the shortcut's gradient
    db = g.sum(axis=(0, 2, 3)) if need_b else None
    if ctx.scale is not None:
        w, g, _ = _unscaled(ctx, w, None, g, fused_relu=False)              # the ReLU: applied to g already
    dx, dw = pointwise.backward(x, w, g, ctx.geometry[2:4], *ctx.needs_input_grad[:2])
    return dx, dw, db, dr


def conv2d(x, w, b, stride, padding, scale=None, residual=None, relu=False):
    """relu(scale * conv(x, w) + b + residual), checked by heavy_ops.conv2d, as one Conv2d: the scale,
    bias and ReLU applied in the pass that unpacks the GEMM, the residual too for a 1x1 unpadded
    convolution on the CPU (pointwise.py). Any other convolution with a residual adds it and applies
    the ReLU after the op, as the simple tier does."""
    if residual is not None and not (POINTWISE_GEMM and tuple(w.shape[2:]) == (1, 1) and tuple(padding) == (0, 0)
                                     and get_array_module(x) is np):
        out = conv2d(x, w, b, stride, padding, scale) + residual
        return relu_op.ReLU.apply(out) if relu else out
    inputs = (x, w) if b is None and residual is None else (x, w, b) if residual is None else (x, w, b, residual)
    return Conv2d.apply(*inputs, stride=stride, padding=padding, relu=relu, scale=scale)
