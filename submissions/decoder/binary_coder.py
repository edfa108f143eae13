"""The coder step of binary models, called from inside their kernels (rans.py has the rest)."""

from __future__ import annotations

from .jit import I, kernel
from .mixing import U
from .rans import CODER_PROB_BITS, COUNT, DECODING, FAILED, POSITION, STATE_LOW, WORD_BITS


@kernel
def code_bit(coder, b, zero, bit):
    """One binary decision of stream b, 0 owning [0, zero) of 2**prob_bits and 1 the rest:
    decoding, the bit read from the state; encoding, `bit`, its interval recorded."""
    prob_bits = coder.vars[CODER_PROB_BITS]
    total = 1 << prob_bits
    if not coder.vars[DECODING]:
        n = coder.vars[COUNT]
        if n >= len(coder.starts):
            coder.vars[FAILED] = 1
            return bit
        coder.starts[n] = zero if bit else 0
        coder.freqs[n] = total - zero if bit else zero
        coder.streams[n] = b
        coder.vars[COUNT] = n + 1
        return bit
    x = coder.state[b]
    slot = x & U(total - 1)
    bit = I(slot >= U(zero))
    start, freq = (zero, total - zero) if bit else (0, zero)
    x = U(freq) * (x >> U(prob_bits)) + slot - U(start)
    if x < U(STATE_LOW):
        position = coder.vars[POSITION]
        if position >= len(coder.words):
            coder.vars[FAILED] = 1
            return bit
        x = x << U(WORD_BITS) | U(coder.words[position])
        coder.vars[POSITION] = position + 1
    coder.state[b] = x
    return bit
