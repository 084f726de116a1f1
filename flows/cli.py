"""The `pairsmith` command line: run, demo, stats, select, report, corrupt, rescore, recaption, retry, config,
models."""

from __future__ import annotations

import argparse
import json
import os
import sys

EXAMPLE_QUERY = 'pl.scan_parquet("{data}/*.parquet").filter(pl.col("status") == "success").collect()'


def _quiet_prefect(command: str = "") -> None:
    # No telemetry from the ephemeral server, and no server-side noise in the terminal.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_LOGGING_SERVER_LEVEL", "WARNING")
    # Prefect's ephemeral API gets 20 s to start by default: too short for a busy machine.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    if command != "models":  # `models pull` is the one command that fetches from the hub
        os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pairsmith", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="also show library chatter: INFO logs, model loading, Beam notes",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser(
        "run",
        help="build a dataset from (url, caption) files",
        epilog="every setting, its default and what it does: pairsmith config (as a YAML file: --defaults)",
    )
    run.add_argument("config", nargs="?", help="YAML config file")
    run.add_argument("--input", help="input file, folder or glob (overrides input.path)")
    run.add_argument("--out", required=True, help="output folder (local or fsspec URL)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")

    demo = sub.add_parser("demo", help="run the whole flow on ~200 pairs served from 127.0.0.1")
    demo.add_argument(
        "--out", default="demo-out", help="output folder (replaced if it holds a previous demo)"
    )
    demo.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")

    stats = sub.add_parser(
        "stats", help="every signal on one screen: quantiles, flags, types, duplicates, corruption"
    )
    stats.add_argument("out", help="a pairsmith output folder (or a subset)")
    stats.add_argument("--where", help="only the rows of this filter (the --where grammar of select)")
    stats.add_argument("--json", action="store_true", help="print the numbers as JSON, for scripts")

    report = sub.add_parser("report", help="one offline HTML page: every signal's histogram and image grids")
    report.add_argument("out", help="a pairsmith output folder (or a subset)")
    report.add_argument("--where", help="also show what this selection keeps and removes (as in select)")
    report.add_argument("--recipe", help="also show what this recipe keeps and removes, rule by rule")
    report.add_argument("--clip-column", help="the CLIP score column a recipe's ViT-B/32 thresholds apply to")
    report.add_argument(
        "--keep-duplicates", action="store_true", help="as in select: no rule against duplicate rows"
    )
    report.add_argument("--out", dest="target", help="the HTML file (default OUT/report.html)")

    select = sub.add_parser("select", help="write the rows of a recipe and/or a polars expression")
    select.add_argument("out", nargs="?", help="a pairsmith output folder")
    select.add_argument(
        "--where",
        help="a polars-style filter, read without running code: pl.col/pl.lit/pl.when, constants, comparisons, "
        "& | ~, arithmetic and a few methods (is_null, is_in, is_between, str.contains, list.contains, ...; "
        'all in flows/where.py), e.g. \'(pl.col("status") == "success") & ~pl.col("is_duplicate")\'',
    )
    select.add_argument("--recipe", help="a named recipe: laion, datacomp-basic, clip-top-30 (see --list)")
    select.add_argument(
        "--target-corruption",
        type=float,
        metavar="R",
        help="keep the least likely mismatched pairs up to an estimated corruption ratio R (e.g. 0.05)",
    )
    select.add_argument("--clip-column", help="the CLIP score column a recipe's ViT-B/32 thresholds apply to")
    select.add_argument("--list", action="store_true", help="list the recipes and their rules")
    select.add_argument("--out", dest="target", help="folder for the subset (new or empty)")
    select.add_argument(
        "--overwrite", action="store_true", help="replace a non-empty --out folder (never the source)"
    )
    select.add_argument(
        "--keep-duplicates",
        action="store_true",
        help="keep rows marked is_duplicate (by default one row per duplicate group is kept)",
    )
    select.add_argument(
        "--export",
        choices=("parquet", "webdataset"),
        default="parquet",
        help="parquet: the rows, their tar paths absolute into the source; webdataset: new tars of the "
        "subset's images under --out/images/ (KEY.jpg, KEY.txt, KEY.json) and Parquet pointing at them",
    )
    select.add_argument(
        "--shard-size", type=int, default=10_000, help="samples per tar with --export webdataset (10,000)"
    )
    select.add_argument(
        "--caption-column", default="caption", help="the text of KEY.txt, e.g. recaption (default caption)"
    )
    select.add_argument(
        "--export-embeddings",
        choices=("npy",),
        help="also write the CLIP embeddings as clip-retrieval's img_emb/*.npy and text_emb/*.npy",
    )

    corrupt = sub.add_parser("corrupt", help="a copy with a fraction of captions corrupted (swap or rewrite)")
    corrupt.add_argument("out", help="a pairsmith output folder")
    corrupt.add_argument("--ratio", type=float, required=True, help="share of the training pairs corrupted")
    corrupt.add_argument("--mode", choices=("swap", "rewrite"), default="swap")
    corrupt.add_argument("--seed", type=int, default=0)
    corrupt.add_argument("--out", dest="target", required=True, help="folder for the corrupted copy")

    recaption = sub.add_parser(
        "recaption", help="add dense recaptions to an existing output (alone, resumable)"
    )
    recaption.add_argument("out", help="a pairsmith output folder")
    recaption.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="e.g. recaption.model=REPO_ID"
    )

    retry = sub.add_parser(
        "retry", help="download again only the rows that failed for a passing reason, then redo what follows"
    )
    retry.add_argument("out", help="a pairsmith output folder")
    retry.add_argument(
        "--kinds",
        default="timeout,deadline,connection,http_5xx,dns",
        help="error kinds to retry, comma-separated (default: all of timeout,deadline,connection,http_5xx,dns)",
    )

    rescore = sub.add_parser(
        "rescore", help="recompute the corruption columns of an output (after recaption)"
    )
    rescore.add_argument("out", help="a pairsmith output folder")

    models = sub.add_parser(
        "models", help="the models of every profile: where they come from, whether they are here; fetch them"
    )
    models_sub = models.add_subparsers(dest="models_command", required=True)
    models_list = models_sub.add_parser(
        "list", help="one line per model: here or missing, from where, kept where"
    )
    models_list.add_argument(
        "profile", nargs="?", help="only this profile's models (laion, datacomp, toy, none)"
    )
    pull = models_sub.add_parser(
        "pull",
        help="fetch what a profile (or one model) needs: LAION's files from their URLs, open_clip's from the hub",
        epilog="each downloaded file's size and sha256 go to models.lock.json in the models folder on the first "
        "download; a later download whose bytes differ is refused",
    )
    pull.add_argument(
        "target", metavar="PROFILE|NAME", help="laion, datacomp, toy, a model name or a CLIP spec"
    )
    pull.add_argument(
        "--mirror",
        metavar="BASE_URL",
        help="fetch LAION's files from BASE_URL/PATH instead of their published hosts (or PAIRSMITH_MODELS_MIRROR)",
    )
    pull.add_argument(
        "--skip-hub",
        action="store_true",
        help="leave out open_clip's weights (they need the Hugging Face Hub)",
    )
    pull.add_argument("--force", action="store_true", help="download again what is already here")

    config = sub.add_parser("config", help="every setting of a run, with its default and description")
    config.add_argument(
        "--defaults",
        action="store_true",
        help="print them as a YAML config file (every setting at its default)",
    )
    return parser


