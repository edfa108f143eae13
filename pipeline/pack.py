"""`pipeline pack`: code the file with the run's tokenizer and model into one archive."""

from __future__ import annotations

import dataclasses
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.config import AUTO_TABLE_BITS, sized_tables
from pipeline.distributed import gather, launched_world, local_processes, process_group, refuse_too_few_gpus, wait_for_main
from pipeline.curve import curve_path, file_curve, token_lengths, write_curve
from pipeline.progress import progress_bar
from pipeline.run_check import check_ids_restore, check_model, check_tokens
from pipeline.run_dir import load_report, load_run
from pipeline.tree_order import relabel, tree_order
from submissions.archive import archive_parts, build_archive, make_header, runtime_of, write_archive
from submissions.decoder import encoding
from submissions.decoder.container import MODEL, PAYLOAD, TOKENIZER
from submissions.decoder.mixing_model import MixConfig
from submissions.decoder.online_alone import OnlineConfig
from submissions.decoder.model_registry import build_model, model_class
from submissions.decoder.tokens import unpack_table
from submissions.errors import UserError
from submissions.fileio import check_output, claim_output, files_of
from tokenizer import load_tokenizer
from tokenizer.table import leading_bytes, pack_table
from verify.report import memory_bytes


@dataclass(frozen=True)
class PackResult:
    archive: Path
    total_bytes: int
    parts: dict
    original_size: int
    n_tokens: int
    seconds: float  # encoding time
    float_code_bits: float | None = None  # the float QAT model's cross entropy (neural runs)
    integer_code_bits: float = 0.0  # the integer model's -log2 code length (what the coder approaches)
    payload_bits: int = 0  # what the coder wrote: the above plus a few bytes per stream
    kept: str = ""  # with --smallest: the variant kept (_label)
    tried: tuple = ()  # with --smallest: (variant, archive bytes, encode seconds) of each, in the order tried
    sized: dict = dataclasses.field(default_factory=dict)  # {config field: bits} of the tables the config left to the file

    @property
    def float_integer_gap(self) -> float | None:
        """Relative excess of the integer model's code length over the float model's cross entropy."""
        if not self.float_code_bits:
            return None
        return self.integer_code_bits / self.float_code_bits - 1.0

    @property
    def bits_per_byte(self) -> float:
        return 8 * self.total_bytes / max(self.original_size, 1)


def pack(
    run: Path,
    out: Path,
    data_path: Path | None = None,
    force: bool = False,
    progress: bool = True,
    backend: str | None = None,
    device: str | None = None,
    shards: int | None = None,
    tree_order: bool | None = None,
    smallest: bool = False,
    jobs: int = 1,
) -> PackResult | None:
    """Encode the run's tokens with its model; `backend`/`device` choose where a neural model
    runs while encoding (numpy, torch on CPU or CUDA), which never changes the archive bytes.

    shards (default: the run's coder config): contiguous pieces coded independently. Launched
    by torchrun, every process codes its share of the shards (shard i goes to rank i % world)
    and rank 0 writes the archive: the bytes depend on the shard count, never on the number
    of processes. tree_order (default: the run's coder config, off) numbers tokens in tree order
    for the binary models (pipeline/tree_order.py). smallest: code the tokens the ways _variants
    lists and keep the smallest archive (one encode each), in up to `jobs` processes at once
    (forked; one process of pack only). Returns None in the processes other than rank 0."""
    run, out = Path(run), Path(out)
    config, source, proto, tokens = load_run(run)  # tokens: a memory map
    if not launched_world().is_main:
        return _pack(run, out, config, source, proto, tokens, data_path, force, progress, backend, device, shards, tree_order, smallest, jobs)
    # no output may be an input: the data (by any name), the run's files; the lock is held
    # through the encode, so a second pack to the same output is refused, not raced
    inputs = [Path(source.path), *([Path(data_path)] if data_path else []), *files_of(run)]
    check_output(curve_path(out), True, inputs)  # the loss curve beside the archive (derived: replaced freely)
    with claim_output(out, force, inputs):
        return _pack(run, out, config, source, proto, tokens, data_path, force, progress, backend, device, shards, tree_order, smallest, jobs)


