import pytest

from pairsmith.schemas.config import ConfigError, load_config


def test_defaults_and_overrides_from_yaml_and_set(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("download:\n  timeout_s: 3\ninput:\n  shard_size: 10\n")
    cfg = load_config(path, ["download.retries=4", "download.private_allowlist=[a.example]"])
    assert cfg.download.timeout_s == 3.0
    assert cfg.input.shard_size == 10
    assert cfg.download.retries == 4
    assert cfg.download.private_allowlist == ["a.example"]
    assert cfg.download.allow_private_addresses is False


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("download.treads=3", "unknown config key 'download.treads'"),
        ("nope=1", "unknown config key 'nope'"),
        ("download.timeout_s=soon", "config key 'download.timeout_s'"),
        ("input.shard_size=0", "config key 'input.shard_size'"),
        ("download", "--set expects key=value"),
    ],
)
def test_bad_keys_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("[", r"\[")):
        load_config(None, [override])


def test_missing_or_invalid_config_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(bad)


def test_config_hash_ignores_how_it_runs_but_not_what_it_makes():
    base = load_config(None, [])
    assert (
        base.config_hash()
        == load_config(None, ["download.threads=2", "runner.runner=PortableRunner"]).config_hash()
    )
    assert base.config_hash() != load_config(None, ["download.image_size=256"]).config_hash()