def _run(args: argparse.Namespace) -> None:
    if args.command == "run":
        from pairsmith.flows.build import build_dataset, config_for
        from pairsmith.pipelines.layout import Layout
        from pairsmith.pipelines.runner import preflight

        preflight(
            Layout(args.out), config_for(args.input, args.config, args.set)
        )  # user errors, before Prefect
        manifest = build_dataset(args.out, input_path=args.input, config_path=args.config, overrides=args.set)
        _print_done(args.out.rstrip("/"), manifest)
    elif args.command == "demo":
        from pairsmith.flows.demo import run_demo

        manifest = run_demo(args.out, extra_settings=args.set)
        _print_done(f"{args.out.rstrip('/')}/dataset", manifest)
        print(f"report:   {args.out.rstrip('/')}/dataset/report.html   (open it in a browser)")
    elif args.command == "stats":
        from pairsmith.flows import stats

        numbers = stats.collect(args.out, args.where)
        print(json.dumps(numbers, indent=1) if args.json else stats.render(numbers))
    elif args.command == "report":
        from pairsmith.flows.report import write_report

        path = write_report(
            args.out, args.where, args.recipe, args.target, args.clip_column, args.keep_duplicates
        )
        print(f"report: {path}")
    elif args.command == "select":
        _select(args)
    elif args.command == "config":
        from pairsmith.flows.settings import defaults_yaml, describe

        print(defaults_yaml() if args.defaults else describe(), end="")
    elif args.command == "corrupt":
        from pairsmith.flows.corrupt import corrupt

        manifest = corrupt(args.out, args.target, args.ratio, args.mode, args.seed)
        done = manifest["controlled_corruption"]
        print(
            f"{args.mode}: corrupted {done['corrupted_rows']} of {done['training_pairs']} pairs into {args.target}"
        )
        _print_estimate(manifest["estimated_corruption_ratio"], args.target)
    elif args.command == "retry":
        from pairsmith.flows.retry import print_summary, retry

        print_summary(args.out, retry(args.out, args.kinds))
    elif args.command == "models":
        from pairsmith.flows import models

        if args.models_command == "list":
            print(models.list_models(args.profile))
        else:
            models.pull(args.target, args.mirror, args.skip_hub, args.force)
    elif args.command == "recaption":
        from pairsmith.flows.recaption import print_summary, recaption

        print_summary(args.out, recaption(args.out, args.set))
    else:
        from pairsmith.flows.corrupt import rescore

        report = rescore(args.out)
        _print_estimate(report["estimated_corruption_ratio"] if report else None, args.out)


