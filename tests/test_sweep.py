"""The sweep trains and packs every candidate for real and marks the smallest archive."""

from __future__ import annotations

from pipeline.config import CoderConfig, ContextModelConfig, NeuralModelConfig, PipelineConfig, TokenizerConfig
from pipeline.sweep import Candidate, default_candidates, markdown, sweep


def test_sweep_measures_real_archives_and_marks_the_best(tmp_path, text_sample):
    data = tmp_path / "data.txt"
    data.write_bytes(text_sample[:4000])
    coder = CoderConfig(n_streams=4)
    candidates = [
        Candidate("context", PipelineConfig(TokenizerConfig(vocab_size=320), ContextModelConfig(), coder)),
        Candidate("neural tiny", PipelineConfig(
            TokenizerConfig(vocab_size=320),
            NeuralModelConfig(d_model=16, n_layers=1, n_heads=2, context=8, max_minutes=None, max_steps=3, batch_size=2),
            coder,
        )),
    ]
    rows = sweep(data, candidates, device="cpu", progress=False)
    assert [r.name for r in rows] == ["context", "neural tiny"]
    for row in rows:
        assert sum(row.parts.values()) == row.total_bytes > 0
    assert rows[1].parts["model"] > 0 and rows[0].parts["model"] == 0
    table = markdown(data, rows, 0.0)
    best = min(rows, key=lambda r: r.total_bytes)
    assert f"| {best.name} **(best)** |" in table and table.count("(best)") == 1


def test_default_candidates_cover_no_neural_and_neural_models():
    names = [c.name for c in default_candidates()]
    assert all(any(n.startswith(kind) for n in names) for kind in ("mix", "context", "neural"))
    assert all(c.config.validate() for c in default_candidates(minutes=0.5))
