"""What a user sees on stderr: warnings, progress bars and Prefect's flow and task lines by default;
library chatter (Beam's `apitools not found`, transformers' loading bars and notes, faiss's loader,
INFO logs) only with `pairsmith --verbose COMMAND`.

Called by the CLI before a command imports anything, so that the first library to log does not set
the root logger's format (Beam's warning would call `logging.basicConfig`, and Prefect then leaves
the root logger to it: its lines lose their flow and task run names).
"""

from __future__ import annotations

import logging
import os

PREFECT_COMMANDS = ("run", "demo")  # the commands that run the Prefect flow
FORMAT = "%(levelname)s %(name)s: %(message)s"
NOISE = ("apitools not found",)  # Beam, on the root logger, when the gcp extra is not installed


class DropNoise(logging.Filter):
    """Drops the root logger's records that name no problem of a run (NOISE)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(NOISE)


def configure(command: str, verbose: bool) -> None:
    """Set up logging for one CLI command (environment variables reach Beam's worker processes too)."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "info" if verbose else "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "0" if verbose else "1")  # "Loading weights" bars
    if (
        command in PREFECT_COMMANDS
    ):  # Prefect's console handler takes the root logger: lines name their task run
        from prefect.logging.configuration import setup_logging

        setup_logging()
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(handler)
    if verbose:
        root.setLevel(logging.INFO)
    elif not any(isinstance(f, DropNoise) for f in root.filters):
        root.addFilter(DropNoise())