def _pack(run, out, config, source, proto, tokens, data_path, force, progress, backend, device, shards, tree_order, smallest, jobs) -> PackResult | None:
    world = launched_world()
    tokenizer = load_tokenizer(proto)
    model = _model_of(run, config)  # (decoder config, weights, export record)
    _check_backend(model[0], backend, device)
    record = {}
    if world.is_main:  # every artifact from one consistent run
        data_file = source.locate(data_path)
        record = check_tokens(run, config, source)
        check_model(run, config, record["tokens_sha256"], model[2])
    ordered = config.coder.tree_order if tree_order is None else tree_order
    variants = _variants(config) if smallest else [(config, ordered)]
    ways, numbered = [], {}
    with process_group():  # joined from here: every rank codes with rank 0's tree order
        for variant, ordered in variants:
            if ordered not in numbered:  # the variants differ in the model only: one fit of the order, one table
                ids, table, applied = _coding_ids(variant, tokenizer, tokens, ordered, progress and world.is_main)
                numbered[ordered] = ids, table, applied, pack_table(table)
                if world.is_main:  # ids that give back the data, through the table the archive carries
                    check_ids_restore(ids, unpack_table(numbered[ordered][3]), source, data_file, record.get("case"))
            ids, table, applied, table_blob = numbered[ordered]
            label = _label(variant, applied) if smallest else ""
            variant_model = model if variant is config else _model_of(run, variant)
            ways.append((variant, variant_model, ids, table, table_blob, applied, record, source, backend, device, shards, label))
        tried = _encode_ways(ways, jobs, progress)
    if not world.is_main:
        return None
    best = min(tried, key=lambda encoded: len(encoded.blob))  # the first of equals: the run's own config
    total = write_archive(out, best.header, best.sections, force, blob=best.blob)
    # the float/integer comparison holds for a neural model alone (a mixing model codes otherwise)
    float_bits = load_report(run).get("float_code_bits") if config.model.kind == "neural" else None
    points = file_curve(best.shards_coded, best.tokens, token_lengths(best.table, record.get("case")))
    parts = archive_parts(out)
    write_curve(out, out.name, Path(source.path).name, source.size, parts, points)
    each = tuple((encoded.label, len(encoded.blob), encoded.seconds) for encoded in tried) if smallest else ()
    return PackResult(out, total, parts, source.size, int(len(best.tokens)), best.seconds, float_bits, best.ideal_bits, 8 * len(best.sections[PAYLOAD]), best.label, each, best.sized)


_WAYS = None  # the _encode arguments of each way, for forked workers: the ids are not copied per job


def _encode_ways(ways: list[tuple], jobs: int, progress: bool) -> list["Encoded"]:
    """_encode(*way) for each way, in order: one after another, or (jobs > 1, one process of
    pack, where the OS forks) in up to `jobs` forked processes, each coding one way at a time
    (as much memory as one encode each; one progress bar for them all)."""
    import multiprocessing

    global _WAYS
    if jobs <= 1 or len(ways) < 2 or launched_world().distributed or "fork" not in multiprocessing.get_all_start_methods():
        return [_encode(*way, progress=progress) for way in ways]
    _WAYS = ways
    try:
        with progress_bar(f"encoding {len(ways)} ways in {min(jobs, len(ways))} processes", progress) as update:
            with multiprocessing.get_context("fork").Pool(min(jobs, len(ways))) as pool:
                done = {}
                for i, encoded in pool.imap_unordered(_encode_way, range(len(ways))):
                    done[i] = dataclasses.replace(encoded, tokens=ways[i][2], table=ways[i][3])
                    if update:
                        update(len(done), len(ways))
    finally:
        _WAYS = None
    return [done[i] for i in range(len(ways))]


def _encode_way(i: int) -> tuple[int, "Encoded"]:
    """In a forked worker: way i, without the ids and table the parent holds already."""
    return i, dataclasses.replace(_encode(*_WAYS[i], progress=False), tokens=None, table=None)


@dataclass(frozen=True)
class Encoded:
    """One way of coding the run's tokens (rank 0 holds it; the other ranks None fields): the
    archive in memory, and what the reports read from it."""

    label: str
    header: dict | None
    sections: dict | None
    blob: bytes
    tokens: np.ndarray
    table: list
    shards_coded: list
    ideal_bits: float
    seconds: float
    sized: dict  # see PackResult


