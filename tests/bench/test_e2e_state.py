"""Each `voxhome run` of bench e2e gets its own state dir: no timer of another run rings into it."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from device.bench.e2e import Rig


@pytest.mark.parametrize("given", [None, "[device]\nid = 'x'\n[asr]\nmodel = 'base'\n", "[asr]\nmodel = 'base'\n"])
def test_every_run_gets_a_fresh_state_dir_and_keeps_the_given_config(tmp_path: Path, given: str | None) -> None:
    config = None
    if given is not None:
        config = tmp_path / "given.toml"
        config.write_text(given)
    rig = Rig(tmp_path, str(config) if config else None)
    first, second = (tomllib.loads(rig._run_config().read_text()) for _ in range(2))
    assert first["device"]["state_dir"] != second["device"]["state_dir"]
    assert str(tmp_path) in first["device"]["state_dir"]
    for key, value in tomllib.loads(given or "").items():
        for k, v in value.items():
            assert first[key][k] == v


def test_a_chosen_state_dir_is_kept(tmp_path: Path) -> None:
    config = tmp_path / "given.toml"
    config.write_text("[device]\nstate_dir = '/srv/x'\n")
    assert tomllib.loads(Rig(tmp_path, str(config))._run_config().read_text())["device"]["state_dir"] == "/srv/x"
