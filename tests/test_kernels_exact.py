"""The kernels' source is its own reference: coding with numba's JIT and as plain Python
(NUMBA_DISABLE_JIT=1) gives the same payloads and the same final tables, and no kernel
computes in floating point (numba silently makes uint64 mixed with int64 a float64)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# codes a short text with every compiled model, prints payload and table hashes; under the
# JIT also every variable of a float type in the kernels it compiled
SCRIPT = r"""
import hashlib, json, sys
import numpy as np
from submissions.decoder import encoding, jit
from submissions.decoder.context_model import ContextConfig, ContextModel
from submissions.decoder.mixing_model import MixConfig
from submissions.decoder.mixing_steps import ContextMixingModel
from submissions.decoder.online_alone import OnlineConfig, OnlineModel

def digest(arrays):
    return hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for a in arrays)).hexdigest()

table = [bytes([i]) for i in range(256)] + [b" the", b"ing ", b"\n", b"[[", b"]]", b"{{", b"}}|", b"<ref>", b"|\n|-\n", b""]
text = b"[[the cat]] sat on {{the mat|x=1}}\n|-\n| the cat ing <ref>\n\n|the mat\n"
tokens = np.frombuffer(text, dtype=np.uint8).astype(np.int64)
tokens[::7] = 256 + tokens[::7] % 10  # some multi-byte tokens too
out = {}
for streams in (2,):  # one stream or several: the same code, one more loop turn
    mix = ContextMixingModel(len(table), streams, 28, MixConfig(table_bits=12, count_limit=3, match_lengths=(2, 5), online_hidden=8, online_table_bits=8), token_bytes=table)
    out[f"mix payload {streams}"] = hashlib.sha256(encoding.encode(mix, tokens, streams, 28)).hexdigest()
    out[f"mix tables {streams}"] = digest(mix.state)
online = OnlineModel(len(table), 2, 28, OnlineConfig(match_lengths=(2, 5), online_hidden=8, online_table_bits=8, direct_bits=10, direct_rate=40), token_bytes=table)
out["online payload"] = hashlib.sha256(encoding.encode(online, tokens, 2, 28)).hexdigest()
out["online tables"] = digest(online.state + online.direct)
context = ContextModel(len(table), 2, 20, ContextConfig(max_order=3, hashed_rows=61, count_limit=30))
out["context payload"] = hashlib.sha256(encoding.encode(context, tokens, 2, 20)).hexdigest()
out["context tables"] = digest([context.counts0, context.counts, context.totals, context.history])
floats = []
if jit.numba is not None and not jit.numba.config.DISABLE_JIT:
    import numba
    from submissions.decoder import binary_coder, context_model, encoding as enc, match_model, mixing, mixing_model, online_alone, online_model, run_model
    for module in (binary_coder, context_model, enc, match_model, mixing, mixing_model, online_alone, online_model, run_model):
        for name, kernel in vars(module).items():
            for result in getattr(kernel, "overloads", {}).values():
                typemap = result.type_annotation.typemap
                floats += [f"{name}: {var} {kind}" for var, kind in typemap.items()
                           if isinstance(kind, numba.types.Float) or getattr(kind, "dtype", None) in numba.types.real_domain]
    out["kernels compiled"] = sum(len(getattr(k, "overloads", {})) for m in (mixing_model, mixing, online_alone) for k in vars(m).values())
out["floats"] = floats
print(json.dumps(out))
"""


def start(tmp_path: Path, disable_jit: bool) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT), XDG_CACHE_HOME=str(tmp_path / "cache"), NUMBA_DISABLE_JIT="1" if disable_jit else "0")
    return subprocess.Popen([sys.executable, "-c", SCRIPT], env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def result(process: subprocess.Popen) -> dict:
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr
    return json.loads(stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_compiled_kernels_code_exactly_what_their_python_source_codes(tmp_path):
    both = [start(tmp_path, disable_jit=False), start(tmp_path, disable_jit=True)]  # side by side: this test is the suite's longest
    try:
        compiled, python = map(result, both)  # the compiled one in a fresh cache: compiled there, with types to inspect
    finally:
        for process in both:
            if process.poll() is None:
                process.kill()
    assert compiled["kernels compiled"] > 10 and compiled["floats"] == []
    assert {k: v for k, v in compiled.items() if k not in ("floats", "kernels compiled")} == {k: v for k, v in python.items() if k != "floats"}
