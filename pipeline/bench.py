"""`pipeline bench`: how training, encoding and decoding cost grows with the input size.

For each size (1, 2, 4, 8 MB by default; MB = 10^6 bytes) the input is the first bytes of
the data file, or, when the file is shorter, the file repeated (and labelled so: a repeated
text is no harder to code, so sizes measure speed, not ratio). Each stage runs in its own
worker process (`python -m pipeline.bench worker ...`), started through the measuring
helper of pipeline/memory.py, so every stage gets its own peak RSS (wait4) and its time is
the stage itself, without Python's start-up and imports, both wall-clock and CPU time (the
process's, all threads): on a shared machine the CPU rate is the one that does not depend on
what else runs, and each row records the load average it ran under:

* train: `pipeline train` (the context model: tokenizer training + tokenizing; a neural
  model: also its training) -> tokens/s;
* encode: `pipeline pack`'s coding loop -> input bytes/s;
* decode: the archive's decoder (decode_shards + write_restored, the code every archive carries), checked
  byte for byte against the input -> input bytes/s.

Devices: the CPU always; CUDA too when torch sees it and the model can use it (the context
model codes with numpy only). A `--max-minutes` budget skips the sizes that the measured
rate says would not fit, and says so in the results.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

from submissions.errors import UserError
from submissions.fileio import atomic_write_text, require_file
from pipeline.memory import run_program

MB = 10**6
DEFAULT_SIZES = (1.0, 2.0, 4.0, 8.0)


@dataclass(frozen=True)
class BenchRow:
    size_bytes: int
    input: str  # how the input was made ("first N bytes of F" or "F repeated k times")
    device: str
    tokens: Optional[int] = None
    train_seconds: Optional[float] = None
    train_tokens: Optional[int] = None  # tokens the training stage went through (see module doc)
    train_peak_bytes: Optional[int] = None
    encode_seconds: Optional[float] = None
    encode_peak_bytes: Optional[int] = None
    decode_seconds: Optional[float] = None
    decode_peak_bytes: Optional[int] = None
    archive_bytes: Optional[int] = None
    round_trip_ok: Optional[bool] = None
    skipped: Optional[str] = None  # why this size was not measured (over the budget, or a stage failed)
    train_cpu_seconds: Optional[float] = None
    encode_cpu_seconds: Optional[float] = None
    decode_cpu_seconds: Optional[float] = None
    load_average: Optional[float] = None  # 1-minute load average when the row finished (others' work included)

    @property
    def train_tokens_per_s(self) -> Optional[float]:
        return _rate(self.train_tokens, self.train_seconds)

    @property
    def encode_bytes_per_s(self) -> Optional[float]:
        return _rate(self.size_bytes, self.encode_seconds)

    @property
    def decode_bytes_per_s(self) -> Optional[float]:
        return _rate(self.size_bytes, self.decode_seconds)

    @property
    def bits_per_byte(self) -> Optional[float]:
        return None if self.archive_bytes is None else 8 * self.archive_bytes / self.size_bytes

    def cpu_rate(self, stage: str) -> Optional[float]:
        amount = self.train_tokens if stage == "train" else self.size_bytes
        return _rate(amount, getattr(self, f"{stage}_cpu_seconds"))


@dataclass
class BenchResult:
    data: str
    model: str
    rows: list[BenchRow]
    machine: dict
    versions: dict
    date: str
    budget_minutes: Optional[float]
    wall_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def _now() -> float:
    return time.perf_counter()


def _rate(amount: Optional[int], seconds: Optional[float]) -> Optional[float]:
    if amount is None or seconds is None or seconds <= 0:
        return None
    return amount / seconds


def parse_sizes(text: str) -> list[float]:
    """'1,2,4,8' -> [1.0, 2.0, 4.0, 8.0] (MB, > 0)."""
    try:
        sizes = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UserError(f"--sizes takes comma-separated numbers of MB, e.g. 1,2,4,8 (got {text!r})") from None
    if not sizes or any(s <= 0 or not math.isfinite(s) for s in sizes):
        raise UserError(f"--sizes takes positive numbers of MB (got {text!r})")
    return sizes


def make_input(data: bytes, size: int, name: str) -> tuple[bytes, str]:
    """`size` bytes from `data`: a slice when it is long enough, else labelled repetitions."""
    if not data:
        raise UserError(f"{name} is empty")
    if len(data) >= size:
        return data[:size], f"first {size:,} bytes of {name}"
    times = size / len(data)
    return (data * math.ceil(times))[:size], f"{name} repeated {times:g} times"


def cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


def devices_for(model: str, requested: Optional[list[str]]) -> tuple[list[str], list[str]]:
    """(devices to measure, notes about the ones left out)."""
    has_cuda = cuda_available()
    wanted = requested or (["cpu", "cuda"] if has_cuda else ["cpu"])
    notes = []
    if not has_cuda:
        notes.append("CUDA: no CUDA device here (torch.cuda.is_available() is False); CPU only.")
    if "cuda" in wanted and not has_cuda:
        raise UserError("--device cuda asked for, but torch sees no CUDA device")
    if model != "neural" and "cuda" in wanted:
        wanted = [d for d in wanted if d != "cuda"]
        notes.append(f"CUDA: the {model} model codes with numpy only, so it has no CUDA rows.")
    unknown = [d for d in wanted if d not in ("cpu", "cuda")]
    if unknown:
        raise UserError(f"unknown device {', '.join(unknown)}; choose cpu or cuda")
    return wanted, notes


# --- the worker: one stage in a fresh process ------------------------------------------------


def _worker(stage: str, args: dict) -> dict:
    """Run one stage; add its wall and CPU seconds (the stage call alone, imports excluded)."""
    wall, cpu = time.perf_counter(), time.process_time()
    facts = _stage(stage, args)
    facts.setdefault("seconds", time.perf_counter() - wall)
    facts["cpu_seconds"] = time.process_time() - cpu
    return facts


def _stage(stage: str, args: dict) -> dict:
    if stage == "train":
        from pipeline.config import MODEL_CONFIGS, CoderConfig, NeuralModelConfig, PipelineConfig, TokenizerConfig
        from pipeline.train import train

        model = MODEL_CONFIGS[args["model"]]()
        if isinstance(model, NeuralModelConfig):
            model = NeuralModelConfig(max_minutes=args["minutes"])
        config = PipelineConfig(TokenizerConfig(vocab_size=args["vocab"]), model, CoderConfig(n_streams=args["streams"]))
        result = train(Path(args["data"]), Path(args["run"]), config, device=args["device"], progress=False)
        facts = {"tokens": result.n_tokens, "train_tokens": result.n_tokens}
        if args["model"] == "neural":  # the model's own training throughput
            report = json.loads((Path(args["run"]) / "train.json").read_text())
            import torch

            step = torch.load(report["checkpoint"], map_location="cpu", weights_only=False)["step"]
            facts.update(train_tokens=step * model.batch_size * model.context)
        return facts
    if stage == "pack":
        from pipeline.pack import pack

        on_gpu = args["device"] == "cuda" and args["model"] == "neural"  # the neural net codes on the GPU; the kernels on the CPU
        backend, device = ("torch", "cuda") if on_gpu else (None, None)
        result = pack(Path(args["run"]), Path(args["archive"]), progress=False, backend=backend, device=device)
        return {"archive_bytes": result.total_bytes}
    if stage == "decode":
        if args["device"] == "cuda":  # where the decoder runs is the environment's choice (neural_model.py)
            os.environ.update(HUTTER_BACKEND="torch", HUTTER_DEVICE="cuda")
        from submissions.decoder.container import read_archive
        from submissions.decoder.restore import decode_shards, write_restored

        header, sections = read_archive(args["archive"])
        write_restored(header, sections, decode_shards(header, sections), args["output"])
        return {}
    raise ValueError(f"unknown stage {stage}")


def _run_stage(stage: str, args: dict, cwd: Path) -> tuple[dict, int]:
    """(the worker's JSON, its peak RSS); a failing stage is an error with its last lines."""
    run = run_program([sys.executable, "-m", "pipeline.bench", "worker", stage, json.dumps(args)], cwd=cwd)
    lines = run.stdout.decode(errors="replace").strip().splitlines()
    if run.returncode != 0 or not lines:
        tail = run.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise RuntimeError(f"bench stage {stage} failed (exit {run.returncode}): {' | '.join(tail)}")
    return json.loads(lines[-1]), run.peak_rss


# --- the benchmark ---------------------------------------------------------------------------


def bench(
    data_path: Path,
    sizes_mb: list[float],
    model: str = "context",  # the CLI passes the project's default model
    devices: Optional[list[str]] = None,
    vocab: int = 4096,
    streams: int = 64,
    train_minutes: float = 1.0,
    max_minutes: Optional[float] = None,
    progress: Optional[Callable[[int, int, str], None]] = None,
) -> BenchResult:
    """Measure every size on every device, smallest first; sizes past the budget are skipped."""
    from pipeline.config import MODEL_CONFIGS

    if model not in MODEL_CONFIGS:
        raise UserError(f"unknown model {model!r}; choose one of {', '.join(MODEL_CONFIGS)}")
    data_path = require_file(Path(data_path), "data file")
    data = data_path.read_bytes()
    wanted, notes = devices_for(model, devices)
    started = _now()
    rows: list[BenchRow] = []
    jobs = [(s, d) for s in sorted(sizes_mb) for d in wanted]
    last_cost: Optional[tuple[int, float]] = None  # (bytes, seconds) of the last measured job
    for done, (size_mb, device) in enumerate(jobs):
        size = max(1, round(size_mb * MB))
        payload, label = make_input(data, size, data_path.name)
        if max_minutes is not None and last_cost is not None:
            estimate = last_cost[1] * size / last_cost[0]  # cost grows about linearly (measured: see the results)
            left = max_minutes * 60 - (_now() - started)
            if estimate > left:
                why = f"skipped: estimated {estimate / 60:.1f} min (from the last size's rate) > {max(left, 0) / 60:.1f} min left of --max-minutes {max_minutes:g}"
                rows.append(BenchRow(size, label, device, skipped=why))
                continue
        if progress is not None:
            progress(done, len(jobs), f"{size:,} bytes on {device}")
        job_started = _now()
        try:
            rows.append(_measure_one(payload, label, device, model, vocab, streams, train_minutes))
        except RuntimeError as exc:  # one failed stage costs its row, not the whole (long) run
            rows.append(BenchRow(size, label, device, skipped=f"failed: {exc}"))
            continue
        last_cost = (size, _now() - job_started)
    if progress is not None:
        progress(len(jobs), len(jobs), "")
    return BenchResult(
        data=str(data_path), model=model, rows=rows, machine=machine_facts(), versions=versions(),
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        budget_minutes=max_minutes, wall_seconds=_now() - started, notes=notes,
    )


def _measure_one(payload: bytes, label: str, device: str, model: str, vocab: int, streams: int, minutes: float) -> BenchRow:
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        tmp_path = Path(tmp)
        data, run, archive, output = tmp_path / "input", tmp_path / "run", tmp_path / "x.arc", tmp_path / "restored"
        data.write_bytes(payload)
        trained, train_peak = _run_stage(
            "train", {"data": str(data), "run": str(run), "model": model, "vocab": vocab, "streams": streams, "device": device, "minutes": minutes}, tmp_path
        )
        packed, pack_peak = _run_stage("pack", {"run": str(run), "archive": str(archive), "device": device}, tmp_path)
        decoded, decode_peak = _run_stage("decode", {"archive": str(archive), "output": str(output), "device": device}, tmp_path)
        ok = output.read_bytes() == payload
    if not ok:
        raise RuntimeError(f"bench: the decoded {label} differs from the input (a decoder bug)")
    return BenchRow(
        size_bytes=len(payload), input=label, device=device, tokens=trained["tokens"], train_seconds=trained["seconds"],
        train_tokens=trained["train_tokens"], train_peak_bytes=train_peak, encode_seconds=packed["seconds"],
        encode_peak_bytes=pack_peak, decode_seconds=decoded["seconds"], decode_peak_bytes=decode_peak,
        archive_bytes=packed["archive_bytes"], round_trip_ok=ok, train_cpu_seconds=trained["cpu_seconds"],
        encode_cpu_seconds=packed["cpu_seconds"], decode_cpu_seconds=decoded["cpu_seconds"],
        load_average=os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    )


def machine_facts() -> dict:
    from verify.report import machine

    facts = machine()
    if cuda_available():
        import torch

        facts["cuda_device"] = torch.cuda.get_device_name(0)
    return facts


def versions() -> dict:
    from importlib import metadata

    found = {"python": platform.python_version()}
    for name in ("numpy", "torch", "sentencepiece"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    from pipeline.verified import code_version

    found["code_version"] = code_version()
    return found


# --- output ----------------------------------------------------------------------------------


COLUMNS = (
    "input", "device", "tokens", "train tok/s wall / CPU", "encode KB/s wall / CPU", "decode KB/s wall / CPU",
    "peak MiB train / enc / dec", "archive bytes", "bits/byte", "load",
)


def _kb(rate: Optional[float]) -> str:
    return "–" if rate is None else f"{rate / 1000:,.1f}"


def _count(rate: Optional[float]) -> str:
    return "–" if rate is None else f"{rate:,.0f}"


def _mib(value: Optional[int]) -> str:
    return "–" if value is None else f"{value / 2**20:,.0f}"


def row_cells(row: BenchRow) -> list[str]:
    label = f"{row.size_bytes / MB:g} MB ({row.input})"
    if row.skipped:
        return [label, row.device, row.skipped, *[""] * (len(COLUMNS) - 3)]
    return [
        label,
        row.device,
        f"{row.tokens:,}",
        f"{_count(row.train_tokens_per_s)} / {_count(row.cpu_rate('train'))}",
        f"{_kb(row.encode_bytes_per_s)} / {_kb(row.cpu_rate('encode'))}",
        f"{_kb(row.decode_bytes_per_s)} / {_kb(row.cpu_rate('decode'))}",
        f"{_mib(row.train_peak_bytes)} / {_mib(row.encode_peak_bytes)} / {_mib(row.decode_peak_bytes)}",
        f"{row.archive_bytes:,}",
        f"{row.bits_per_byte:.4f}",
        "–" if row.load_average is None else f"{row.load_average:.1f}",
    ]


def markdown(result: BenchResult, command: str) -> str:
    m, v = result.machine, result.versions
    lines = [
        f"# Bench: {result.model} model, cost against input size",
        "",
        f"{result.date[:10]}; {m.get('processor') or m.get('machine')}, {m.get('cpus_usable') or m.get('cpu_count')} usable CPUs"
        f"{', ' + m['cuda_device'] if m.get('cuda_device') else ''}, {(m.get('memory_bytes') or 0) / 2**30:.0f} GiB; "
        f"Python {v['python']}, numpy {v['numpy']}, torch {v['torch']}, sentencepiece {v['sentencepiece']}; code {v['code_version']}.",
        f"Command: `{command}` ({result.wall_seconds / 60:.1f} min in all).",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|---|---|" + "---:|" * (len(COLUMNS) - 2),
    ]
    lines += ["| " + " | ".join(row_cells(r)) + " |" for r in result.rows]
    lines += [
        "",
        "- KB = 1,000 bytes of input; MB = 10^6 bytes. Rates are the stage alone (no Python start-up or imports), "
        "each stage in its own process, by wall-clock time and by the process's CPU time (all threads); peak MiB is "
        "that process's peak RSS (wait4, imports included). load: the 1-minute load average when the row finished "
        f"(this machine has {m.get('cpus_usable') or m.get('cpu_count')} CPUs; above that, other work was competing and the wall rates are pessimistic).",
        "- train tok/s: tokens through the training stage per second "
        + ("(the neural model's training steps x batch x context)." if result.model == "neural" else f"(the {result.model} model has nothing to train: tokenizer training + tokenizing)."),
        "- decode: the decoder every archive carries (decode_shards, write_restored), output compared with the input byte for byte.",
        "- Inputs longer than the data file are the file repeated, labelled so: they measure speed, not compression.",
    ]
    lines += [f"- {note}" for note in result.notes]
    return "\n".join(lines) + "\n"


def write_results(result: BenchResult, md_path: Path, command: str) -> Path:
    """Markdown and JSON (same name, .json) side by side, atomically; return the JSON path."""
    json_path = md_path.with_suffix(".json")
    payload = asdict(result)
    payload["command"] = command
    atomic_write_text(json_path, json.dumps(payload, indent=2) + "\n")
    atomic_write_text(md_path, markdown(result, command))
    return json_path


def terminal_table(result: BenchResult):
    from rich.table import Table

    table = Table(title=f"bench: {result.model} model on {Path(result.data).name}")
    for column in COLUMNS:
        table.add_column(column, justify="left" if column in ("input", "device") else "right")
    for row in result.rows:
        table.add_row(*row_cells(row), style="yellow" if row.skipped else None)
    return table


def default_output(model: str, date: Optional[str] = None) -> Path:
    day = date or datetime.date.today().isoformat()
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    machine = f"{cpus}cpu"
    gpu = "_cuda" if cuda_available() else ""
    return Path("benchmarks") / "results" / f"bench_{model}_{machine}{gpu}_{day}.md"


if __name__ == "__main__":  # the worker: python -m pipeline.bench worker STAGE JSON
    if len(sys.argv) != 4 or sys.argv[1] != "worker":
        sys.exit("usage: python -m pipeline.bench worker STAGE JSON_ARGS (run by `pipeline bench`)")
    print(json.dumps(_worker(sys.argv[2], json.loads(sys.argv[3]))))