def _encode(config, model, tokens, table, table_blob, ordered, record, source, backend, device, shards, label, progress=True) -> Encoded:
    """The archive of the tokens (ids as `table` numbers them, table_blob packs it) under the
    config's model (_model_of's decoder config and weights): every process codes its share of
    the shards, rank 0 assembles. Inside the joined process group."""
    world = launched_world()
    tokenizer_size = len(table)
    model_header, weights, _ = model
    n_shards = shards or config.coder.shards
    if n_shards < 1:
        raise UserError("the number of shards must be at least 1")
    prob_bits = config.coder.prob_bits
    runtime_choice = {k: v for k, v in (("backend", backend), ("device", _rank_device(device, world))) if v}
    sizes = encoding.shard_sizes(len(tokens), n_shards)
    sized = sized_tables(model_header, max(sizes, default=0))  # each shard's model has the tables of the largest
    model_header = dict(model_header, **sized)
    check_table_memory(model_header)
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)

    def new_model(n_streams: int, shard: np.ndarray, report):
        """The shard's model, and the progress report for its coding."""
        header = dict(model_header, **runtime_choice)
        if backend != "torch" or not _has_network(model_header):
            return build_model(header, tokenizer_size, n_streams, prob_bits, weights, token_bytes=table), report
        from pipeline.online_torch import encoding_model

        stages = _staged(report, TORCH_STAGES[model_header["kind"]])
        model = encoding_model(header, tokenizer_size, n_streams, prob_bits, weights, table, shard, runtime_choice.get("device", "cpu"), stages)
        return model, stages and (lambda done, total: stages("coding", done, total))

    binary = getattr(model_class(model_header["kind"]), "binary", False)
    block = encoding.block_steps(max(map(config.streams_for, sizes), default=1), encoding.symbols_per_token(binary, tokenizer_size))
    started = time.perf_counter()
    mine = list(range(world.rank, len(sizes), world.size))
    coded = {}
    with progress_bar(f"encoding{label and f' ({label})'}", progress and world.is_main) as update:
        for i in mine:
            n_streams = encoding.effective_streams(sizes[i], config.streams_for(sizes[i]))
            report = None if update is None else _shard_progress(update, i, mine)
            curve = []
            shard = tokens[starts[i] : starts[i + 1]]
            shard_model, report = new_model(n_streams, shard, report)
            payload, ideal_bits = encoding.encode_with_cost(shard_model, shard, n_streams, prob_bits, report, block, curve)
            coded[i] = (payload, ideal_bits, n_streams, curve)
        everyone = gather(coded)
    seconds = time.perf_counter() - started
    if not world.is_main:
        return Encoded(label, None, None, b"", tokens, table, [], 0.0, seconds, sized)
    coded = {i: result for part in everyone for i, result in part.items()}
    payload = b"".join(coded[i][0] for i in range(len(sizes)))
    made_with = config.to_dict()
    made_with["coder"]["tree_order"] = ordered  # what was done, whatever the run's config said
    header = make_header(
        made_with,
        model_header,
        original={"size": source.size, "sha256": source.sha256},
        coding={
            "prob_bits": prob_bits,
            "block_steps": block,
            "shards": [{"tokens": sizes[i], "streams": coded[i][2], "bytes": len(coded[i][0])} for i in range(len(sizes))],
        },
        runtime=runtime_of(model_header),
        packed_with=_versions(),
        case=record.get("case"),
    )
    sections = {TOKENIZER: table_blob, PAYLOAD: payload}
    if weights:
        sections[MODEL] = weights
    shards_coded = [(int(starts[i]), sizes[i], coded[i][2], coded[i][3]) for i in range(len(sizes))]
    ideal_bits = sum(result[1] for result in coded.values())
    return Encoded(label, header, sections, build_archive(header, sections), tokens, table, shards_coded, ideal_bits, seconds, sized)


def _variants(config) -> list[tuple]:
    """--smallest: (config, tree order?) pairs to try: the run's model and, for the mixing model,
    the same without its online network (whose code, ~430 B, can outweigh what it saves on a
    file under a few MB); each in the tokenizer's and in the tree's order of token ids (binary
    models without a trained neural input)."""
    configs = [config]
    if config.model.kind == "mix" and config.model.online_hidden > 0:
        configs.append(dataclasses.replace(config, model=dataclasses.replace(config.model, online_hidden=0)))
    binary = getattr(model_class(config.model.kind), "binary", False)
    orders = [False, True] if binary and config.neural_model() is None else [config.coder.tree_order]
    return [(variant, ordered) for variant in configs for ordered in orders]


def _label(config, ordered: bool) -> str:
    network = "no online network, " if config.model.kind == "mix" and config.model.online_hidden == 0 else ""
    return f"{network}{'tree' if ordered else 'tokenizer'} order"


