"""plugins.load checks a plugin file against its contract and names the file and every missing piece."""

import sys
import textwrap

import pytest

from blurbench import plugins
from blurbench.errors import ConfigError

METHOD_OK = '''
    from blurbench.method_api import ReconstructionTerm
    PARAMS = {"w": 1.0}
    def validate(params):
        pass
    class Term(ReconstructionTerm):
        pass
'''


@pytest.fixture
def plugin_root(tmp_path, monkeypatch):
    """An empty plugin root; `write(kind, name, source)` adds a plugin file to it."""
    for kind in ("methods", "datasets"):
        (tmp_path / kind).mkdir()
    monkeypatch.setenv("BLURBENCH_PLUGIN_ROOT", str(tmp_path))
    written = []

    def write(kind, name, source):
        path = tmp_path / kind / f"{name}.py"
        path.write_text(textwrap.dedent(source))
        written.append(f"blurbench_plugin_{kind}_{name}")
        return path

    yield write
    for module_name in written:  # names are per file name: a later test's file must load afresh
        sys.modules.pop(module_name, None)


def test_a_complete_method_plugin_loads(plugin_root):
    plugin_root("methods", "fine", METHOD_OK)
    assert plugins.load_method("fine").PARAMS == {"w": 1.0}


def test_every_real_plugin_meets_its_contract(monkeypatch):
    """The shipped methods/ and datasets/ load and pass the check (no plugin root override)."""
    monkeypatch.delenv("BLURBENCH_PLUGIN_ROOT", raising=False)
    for kind in ("methods", "datasets"):
        names = plugins.available(kind)
        assert names, f"no {kind} plugins found"
        for name in names:
            plugins.check_contract(kind, plugins.load(kind, name), plugins.plugin_dir(kind) / f"{name}.py")


def test_method_plugin_missing_pieces_names_the_file_and_each_name(plugin_root):
    path = plugin_root("methods", "half", '''
        PARAMS = {}
    ''')
    with pytest.raises(ConfigError) as err:
        plugins.load_method("half")
    message = str(err.value)
    assert str(path) in message and "method plugin" in message
    assert "validate is missing" in message and "Term is missing" in message
    assert "PARAMS is" not in message
    assert "blurbench_plugin_methods_half" not in sys.modules  # a fixed file is loaded again


def test_method_term_must_subclass_reconstruction_term(plugin_root):
    plugin_root("methods", "plain", '''
        PARAMS = []
        def validate(params):
            pass
        class Term:
            pass
    ''')
    with pytest.raises(ConfigError, match=r"PARAMS is list, expected a dict.*; Term is class Term, expected "
                                          r"a subclass of blurbench\.method_api\.ReconstructionTerm"):
        plugins.load_method("plain")


def test_dataset_plugin_missing_pieces_names_each_one(plugin_root):
    path = plugin_root("datasets", "bare", '''
        PARAMS = {}
        RESOLUTIONS = 32
        def validate(params, resolution):
            pass
    ''')
    with pytest.raises(ConfigError) as err:
        plugins.load_dataset("bare")
    message = str(err.value)
    assert str(path) in message and "dataset plugin" in message and "dataset_api" in message
    for expected in ("RESOLUTIONS is int, expected a tuple", "channels is missing", "build is missing"):
        assert expected in message
    assert "validate is" not in message and "PARAMS is" not in message


def test_unknown_plugin_lists_the_available_ones(plugin_root):
    plugin_root("methods", "fine", METHOD_OK)
    with pytest.raises(ConfigError, match=r"unknown method plugin 'nope'.*available: fine"):
        plugins.load_method("nope")
