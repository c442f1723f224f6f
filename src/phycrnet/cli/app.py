"""The ``phycrnet`` command line: the app, its error handling, and helpers of the commands.

The command line is a thin shell over the Python API. Its choices and help texts come from
the typed option sections (:mod:`phycrnet.options.sections`), so they cannot drift apart.
Errors meant for the user (bad spec, options or files; a diverging run) print one line to
stderr and exit non-zero (2 for bad input, 3 for divergence); ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer
import yaml

try:  # typer >= 0.20 bundles its own click
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - older typer with click installed
    from click import exceptions as click_exceptions  # type: ignore[no-redef]

from phycrnet.errors import OptionsError, PhycrnetError, PhycrnetWarning
from phycrnet.options import SECTIONS

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Physics-constrained convolutional recurrent networks for 2D time-dependent PDEs.",
)


@app.callback()
def _main(debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors.")) -> None:
    """Physics-constrained convolutional recurrent networks for 2D time-dependent PDEs."""


def say(text: str) -> None:
    typer.echo(text)


def described(section: str, name: str) -> str:
    """The help text of option ``name`` of ``section`` (its field's description)."""
    return SECTIONS[section].model_fields[name].description or ""


SET_HELP = "Any option as SECTION.KEY=VALUE (sections: physics, model, training, pinn); repeatable. VALUE is YAML."


def parse_settings(settings: Sequence[str] | None, allowed: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``--set section.key=value`` entries as ``{section: {key: value}}``."""
    parsed: dict[str, dict[str, Any]] = {}
    for entry in settings or ():
        key, sep, raw = entry.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or not name:
            raise OptionsError(f"--set {entry!r}: expected SECTION.KEY=VALUE, e.g. training.lr=1e-3")
        if section not in allowed:
            raise OptionsError(f"--set {entry!r}: section {section!r} does not apply here (use {', '.join(allowed)})")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise OptionsError(f"--set {entry!r}: the value is not valid YAML") from None
        parsed.setdefault(section, {})[name] = value
    return parsed


def flat_options(settings: dict[str, dict[str, Any]], explicit: dict[str, Any], *sections: str) -> dict[str, Any]:
    """The ``--set`` entries of ``sections`` merged under the explicit flags (flags win)."""
    merged: dict[str, Any] = {}
    for section in sections:
        merged.update(settings.get(section, {}))
    merged.update({k: v for k, v in explicit.items() if v is not None})
    return merged


def report_run(dataset: Any, out: Path) -> None:
    """One line on the written run, and the identified coefficients if any."""
    attrs = dataset.attrs
    losses = json.loads(attrs.get("loss_terms", "{}"))
    terms = ", ".join(f"{k} {v:.2e}" for k, v in losses.items())
    preset = f" ({attrs['preset']})" if "preset" in attrs else ""
    say(f"wrote {out}{preset}: {attrs.get('iterations')} iterations in {float(attrs.get('wall_seconds', 0)):.1f} s, loss {terms}")
    factor = int(attrs.get("refine", 1))
    if factor > 1:
        say(f"trained on a grid {factor} times finer per axis (refine {factor}); the output holds the spec's nodes")
    if "identified_parameters" in attrs:
        identified = json.loads(attrs["identified_parameters"])
        say("identified parameters: " + ", ".join(f"{k} = {v:.6g}" for k, v in identified.items()))


def _show_warning(message: Any, category: type[Warning], filename: str, lineno: int, file: Any = None, line: str | None = None) -> None:
    """phycrnet's own warnings as one ``warning:`` line; others as Python shows them."""
    if issubclass(category, PhycrnetWarning):
        typer.echo(f"warning: {message}", err=True)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app, turning user errors into one-line messages."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            app(args=argv, standalone_mode=False)
    except click_exceptions.NoArgsIsHelpError as exc:
        typer.echo(exc.format_message())
        return 0
    except typer.Abort:
        typer.echo("error: aborted", err=True)
        return 130
    except click_exceptions.ClickException as exc:
        typer.echo(f"error: {exc.format_message()}", err=True)
        return exc.exit_code
    except PhycrnetError as exc:
        if debug:
            raise
        typer.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        typer.echo("error: interrupted", err=True)
        return 130
    return 0


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
