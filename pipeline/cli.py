"""The `pipeline` command: a thin typer layer over the stage functions.

Heavy imports (numpy, sentencepiece, torch) happen inside the commands, so
`pipeline --help` stays instant.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Iterator, Optional

import typer

from submissions.errors import UserError

app = typer.Typer(
    help="Train a tokenizer and model on a file, pack it into a self-contained archive, compare sizes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """A user mistake is one line on stderr and exit code 2, never a traceback."""
    try:
        yield
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        raise typer.Exit(130) from None


def _say(message: str) -> None:
    from pipeline.progress import console

    console.print(message)


@app.command()
def data(
    name: str = typer.Argument(..., help="'sample' (built in, no network), 'enwik8', 'enwik9', or a local file to slice"),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="where to write (default: data/NAME)"),
    head_bytes: Optional[int] = typer.Option(None, "--head", help="keep only the first N bytes (enwik6 = --head 1000000)"),
    force: bool = typer.Option(False, "--force", help="replace an existing output"),
) -> None:
    """Write a data file: the built-in sample, a downloaded enwik, or a slice of any file."""
    with user_errors():
        from pipeline import data as stage

        if head_bytes is not None and head_bytes < 0:
            raise UserError("--head takes a non-negative number of bytes")
        target = output or Path("data") / (Path(name).name if head_bytes is None else f"{Path(name).name}.head{head_bytes}")
        if name == "sample":
            if head_bytes is not None:
                raise UserError("--head slices enwik8/enwik9 or a local file, not the sample")
            written = stage.write_sample(target, force=force)
        elif name in ("enwik8", "enwik9"):
            full = target if head_bytes is None else Path("data") / name
            if head_bytes is None or not full.exists():
                stage.fetch_enwik(name, full, force=force and head_bytes is None)
            written = full if head_bytes is None else stage.head(full, target, head_bytes, force=force)
        else:
            if head_bytes is None:
                raise UserError(f"{name} is not a known data set; to slice a local file give --head N")
            written = stage.head(Path(name), target, head_bytes, force=force)
        facts = stage.describe(written)
        _say(f"wrote {written}: {facts['size']:,} bytes, sha256 {facts['sha256']}")


@app.command()
def train(
    ctx: typer.Context,
    data_file: Path = typer.Argument(..., help="the file to compress"),
    output: Path = typer.Option(..., "-o", "--output", help="run folder to create"),
    model: str = typer.Option("mix", "--model", help="'mix' (online context mixing, nothing to train), 'online' (a network that learns while it codes, alone), 'context' (simpler, faster) or 'neural' (transformer)"),
    vocab: int = typer.Option(512, "--vocab", help="tokenizer vocabulary size (shrunk automatically for tiny files)"),
    fold_case: bool = typer.Option(True, "--fold-case/--no-fold-case", help="fold capitals to lower case before tokenizing, each marked by a byte the file lacks (enwik6 0.4% smaller; a text of many capital runs may code larger)"),
    streams: int = typer.Option(0, "--streams", help="independent coding streams (thousands on a GPU); 0: automatic (1 for mix and online; 16 to 64 by file size for context; 64 with a neural net)"),
    with_neural: bool = typer.Option(False, "--with-neural", help="mix: train a transformer (the neural options below) and mix it in as one more input"),
    d_model: int = typer.Option(256, "--d-model", help="neural: width"),
    layers: int = typer.Option(4, "--layers", help="neural: transformer blocks"),
    heads: int = typer.Option(4, "--heads", help="neural: attention heads"),
    context: int = typer.Option(128, "--context", help="neural: attention window in tokens"),
    max_minutes: Optional[float] = typer.Option(10.0, "--max-minutes", help="neural: training time budget"),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="neural: training step budget"),
    batch_size: int = typer.Option(32, "--batch-size", help="neural: sequences per step (with --nproc or torchrun: the global batch, shared out)"),
    lr: float = typer.Option(2e-3, "--lr", help="neural: peak learning rate"),
    seed: int = typer.Option(0, "--seed", help="neural: random seed"),
    device: str = typer.Option("auto", "--device", help="neural: cuda, cpu or auto"),
    precision: str = typer.Option("tf32", "--precision", help="neural: training matmuls: tf32 (exact operands), bf16 (autocast, faster, rounds outputs) or fp32"),
    weight_bits: int = typer.Option(8, "--weight-bits", help="neural: 8 or 4 bits per weight of the transformer blocks"),
    embed_bits: int = typer.Option(8, "--embed-bits", help="neural: 8 or 4 bits per weight of the embedding table (and head)"),
    resume: bool = typer.Option(False, "--resume", help="neural: continue from the run's checkpoint"),
    force: bool = typer.Option(False, "--force", help="replace an existing run folder"),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="no progress bar"),
    nproc: int = typer.Option(1, "--nproc", help="neural: train in N processes on this machine through torchrun (DistributedDataParallel: one per GPU, gloo on the CPU)"),
) -> None:
    """Train the lossless tokenizer (and the model) on a file into a run folder."""
    from pipeline.distributed import launched_world, refuse_too_few_gpus

    with user_errors(), _rank_errors():
        from pipeline.config import MODEL_CONFIGS, CoderConfig, MixingModelConfig, NeuralModelConfig, PipelineConfig, TokenizerConfig
        from pipeline.train import check_inputs
        from pipeline.train import train as run_train

        if model not in MODEL_CONFIGS:
            raise UserError(f"unknown model {model!r}; choose one of {', '.join(MODEL_CONFIGS)}")
        if with_neural and model != "mix":
            raise UserError("--with-neural adds a neural input to the mix model (--model mix)")
        model_config = MODEL_CONFIGS[model]()
        if model == "neural" or with_neural:
            neural = NeuralModelConfig(
                d_model=d_model, n_layers=layers, n_heads=heads, context=context, max_minutes=max_minutes,
                max_steps=max_steps, batch_size=batch_size, lr=lr, seed=seed, precision=precision,
                weight_bits=weight_bits, embed_bits=embed_bits,
            )
            model_config = neural if model == "neural" else MixingModelConfig(neural=neural)
        config = PipelineConfig(tokenizer=TokenizerConfig(vocab_size=vocab, fold_case=fold_case), model=model_config, coder=CoderConfig(n_streams=streams))
        if nproc > 1 and config.neural_model() is None:
            _say(f"note: --model {model} has no network to train: one process, --nproc {nproc} unused")
        elif nproc != 1:  # refuse mistakes here, once, then run this same command in nproc processes
            if nproc > 1:
                check_inputs(data_file, output, config.validate(), force, resume, nproc)
                refuse_too_few_gpus(nproc, device)
            _relaunch(ctx, nproc)
        result = run_train(data_file, output, config, force=force, resume=resume, device=device, progress=not quiet)
        if launched_world().is_main:
            _say(
                f"trained {result.run}: {result.n_bytes:,} bytes -> {result.n_tokens:,} tokens "
                f"(vocab {result.vocab_size}, {result.bytes_per_token:.2f} bytes/token) in {result.seconds:.1f}s"
            )


def _relaunch(ctx: typer.Context, nproc: int) -> None:
    """Run this same command (its parsed options, less --nproc) in nproc processes through
    torchrun, and exit with their exit code."""
    from pipeline.distributed import launched_world, relaunch

    if nproc < 1:
        raise UserError("--nproc takes a number of processes, 1 or more")
    if launched_world().distributed:
        raise UserError("--nproc starts torchrun itself: inside torchrun, leave it out")
    argv = [ctx.info_name]
    for param in ctx.command.params:
        value = ctx.params[param.name]
        if param.name == "nproc" or value is None or value is False:
            continue
        if param.param_type_name == "argument":
            argv.append(str(value))
        else:
            argv += [param.opts[0]] if value is True else [param.opts[0], str(value)]
    raise typer.Exit(relaunch(nproc, argv))


@contextlib.contextmanager
def _rank_errors() -> Iterator[None]:
    """Under torchrun every rank meets the same user error: rank 0 says it, once."""
    from pipeline.distributed import launched_world

    try:
        yield
    except UserError:
        if launched_world().is_main:
            raise
        raise typer.Exit(2) from None


@app.command()
def pack(
    ctx: typer.Context,
    run: Path = typer.Argument(..., help="run folder written by `pipeline train`"),
    output: Path = typer.Option(..., "-o", "--output", help="archive to write"),
    data_file: Optional[Path] = typer.Option(None, "--data", help="the data file, if it moved since training"),
    force: bool = typer.Option(False, "--force", help="replace an existing archive"),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="no progress bar"),
    backend: Optional[str] = typer.Option(None, "--backend", help="where the neural model and the online network (mix and online models) run: numpy, torch or auto (never changes the bytes)"),
    device: Optional[str] = typer.Option(None, "--device", help="torch backend: cpu or cuda"),
    shards: Optional[int] = typer.Option(None, "--shards", help="code the file in this many independent pieces (default: the run's, 1; more shards: more processes can share the work, slightly bigger archive)"),
    nproc: int = typer.Option(1, "--nproc", help="code the shards in N processes through torchrun (one GPU each with --device cuda); the bytes depend only on --shards"),
    tree_order: bool = typer.Option(False, "--tree-order", help="mix and online models: renumber token ids so the coding tree groups tokens that follow the same contexts (fitted to the file; enwik6 0.26% smaller, other texts 0.3-0.4% larger: try both)"),
    smallest: bool = typer.Option(False, "--smallest", help="mix and online models: code the file with and without --tree-order and (mix) with and without the online network, keep the smallest archive (up to 4 encodes)"),
    jobs: int = typer.Option(1, "-j", "--jobs", help="with --smallest: encode up to N ways at once, in forked processes (each holds one encode's memory)"),
) -> None:
    """Code the file into one self-contained archive (restore it with `python ARCHIVE -o OUT`)."""
    with user_errors(), _rank_errors():
        from submissions.fileio import check_output, require_file
        from pipeline.curve import curve_path
        from pipeline.distributed import refuse_too_few_gpus
        from pipeline.pack import pack as run_pack

        if jobs < 1:
            raise UserError("--jobs must be at least 1")
        if nproc != 1:  # refuse the common mistakes once, before the processes start
            require_file(run / "config.json", "run folder's config")
            check_output(output, force)
            refuse_too_few_gpus(nproc, device)
            _relaunch(ctx, nproc)
        result = run_pack(run, output, data_file, force=force, progress=not quiet, backend=backend, device=device, shards=shards, tree_order=True if tree_order else None, smallest=smallest, jobs=jobs)
        if result is None:  # another rank's share, written by rank 0
            return
        for label, size, seconds in result.tried:
            _say(f"  {label}: {size:,} bytes, encoded in {seconds:.1f}s{' (kept)' if label == result.kept else ''}")
        parts = ", ".join(f"{name} {size:,}" for name, size in result.parts.items())
        speed = result.original_size / max(result.seconds, 1e-9) / 1000
        _say(
            f"packed {result.archive}: {result.total_bytes:,} bytes ({result.bits_per_byte:.4f} bits/byte); "
            f"encoded in {result.seconds:.1f}s ({speed:,.1f} KB/s)\n  parts: {parts}\n"
            f"  loss curve (code length along the file): {curve_path(result.archive)}"
        )
        for field, bits in result.sized.items():  # 4 bytes an entry in both
            name = {"table_bits": "count table", "direct_bits": "direct table"}[field]
            _say(f"  {name}: 2**{bits} entries ({4 << bits >> 20:,} MiB), sized to the file ({field} in the run's config.json sets it)")
        if result.float_integer_gap is not None:
            _say(
                f"  code length: float model {result.float_code_bits / 8:,.0f} bytes, integer model "
                f"{result.integer_code_bits / 8:,.0f} bytes (gap {100 * result.float_integer_gap:+.3f}%); "
                f"payload {result.payload_bits / 8:,.0f} bytes"
            )


@app.command()
def curve(
    curves: list[Path] = typer.Argument(..., help="ARCHIVE.curve.json files written by `pipeline pack` (the first is the baseline of the % panel)"),
    output: Path = typer.Option(..., "-o", "--output", help="PNG to write"),
    window: int = typer.Option(32768, "--window", help="bytes per plotted point"),
    force: bool = typer.Option(False, "--force", help="replace an existing PNG"),
) -> None:
    """Draw the loss curves of packed archives: bits per byte along the file (the payload is the area under each)."""
    with user_errors():
        from pipeline.curve import plot_curves, read_curve
        from submissions.fileio import check_output

        check_output(output, force, curves)
        if window < 1:
            raise UserError("--window must be at least 1 byte")
        plot_curves([read_curve(path) for path in curves], output, window)
        _say(f"wrote {output}")


@app.command()
def unpack(
    ctx: typer.Context,
    archive: Path = typer.Argument(..., help="an archive written by `pipeline pack`"),
    output: Path = typer.Option(..., "-o", "--output", help="where to write the restored file"),
    force: bool = typer.Option(False, "--force", help="replace an existing output"),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="no progress bar"),
    nproc: int = typer.Option(1, "--nproc", help="decode the archive's shards in N processes through torchrun"),
) -> None:
    """Restore an archive's file with the decoder it carries, in one process or (--nproc, torchrun) many."""
    with user_errors(), _rank_errors():
        from submissions.fileio import check_output, require_file
        from pipeline.unpack import unpack as run_unpack

        if nproc != 1:  # refuse the common mistakes once, before the processes start
            require_file(archive, "archive")
            check_output(output, force, inputs=(archive,))
            _relaunch(ctx, nproc)
        result = run_unpack(archive, output, force=force, progress=not quiet)
        if result is not None:
            _say(
                f"restored {result.output}: {result.size:,} bytes, checked by sha256; {result.shards} shard(s) "
                f"decoded by {result.processes} process(es) in {result.seconds:.1f}s"
            )


