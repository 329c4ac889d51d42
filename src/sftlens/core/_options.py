"""Option callbacks shared by the verbs: output paths are checked while the command line is
parsed, so a path that cannot be written fails in one line before any work starts."""

from __future__ import annotations

from typing import Any

from sftlens.core._errors import DataError
from sftlens.core._io import check_output

__all__ = ["out_dir", "out_file"]


def _check(param: Any, value: Any, folder: bool) -> Any:
    if value is None or (not folder and str(value) == "-"):
        return value
    try:
        check_output(value, folder=folder)
    except DataError as e:
        name = max(param.opts, key=len) if param.opts else param.name
        raise DataError(f"{name} {e}") from None
    return value


def out_file(ctx, param, value):  # typer passes ctx, param, value by position
    """Option callback: an output file path is checked (`check_output`) before the verb runs."""
    return _check(param, value, folder=False)


def out_dir(ctx, param, value):  # typer passes ctx, param, value by position
    """Option callback: an output folder path is checked (`check_output`) before the verb runs."""
    return _check(param, value, folder=True)
