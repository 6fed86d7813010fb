"""Train a task's run in full, and again killed mid-way and resumed: the SR and flows pipeline tests
share this check of exact resumption."""

import pytest
import torch

from blurbench import layout
from blurbench.train import train


class Killed(Exception):
    pass


def train_full_and_resumed(spec, data_dir, tmp, kill_step: int) -> tuple[dict, dict]:
    """The model state of the full run (`tmp/full`) and of one killed at the log row of `kill_step`,
    then rerun on the same checkpoint (`tmp/cut`); asserts the rerun said it resumed there."""
    train(spec, data_dir, tmp / "full", tmp / "full.pt", log=lambda m: None)

    def die(message):
        if f"step {kill_step}/{spec.train['steps']}" in message:
            raise Killed

    with pytest.raises(Killed):
        train(spec, data_dir, tmp / "cut", tmp / "cut.pt", log=die)
    messages = []
    train(spec, data_dir, tmp / "cut", tmp / "cut.pt", log=messages.append)
    assert any(f"resuming after step {kill_step}" in m for m in messages), messages
    full, cut = (torch.load(tmp / name / layout.MODEL, weights_only=True)["model"] for name in ("full", "cut"))
    return full, cut
