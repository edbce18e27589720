"""Scratch buffers: the fast tier's temporary arrays, kept from call to call.

The simple tier allocates what it needs and lets it go; the fast convolution instead carves its
patch matrices and GEMM results from one buffer per purpose, reused by every chunk, layer and step.
"""
import threading

import numpy as np

#: scratch buffers of this thread, one per (array module, GPU, purpose, dtype): see ``scratch``
_scratch = threading.local()


def scratch(xp, purpose, shape, dtype):
    """An uninitialised array for temporary use, carved from a buffer kept from call to call.

    The convolution's patch matrices and GEMM results (up to 16 MB each) are needed again for every
    chunk, layer and step. Fresh arrays that large come from the operating system as new pages each
    time (glibc hands big blocks back on free), and the kernel must fault in and zero every page
    (measured, with the activations: 60-130 ms of system time per VGG16 image, against a forward of
    about 400 ms). One buffer per purpose, reused, costs nothing after the first call.

    The array is valid until the next ``scratch`` call with the same purpose: use it and drop it.
    Each thread has its own buffers (two threads running convolutions never share one); they are held
    until ``free_scratch()`` or the thread's end.
    """
    size = 1
    for d in shape:
        size *= d
    device = None if xp is np else xp.cuda.runtime.getDevice()   # one set of buffers per GPU
    key = (xp.__name__, device, purpose, np.dtype(dtype).str)
    buffers = _scratch.__dict__.setdefault("buffers", {})
    buf = buffers.get(key)
    if buf is None or buf.size < size:
        buffers.pop(key, None)                      # free the old one before allocating the new
        buf = buffers[key] = xp.empty(size, dtype)
    return buf[:size].reshape(shape)


def free_scratch():
    """Release this thread's scratch buffers (they are made again on demand)."""
    _scratch.__dict__.pop("buffers", None)