def _select(args: argparse.Namespace) -> None:
    if args.list:
        from pairsmith.flows.recipes import describe

        print(describe())
        return
    from pairsmith.flows.select import select
    from pairsmith.schemas.errors import SelectionError

    if args.out is None or args.target is None:
        raise SelectionError("select needs the output folder and --out SUBSET (or --list)")
    if args.where is None and args.recipe is None and args.target_corruption is None:
        raise SelectionError("select needs --where, --recipe or --target-corruption")
    manifest = select(
        args.out,
        args.where,
        args.target,
        args.recipe,
        args.target_corruption,
        args.clip_column,
        args.overwrite,
        args.keep_duplicates,
        args.export,
        args.shard_size,
        args.caption_column,
        args.export_embeddings,
    )
    print(f"selected {manifest['output_rows']} of {manifest['input_rows']} rows into {args.target}")
    print(
        f"  {'removes':>8} {'alone':>8} {'left':>8}  rule (in order; alone: from all {manifest['input_rows']} rows)"
    )
    for rule in manifest["rules"]:
        alone = "-" if rule["removed_alone"] is None else rule["removed_alone"]
        print(f"  {rule['removed']:>8} {alone:>8} {rule['left']:>8}  {rule['rule']}")
    _print_export(args.target, manifest["export"], manifest["output_rows"])
    if "corruption" in manifest:
        c = manifest["corruption"]
        print(
            f"estimated corruption ratio {c['estimated_corruption_ratio']:.4f} (target {c['target']}): the "
            f"{c['how']} {c['score_threshold']:.4f}; the {c['candidate_rows']} candidate rows: "
            f"{c['candidates_estimated_ratio']:.4f}"
        )


def _print_export(target: str, export: dict, rows: int) -> None:
    target = target.rstrip("/")
    speed = f"{rows / export['seconds']:.0f} rows/s" if export["seconds"] else "-"
    if export["format"] == "webdataset" and "tars" in export:
        print(
            f"webdataset: {export['samples']} samples in {export['tars']} tars, "
            f"{target}/images/{{000000..{max(export['tars'] - 1, 0):06d}}}.tar ({speed})"
        )
        if export["images_not_readable"]:
            print(
                f"  {export['images_not_readable']} kept rows have no readable source image: tar and member null"
            )
    else:
        print(f"parquet: tar paths are absolute, into the source folder ({speed})")
    if export.get("embeddings"):
        npy = " (and npy)" if export["embeddings_npy"] else ""
        print(f"embeddings{npy}: {', '.join(f'{target}/embeddings/{a}/' for a in export['embeddings'])}")
    if export.get("shards_already_done"):
        print(f"resumed: {export['shards_already_done']} shards were already written")


def _print_estimate(ratio: float | None, out: str) -> None:
    if ratio is None:
        print("no corruption estimate (no CLIP model or no scored pair)")
    else:
        print(
            f"estimated corruption ratio {ratio:.4f} (how, and the calibration: {out.rstrip('/')}/corruption.json)"
        )


def _print_done(out: str, manifest: dict) -> None:
    if "pipelines" in manifest:  # a dry run
        print(
            f"\ndry run on {manifest['runner']}: {len(manifest['pipelines'])} pipelines translated, none submitted"
        )
        for pipeline in manifest["pipelines"]:
            print(f"  {pipeline['pipeline']:<18} {len(pipeline['transforms']):>3} transforms")
        print(f"plan:     {out}/plan.json   (input shards: {out}/_work/input)")
        return
    counts = ", ".join(f"{k}: {v}" for k, v in manifest["rows_per_status"].items())
    print(f"\ndone: {manifest['output_rows']} rows ({counts}) in {manifest['wall_time_s']:.0f} s")
    print(f"duplicates: {manifest['duplicate_rows']} rows marked (one row of each group kept)")
    if manifest.get("estimated_corruption_ratio") is not None:
        print(f"corruption: estimated ratio {manifest['estimated_corruption_ratio']:.4f} (corruption.json)")
    print(f"output:   {out}/data/*.parquet   (manifest: {out}/manifest.json)")
    print(f"look:     pairsmith stats {out}")
    print(f"polars:   python -c 'import polars as pl; print({EXAMPLE_QUERY.format(data=out + '/data')})'")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _quiet_prefect(args.command)
    from pairsmith.flows.logs import configure

    configure(args.command, args.verbose)
    from pairsmith.schemas.errors import USER_ERRORS

    try:
        _run(args)
    except USER_ERRORS as exc:
        if args.debug:
            raise
        print(f"pairsmith: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
