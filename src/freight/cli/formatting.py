"""`--format TEMPLATE` for the read commands: scripts get one value without `jq`.

A template is Python's `str.format` over the fields of the command's `--json` output:
`{digest}`, `{config[digest]}` or `{config.digest}`, `{layers[0][size]}`. docker's and
skopeo's Go-template spelling of a plain field works too: `{{.digest}}`, `{{.config.digest}}`.
`\\t` and `\\n` in the template are a tab and a newline. Listing commands (tags, catalog,
ls) apply the template once per entry, with the entry's fields (`{tag}`, `{repository}`,
`{name}`, `{platform}`, …). An unknown field is a usage error naming the fields there are.
"""

from __future__ import annotations

import json
import re
from typing import Any

import click

_GO_FIELD = re.compile(r"\{\{\s*\.([A-Za-z_][\w.]*)\s*\}\}")


class _Fields(dict[str, Any]):
    """A dict whose keys are also attributes, recursively (`{config.digest}`)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return _wrap(self[name])
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, key: str) -> Any:
        return _wrap(super().__getitem__(key))


def _wrap(value: Any) -> Any:
    if isinstance(value, dict) and not isinstance(value, _Fields):
        return _Fields(value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return "" if value is None else value


def translate(template: str) -> str:
    """The Go-template spelling and backslash escapes made into a `str.format` template."""
    text = _GO_FIELD.sub(lambda m: "{" + m.group(1) + "}", template)
    return text.replace("\\t", "\t").replace("\\n", "\n")


def render(template: str, data: dict[str, Any]) -> str:
    """`template` filled in from `data`; click.UsageError for a field that is not there."""
    try:
        return translate(template).format_map(_Fields(data))
    except (KeyError, AttributeError, IndexError) as exc:
        fields = ", ".join(sorted(data))
        raise click.UsageError(f"--format: no field {exc} (fields: {fields})") from None
    except ValueError as exc:
        raise click.UsageError(f"--format: not a valid template ({exc}); write fields as "
                               "{digest} or {{.digest}}") from None


EXIT_CODES = ("Exit codes: 0 done, 2 usage (a bad reference or option; a --platform that\n"
              "matches nothing), 3 bad local input, 4 registry error, 5 network, 6 auth,\n"
              "7 not found, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM).")


def epilog(*examples: str) -> str:
    """`--help`'s closing: examples, then the exit codes (\\b keeps click from rewrapping)."""
    lines = "\n".join(f"  {e}" for e in examples)
    return f"\b\nExamples:\n{lines}\n\n\b\n{EXIT_CODES}"


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


def emit(data: dict[str, object], template: str | None = None) -> None:
    """One result: through `template` if given, else as one line of JSON."""
    click.echo(render(template, data) if template else json.dumps(data))


def exclusive(raw: bool, as_json: bool, template: str | None = None) -> None:
    """--raw, --json and --format each choose the whole output: at most one of them."""
    if sum((raw, as_json, template is not None)) > 1:
        raise click.UsageError("--raw, --json and --format cannot be combined")


def print_rows(template: str | None, rows: list[dict[str, Any]]) -> bool:
    """Print each row through `template`; False when there is no template."""
    if template is None:
        return False
    for row in rows:
        click.echo(render(template, row))
    return True


def format_option(command: Any) -> Any:
    return click.option(
        "--format", "template", metavar="TEMPLATE",
        help="Print each result through TEMPLATE: {field} (Python format) or {{.field}} "
             "(Go-template style) over the --json fields, e.g. '{digest}'.")(command)


_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def human_size(size: int) -> str:
    """`512 B`, `12.0 KiB`, `3.4 MiB` (binary units, like docker). Here, not in views.py,
    so that `freight sync` does not load the inspect modules to print its table."""
    value = float(size)
    for unit in _UNITS:
        if value < 1024 or unit == _UNITS[-1]:
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