@app.command()
def sweep(
    data_file: Path = typer.Argument(..., help="the file to compress"),
    output: Path = typer.Option(Path("sweep.md"), "-o", "--output", help="markdown table to write"),
    minutes: float = typer.Option(1.0, "--minutes", help="training budget of each neural candidate"),
    streams: int = typer.Option(0, "--streams", help="coding streams of every candidate (0: automatic, as in train)"),
    device: str = typer.Option("auto", "--device", help="training device: cuda, cpu or auto"),
    backend: Optional[str] = typer.Option(None, "--backend", help="neural packing backend (torch uses CUDA when present)"),
    only: Optional[str] = typer.Option(None, "--only", help="comma-separated words; keep candidates whose name has one (e.g. context)"),
    force: bool = typer.Option(False, "--force", help="replace an existing output"),
) -> None:
    """Train and pack every candidate tokenizer/model; table of real archive sizes, smallest marked."""
    with user_errors():
        from submissions.fileio import check_output
        from pipeline.sweep import default_candidates, markdown, sweep as run_sweep, write_sweep

        check_output(output, force, inputs=(data_file,))
        candidates = default_candidates(streams, minutes)
        if only:
            words = [w.strip() for w in only.split(",") if w.strip()]
            candidates = [c for c in candidates if any(w in c.name for w in words)]
            if not candidates:
                raise UserError(f"no candidate matches --only {only!r}")
        text = markdown(data_file, run_sweep(data_file, candidates, device, backend), minutes)
        write_sweep(output, text)
        _say(text)


