"""The record contract (Arrow schema) and the run config: the single source of truth for both."""


def __getattr__(name: str):
    # PIPELINE_VERSION is looked up on first use: importlib.metadata is slow to import, and the CLI
    # imports this package (for its errors) before every command.
    if name != "PIPELINE_VERSION":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        value = version("pairsmith")
    except PackageNotFoundError:  # running from a source tree that is not installed
        value = "0+unknown"
    globals()["PIPELINE_VERSION"] = value
    return value
