"""The built-in catalog of problems: one YAML spec per case, shipped with the package."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def _files():
    return resources.files(__name__)


def list_cases() -> list[str]:
    """Names of the built-in cases, sorted."""
    return sorted(entry.name[: -len(".yaml")] for entry in _files().iterdir() if entry.name.endswith(".yaml"))


def case_path(name: str) -> Path:
    """Path of the YAML file of case ``name``.

    Raises:
        KeyError: for an unknown name; the message lists the available cases.
    """
    entry = _files().joinpath(f"{name}.yaml")
    if not entry.is_file():
        raise KeyError(f"unknown case {name!r} (available: {', '.join(list_cases())})")
    return Path(str(entry))


def case_text(name: str) -> str:
    """The YAML text of case ``name``."""
    return case_path(name).read_text()
