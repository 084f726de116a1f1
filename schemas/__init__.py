"""The record contract (Arrow schema) and the run config: the single source of truth for both."""

from importlib.metadata import PackageNotFoundError, version

try:
    PIPELINE_VERSION = version("pairsmith")
except PackageNotFoundError:  # running from a source tree that is not installed
    PIPELINE_VERSION = "0+unknown"
