"""The errors a user can fix; the CLI prints them as one line instead of a traceback.

Dependency-free on purpose: the CLI imports it before any command's modules, and the modules that
raise these errors import them from here (their old homes re-export them, so `from
pairsmith.flows.select import SelectionError` keeps working).
"""


class ConfigError(ValueError):
    """A config problem the user can fix; the message names the key."""


class InputError(ValueError):
    """An input problem the user must fix (the message names the file)."""


class OutputError(ValueError):
    """An output folder that is missing, not a pairsmith output, or damaged; the message says which."""


class SelectionError(ValueError):
    """A bad --where expression (outside the grammar, unknown column), recipe or --out; the message says which."""


class RecipeError(ValueError):
    """A recipe cannot be applied to this dataset as asked; the message says why and what to do."""


class CorruptionError(ValueError):
    """A `corrupt` or `rescore` request that cannot be done as asked; the message says why."""


class ModelLoadError(RuntimeError):
    """A model cannot be loaded; the message names it and says how to get it."""


USER_ERRORS = (
    ConfigError,
    InputError,
    OutputError,
    SelectionError,
    RecipeError,
    CorruptionError,
    ModelLoadError,
    FileNotFoundError,
    PermissionError,
)