@app.command()
def demo(
    workdir: Path = typer.Option(Path("demo"), "--workdir", help="folder for the sample, run, archive and report"),
    force: bool = typer.Option(False, "--force", help="reuse an existing workdir, replacing its files"),
) -> None:
    """Everything on the built-in sample: data, train, pack, verify, and sizes next to xz."""
    with user_errors():
        from pipeline.demo import run_demo

        ok = run_demo(workdir, force=force)
        if not ok:
            raise typer.Exit(1)


def _names(text: Optional[str]) -> list[str]:
    return [w.strip() for w in (text or "").split(",") if w.strip()]


@app.command()
def scoreboard(
    files: Optional[list[Path]] = typer.Argument(None, help="data files to score (default: the files of the recorded results, where they are)"),
    out_dir: Path = typer.Option(Path("scoreboard"), "-o", "--out-dir", help="folder for scoreboard_FILE.md and scoreboard_FILE.png"),
    report: Optional[list[Path]] = typer.Option(None, "--report", help="verification report, or folder searched for *.verify.json (repeatable; default: runs/ and .)"),
    records: Optional[Path] = typer.Option(None, "--records", help="folder of committed result records (default: submissions/results)"),
    baselines: Optional[str] = typer.Option(None, "--baselines", help="comma-separated baselines to measure (default: all of them)"),
    skip: Optional[str] = typer.Option(None, "--skip", help="comma-separated baselines to leave out (listed as skipped), e.g. 'nncp,cmix'"),
    history: bool = typer.Option(False, "--history", help="all our verified archives of the file, not only the smallest and newest of each model kind and way of packing"),
    force: bool = typer.Option(False, "--force", help="replace existing outputs"),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="no progress bar"),
) -> None:
    """Our verified archives beside lzma/bz2/zlib/zstd/brotli and external compressors, measured now; table, markdown, PNG."""
    with user_errors():
        from rich.console import Console

        from pipeline.baselines import BASELINES
        from submissions.fileio import atomic_write_text, check_output, require_file
        from pipeline.plot import plot_board
        from pipeline.progress import console, progress_bar
        from pipeline.scoreboard import build_board, left_off_line, markdown, terminal_table
        from pipeline.verified import DEFAULT_REPORT_PLACES, RECORDS_DIR, find_reports, recorded_files

        skipped, chosen = tuple(_names(skip)), _names(baselines) if baselines is not None else None
        unknown = [n for n in (*skipped, *(chosen or [])) if n not in BASELINES]
        if unknown:
            raise UserError(f"unknown baseline {', '.join(map(repr, unknown))}; known: {', '.join(BASELINES)}")
        records_dir = records or RECORDS_DIR
        if records is not None and not records.is_dir():
            raise UserError(f"--records {records} is not a folder")
        data_files = [require_file(f, "data file") for f in files] if files else recorded_files(records_dir)
        if not data_files:
            raise UserError("give a data file (no recorded result names a file that is here)")
        outputs = [(out_dir / f"scoreboard_{f.name}.md", out_dir / f"scoreboard_{f.name}.png") for f in data_files]
        for pair in outputs:
            for output in pair:
                check_output(output, force, inputs=tuple(data_files))
        reports = find_reports(list(report) if report else list(DEFAULT_REPORT_PLACES))
        for data_file, (md_path, png_path) in zip(data_files, outputs):
            with progress_bar(f"baselines on {data_file.name}", not quiet) as bar:
                def step(done: int, total: int, name: str) -> None:
                    if bar is not None:
                        bar(done, total)

                board = build_board(data_file, reports, records_dir, chosen, skipped, progress=step, history=history)
            for refusal in board.refusals:
                console.print(f"[yellow]refused[/] {refusal.source}: {refusal.reason}", highlight=False)
            out = Console(highlight=False)  # stdout: the table is the command's output
            if not out.is_terminal:
                out = Console(highlight=False, width=170)  # piped into a file: keep rows on one line
            out.print(terminal_table(board))
            if board.left_off:
                out.print(left_off_line(board))
            atomic_write_text(md_path, markdown(board))
            plot_board(board, png_path)
            _say(f"wrote {md_path} and {png_path}")


