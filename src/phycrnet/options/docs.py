"""``docs/options.md``, generated from the option types (a test keeps the file current).

Run ``python -m phycrnet.options.docs > docs/options.md`` after changing an option.
"""

from __future__ import annotations

import json
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic.fields import FieldInfo

from phycrnet.options.presets import DEFAULT_ITERATIONS, DEFAULT_PRESET, PINN_TRAINING, PRESETS
from phycrnet.options.sections import SECTIONS, Section
from phycrnet.options.thresholds import THRESHOLDS

INTRO = """# Options

Generated from `phycrnet.options` by `python -m phycrnet.options.docs`; do not edit by hand.

Options live in four sections of a spec (`physics:`, `model:`, `training:`, `pinn:`); a
`preset:` key (or `--preset`) picks a set of them. A run takes, in increasing priority, the
defaults below, the method's base values (the PINN's), the preset, the spec's sections,
and the command line or the Python API (`--set SECTION.KEY=VALUE` reaches any option).
Unknown keys fail when the spec is loaded, with the key named. Every output records its
preset and the options it ran with (attribute `options`), and the automatic choices it
resolved (`substeps`, `physics_input`, `refine`, ...). The thresholds named in the `auto`
rules are listed at the end; the measurements behind them are in `docs/method.md`.
"""


def _default(field: FieldInfo) -> str:
    value = field.get_default(call_default_factory=True)
    return "`" + json.dumps(value if not isinstance(value, tuple) else list(value)) + "`"


def _type(annotation: Any) -> str:
    """A reader's name for an option's type: ``float or none``, ``"soft" or "hard"``, ..."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return " or ".join(f'"{a}"' for a in args)
    if origin is Annotated:
        return _type(args[0])
    if origin in (Union, UnionType):
        return " or ".join(_type(a) for a in args)
    if origin is tuple:
        return f"list of {_type(args[0])}"
    if origin is dict:
        return "mapping"
    if annotation is type(None):
        return "none"
    return getattr(annotation, "__name__", str(annotation))


def section_table(name: str, cls: type[Section]) -> list[str]:
    """The markdown table of one section: option, type, default, unit, description."""
    lines = [f"## `{name}:`", "", (cls.__doc__ or "").strip(), "", "| option | type | default | unit | what it does |", "|---|---|---|---|---|"]
    for key, field in cls.model_fields.items():
        extra: Any = field.json_schema_extra or {}
        unit = extra.get("unit", "") if isinstance(extra, dict) else ""
        description = (field.description or "").replace("|", "\\|")
        lines.append(f"| `{key}` | {_type(field.annotation)} | {_default(field)} | {unit} | {description} |")
    return lines + [""]


def presets_table() -> list[str]:
    lines = ["## Presets", "", f"`{DEFAULT_PRESET}` is the default. Each preset sets these options (the rest keep their defaults):", ""]
    for name, sections in PRESETS.items():
        settings = [f"`{section}.{key}: {json.dumps(list(v) if isinstance(v, tuple) else v)}`" for section, values in sections.items() for key, v in values.items()]
        lines.append(f"* `{name}`: " + (", ".join(settings) if settings else "the defaults"))
    pinn = ", ".join(f"`training.{k}: {json.dumps(v)}`" for k, v in PINN_TRAINING.items())
    lines += ["", f"The PINN trains from its own base values: {pinn}.", "", f"Without `iterations` or `time_budget` a run takes {DEFAULT_ITERATIONS} iterations.", ""]
    return lines


def thresholds_table() -> list[str]:
    lines = ["## Thresholds of the `auto` rules", "", "| threshold | value | meaning |", "|---|---|---|"]
    lines += [f"| `{name}` | {value:g} | {meaning} |" for name, value, meaning in THRESHOLDS.table()]
    return lines + [""]


def render() -> str:
    """The whole of ``docs/options.md``."""
    lines = [INTRO]
    lines += presets_table()
    for name, cls in SECTIONS.items():
        lines += section_table(name, cls)
    lines += thresholds_table()
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(render(), end="")
