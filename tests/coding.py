"""Shared test helper: code tokens with a fresh model, decode them with another fresh one."""

import numpy as np

from submissions.decoder import codec, encoding

PROB_BITS = 28


def round_trip(make_model, tokens: np.ndarray, n_streams: int) -> bytes:
    """Encode then decode with two models from make_model(n_streams); assert the tokens come
    back; return the payload."""
    streams = encoding.effective_streams(len(tokens), n_streams)
    payload = encoding.encode(make_model(streams), tokens, streams, PROB_BITS)
    decoded = codec.decode(make_model(streams), payload, len(tokens), streams, PROB_BITS)
    np.testing.assert_array_equal(decoded, tokens)
    return payload
