"""The README's "what the default run does" table, generated from `config/config.yaml`.

The README holds the table between two markers; `python -m blurbench readme` rewrites it in place
and a test checks that the committed README equals what the config gives, so the numbers a user
reads are the ones the default run uses.
"""

from __future__ import annotations

from pathlib import Path

from .config import build_grid, load_yaml
from .layout import format_value
from .results_schema import FID_MIN_N, FLOW_CONDITIONS
from .weights import LPIPS_METRIC_NET

BEGIN = "<!-- default-run table: generated from config/config.yaml by `python -m blurbench readme`; do not edit -->"
END = "<!-- end of the generated table -->"


def _values(values) -> str:
    return "{" + ", ".join(format_value(v) for v in values) + "}"


def default_run_table(config_path: str | Path) -> str:
    """Markdown table of what a config runs: datasets, methods, ablations, budget, evaluation."""
    grid = build_grid(load_yaml(config_path), check_data=False)
    cfg = grid.config
    main = cfg["experiments"]["main"]
    datasets = []
    for name in main["datasets"]:
        d = grid.datasets[name]
        counts = ", ".join(f"{k} {d['params'][k]}" for k in ("n_train", "n_test") if k in d["params"])
        datasets.append(f"`{name}` ({d['resolution']}², {d['channels']} channel{'s' * (d['channels'] > 1)}"
                        f"{'; ' + counts if counts else ''})")
    ablations = [f"{a['param']} ∈ {_values(a['values'])} for {', '.join(a['methods'])} on `{a['dataset']}`"
                 for a in grid.ablations.values()]
    train, ev, model = cfg["train"], cfg["evaluate"], cfg["model"]
    rows = [
        ("datasets", ", ".join(datasets)),
        ("methods", ", ".join(f"`{m}`" for m in main["methods"]) + f"; compared with `{main['reference']}`"),
        ("ablations and controls", "; ".join(ablations) or "none"),
        ("training", f"{len(grid.runs) - len(grid.sr) - len(grid.flows)} VAE training runs (seeds {cfg['seeds']}), "
                     "each "
                     f"{train['steps']} optimiser steps of batch {train['batch_size']}, lr {train['lr']}; "
                     f"VAE latent {model['latent_dim']}, widths {model['base_width']}→{model['max_width']}, "
                     f"σ² {model['sigma2']}, β {model['beta']}"),
        ("evaluation", f"MSE, PSNR, SSIM, LPIPS{f' ({LPIPS_METRIC_NET})' if ev['lpips'] else ' off'}, "
                       f"FID, KID and precision/recall/density/coverage of reconstructions and samples on N = "
                       f"{ev['n_fid']}{f' (FID marked biased: N < {FID_MIN_N})' if ev['n_fid'] < FID_MIN_N else ''}"
                       f"{'' if ev['fid_ablations'] else ', main-table runs only'}; reproduced and added "
                       f"high-band energy (detail_hf, added_hf) and HFER above {ev['hfer_cutoff']} × Nyquist; "
                       f"equivalent blur fitted to the transfer function (ladder σ ∈ {_values(ev['blur_ladder'])} "
                       f"px); rate; undertrained below +{format_value(ev['min_gain_db'])} dB; fidelity floor: `{main['reference']}` "
                       f"at least as accurate as the σ = {format_value(ev['floor_sigma'])} px ladder row"),
        ("comparison", f"paired differences against `{main['reference']}`: centred bootstrap ({ev['n_boot']} "
                       f"resamples; {ev['n_boot_set']} for HFER and KID) or t interval over seeds × images, FID by "
                       f"jackknife, PRDC by subsampling; verdicts Holm-adjusted within each dataset"),
    ]
    if grid.sr:
        sr = cfg["experiments"]["sr"]
        spec = grid.runs[grid.sr[0]]
        res = grid.datasets[sr["datasets"][0]]["resolution"]
        rows.append(("super-resolution", f"{len(grid.sr)} SR runs: {', '.join(f'`{m}`' for m in sr['methods'])} on "
                     f"{', '.join(f'`{d}`' for d in sr['datasets'])}, {res}² → {res // spec.model['factor']}² "
                     f"({spec.model['operator']}), {spec.train['steps']} steps, network width "
                     f"{spec.model['width']}, depth {spec.model['depth']}; compared with `{sr['reference']}`"))
    if grid.flows:
        fl = cfg["experiments"]["flows"]
        spec = grid.runs[grid.flows[0]]
        m = spec.model
        res = grid.datasets[fl["datasets"][0]]["resolution"]
        other = "; ".join(f"other dataset of `{d}`: `{o}`" for d, o in fl["other"].items())
        methods = ", ".join(f"`{x}`" for x in fl["methods"])
        n_ood = fl["n_ood_images"]
        rows.append(("conditional flows", f"{len(grid.flows)} flow runs: {methods} on "
                     f"{', '.join(f'`{d}`' for d in fl['datasets'])}, {res}² → {res // 2 ** m['levels']}² (avgpool), "
                     f"{spec.train['steps']} steps of batch {spec.train['batch_size']}, {m['n_couplings']} couplings "
                     f"per level, hidden {m['hidden']}, LR features {m['features']}; K = {fl['n_samples']} samples at "
                     f"T = {fl['temperature']:g}; artifact rates in distribution and on {len(FLOW_CONDITIONS) - 1} "
                     f"OOD condition sets ({f'the first {n_ood}' if n_ood else 'all'} test images each)"
                     f"{'; ' + other if other else ''}; compared with `{fl['reference']}`"))
    lines = ["| | |", "| --- | --- |"] + [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(lines)


def block(config_path: str | Path) -> str:
    return f"{BEGIN}\n{default_run_table(config_path)}\n{END}"


def current_block(readme: str) -> str | None:
    """The generated block as it stands in the README text, or None without markers."""
    if BEGIN not in readme or END not in readme:
        return None
    start = readme.index(BEGIN)
    return readme[start:readme.index(END, start) + len(END)]


def rewrite(readme_path: str | Path, config_path: str | Path) -> None:
    from .atomic import write_text

    text = Path(readme_path).read_text()
    old = current_block(text)
    if old is None:
        raise ValueError(f"{readme_path} has no generated block (markers {BEGIN!r} … {END!r})")
    write_text(readme_path, text.replace(old, block(config_path)))
