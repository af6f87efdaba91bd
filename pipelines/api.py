"""The notebook API (see ``mgca.analysis.notebook``): ``from mgca.api import open_run``."""

from mgca.analysis.notebook import Run, RunFolderError, latest_run, open_run

__all__ = ["Run", "RunFolderError", "latest_run", "open_run"]
