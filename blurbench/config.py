"""Validate the workflow config and expand it into the run grid (one place, used by every rule).

A run is (dataset, variant, seed); a variant is a method with at most one ablation override, named
`<method>__<tag><value>` with one canonical spelling of the value (`eps0.25`, `ks7`). An ablation
point equal to the method's configured value is the main run itself, not a second copy of it.
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import yaml

from . import plugins
from .errors import ConfigError, DataError

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "workflow" / "schemas" / "config.schema.yaml"

DEFAULTS = {
    "device": "auto",
    "threads": 2,
    "gpu": 0,
    "model": {"latent_dim": 32, "base_width": 32, "max_width": 256, "sigma2": 0.01, "beta": 1.0},
    "train": {"epochs": 10, "batch_size": 64, "lr": 1e-3, "n_probe": 4},
    "evaluate": {"n_fid": 512, "fid": True, "fid_ablations": True, "lpips": True, "hfer_cutoff": 0.5,
                 "n_examples": 8, "batch_size": 64},
}


def format_value(value) -> str:
    """The one spelling of a number in a path: 0.5 -> '0.5', 1.0 -> '1', 7 -> '7', 1e-4 -> '0.0001'."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"ablation value {value!r} is not a number")
    if float(value).is_integer():
        return str(int(value))
    return np.format_float_positional(float(value), trim="-")


def merge(base: dict, override: dict, where: str) -> dict:
    """Deep-merge `override` into a copy of `base`; a key that `base` lacks is a config error."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if key not in out:
            raise ConfigError(f"unknown config key '{where}.{key}'; expected one of: "
                              f"{', '.join(sorted(out)) or '(none)'}")
        if isinstance(out[key], dict) and isinstance(value, dict):
            out[key] = merge(out[key], value, f"{where}.{key}")
        else:
            out[key] = value
    return out


def get_dotted(params: dict, dotted: str, where: str):
    node = params
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ConfigError(f"'{where}': parameter '{dotted}' does not exist in the method's params")
        node = node[part]
    return node


def set_dotted(params: dict, dotted: str, value) -> dict:
    out = copy.deepcopy(params)
    node = out
    *parents, last = dotted.split(".")
    for part in parents:
        node = node[part]
    node[last] = type(node[last])(value) if isinstance(node[last], (int, float)) and not isinstance(node[last], bool) else value
    return out


@dataclass
class RunSpec:
    """Everything one training + evaluation job needs; also written into each metric row."""

    run_id: str
    dataset: str
    dataset_plugin: str
    resolution: int
    channels: int
    method: str
    method_plugin: str
    variant: str
    seed: int
    params: dict
    model: dict
    train: dict
    evaluate: dict
    device: str
    swept: dict = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "RunSpec":
        return cls(**json.loads(text))


@dataclass
class Grid:
    config: dict
    datasets: dict  # name -> {"plugin", "resolution", "params", "channels"}
    methods: dict  # name -> {"plugin", "params"}
    runs: dict  # run_id -> RunSpec
    main: list  # run ids of the main table
    ablations: dict  # ablation name -> {"dataset", "methods", "param", "values", "runs": {(method, value): [run ids]}}


def load_schema() -> dict:
    with open(SCHEMA_PATH) as f:
        return yaml.safe_load(f)


def _schema_check(config: dict) -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(load_schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        key = ".".join(str(p) for p in e.absolute_path) or "(top level)"
        if e.validator == "additionalProperties":
            key = key if key != "(top level)" else "top level"
            raise ConfigError(f"config key under '{key}': {e.message}")
        raise ConfigError(f"config key '{key}': {e.message}")


def _prefixed(where: str, message: str) -> str:
    """Complete a plugin's key path ('params.root ...' -> 'datasets.hcp.params.root ...')."""
    if message.startswith("params.") and where.startswith("datasets"):
        return f"{where}.{message}"
    if message.startswith("config key"):
        return message
    return f"{where}: {message}"


def _dataset_entry(name: str, entry: dict, check_data: bool) -> dict:
    plugin_name = entry.get("plugin", name)
    try:
        module = plugins.load_dataset(plugin_name)
    except ConfigError as e:
        raise ConfigError(f"datasets.{name}.plugin: {e}") from None
    params = merge(module.PARAMS, entry.get("params", {}), f"datasets.{name}.params")
    resolution = entry["resolution"]
    if resolution not in module.RESOLUTIONS:
        raise ConfigError(f"config key 'datasets.{name}.resolution': {resolution} is not supported by "
                          f"dataset '{plugin_name}'; supported: {', '.join(map(str, module.RESOLUTIONS))}")
    if check_data:
        try:
            module.validate(params, resolution)
        except ConfigError as e:
            raise ConfigError(_prefixed(f"datasets.{name}", str(e))) from None
        except DataError as e:
            raise DataError(f"datasets.{name}: {e}") from None
    return {"plugin": plugin_name, "resolution": resolution, "params": params,
            "channels": module.channels(params)}


