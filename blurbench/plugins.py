"""Load method and dataset plugins from the `methods/` and `datasets/` folders by file path.

They are loaded by path, never imported as top-level packages: a PyPI package called `datasets`
exists and would shadow (or be shadowed by) a folder of that name.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

from .errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent


def plugin_dir(kind: str) -> Path:
    """`methods` or `datasets` folder; BLURBENCH_PLUGIN_ROOT overrides the repository root (tests)."""
    root = Path(os.environ.get("BLURBENCH_PLUGIN_ROOT", REPO_ROOT))
    return root / kind


def available(kind: str) -> list[str]:
    return sorted(p.stem for p in plugin_dir(kind).glob("*.py") if not p.stem.startswith("_"))


def load(kind: str, name: str) -> ModuleType:
    """Import `<kind>/<name>.py` once, under a private module name."""
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
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def load_method(name: str) -> ModuleType:
    return load("methods", name)


def load_dataset(name: str) -> ModuleType:
    return load("datasets", name)
