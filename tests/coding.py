"""Shared test helper: code tokens with a model class, decode them with a fresh one."""

import numpy as np

from submissions.decoder import codec, encoding

PROB_BITS = 28


def round_trip(model_class, tokens: np.ndarray, vocab: int, n_streams: int, **params) -> bytes:
    """Encode then decode with two fresh models; assert the tokens come back; return the payload."""
    streams = encoding.effective_streams(len(tokens), n_streams)
    payload = encoding.encode(model_class(vocab, streams, PROB_BITS, **params), tokens, streams, PROB_BITS)
    decoded = codec.decode(model_class(vocab, streams, PROB_BITS, **params), payload, len(tokens), streams, PROB_BITS)
    np.testing.assert_array_equal(decoded, tokens)
    return payload
