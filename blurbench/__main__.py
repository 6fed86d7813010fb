"""Command line of the harness: one subcommand per workflow rule (`python -m blurbench --help`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import layout
from .errors import ConfigError, DataError, TrainingDiverged, WeightsUnavailable


def _spec(text: str):
    from .config import RunSpec

    return RunSpec.from_json(text)


def _eval_spec(text: str):
    from .config import EvalSpec

    return EvalSpec.from_json(text)


def cmd_validate(a) -> None:
    from .config import build_grid, load_yaml

    grid = build_grid(load_yaml(a.config), check_data=not a.no_data_check)
    print(f"config OK: {len(grid.datasets)} datasets, {len(grid.methods)} methods, {len(grid.runs)} runs")


def cmd_prepare(a) -> None:
    from .data import prepare

    d = json.loads(a.spec)
    meta = prepare(d["plugin"], d["params"], d["resolution"], a.out)
    print(f"prepared {a.out}: {meta['counts']} in {meta['seconds']}s")


def cmd_train(a) -> None:
    from .train import train

    train(_spec(a.spec), a.data, a.out, a.checkpoint, threads=a.threads, device=a.device,
          log=lambda m: print(m, flush=True))


def cmd_fid_stats(a) -> None:
    from .fid_reference import write_reference_stats

    write_reference_stats(a.data, a.n, a.out, batch_size=a.batch_size, device=a.device, threads=a.threads)


def cmd_evaluate(a) -> None:
    from .evaluate import evaluate

    rows = evaluate(_eval_spec(a.spec), a.model, a.data, a.out, fid_stats=a.fid_stats,
                    train_log=a.train_log, threads=a.threads, device=a.device, other_data=a.other_data)
    _print_rows(rows)


def _print_rows(rows) -> None:
    for r in rows:
        print(f"{r['variant']:>16} {r['metric']:>10} {r['value'] or 'n/a (' + r['reason'] + ')'}")


def cmd_baselines(a) -> None:
    from .baselines import compute

    _print_rows(compute(json.loads(a.spec), a.data, a.out, fid_stats=a.fid_stats, threads=a.threads,
                        device=a.device))


def cmd_aggregate(a) -> None:
    from .aggregate import aggregate

    df = aggregate(a.inputs, a.out)
    print(f"wrote {a.out}: {len(df)} rows")


def cmd_convergence(a) -> None:
    from .convergence import write_convergence

    for r in write_convergence(a.pairs, a.factor, a.threshold_db, a.out):
        print(f"{r['run_id']:>32} {r['metric']} {r['value']} {r['note']}")


def cmd_budget(a) -> None:
    from .budget import write_budget

    for path in write_budget(json.loads(a.files), a.reference, json.loads(a.steps), Path(a.out_csv),
                             Path(a.figures), n_boot=a.n_boot, n_boot_set=a.n_boot_set):
        print(f"wrote {path}")


def cmd_tables(a) -> None:
    from .tables import load_metrics, write_adequacy, write_tables
    from .tables.summaries import tasks_over_bicubic

    exp = json.loads(a.experiments)
    df = load_metrics(Path(a.metrics))
    threshold = exp.get("convergence", {}).get("threshold_db")
    for path in write_tables(df, Path(a.out), ablations=exp.get("ablations", {}),
                             main=exp.get("main"), min_gain_db=a.min_gain_db, threshold_db=threshold,
                             sr=exp.get("sr"), flows=exp.get("flows")):
        print(f"wrote {path}")
    bad, below, unconverged = write_adequacy(df, Path(a.adequacy), a.min_gain_db, a.floor_sigma,
                                             exp.get("main", {}).get("reference"), threshold, tasks_over_bicubic(exp))
    print(f"undertrained: {', '.join(bad) if bad else 'none'}")
    print("below the fidelity floor: " + ("; ".join(below) if below else "none"))
    print(f"not converged: {', '.join(unconverged) if unconverged else 'none' if threshold else 'not checked'}")


def cmd_comparison(a) -> None:
    from .tables import write_comparison

    for path in write_comparison(json.loads(a.files), json.loads(a.main), Path(a.out), n_boot=a.n_boot,
                                 n_boot_set=a.n_boot_set, name=a.name):
        print(f"wrote {path}")


def cmd_figures(a) -> None:
    from .figures import write_figures

    exp = json.loads(a.experiments)
    for path in write_figures(json.loads(a.files), Path(a.metrics), exp.get("ablations", {}), Path(a.out),
                              seed=a.seed):
        print(f"wrote {path}")


def cmd_figures_sr(a) -> None:
    from .figures import write_sr_figures

    for path in write_sr_figures(json.loads(a.files), Path(a.out)):
        print(f"wrote {path}")


def cmd_figures_flows(a) -> None:
    from .flows.figure import write_flows_figures

    for path in write_flows_figures(json.loads(a.files), Path(a.out)):
        print(f"wrote {path}")


def cmd_timing(a) -> None:
    from .timing import write

    write(a.inputs, a.root, a.out)
    print(f"wrote {a.out}")


def cmd_readme(a) -> None:
    from .readme import rewrite

    rewrite(a.readme, a.config)
    print(f"rewrote the default-run table of {a.readme} from {a.config}")


def cmd_toys(a) -> None:
    from .toys import write_toys

    out = json.loads(a.out)
    write_toys(out, seed=a.seed, threads=a.threads)
    print("wrote " + ", ".join(out.values()))


def cmd_study_config(a) -> None:
    from .study_config import STUDIES, write

    for name in STUDIES:
        out = Path(a.out_dir) / f"{name}.yaml"
        write(a.default, out, name)
        print(f"wrote {out} from {a.default} and study '{name}' in blurbench/study_config.py")


def cmd_fetch_weights(a) -> None:
    from . import weights
    from .metrics import fid_onnx

    for name, info in weights.fetch(a.names).items():
        print(f"{name}: {info}")
    # the FID export is cached beside the weights: made here, a read-only cache on a CPU node serves it
    if "fid_inception" in a.names and fid_onnx.available():
        print(f"fid_inception ONNX export: {fid_onnx.exported()}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m blurbench", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("validate", help="validate a config file and count its runs")
    s.add_argument("--config", required=True)
    s.add_argument("--no-data-check", action="store_true", help="skip checks of dataset roots")
    s.set_defaults(func=cmd_validate)

    s = sub.add_parser("prepare", help="build a dataset's train/test arrays")
    s.add_argument("--spec", required=True, help="JSON: plugin, params, resolution")
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_prepare)

    s = sub.add_parser("train", help="train one run (resumes from its checkpoint)")
    s.add_argument("--spec", required=True, help="the run's JSON spec (from the workflow's grid)")
    s.add_argument("--data", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--threads", type=int, required=True, help="torch threads (the job's Snakemake threads)")
    s.add_argument("--device", required=True, help="auto, cpu or cuda (config key device)")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("fid-stats", help="FID reference statistics of a prepared split")
    s.add_argument("--data", required=True)
    s.add_argument("--n", type=int, required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--batch-size", type=int, required=True, help="images per Inception batch (evaluate.batch_size)")
    s.add_argument("--device", required=True, help="auto, cpu or cuda (config key device)")
    s.add_argument("--threads", type=int, required=True, help="torch threads (the job's Snakemake threads)")
    s.set_defaults(func=cmd_fid_stats)

    s = sub.add_parser("evaluate", help="evaluate one trained run")
    s.add_argument("--spec", required=True, help="the run's evaluation JSON spec (from the workflow's grid)")
    s.add_argument("--model", required=True)
    s.add_argument("--data", required=True)
    s.add_argument("--fid-stats")
    s.add_argument("--train-log", help=f"the run's {layout.TRAIN_LOG} (its precision gain and monitor PSNR); "
                                      "a budget state carries its own log rows")
    s.add_argument("--out", required=True)
    s.add_argument("--threads", type=int, required=True, help="torch threads (the job's Snakemake threads)")
    s.add_argument("--device", required=True, help="auto, cpu or cuda (config key device)")
    s.add_argument("--other-data", help="a flows run's other dataset (experiments.flows.other): its prepared "
                                        "data folder, whose test split gives the other_dataset condition")
    s.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("baselines", help="trivial baselines and the blur ladder of a dataset's test split")
    s.add_argument("--spec", required=True, help="JSON: dataset, resolution, channels, blur_ladder, evaluate keys")
    s.add_argument("--data", required=True)
    s.add_argument("--fid-stats")
    s.add_argument("--out", required=True)
    s.add_argument("--threads", type=int, required=True, help="torch threads (the job's Snakemake threads)")
    s.add_argument("--device", required=True, help="auto, cpu or cuda (config key device)")
    s.set_defaults(func=cmd_baselines)

    s = sub.add_parser("aggregate", help="concatenate per-run metrics into one tidy CSV")
    s.add_argument("--out", required=True)
    s.add_argument("inputs", nargs="*")
    s.set_defaults(func=cmd_aggregate)

    s = sub.add_parser("tables", help=f"the paper's tables from {layout.METRICS}")
    s.add_argument("--metrics", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--adequacy", required=True, help="where to write each run's margin over the trivial baselines")
    s.add_argument("--experiments", required=True, help="JSON: the config's experiments section")
    s.add_argument("--min-gain-db", type=float, required=True, help="adequacy margin over trivial baselines (dB)")
    s.add_argument("--floor-sigma", type=float, required=True, help="fidelity floor: the blur-ladder σ (px) whose "
                                                                     "PSNR the reference model must reach")
    s.set_defaults(func=cmd_tables)

    s = sub.add_parser("comparison", help="paired differences against the reference method, with CIs")
    s.add_argument("--files", required=True, help="JSON: dataset -> runs (method -> seed -> per_image, "
                                                  "features), fid_stats, baselines (the rule's inputs)")
    s.add_argument("--main", required=True, help="JSON: datasets, methods, reference")
    s.add_argument("--out", required=True)
    s.add_argument("--n-boot", type=int, required=True, help="resamples of per-image metrics")
    s.add_argument("--n-boot-set", type=int, required=True, help="resamples of set metrics (FID, HFER, ...)")
    s.add_argument("--name", default="comparison", help="comparison (the VAE task), comparison_sr or "
                                                        "comparison_flows (artifact rates per condition set)")
    s.set_defaults(func=cmd_comparison)

    s = sub.add_parser("convergence", help="each main run's monitor-PSNR gain when trained for longer")
    s.add_argument("--pairs", required=True, help="JSON: list of {spec, log, longer_log} (the rule's inputs)")
    s.add_argument("--factor", type=int, required=True, help="experiments.convergence.factor")
    s.add_argument("--threshold-db", type=float, required=True, help="experiments.convergence.threshold_db")
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_convergence)

    s = sub.add_parser("budget", help="the paired comparison at every budget fraction: table and figures")
    s.add_argument("--files", required=True, help="JSON: fraction -> the comparison's files at that fraction")
    s.add_argument("--reference", required=True)
    s.add_argument("--steps", required=True, help="JSON: dataset -> the full runs' steps")
    s.add_argument("--out-csv", required=True)
    s.add_argument("--figures", required=True, help="the figures folder")
    s.add_argument("--n-boot", type=int, required=True, help="resamples of per-image metrics")
    s.add_argument("--n-boot-set", type=int, required=True, help="resamples of set metrics")
    s.set_defaults(func=cmd_budget)

    s = sub.add_parser("figures", help=f"the paper's figures from {layout.METRICS} and per-run artefacts")
    s.add_argument("--files", required=True, help="JSON: dataset -> method -> examples, spectra, train_log "
                                                  "(and probe) paths of one seed (the rule's inputs)")
    s.add_argument("--metrics", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--experiments", required=True)
    s.add_argument("--seed", type=int, required=True, help="the seed of those files (named in titles)")
    s.set_defaults(func=cmd_figures)

    s = sub.add_parser("figures-sr", help="the super-resolution qualitative figure of each SR dataset")
    s.add_argument("--files", required=True,
                   help=f"JSON: dataset -> SR method -> {layout.EXAMPLES} path (the rule's inputs)")
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_figures_sr)

    s = sub.add_parser("figures-flows", help="the flows figure of each flows dataset: samples per condition set")
    s.add_argument("--files", required=True,
                   help=f"JSON: dataset -> flow method -> {layout.FLOWS} path (the rule's inputs)")
    s.add_argument("--out", required=True)
    s.set_defaults(func=cmd_figures_flows)

    s = sub.add_parser("timing", help="CPU and wall seconds per rule and job from benchmark files")
    s.add_argument("--root", required=True, help="the benchmarks folder")
    s.add_argument("--out", required=True)
    s.add_argument("inputs", nargs="*")
    s.set_defaults(func=cmd_timing)

    s = sub.add_parser("readme", help="regenerate the README's default-run table from the config")
    s.add_argument("--readme", default="README.md")
    s.add_argument("--config", default="config/config.yaml")
    s.set_defaults(func=cmd_readme)

    s = sub.add_parser("toys", help="the super-resolution papers' 2-D toys: figures and tables")
    s.add_argument("--out", required=True, help="JSON: layout.TOY_FILES key -> path")
    s.add_argument("--seed", type=int, required=True)
    s.add_argument("--threads", type=int, required=True)
    s.set_defaults(func=cmd_toys)

    s = sub.add_parser("study-config", help="regenerate config/study.yaml, sr.yaml and flows.yaml: the default plus "
                                             "each study's changes")
    s.add_argument("--default", default="config/config.yaml")
    s.add_argument("--out-dir", default="config")
    s.set_defaults(func=cmd_study_config)

    s = sub.add_parser("fetch-weights", help="download pretrained weights into the torch hub cache")
    s.add_argument("names", nargs="+")
    s.set_defaults(func=cmd_fetch_weights)

    a = p.parse_args(argv)
    try:
        a.func(a)
    except (ConfigError, DataError, TrainingDiverged, WeightsUnavailable) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
