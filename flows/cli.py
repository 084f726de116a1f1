"""The `pairsmith` command line: run, demo, stats, select."""

from __future__ import annotations

import argparse
import os
import sys

EXAMPLE_QUERY = 'pl.scan_parquet("{data}/*.parquet").filter(pl.col("status") == "success").collect()'


def _quiet_prefect() -> None:
    # No telemetry from the ephemeral server, and no server-side noise in the terminal.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_LOGGING_SERVER_LEVEL", "WARNING")
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pairsmith", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="build a dataset from (url, caption) files")
    run.add_argument("config", nargs="?", help="YAML config file")
    run.add_argument("--input", help="input file, folder or glob (overrides input.path)")
    run.add_argument("--out", required=True, help="output folder (local or fsspec URL)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")

    demo = sub.add_parser("demo", help="run the whole flow on ~200 pairs served from 127.0.0.1")
    demo.add_argument(
        "--out", default="demo-out", help="output folder (replaced if it holds a previous demo)"
    )
    demo.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")

    stats = sub.add_parser("stats", help="rows per status, flag rates, histograms")
    stats.add_argument("out", help="a pairsmith output folder")

    select = sub.add_parser("select", help="write the rows matching a polars expression")
    select.add_argument("out", help="a pairsmith output folder")
    select.add_argument("--where", required=True, help='e.g. \'pl.col("status") == "success"\'')
    select.add_argument("--out", dest="target", required=True, help="folder for the subset")
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
    elif args.command == "stats":
        from pairsmith.flows.stats import render

        print(render(args.out))
    else:
        from pairsmith.flows.select import select

        manifest = select(args.out, args.where, args.target)
        print(f"selected {manifest['output_rows']} of {manifest['input_rows']} rows into {args.target}")


def _print_done(out: str, manifest: dict) -> None:
    counts = ", ".join(f"{k}: {v}" for k, v in manifest["rows_per_status"].items())
    print(f"\ndone: {manifest['output_rows']} rows ({counts}) in {manifest['wall_time_s']:.0f} s")
    print(f"duplicates: {manifest['duplicate_rows']} rows marked (one row of each group kept)")
    print(f"output:   {out}/data/*.parquet   (manifest: {out}/manifest.json)")
    print(f"look:     pairsmith stats {out}")
    print(f"polars:   python -c 'import polars as pl; print({EXAMPLE_QUERY.format(data=out + '/data')})'")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _quiet_prefect()
    from pairsmith.flows.errors import USER_ERRORS

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
