"""What `pairsmith` imports before a command runs: only that command's modules."""

import subprocess
import sys

HEAVY = ("torch", "apache_beam", "open_clip", "prefect", "transformers", "faiss", "pyarrow", "pydantic")


def _imported_after(code: str) -> list[str]:
    """The HEAVY modules a fresh interpreter holds after running `code`."""
    probe = f"import sys\n{code}\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return eval(done.stdout.strip().splitlines()[-1])


def test_select_list_imports_no_model_beam_or_prefect():
    code = "from pairsmith.flows.cli import main\nassert main(['select', '--list']) == 0"
    assert _imported_after(code) == []


def test_help_imports_nothing_heavy():
    code = "from pairsmith.flows.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass"
    assert _imported_after(code) == []


def test_the_errors_module_has_no_dependencies():
    code = "before = set(sys.modules)\nimport pairsmith.schemas.errors\nnew = set(sys.modules) - before"
    code += "\nassert all(m.startswith('pairsmith') for m in new), sorted(new)"
    assert _imported_after(code) == []


def test_errors_keep_their_old_import_paths():
    from pairsmith.flows.select import SelectionError
    from pairsmith.pipelines.shard_check import OutputError
    from pairsmith.schemas import errors
    from pairsmith.schemas.config import ConfigError

    assert (SelectionError, OutputError, ConfigError) == (
        errors.SelectionError,
        errors.OutputError,
        errors.ConfigError,
    )
    assert {SelectionError, OutputError, ConfigError} <= set(errors.USER_ERRORS)
