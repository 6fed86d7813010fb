"""Validate the workflow config and expand it into the run grid (one place, used by every rule).

A run is (dataset, variant, seed); a variant is a method with at most one ablation override, named
by `layout.variant_name` (`<method>__<tag><value>`, one spelling per value: `eps0.25`, `ks7`). An
ablation point equal to the method's configured value is the main run itself, not a second copy.

What a rule gets is split by what its outputs depend on: `RunSpec` is a run's training identity
(dataset, model, train, method params, seed: the model depends on nothing else), the evaluate
section goes to evaluation only, and device, threads and GPUs are resources, never identity.
Method plugins may check their params against each dataset they run on (`validate_for_dataset`)
and fill dataset-dependent values (`resolve_params`) when the grid is built, before any job.
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from . import plugins
from .errors import ConfigError, DataError
from .stats import N_BOOT_PER_IMAGE, N_BOOT_SET
from .layout import REPO_ROOT, format_value, run_id as make_run_id, variant_name

SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "config.schema.yaml"

DEFAULTS = {
    "device": "auto",
    "threads": 2,
    "gpu": 0,
    "model": {"latent_dim": 32, "base_width": 32, "max_width": 256, "sigma2": 0.01, "beta": 1.0},
    "train": {"steps": 2000, "batch_size": 64, "lr": 1e-3, "schedule": "constant", "warmup": 0.05, "n_probe": 4,
              "log_every": 100},
    "evaluate": {"n_fid": 512, "fid": True, "fid_ablations": True, "lpips": True, "hfer_cutoff": 0.25,
                 "n_examples": 8, "batch_size": 64, "blur_ladder": [0.5, 1.0, 2.0, 4.0],
                 "min_gain_db": 3.0, "floor_sigma": 2.0, "budget": False, "n_boot": N_BOOT_PER_IMAGE, "n_boot_set": N_BOOT_SET},
}
# The variant tag of a convergence run: `l2__stepsx2` is l2 trained for twice the steps.
CONVERGENCE_TAG = "stepsx"
# The evaluate keys that per-run (and baseline) metrics depend on; the others shape only the tables.
EVALUATE_KEYS = ("n_fid", "fid", "lpips", "hfer_cutoff", "n_examples", "batch_size")


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
    if isinstance(node[last], bool) != isinstance(value, bool):
        raise ConfigError(f"ablation value {value!r} for '{dotted}': expected "
                          f"{'true or false' if isinstance(node[last], bool) else 'a number'}")
    numeric = isinstance(node[last], (int, float)) and not isinstance(node[last], bool)
    node[last] = type(node[last])(value) if numeric else value
    return out


@dataclass
class RunSpec:
    """A run's training identity: everything its model depends on, and nothing else.

    The train rule gets exactly this; the checkpoint compatibility check compares it, so a changed
    evaluation, device or thread count never retrains or restarts a run.
    """

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

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "RunSpec":
        return cls(**json.loads(text))


@dataclass
class EvalSpec:
    """What evaluating one run needs beyond its model: the evaluate section and the row labels."""

    run: RunSpec
    evaluate: dict
    swept: dict = field(default_factory=dict)  # swept parameter -> this run's value (metrics.csv columns)

    def to_json(self) -> str:
        return json.dumps({"run": asdict(self.run), "evaluate": self.evaluate, "swept": self.swept},
                          sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "EvalSpec":
        d = json.loads(text)
        return cls(RunSpec(**d["run"]), d["evaluate"], d["swept"])


@dataclass
class Grid:
    config: dict
    datasets: dict  # name -> {"plugin", "resolution", "params", "channels"}
    methods: dict  # name -> {"plugin", "params"}
    runs: dict  # run_id -> RunSpec
    main: list  # run ids of the main table
    ablations: dict  # ablation name -> {"dataset", "methods", "param", "values", "runs": {(method, value): [run ids]}}
    evals: dict = field(default_factory=dict)  # run_id -> EvalSpec
    # (dataset, method) -> (run id, id of the same run trained for experiments.convergence.factor × steps)
    convergence: dict = field(default_factory=dict)
    sr: list = field(default_factory=list)  # run ids of the super-resolution task (experiments.sr)
    flows: list = field(default_factory=list)  # run ids of the conditional flows (experiments.flows)

    def baseline_spec(self, dataset: str) -> dict:
        """What a dataset's trivial baselines and blur ladder depend on (the baselines rule's params)."""
        d = self.datasets[dataset]
        ev = self.config["evaluate"]
        # the trivial baselines and the blur ladder serve the VAE tables (adequacy, floor, equivalent-blur
        # rows, transfer figure): a dataset only the SR or flows task uses is judged against the SR
        # baselines (bicubic, A⁺y) alone
        tasks = set(self.sr) | set(self.flows)
        vae = any(r.dataset == dataset for rid, r in self.runs.items() if rid not in tasks)
        spec = {"dataset": dataset, "resolution": d["resolution"], "channels": d["channels"], "trivial": vae,
                "blur_ladder": ev["blur_ladder"] if vae else [], **{k: ev[k] for k in EVALUATE_KEYS}}
        sr = [self.runs[r] for r in self.sr if self.runs[r].dataset == dataset]
        if sr:  # the SR task's baselines need its operator
            spec["sr_operator"] = {k: sr[0].model[k] for k in ("operator", "factor", "sigma")}
        elif any(self.runs[r].dataset == dataset for r in self.flows):  # the flows' fixed x4 average pooling
            spec["sr_operator"] = {"operator": "avgpool", "factor": 2 ** FLOW_LEVELS, "sigma": None}
        return spec

    def run_rows(self) -> list[dict]:
        """One flat row per run with its parameters (results/runs.tsv)."""
        rows = []
        for rid, spec in sorted(self.runs.items()):
            flat = {"run_id": rid, "dataset": spec.dataset, "method": spec.method, "variant": spec.variant,
                    "seed": spec.seed, "resolution": spec.resolution, "channels": spec.channels}
            for section in ("model", "train"):
                flat.update({f"{section}.{k}": v for k, v in spec.__dict__[section].items()})
            flat.update({f"params.{k}": v for k, v in _flatten(spec.params).items()})
            rows.append(flat)
        return rows


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def load_schema() -> dict:
    if not SCHEMA_PATH.is_file():
        raise ConfigError(f"the config schema {SCHEMA_PATH} is missing: validating a config needs the "
                          "workflow of a blurbench checkout (a wheel installs the package alone)")
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


def _params_for_dataset(method: str, plugin_name: str, params: dict, dataset: str, d: dict,
                        methods: dict, where: str) -> dict:
    """The method's params on one dataset: checked against it, dataset-dependent values filled.

    Optional plugin hooks: `validate_for_dataset(params, resolution, channels)` raises ConfigError
    for a combination that cannot run (a kernel larger than the images); `resolve_params(params,
    resolution=, channels=, methods=)` returns the params with values that depend on the dataset.
    """
    module = plugins.load_method(plugin_name)
    try:
        if hasattr(module, "validate_for_dataset"):
            module.validate_for_dataset(params, d["resolution"], d["channels"])
        if hasattr(module, "resolve_params"):
            params = module.resolve_params(params, resolution=d["resolution"], channels=d["channels"],
                                           methods=methods)
    except ConfigError as e:
        raise ConfigError(f"{where} (method '{method}') on dataset '{dataset}' "
                          f"(datasets.{dataset}.resolution: {d['resolution']}): {e}") from None
    return params


SR_NETWORK = {"width": 64, "depth": 4}
# ×4 SR gains a few dB over bicubic, not the VAE's 3 dB over a constant image.
SR_MIN_GAIN_DB = 0.5


def check_task(names: list, methods: dict, task: str, key: str) -> None:
    """Every method of an experiment belongs to its task (a plugin's TASK): one clear line otherwise."""
    for n in names:
        module = plugins.load_method(methods[n]["plugin"])
        if plugins.task_of(module) != task:
            raise ConfigError(f"config key '{key}': method '{n}' (plugin {methods[n]['plugin']}) is a "
                              f"{plugins.task_of(module)} method; this experiment takes {task} methods")


def sr_setup(sr_cfg: dict, train_cfg: dict, datasets: dict) -> dict:
    """The SR runs' model (operator and network), train section, reference and adequacy threshold;
    the operator is built once per dataset here, so a factor that does not divide the resolution, an
    unknown operator or an ill-conditioned one is refused before any job starts."""
    from .sr.operators import make_operator

    op = sr_cfg["operator"]
    for name, d in datasets.items():
        try:
            make_operator(op["name"], (d["resolution"], d["resolution"]), factor=op["factor"], sigma=op.get("sigma"))
        except ConfigError as e:
            raise ConfigError(f"config key 'experiments.sr.operator' on dataset '{name}' "
                              f"(resolution {d['resolution']}): {e}") from None
    model = {"operator": op["name"], "factor": op["factor"], "sigma": op.get("sigma"),
             **merge(SR_NETWORK, sr_cfg.get("network", {}), "experiments.sr.network")}
    return {"model": model, "train": merge(train_cfg, sr_cfg.get("train", {}), "experiments.sr.train"),
            "reference": sr_cfg.get("reference") or ("mse" if "mse" in sr_cfg["methods"] else sr_cfg["methods"][0]),
            "min_gain_db": sr_cfg.get("min_gain_db", SR_MIN_GAIN_DB)}


FLOW_NETWORK = {"n_couplings": 4, "hidden": 32, "features": 16}
# ×4 average pooling, the SR papers' setting: two Haar levels of blurbench.flows.sr_flow.SRFlow.
FLOW_LEVELS = 2
FLOW_TEMPERATURE = 0.9  # Hong et al.'s sampling temperature
FLOW_SAMPLES = 8  # K: samples per test image (their mean is scored as the run's output)


def _flows_other(other: dict, flow_datasets: list, datasets: dict, factor: int) -> None:
    """Each `other` entry maps a flows dataset to a defined dataset whose test images can become its LR
    inputs: 1 or 3 channels either way, and a size that area-averages (or repeats) to the LR size."""
    for ds, o in other.items():
        where = f"config key 'experiments.flows.other.{ds}'"
        if ds not in flow_datasets:
            raise ConfigError(f"{where}: '{ds}' is not one of experiments.flows.datasets ({', '.join(flow_datasets)})")
        if o not in datasets or o == ds:
            raise ConfigError(f"{where}: '{o}' is not another defined dataset; defined: {', '.join(sorted(datasets))}")
        lr, size = datasets[ds]["resolution"] // factor, datasets[o]["resolution"]
        channels = {datasets[ds]["channels"], datasets[o]["channels"]}
        if size % lr and lr % size:
            raise ConfigError(f"{where}: dataset '{o}' ({size}²) cannot be resized to the LR size {lr}² of '{ds}'; "
                              "expected sizes that are multiples of each other")
        if len(channels) > 1 and channels != {1, 3}:
            raise ConfigError(f"{where}: dataset '{o}' has {datasets[o]['channels']} channels and '{ds}' "
                              f"{datasets[ds]['channels']}; expected equal, or 1 and 3 (grey <-> RGB)")


def flows_setup(flows_cfg: dict, train_cfg: dict, datasets: dict) -> dict:
    """The flow runs' model (levels, network, sampling temperature), train section, reference, K, the
    `other` dataset per flows dataset and the test images per OOD condition set (None: all). An image
    size the ×4 pooling does not divide, a temperature that is not > 0 and an `other` that cannot become
    LR inputs are refused before any job starts."""
    from .flows.coupling import check_temperature

    factor = 2 ** FLOW_LEVELS
    for name in flows_cfg["datasets"]:
        res = datasets[name]["resolution"]
        if res % factor:
            raise ConfigError(f"config key 'experiments.flows.datasets': dataset '{name}' has resolution {res}, "
                              f"not divisible by {factor}; the flows model x{factor} average pooling "
                              f"({FLOW_LEVELS} Haar levels)")
    temperature = flows_cfg.get("temperature", FLOW_TEMPERATURE)
    try:
        check_temperature(temperature)
    except ConfigError as e:
        raise ConfigError(f"config key 'experiments.flows.temperature': {e}") from None
    other = flows_cfg.get("other", {})
    _flows_other(other, flows_cfg["datasets"], datasets, factor)
    model = {"levels": FLOW_LEVELS, **merge(FLOW_NETWORK, flows_cfg.get("network", {}), "experiments.flows.network"),
             "temperature": temperature}
    methods = flows_cfg["methods"]
    return {"model": model, "train": merge(train_cfg, flows_cfg.get("train", {}), "experiments.flows.train"),
            "reference": flows_cfg.get("reference") or ("flow_affine" if "flow_affine" in methods else methods[0]),
            "temperature": temperature, "n_samples": flows_cfg.get("n_samples", FLOW_SAMPLES), "other": other,
            "n_ood_images": flows_cfg.get("n_ood_images"), "min_gain_db": flows_cfg.get("min_gain_db", SR_MIN_GAIN_DB)}


def build_grid(config: dict, check_data: bool = True) -> Grid:
    """Validate `config` and expand it into runs. Raises ConfigError / DataError with one clear line."""
    _schema_check(config)
    cfg = merge(DEFAULTS, {k: v for k, v in config.items() if k in DEFAULTS}, "config")
    cfg.update({k: v for k, v in config.items() if k not in DEFAULTS})

    ev = cfg["evaluate"]
    if ev["floor_sigma"] not in ev["blur_ladder"]:
        raise ConfigError(f"config key 'evaluate.floor_sigma': {ev['floor_sigma']:g} is not a σ of "
                          f"evaluate.blur_ladder {ev['blur_ladder']}; the floor is one of the ladder's rows")
    datasets = {n: _dataset_entry(n, e, check_data) for n, e in cfg["datasets"].items()}
    methods = {n: _method_entry(n, e) for n, e in cfg["methods"].items()}

    def check_names(names, known, key):
        for n in names:
            if n not in known:
                raise ConfigError(f"config key '{key}': unknown name '{n}'; defined: {', '.join(sorted(known))}")

    if not {"main", "sr", "flows"} & cfg["experiments"].keys():
        raise ConfigError("config key 'experiments': none of 'main' (the VAE study), 'sr' (the super-resolution "
                          "task) and 'flows' (conditional flows for SR) is configured; expected at least one")
    # no VAE study: an SR-only config (config/sr.yaml) trains no VAE
    main_cfg = cfg["experiments"].get("main", {"datasets": [], "methods": []})
    check_names(main_cfg["datasets"], datasets, "experiments.main.datasets")
    check_names(main_cfg["methods"], methods, "experiments.main.methods")
    # the method every other one is compared with (paired differences): l2 unless configured
    reference = None
    if main_cfg["methods"]:
        reference = main_cfg.get("reference") or ("l2" if "l2" in main_cfg["methods"] else main_cfg["methods"][0])
        check_names([reference], main_cfg["methods"], "experiments.main.reference")

    runs: dict[str, RunSpec] = {}
    evals: dict[str, EvalSpec] = {}
    swept_params = sorted({a["param"] for a in cfg["experiments"].get("ablations", {}).values()})

    def add_run(dataset: str, method: str, variant: str, params: dict, seed: int, where: str,
                ablation_only: bool = False, steps_factor: int = 1, task: dict | None = None,
                flow_eval: dict | None = None) -> str:
        rid = make_run_id(dataset, variant, seed)
        if rid in runs:
            return rid
        d, m = datasets[dataset], methods[method]
        ds_cfg = cfg["datasets"][dataset]
        if task is None:
            model = merge(cfg["model"], ds_cfg.get("model", {}), f"datasets.{dataset}.model")
            train = merge(cfg["train"], ds_cfg.get("train", {}), f"datasets.{dataset}.train")
        else:  # an SR or flows run: its own model, the train section with the task's overrides
            model, train = copy.deepcopy(task["model"]), copy.deepcopy(task["train"])
        train["steps"] *= steps_factor
        swept = {}
        for p in swept_params:
            try:
                swept[p] = get_dotted(params, p, "")
            except ConfigError:
                swept[p] = None
        params = _params_for_dataset(method, m["plugin"], params, dataset, d, methods, where)
        evaluate = {k: cfg["evaluate"][k] for k in EVALUATE_KEYS}
        if ablation_only and not cfg["evaluate"]["fid_ablations"]:
            evaluate["fid"] = False
            evaluate["fid_off"] = "not computed for ablation-only runs (evaluate.fid_ablations: false)"
        if flow_eval is not None:  # K and the other dataset: evaluation only, never the run's identity
            evaluate["flows"] = flow_eval
        runs[rid] = RunSpec(run_id=rid, dataset=dataset, dataset_plugin=d["plugin"],
                            resolution=d["resolution"], channels=d["channels"], method=method,
                            method_plugin=m["plugin"], variant=variant, seed=seed, params=params,
                            model=model, train=train)
        evals[rid] = EvalSpec(runs[rid], evaluate, swept)
        return rid

    def check_task_experiment(name: str, exp: dict, task: str) -> None:
        """experiments.<name>: its datasets and methods are defined, and every method is of `task`."""
        check_names(exp["datasets"], datasets, f"experiments.{name}.datasets")
        check_names(exp["methods"], methods, f"experiments.{name}.methods")
        check_task(exp["methods"], methods, task, f"experiments.{name}.methods")

    check_task(main_cfg["methods"], methods, "vae", "experiments.main.methods")
    main = [add_run(ds, m, m, methods[m]["params"], s, f"methods.{m}.params")
            for ds in main_cfg["datasets"] for m in main_cfg["methods"] for s in cfg["seeds"]]
    sr_runs = []
    if "sr" in cfg["experiments"]:
        sr_cfg = cfg["experiments"]["sr"]
        check_task_experiment("sr", sr_cfg, "sr")
        sr = sr_setup(sr_cfg, cfg["train"], {ds: datasets[ds] for ds in sr_cfg["datasets"]})
        check_names([sr["reference"]], sr_cfg["methods"], "experiments.sr.reference")
        sr_runs = [add_run(ds, m, m, methods[m]["params"], s, f"methods.{m}.params", task=sr)
                   for ds in sr_cfg["datasets"] for m in sr_cfg["methods"] for s in cfg["seeds"]]
        cfg["experiments"]["sr"] = {**sr_cfg, "reference": sr["reference"], "min_gain_db": sr["min_gain_db"]}
    flow_runs = []
    if "flows" in cfg["experiments"]:
        fl_cfg = cfg["experiments"]["flows"]
        check_task_experiment("flows", fl_cfg, "flow")
        fl = flows_setup(fl_cfg, cfg["train"], datasets)
        check_names([fl["reference"]], fl_cfg["methods"], "experiments.flows.reference")
        flow_runs = [add_run(ds, m, m, methods[m]["params"], s, f"methods.{m}.params", task=fl,
                             flow_eval={"n_samples": fl["n_samples"], "other": fl["other"].get(ds),
                                        "n_ood_images": fl["n_ood_images"]})
                     for ds in fl_cfg["datasets"] for m in fl_cfg["methods"] for s in cfg["seeds"]]
        cfg["experiments"]["flows"] = {**fl_cfg, **{k: fl[k] for k in ("reference", "temperature", "n_samples", "other",
                                                                         "n_ood_images", "min_gain_db")}}

    ablations = {}
    for abl_name, abl in cfg["experiments"].get("ablations", {}).items():
        where = f"experiments.ablations.{abl_name}"
        check_names([abl["dataset"]], datasets, f"{where}.dataset")
        check_names(abl["methods"], methods, f"{where}.methods")
        check_task(abl["methods"], methods, "vae", f"{where}.methods")  # SR and flows runs have no ablations
        tag = abl.get("tag", abl_name)
        points = {}
        for m in abl["methods"]:
            base = methods[m]["params"]
            current = get_dotted(base, abl["param"], f"{where}.param")
            for value in abl["values"]:
                params = set_dotted(base, abl["param"], value)
                _validate_method_params(m, methods[m]["plugin"], params, f"{where}.values")
                variant = m if value == current else variant_name(m, tag, value)
                points[(m, value)] = [add_run(abl["dataset"], m, variant, params, s, f"{where}.values",
                                              ablation_only=variant != m) for s in cfg["seeds"]]
        ablations[abl_name] = {"dataset": abl["dataset"], "methods": abl["methods"], "tag": tag,
                               "param": abl["param"], "values": abl["values"], "runs": points}
    convergence = {}
    if "convergence" in cfg["experiments"]:
        factor, seed = cfg["experiments"]["convergence"]["factor"], min(cfg["seeds"])
        for ds in main_cfg["datasets"]:
            for m in main_cfg["methods"]:
                longer = add_run(ds, m, variant_name(m, CONVERGENCE_TAG, factor), methods[m]["params"], seed,
                                 f"methods.{m}.params", ablation_only=True, steps_factor=factor)
                convergence[(ds, m)] = (make_run_id(ds, m, seed), longer)
    if "main" in cfg["experiments"]:
        cfg["experiments"]["main"] = {**main_cfg, "reference": reference}
    return Grid(config=cfg, datasets=datasets, methods=methods, runs=runs, main=main,
                ablations=ablations, evals=evals, convergence=convergence, sr=sr_runs, flows=flow_runs)


def write_grid_files(grid: Grid, runs_tsv: str | Path, config_yaml: str | Path) -> None:
    """`runs.tsv`, one row per run with its parameters, and the effective config (defaults filled)."""
    import csv
    import io

    from .atomic import write_text

    rows = grid.run_rows()
    fields = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, delimiter="\t", restval="")
    writer.writeheader()
    writer.writerows(rows)
    write_text(runs_tsv, buf.getvalue())
    write_text(config_yaml, yaml.safe_dump(grid.config, sort_keys=False, allow_unicode=True))


def load_yaml(path: str | Path) -> dict:
    try:
        with open(path) as f:
            return yaml.safe_load(f) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None


__all__ = ["ConfigError", "DataError", "EvalSpec", "Grid", "RunSpec", "build_grid", "format_value", "load_yaml"]