def _coding_ids(config, tokenizer, tokens, ordered: bool, progress: bool = False) -> tuple[np.ndarray, list[bytes], bool]:
    """(tokens, id -> bytes table, in tree order?) as the archive numbers them: if ordered, in
    tree order for the binary models (pipeline/tree_order.py), unless a neural model trained on
    the tokenizer's ids is in it; else the tokenizer's own. Inside the joined process group."""
    binary = getattr(model_class(config.model.kind), "binary", False)
    if not (ordered and binary and config.neural_model() is None):
        return tokens, tokenizer.table, False
    order = None
    if launched_world().is_main:
        with progress_bar("tree order (levels)", progress) as update:
            order = tree_order(tokens, tokenizer.vocab_size, pinned=leading_bytes(tokenizer.table), report=update)
    order = wait_for_main(order)  # the archive's table is rank 0's: every rank codes with its order (a float fit may differ by machine)
    return *relabel(tokens, tokenizer.table, order), True


def _versions() -> dict:
    """The libraries the encoder computed with (numba where it is installed)."""
    versions = {"python": platform.python_version(), "numpy": np.__version__}
    try:
        import numba

        versions["numba"] = numba.__version__
    except ImportError:
        pass
    return versions


def _rank_device(device: str | None, world) -> str | None:
    """With several processes on a node, each codes on its own GPU."""
    if device == "cuda" and world.distributed:
        refuse_too_few_gpus(local_processes(), device)  # every rank alike, before any joins
        return f"cuda:{world.local_rank}"
    return device


def check_table_memory(model_config: dict, physical: int | None = None) -> None:
    """Refuse, before coding, a count or direct table larger than 80% of this machine's memory
    (physical: bytes, default this machine's): an encode that runs out of memory is killed
    minutes in, and a smaller table in the run's config.json would have done."""
    physical = memory_bytes() if physical is None else physical
    need = sum(4 << model_config[field] for field in AUTO_TABLE_BITS if model_config.get(field))  # 4 bytes an entry
    if physical and need > 0.8 * physical:
        largest = max((field for field in AUTO_TABLE_BITS if model_config.get(field)), key=model_config.get)
        raise UserError(f"the model's tables need {need >> 20:,} MiB, more than this machine's {physical >> 20:,} MiB of memory allows: set a smaller {largest} in the run's config.json")


TORCH_STAGES = {  # --backend torch: each pass's share of a shard's time (enwik6, CPU), by model kind
    "mix": {"hashes": 1, "network": 5, "coding": 1},
    "online": {"hashes": 1, "coding": 7},  # the coding pass takes turns with the network token by token (enwik6: 24 s, then 164 s)
}


def _has_network(model_config: dict) -> bool:
    """Whether the model is a mixing or online model with an online network (which --backend torch runs)."""
    defaults = {"mix": MixConfig, "online": OnlineConfig}.get(model_config["kind"])
    return defaults is not None and model_config.get("online_hidden", defaults.online_hidden) > 0


def _check_backend(model_config: dict, backend: str | None, device: str | None = None) -> None:
    """--backend torch runs a neural model or input, and the mixing model's online network, on
    --device cpu or cuda (one that torch has here)."""
    if device is not None and device != "cpu" and device.split(":")[0] != "cuda":
        raise UserError(f"--device {device}: use cpu or cuda")
    if device is not None and device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise UserError(f"--device {device}: torch {torch.__version__} sees no CUDA GPU here; use --device cpu")
    if backend != "torch":
        return
    if model_config["kind"] in ("mix", "online") and not _has_network(model_config) and not model_config.get("neural"):
        raise UserError(f"--backend torch: this {model_config['kind']} model has no online network (online_hidden 0) and no neural input: nothing of it runs in torch")


def _staged(report, shares: dict):
    """report(done, total) over a shard, as report(stage, done, total) for stages taking these shares of it."""
    if report is None:
        return None
    before = dict(zip(shares, np.cumsum([0, *shares.values()])))
    whole = sum(shares.values())
    return lambda stage, done, total: report(int(1000 * (before[stage] + shares[stage] * done / max(total, 1)) / whole), 1000)


def _shard_progress(update, shard: int, mine: list[int]):
    """A shard's steps as a share of this process's shards (the bar counts permille)."""
    position = mine.index(shard)
    return lambda done, total: update(int(1000 * (position + done / max(total, 1)) / len(mine)), 1000)


def _model_of(run: Path, config) -> tuple[dict, bytes, dict | None]:
    """(model config as the decoder reads it, weights blob or b"", the weights' export record)."""
    if config.neural_model() is None:
        return config.to_dict()["model"], b"", None
    from pipeline.neural import load_integer_model

    exported = load_integer_model(run)
    if exported is None:
        raise UserError(f"{run} has no exported neural model (run `pipeline train` to the end, or --resume it)")
    neural_header, weights, record = exported
    if config.model.kind == "neural":
        return neural_header, weights, record
    # the mixing model carries the neural model's decoder config
    return dict(config.to_dict()["model"], neural=neural_header), weights, record