@app.command()
def submit(
    report: Path = typer.Argument(..., help="a passing report of `verify run`"),
    data_file: Optional[Path] = typer.Option(None, "--data", help="the verified file, if it moved since"),
    run: Optional[Path] = typer.Option(None, "--run", help="the run folder the archive was packed from (adds its training time)"),
    pack_seconds: Optional[float] = typer.Option(None, "--pack-seconds", help="encode time `pipeline pack` printed"),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="record to write (default: submissions/results/FILE-MODEL-DATE.json)"),
    force: bool = typer.Option(False, "--force", help="replace an existing record"),
) -> None:
    """Turn a passing verification into a committable result record (the scoreboard's 'recorded' rows)."""
    with user_errors():
        import json

        from submissions.fileio import atomic_write_text, check_output
        from pipeline.verified import RECORDS_DIR, make_record, record_name

        record = make_record(report, data_file, run, pack_seconds)  # refuses unreadable, failed or unsandboxed reports
        target = output or RECORDS_DIR / record_name(record)
        check_output(target, force, inputs=(report,))
        atomic_write_text(target, json.dumps(record, indent=2) + "\n")
        _say(f"wrote {target}: {record['file']['name']} -> {record['archive']['total_bytes']:,} bytes ({record['bits_per_byte']:.4f} bits/byte), verified {str(record['verification']['date'])[:10]}")


