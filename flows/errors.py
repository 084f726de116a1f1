"""The errors a user can fix; the CLI prints them as one line instead of a traceback."""

from pairsmith.filters.clip_models import ModelLoadError
from pairsmith.flows.corrupt import CorruptionError
from pairsmith.flows.select import SelectionError
from pairsmith.pipelines.ingest import InputError
from pairsmith.schemas.config import ConfigError

USER_ERRORS = (
    ConfigError,
    InputError,
    SelectionError,
    CorruptionError,
    ModelLoadError,
    FileNotFoundError,
    PermissionError,
)
