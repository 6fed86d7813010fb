"""Load method and dataset plugins from the `methods/` and `datasets/` folders by file path.

They are loaded by path, never imported as top-level packages: a PyPI package called `datasets`
exists and would shadow (or be shadowed by) a folder of that name. A loaded file is checked against
its contract (`blurbench.method_api`, `blurbench.dataset_api`), so a plugin missing a piece fails
at load with every missing name, not later with an AttributeError inside a job.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

from .errors import ConfigError

from .layout import REPO_ROOT


def plugin_dir(kind: str) -> Path:
    """`methods` or `datasets` folder; BLURBENCH_PLUGIN_ROOT overrides the repository root (tests)."""
    root = Path(os.environ.get("BLURBENCH_PLUGIN_ROOT", REPO_ROOT))
    return root / kind


def _is_term(value) -> bool:
    from .method_api import ReconstructionTerm

    return isinstance(value, type) and issubclass(value, ReconstructionTerm)


def _is_sr_method(value) -> bool:
    from .sr.method_api import SRMethod

    return isinstance(value, type) and issubclass(value, SRMethod)


def _is_coupling(value) -> bool:
    from .flows.coupling import COUPLINGS

    return isinstance(value, str) and value in COUPLINGS


TASKS = ("vae", "sr", "flow")


def task_of(module: ModuleType) -> str:
    """A method plugin's task: its TASK ("vae" when absent: a VAE reconstruction term)."""
    return getattr(module, "TASK", "vae")


# kind -> name -> (check, what the contract asks for)
CONTRACT = {
    "methods": {
        "PARAMS": (lambda v: isinstance(v, dict), "a dict of default parameters"),
        "validate": (callable, "a function validate(params)"),
        "Term": (_is_term, "a subclass of blurbench.method_api.ReconstructionTerm"),
    },
    "sr_methods": {  # a method file with TASK = "sr" (blurbench/sr/method_api.py)
        "PARAMS": (lambda v: isinstance(v, dict), "a dict of default parameters"),
        "validate": (callable, "a function validate(params)"),
        "Method": (lambda v: _is_sr_method(v), "a subclass of blurbench.sr.method_api.SRMethod"),
    },
    "flow_methods": {  # a method file with TASK = "flow": a coupling of blurbench.flows.sr_flow.SRFlow
        "PARAMS": (lambda v: isinstance(v, dict), "a dict of default parameters (the coupling's keywords)"),
        "validate": (callable, "a function validate(params)"),
        "COUPLING": (_is_coupling, "one of blurbench.flows.coupling.COUPLINGS"),
    },
    "datasets": {
        "PARAMS": (lambda v: isinstance(v, dict), "a dict of default parameters"),
        "RESOLUTIONS": (lambda v: isinstance(v, (tuple, list)), "a tuple of supported image sizes"),
        "channels": (callable, "a function channels(params)"),
        "validate": (callable, "a function validate(params, resolution)"),
        "build": (callable, "a function build(params, resolution)"),
    },
}


def check_contract(kind: str, module: ModuleType, path: Path) -> None:
    """ConfigError naming `path` and every name of the contract it lacks or defines as something else."""
    problems = []
    contract = kind
    if kind == "methods":
        if task_of(module) not in TASKS:
            raise ConfigError(f"{path}: TASK {task_of(module)!r} is unknown; expected one of {', '.join(TASKS)}")
        contract = {"sr": "sr_methods", "flow": "flow_methods"}.get(task_of(module), kind)
    for name, (ok, what) in CONTRACT[contract].items():
        if not hasattr(module, name):
            problems.append(f"{name} is missing (expected {what})")
        elif not ok(getattr(module, name)):
            value = getattr(module, name)
            got = f"class {value.__name__}" if isinstance(value, type) else type(value).__name__
            problems.append(f"{name} is {got}, expected {what}")
    if problems:
        api = {"methods": "method_api", "sr_methods": "sr/method_api", "flow_methods": "flows/__init__",
               "datasets": "dataset_api"}[contract]
        raise ConfigError(f"{path} is not a valid {kind[:-1]} plugin (see blurbench/{api}.py): "
                          + "; ".join(problems))


def available(kind: str) -> list[str]:
    return sorted(p.stem for p in plugin_dir(kind).glob("*.py") if not p.stem.startswith("_"))


def load(kind: str, name: str) -> ModuleType:
    """Import `<kind>/<name>.py` once, under a private module name, and check its contract."""
    path = plugin_dir(kind) / f"{name}.py"
    if not path.is_file():
        raise ConfigError(f"unknown {kind[:-1]} plugin '{name}': no file {path}; "
                          f"available: {', '.join(available(kind))}")
    module_name = f"blurbench_plugin_{kind}_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
        check_contract(kind, module, path)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def load_method(name: str) -> ModuleType:
    return load("methods", name)


def load_dataset(name: str) -> ModuleType:
    return load("datasets", name)
