"""A folder of files as a dataset: which files, and which of them are test files.

Shared by the `image_folder` and `volume_folder` datasets, so both read these keys the same way:
- `root` and `pattern`: the files under root that match the glob (`**` = any depth), sorted by
  relative path, so nothing depends on the order the file system lists them. `pattern: null` means
  every file with one of the dataset's extensions, in any folder, extension in any case. Names
  starting with a dot (.DS_Store, macOS `._` copies, .git) are never data and are skipped.
- `split_file` (path relative to the working directory, like root): lines `<relative path> <train|test>`,
  the path relative to root and as the pattern matches it (it may contain spaces). Matched files it
  does not list are left out; a listed file must exist and match the pattern.
- otherwise a seeded split (`seed`) of the groups: max(1, round(test_fraction * n_groups)) of them
  are test groups. `group_pattern` (a regex searched in the relative path; the group is its first
  capture group, or the whole match if it has none) puts the files of one group (a patient, a photo,
  a scene) on one side; without it every file is its own group. With a split file, group_pattern
  checks that no group is on both sides.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

import numpy as np

from .errors import ConfigError, DataError

SIDES = ("train", "test")


def check_params(params: dict) -> None:
    """Types of the shared keys (no file access)."""
    pattern = params["pattern"]
    if pattern is not None and (not isinstance(pattern, str) or not pattern or pattern.startswith("/")
                                or ".." in PurePosixPath(pattern).parts):
        raise ConfigError(f"params.pattern: {pattern!r}; expected null or a glob relative to params.root "
                          f"without '..' (e.g. '**/*.png')")
    if params["split_file"] is not None and (not isinstance(params["split_file"], str) or not params["split_file"]):
        raise ConfigError(f"params.split_file: {params['split_file']!r}; expected null or a path")
    frac = params["test_fraction"]
    if not isinstance(frac, (int, float)) or isinstance(frac, bool) or not 0 < frac < 1:
        raise ConfigError(f"params.test_fraction: {frac!r}; expected a number in (0, 1)")
    regex = params["group_pattern"]
    if regex is not None:
        if not isinstance(regex, str) or not regex:
            raise ConfigError(f"params.group_pattern: {regex!r}; expected null or a regular expression")
        try:
            re.compile(regex)
        except re.error as e:
            raise ConfigError(f"params.group_pattern: {regex!r} is not a valid regular expression: {e}") from None
    seed = params["seed"]
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"params.seed: {seed!r}; expected a non-negative integer")


def root_of(params: dict, what: str) -> Path:
    """params.root as an existing folder; DataError naming it otherwise."""
    if params["root"] is None:
        raise DataError(f"params.root is not set; expected the folder holding the {what} files")
    root = Path(params["root"]).expanduser()
    if not root.is_dir():
        raise DataError(f"params.root {root} does not exist or is not a folder; expected the folder "
                        f"holding the {what} files")
    return root


def pattern_rule(params: dict, extensions: tuple[str, ...]) -> str:
    """The file rule in words, for error messages and describe()."""
    if params["pattern"] is None:
        return f"params.pattern null (every {', '.join(extensions)} file in any folder, any case)"
    return f"params.pattern '{params['pattern']}'"


def list_files(params: dict, extensions: tuple[str, ...], what: str) -> list[str]:
    """Sorted relative paths (posix) of the matching files; DataError naming root and pattern if none."""
    root = root_of(params, what)
    found = []
    for path in root.glob(params["pattern"] or "**/*"):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        if params["pattern"] is None and not path.name.lower().endswith(extensions):
            continue
        found.append(rel.as_posix())
    if not found:
        raise DataError(f"no {what} file under {root} matches {pattern_rule(params, extensions)}")
    return sorted(found)


def groups_of(files: list[str], regex: str | None) -> dict[str, str]:
    """File -> its group (the file itself without a group_pattern); ConfigError naming a file it misses."""
    if regex is None:
        return {f: f for f in files}
    compiled = re.compile(regex)
    groups = {}
    for f in files:
        match = compiled.search(f)
        group = match and (match.group(1) if compiled.groups else match.group(0))
        if not group:
            raise ConfigError(f"params.group_pattern {regex!r} finds no group in '{f}'; every file must "
                              f"belong to a group (the first capture group, or the whole match)")
        groups[f] = group
    return groups


def read_split_file(params: dict, root: Path, files: list[str]) -> dict[str, str]:
    """Relative path -> 'train' or 'test', from params.split_file; DataError naming the file and line."""
    path = Path(params["split_file"]).expanduser()
    if not path.is_file():
        raise DataError(f"params.split_file {path} does not exist; expected lines '<relative path> <train|test>'")
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read params.split_file {path}: {e}") from None
    matched, sides = set(files), {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        fields = line.strip().rsplit(None, 1)
        if len(fields) != 2 or fields[1] not in SIDES:
            raise DataError(f"params.split_file {path}, line {number}: {line!r}; expected "
                            f"'<relative path> <train|test>'")
        rel = PurePosixPath(fields[0]).as_posix()
        if rel in sides:
            raise DataError(f"params.split_file {path}, line {number}: '{rel}' is listed twice")
        if rel not in matched:
            problem = "does not match params.pattern" if (root / rel).is_file() else "does not exist"
            raise DataError(f"params.split_file {path}, line {number}: {root / rel} {problem}")
        sides[rel] = fields[1]
    return sides


def split(params: dict, files: list[str], what: str) -> dict[str, list[str]]:
    """{"train": [...], "test": [...]}, each sorted, by the split file or by seeded groups."""
    groups = groups_of(files, params["group_pattern"])
    if params["split_file"] is not None:
        return _by_split_file(params, files, groups, what)
    names = sorted(set(groups.values()))
    n_test = max(1, round(params["test_fraction"] * len(names)))
    if n_test >= len(names):
        raise DataError(f"{len(names)} {what} group(s) under {params['root']}: params.test_fraction = "
                        f"{params['test_fraction']} leaves no training group; at least 2 groups are needed")
    order = np.random.default_rng(params["seed"]).permutation(len(names))
    test = {names[i] for i in order[:n_test]}
    return {"train": [f for f in files if groups[f] not in test], "test": [f for f in files if groups[f] in test]}


def _by_split_file(params: dict, files: list[str], groups: dict[str, str], what: str) -> dict[str, list[str]]:
    sides = read_split_file(params, root_of(params, what), files)
    side_of_group = {}
    for f, side in sorted(sides.items()):
        first = side_of_group.setdefault(groups[f], (f, side))
        if first[1] != side:
            raise DataError(f"params.split_file puts group '{groups[f]}' (params.group_pattern) on both "
                            f"sides: '{first[0]}' is {first[1]}, '{f}' is {side}")
    out = {side: sorted(f for f, s in sides.items() if s == side) for side in SIDES}
    for side in SIDES:
        if not out[side]:
            raise DataError(f"params.split_file {params['split_file']} lists no {side} file")
    return out


def split_rule(params: dict) -> str:
    """The split in words, for describe()."""
    by = f"groups of params.group_pattern {params['group_pattern']!r}" if params["group_pattern"] else "file"
    if params["split_file"] is not None:
        return f"params.split_file {params['split_file']}" + (f", checked by {by}" if params["group_pattern"] else "")
    return f"seeded by {by} (seed {params['seed']}), test_fraction {params['test_fraction']}"