def _method_entry(name: str, entry: dict) -> dict:
    plugin_name = entry.get("plugin", name)
    try:
        module = plugins.load_method(plugin_name)
    except ConfigError as e:
        raise ConfigError(f"methods.{name}.plugin: {e}") from None
    params = merge(module.PARAMS, entry.get("params", {}), f"methods.{name}.params")
    try:
        module.validate(params)
    except ConfigError as e:
        raise ConfigError(_prefixed(f"methods.{name}.params", str(e))) from None
    return {"plugin": plugin_name, "params": params}


def _validate_method_params(method_name: str, plugin_name: str, params: dict, where: str) -> None:
    try:
        plugins.load_method(plugin_name).validate(params)
    except ConfigError as e:
        raise ConfigError(f"{where} (method '{method_name}'): {e}") from None


def build_grid(config: dict, check_data: bool = True) -> Grid:
    """Validate `config` and expand it into runs. Raises ConfigError / DataError with one clear line."""
    _schema_check(config)
    cfg = merge(DEFAULTS, {k: v for k, v in config.items() if k in DEFAULTS}, "config")
    cfg.update({k: v for k, v in config.items() if k not in DEFAULTS})

    datasets = {n: _dataset_entry(n, e, check_data) for n, e in cfg["datasets"].items()}
    methods = {n: _method_entry(n, e) for n, e in cfg["methods"].items()}

    def check_names(names, known, key):
        for n in names:
            if n not in known:
                raise ConfigError(f"config key '{key}': unknown name '{n}'; defined: {', '.join(sorted(known))}")

    main_cfg = cfg["experiments"]["main"]
    check_names(main_cfg["datasets"], datasets, "experiments.main.datasets")
    check_names(main_cfg["methods"], methods, "experiments.main.methods")

    runs: dict[str, RunSpec] = {}
    swept_params = sorted({a["param"] for a in cfg["experiments"].get("ablations", {}).values()})

    def add_run(dataset: str, method: str, variant: str, params: dict, seed: int,
                ablation_only: bool = False) -> str:
        d, m = datasets[dataset], methods[method]
        ds_cfg = cfg["datasets"][dataset]
        model = merge(cfg["model"], ds_cfg.get("model", {}), f"datasets.{dataset}.model")
        train = merge(cfg["train"], ds_cfg.get("train", {}), f"datasets.{dataset}.train")
        swept = {}
        for p in swept_params:
            try:
                swept[p] = get_dotted(params, p, "")
            except ConfigError:
                swept[p] = None
        run_id = f"{dataset}/{variant}/seed{seed}"
        evaluate = dict(cfg["evaluate"])
        if ablation_only and not evaluate["fid_ablations"]:
            evaluate["fid"] = False
            evaluate["fid_off"] = "not computed for ablation-only runs (evaluate.fid_ablations: false)"
        if run_id in runs:
            return run_id
        runs[run_id] = RunSpec(run_id=run_id, dataset=dataset, dataset_plugin=d["plugin"],
                               resolution=d["resolution"], channels=d["channels"], method=method,
                               method_plugin=m["plugin"], variant=variant, seed=seed, params=params,
                               model=model, train=train, evaluate=evaluate,
                               device=cfg["device"], swept=swept)
        return run_id

    main = [add_run(ds, m, m, methods[m]["params"], s)
            for ds in main_cfg["datasets"] for m in main_cfg["methods"] for s in cfg["seeds"]]

    ablations = {}
    for abl_name, abl in cfg["experiments"].get("ablations", {}).items():
        where = f"experiments.ablations.{abl_name}"
        check_names([abl["dataset"]], datasets, f"{where}.dataset")
        check_names(abl["methods"], methods, f"{where}.methods")
        tag = abl.get("tag", abl_name)
        points = {}
        for m in abl["methods"]:
            base = methods[m]["params"]
            current = get_dotted(base, abl["param"], f"{where}.param")
            for value in abl["values"]:
                params = set_dotted(base, abl["param"], value)
                _validate_method_params(m, methods[m]["plugin"], params, f"{where}.values")
                variant = m if value == current else f"{m}__{tag}{format_value(value)}"
                points[(m, value)] = [add_run(abl["dataset"], m, variant, params, s,
                                              ablation_only=variant != m) for s in cfg["seeds"]]
        ablations[abl_name] = {"dataset": abl["dataset"], "methods": abl["methods"],
                               "param": abl["param"], "values": abl["values"], "runs": points}
    return Grid(config=cfg, datasets=datasets, methods=methods, runs=runs, main=main, ablations=ablations)


def load_yaml(path: str | Path) -> dict:
    try:
        with open(path) as f:
            return yaml.safe_load(f) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None


__all__ = ["ConfigError", "DataError", "Grid", "RunSpec", "build_grid", "format_value", "load_yaml"]
