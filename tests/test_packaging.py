"""What the wheel ships: the runtime packages only, no trainers, fixtures or test helpers."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEV_ONLY = ("train_*.py", "*fixture*.py", "metrics.py", "*transforms.py")


def test_shipped_packages_hold_no_development_module():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = [ROOT / folder for folder in setuptools["package-dir"].values()]
    assert sorted(setuptools["package-dir"]) == sorted(setuptools["packages"])
    found = [str(p.relative_to(ROOT)) for f in folders for pattern in DEV_ONLY for p in f.rglob(pattern)]
    assert found == []
