"""Human Connectome Project (HCP Young Adult) T1w volumes -> axial slices, split by subject.

Data: not downloadable here. HCP data needs a data-use agreement: create a ConnectomeDB account at
https://db.humanconnectome.org, accept the WU-Minn HCP Open Access Data Use Terms, download each
subject's "Structural Preprocessed" package and unpack it under one root, so that
`<root>/<subject>/T1w/T1w_acpc_dc_restore_brain.nii.gz` exists (0.7 mm, 260 x 311 x 260,
skull-stripped). Set `params.root` to that folder; `params.pattern` (relative to the root, literal
except for exactly one `{subject}`) selects another file, e.g. the non-stripped
`{subject}/T1w/T1w_acpc_dc_restore.nii.gz`. Subjects are the folders the pattern matches (glob),
sorted; `max_subjects` keeps the first N of them (null = all) for fast runs.

Preprocessing is `blurbench.volumes`, the code path of the embedded `mri` dataset: RAS
reorientation, per-volume clip to the `clip_percentiles` (default 0.5 / 99.5) of voxels > 0 scaled to
[0, 1], axial slices whose brain fraction (voxels > 0 / in-plane voxels) is >= `min_brain_fraction`
(default 0.1), every `slice_step`-th of them (default 1 = all), zero-pad to a square, Lanczos resize
to 64, 128 or 256, uint8.

Split by subject: a seeded permutation (`seed`) of the sorted subjects; the first
max(1, round(test_fraction * n)) are test subjects, the rest train, so slices of one subject never
cross splits. build() reads every volume twice: once to count the kept slices (the split sizes must
be known before writing), once to produce them; a corrupt or truncated file raises DataError naming
it during the first pass, before anything is written.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from blurbench import volumes
from blurbench.dataset_api import Split
from blurbench.errors import ConfigError, DataError

PARAMS = {
    "root": None,
    "pattern": "{subject}/T1w/T1w_acpc_dc_restore_brain.nii.gz",
    "test_fraction": 0.2,
    "min_brain_fraction": 0.1,
    "clip_percentiles": [0.5, 99.5],
    "slice_step": 1,
    "max_subjects": None,
    "seed": 0,
}
RESOLUTIONS = (64, 128, 256)

HOW_TO_OBTAIN = ("HCP data needs a data-use agreement and is never downloaded by this harness: create an "
                 "account at https://db.humanconnectome.org (ConnectomeDB), accept the WU-Minn HCP Open "
                 "Access Data Use Terms, download the subjects' 'Structural Preprocessed' packages and unpack "
                 "them so that <root>/<subject>/T1w/T1w_acpc_dc_restore_brain.nii.gz exists, then set "
                 "params.root to <root>")


def channels(params: dict) -> int:
    return 1


def _check_int(params: dict, key: str, low: int, allow_none: bool = False) -> None:
    value = params[key]
    if allow_none and value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ConfigError(f"params.{key} must be an integer >= {low}{' or null' if allow_none else ''}, "
                          f"got {value!r}")


def _check_params(params: dict, resolution: int) -> None:
    volumes.check_params(params)
    pattern = params["pattern"]
    if (not isinstance(pattern, str) or pattern.count("{subject}") != 1 or pattern.startswith("/")
            or ".." in Path(pattern).parts):
        raise ConfigError(f"params.pattern must be a relative path with exactly one '{{subject}}', "
                          f"got {pattern!r}")
    frac = params["test_fraction"]
    if not isinstance(frac, (int, float)) or isinstance(frac, bool) or not 0 < frac < 1:
        raise ConfigError(f"params.test_fraction must be a number in (0, 1), got {frac!r}")
    _check_int(params, "slice_step", 1)
    _check_int(params, "max_subjects", 2, allow_none=True)
    _check_int(params, "seed", 0)
    if resolution not in RESOLUTIONS:
        raise ConfigError(f"resolution {resolution} is not supported by hcp; "
                          f"supported: {', '.join(map(str, RESOLUTIONS))}")


def find_subjects(params: dict) -> dict[str, Path]:
    """Subject id -> volume path for every match of params.pattern under params.root (sorted, capped)."""
    if params["root"] is None:
        raise DataError(f"params.root is not set (the folder holding one folder per HCP subject). {HOW_TO_OBTAIN}")
    root = Path(params["root"]).expanduser()
    if not root.is_dir():
        raise DataError(f"HCP root {root} does not exist or is not a folder (params.root). {HOW_TO_OBTAIN}")
    pattern = params["pattern"]
    regex = re.compile(re.escape(pattern).replace(re.escape("{subject}"), "(?P<subject>[^/]+)"))
    found = {}
    for path in root.glob(pattern.replace("{subject}", "*")):
        match = regex.fullmatch(path.relative_to(root).as_posix())
        if match:
            found[match["subject"]] = path
    if not found:
        raise DataError(f"no HCP volume under {root} matches params.pattern '{pattern}' (expected files like "
                        f"{root / pattern.format(subject='100307')}). {HOW_TO_OBTAIN}")
    subjects = sorted(found)[:params["max_subjects"]]
    return {s: found[s] for s in subjects}


def split_subjects(subjects: list[str], params: dict) -> dict[str, list[str]]:
    """Seeded split by subject: {"train": [...], "test": [...]}, each sorted."""
    n_test = max(1, round(params["test_fraction"] * len(subjects)))
    if n_test >= len(subjects):
        raise DataError(f"{len(subjects)} HCP subject(s) found: params.test_fraction = {params['test_fraction']} "
                        f"leaves no training subject; at least 2 subjects are needed")
    order = np.random.default_rng(params["seed"]).permutation(len(subjects))
    test = sorted(subjects[i] for i in order[:n_test])
    return {"train": sorted(set(subjects) - set(test)), "test": test}


def validate(params: dict, resolution: int) -> None:
    _check_params(params, resolution)
    split_subjects(sorted(find_subjects(params)), params)


def _kept_slices(path: Path, params: dict) -> np.ndarray:
    _, slices = volumes.read_slices(path, min_brain_fraction=params["min_brain_fraction"],
                                    clip_percentiles=tuple(params["clip_percentiles"]))
    return slices[::params["slice_step"]]


def _images(plan: list, params: dict, resolution: int):
    for path, slices in plan:
        volume = volumes.normalise(volumes.load_volume(path), tuple(params["clip_percentiles"]),
                                   name=f"NIfTI file {path}")
        for k in slices:
            yield volumes.to_square(volume[:, :, k], resolution)[None]


def build(params: dict, resolution: int) -> dict[str, Split]:
    validate(params, resolution)
    paths = find_subjects(params)
    out = {}
    for name, subjects in split_subjects(sorted(paths), params).items():
        plan = [(paths[s], _kept_slices(paths[s], params)) for s in subjects]
        count = sum(len(slices) for _, slices in plan)
        if count == 0:
            raise DataError(f"no axial slice of the {name} subjects {subjects} has a brain fraction >= "
                            f"params.min_brain_fraction = {params['min_brain_fraction']}")
        out[name] = Split(count, _images(plan, params, resolution))
    return out


def describe(params: dict, resolution: int) -> dict:
    paths = find_subjects(params)
    split = split_subjects(sorted(paths), params)
    return {
        "source": "Human Connectome Project T1w volumes (data-use agreement; ConnectomeDB)",
        "root": str(Path(params["root"]).expanduser()),
        "pattern": params["pattern"],
        "files": {s: str(p) for s, p in paths.items()},
        "preprocessing": volumes.describe(params["clip_percentiles"], params["min_brain_fraction"]),
        "slice_step": params["slice_step"],
        "max_subjects": params["max_subjects"],
        "split_rule": f"by subject: seeded permutation (seed {params['seed']}), "
                      f"test_fraction {params['test_fraction']}",
        "train_subjects": split["train"],
        "test_subjects": split["test"],
    }