@app.command()
def bench(
    data_file: Path = typer.Argument(..., help="text to slice (or repeat, labelled, when it is shorter than a size)"),
    sizes: str = typer.Option("1,2,4,8", "--sizes", help="input sizes in MB (10^6 bytes), comma-separated"),
    model: Optional[str] = typer.Option(None, "--model", help="a model kind of `pipeline train` (default: the project's default model)"),
    device: Optional[str] = typer.Option(None, "--device", help="comma-separated: cpu, cuda (default: cpu, and cuda when present)"),
    vocab: int = typer.Option(4096, "--vocab", help="tokenizer vocabulary size"),
    streams: int = typer.Option(64, "--streams", help="coding streams"),
    minutes: float = typer.Option(1.0, "--minutes", help="neural: training budget per size"),
    max_minutes: Optional[float] = typer.Option(None, "--max-minutes", help="skip the sizes the measured rate says would not fit in this budget"),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="markdown to write, plus a .json beside it (default: benchmarks/results/bench_MODEL_MACHINE_DATE.md)"),
    note: Optional[list[str]] = typer.Option(None, "--note", help="a line to keep with the results (repeatable), e.g. what else ran"),
    force: bool = typer.Option(False, "--force", help="replace existing outputs"),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="no progress bar"),
) -> None:
    """Training tokens/s, encode and decode bytes/s and peak memory for growing inputs (CPU, and CUDA when present)."""
    with user_errors():
        from rich.console import Console

        from pipeline import bench as stage
        from pipeline.config import PipelineConfig
        from submissions.fileio import check_output, require_file
        from pipeline.progress import progress_bar

        require_file(data_file, "data file")
        model = model or PipelineConfig().model.kind
        size_list = stage.parse_sizes(sizes)
        if max_minutes is not None and max_minutes <= 0:
            raise UserError("--max-minutes must be positive")
        md_path = output or stage.default_output(model)
        if md_path.suffix != ".md":
            raise UserError(f"--output {md_path} must end in .md (the JSON goes beside it)")
        for path in (md_path, md_path.with_suffix(".json")):
            check_output(path, force, inputs=(data_file,))
        with progress_bar("bench", not quiet) as bar:
            result = stage.bench(
                data_file, size_list, model, _names(device) or None, vocab, streams, minutes, max_minutes,
                progress=(lambda done, total, name: bar(done, total)) if bar is not None else None,
            )
        result.notes.extend(note or [])
        command = " ".join(["pipeline bench", str(data_file), "--sizes", sizes, "--model", model] + (["--max-minutes", f"{max_minutes:g}"] if max_minutes else []))
        json_path = stage.write_results(result, md_path, command)
        out = Console(highlight=False)
        if not out.is_terminal:
            out = Console(highlight=False, width=170)
        out.print(stage.terminal_table(result))
        for note in result.notes:
            _say(note)
        _say(f"wrote {md_path} and {json_path}")


def main() -> None:  # pragma: no cover - console entry point
    from pipeline.distributed import run_rank

    run_rank(app)


if __name__ == "__main__":  # pragma: no cover
    main()
