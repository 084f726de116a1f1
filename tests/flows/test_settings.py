"""`pairsmith config`: every setting with its default and description, straight from the pydantic models."""

import pytest
import yaml

from pairsmith.flows.cli import main
from pairsmith.flows.settings import sections, settings
from pairsmith.schemas.config import RunConfig, config_from


def _keys(value, prefix=""):
    """The dotted keys of a nested dict (the leaves of a config's dump)."""
    if not isinstance(value, dict):
        return [prefix.removesuffix(".")]
    return [k for name, v in value.items() for k in _keys(v, f"{prefix}{name}.")]


def test_config_lists_every_key_with_its_default(capsys):
    assert main(["config"]) == 0
    text = capsys.readouterr().out
    dump = RunConfig().model_dump(mode="json")
    for key in _keys(dump):
        assert f"  {key} = " in text, key
    assert "  dedup.phash_distance = 4  (>= 0, <= 15)" in text
    assert "  models.clip[].spec = (required)" in text  # the fields of a list's items too


def test_every_setting_has_a_description():
    missing = [s.key for _, model in sections() for s in settings(model) if not s.description.strip()]
    assert missing == []


def test_defaults_is_a_config_file_of_the_defaults(capsys, tmp_path):
    assert main(["config", "--defaults"]) == 0
    text = capsys.readouterr().out
    assert config_from(yaml.safe_load(text)) == RunConfig()
    assert "  # Rows per shard (the unit of work and resume).\n  shard_size: 1000\n" in text


def test_run_help_points_to_config(capsys):
    with pytest.raises(SystemExit) as done:
        main(["run", "--help"])
    assert done.value.code == 0
    assert "pairsmith config" in capsys.readouterr().out
