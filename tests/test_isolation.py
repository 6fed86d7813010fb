"""The suite runs with its own weight cache: nothing a test does touches the user's TORCH_HOME."""

import os
import tempfile
from pathlib import Path

import torch


def test_torch_home_is_a_temporary_folder():
    home = Path(os.environ["TORCH_HOME"]).resolve()
    assert home.is_relative_to(Path(tempfile.gettempdir()).resolve())
    assert home.name.startswith("blurbench-test-torch-home-")
    assert Path(torch.hub.get_dir()).resolve().is_relative_to(home)
