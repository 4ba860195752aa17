"""Write docs/config.md, every params.yaml key of the typed config: its type, library default, allowed values
and comment (the one beside the field in the code, or the lines just above it).

    .venv/bin/python scripts/config_reference.py          # rewrite docs/config.md
    .venv/bin/python scripts/config_reference.py --check  # exit 1 when it is stale (tests/test_docs.py does this)
"""

from __future__ import annotations

import argparse
import ast
import inspect
import io
import sys
import textwrap
import tokenize
import types
import typing
from pathlib import Path

import annotated_types
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "docs/config.md"

from videogan.config import Config  # noqa: E402

HEADER = """# Configuration reference

Every key of `params.yaml` (and of `--set key=value`, `dvc exp run -S key=value`), with the library default:
the original's full size. `params.yaml` is the CPU demo profile and lists the keys it changes, each marked
`[demo]` with the measurement behind it; `profiles/*.yaml` are the other profiles. A wrong key or value stops
every command before anything runs, with the key path and the allowed values.

Generated from the typed config (`videogan/config.py` and the sections it imports) by
`python scripts/config_reference.py`; `make test` fails when this page is stale.
"""


def comments(cls: type) -> dict[str, str]:
    """Field name -> the comment beside its line, else the comment lines just above it."""
    source = textwrap.dedent(inspect.getsource(cls))
    by_line: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            by_line[token.start[0]] = token.string.lstrip("#").strip()
    lines = source.splitlines()
    found = {}
    for node in ast.parse(source).body[0].body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        beside = by_line.get(node.end_lineno) if lines[node.end_lineno - 1].split("#")[0].strip() else None
        above, line = [], node.lineno - 1
        while line >= 1 and lines[line - 1].strip().startswith("#"):
            above.insert(0, by_line[line])
            line -= 1
        found[node.target.id] = beside or " ".join(above)
    return found


def is_section(annotation) -> bool:
    return inspect.isclass(annotation) and issubclass(annotation, BaseModel)


def yaml_value(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(yaml_value(v) for v in value) + "]"
    return str(value)


def type_and_choices(annotation) -> tuple[str, str]:
    """A readable type, and the allowed values of a Literal (or of the Literal part of a union)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return "choice", " \\| ".join(f"`{yaml_value(v)}`" for v in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        parts = [type_and_choices(a) for a in typing.get_args(annotation)]
        names = [("null" if t == "NoneType" else t) for t, _ in parts]
        return " or ".join(names), " \\| ".join(c for _, c in parts if c)
    if origin in (tuple, list):
        args = typing.get_args(annotation)
        inner = ", ".join("..." if a is Ellipsis else type_and_choices(a)[0] for a in args)
        return f"list[{inner}]", ""
    return getattr(annotation, "__name__", str(annotation)), ""


def bounds(metadata: list) -> str:
    signs = {
        annotated_types.Ge: (">=", "ge"),
        annotated_types.Gt: (">", "gt"),
        annotated_types.Le: ("<=", "le"),
        annotated_types.Lt: ("<", "lt"),
    }
    return ", ".join(
        f"{sign} {getattr(item, attr)}"
        for item in metadata
        for kind, (sign, attr) in signs.items()
        if isinstance(item, kind)
    )


def sections(
    model: type[BaseModel], prefix: str = "", defaults: BaseModel | None = None
) -> list[tuple[str, str, list[list[str]]]]:
    """(section key, its docstring, rows of key / type / default / allowed / comment), depth first. `defaults`:
    the section's default as its parent sets it (train.optim.lstm is an SGD, unlike the class's default)."""
    notes = comments(model)
    defaults = defaults if defaults is not None else model()
    rows, nested = [], []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        if is_section(field.annotation):
            nested += sections(field.annotation, key + ".", getattr(defaults, name))
            continue
        kind, choices = type_and_choices(field.annotation)
        allowed = " \\| ".join(part for part in (choices, bounds(field.metadata)) if part) or ""
        rows.append([f"`{key}`", kind, f"`{yaml_value(getattr(defaults, name))}`", allowed, notes.get(name, "")])
    doc = inspect.cleandoc(model.__doc__ or "") if model.__doc__ != BaseModel.__doc__ else ""
    own = [(prefix.rstrip(".") or "(top level)", doc.split("\n\n")[0].replace("\n", " "), rows)] if rows else []
    return own + nested


def render() -> str:
    out = [HEADER]
    for section, doc, rows in sections(Config):
        out.append(f"\n## `{section}`\n")
        if doc:
            out.append(doc + "\n")
        out.append("| key | type | default | allowed | what it is |\n|---|---|---|---|---|")
        out += [
            "| " + " | ".join(cell.replace("|", "\\|") if i == 4 else cell for i, cell in enumerate(row)) + " |"
            for row in rows
        ]
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/config.md differs from the config")
    args = parser.parse_args()
    text = render()
    if args.check:
        if not OUT.exists() or OUT.read_text() != text:
            print(f"{OUT.relative_to(ROOT)} is stale: run `python scripts/config_reference.py`", file=sys.stderr)
            raise SystemExit(1)
        return
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(text)
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
