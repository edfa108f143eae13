"""The self-contained decoder that every archive carries.

Stdlib + numpy (+ numba for the models with compiled kernels, + torch for neural models when
present) only, and no imports from the rest of the project: this package is copied into each archive, and `pipeline pack`
imports the same modules to encode, so encoder and decoder cannot drift apart.
"""

FORMAT_VERSION = 13  # 4: each header fact stated once; binary models code stream by stream, bit by bit, in compiled kernels; 5: the mixing model adds runs and indirect contexts (same header); 6: the mixing model adds an online network (same header); 7: the header is a part of the program's LZMA stream, members have one-letter names, no per-section sha256 (zip's CRC-32 covers them); 8: the mixing model adds five contexts (same header); 9: three more contexts, byte contexts of 5 bytes and of 4 bytes 4 back, a match model of 8 tokens, final mixers by the last token and the last mark, 8-way bucket sets, 16-bit coded probabilities, no match refiner, learning rate 16 (same header); 10: the refiners by the last token(s) hash to 2**18 contexts, the run table holds 2**23 entries, counts are halved past 511 (same header); 11: both knots around a refiner's p learn (the mixing model and the online model), the online model's refiners and their mixer (same header); 12: the program of a compiled model in two parts, the second coded by the model after the LZMA stream of `d` (same header); 13: the sections follow it inside `d`, the header gives their sizes (no member of their own)
