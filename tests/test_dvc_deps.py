"""Each dvc.yaml stage depends on exactly the project code it runs.

A stage runs `python -m pipeline.<stage>`; DVC reruns it only when one of its `deps` changes. So
every project file that the stage's module imports (transitively, lazy imports inside functions
included, with the parent packages' `__init__.py` that Python executes first) must be covered by a
dep, or editing it (a default in videogan/config.py, say) leaves a stale result. And a code dep the
stage never imports reruns it for nothing.

The imports are read with `ast` (nothing is imported), so this runs in milliseconds.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("pipeline", "videogan")  # the project's code; everything else is a third-party import


def module_file(module: str) -> str | None:
    """The repo-relative file of a project module (`a.b` -> a/b.py or a/b/__init__.py), else None."""
    if module.split(".")[0] not in PACKAGES:
        return None
    base = Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if (ROOT / candidate).is_file():
            return candidate.as_posix()
    return None


def with_parents(module: str) -> list[str]:
    """`a.b.c` -> [a, a.b, a.b.c]: importing a module first runs its parent packages."""
    parts = module.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def imported_modules(module: str) -> set[str]:
    """The project modules that one module's code imports, anywhere in the file (lazy imports too)."""
    path = module_file(module)
    is_package = path.endswith("__init__.py")
    tree = ast.parse((ROOT / path).read_text(), filename=path)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.update(with_parents(alias.name))
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the module's own package, one level up per extra dot
                package = module.split(".") if is_package else module.split(".")[:-1]
                anchor = package[: len(package) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module
            found.update(with_parents(base))
            for alias in node.names:  # `from pkg import sub` imports the submodule pkg.sub
                if module_file(f"{base}.{alias.name}"):
                    found.add(f"{base}.{alias.name}")
    return {name for name in found if module_file(name)}


@cache
def imported_files(module: str) -> frozenset[str]:
    """Every project file that running `module` executes: itself, its parents, and their imports."""
    seen: set[str] = set()
    todo = with_parents(module)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(imported_modules(name) - seen)
    return frozenset(module_file(name) for name in seen)


def stages() -> dict[str, dict]:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def stage_module(name: str, stage: dict) -> str:
    match = re.fullmatch(r"python -m (\S+)", stage["cmd"].strip())
    assert match, f"stage {name}: cmd {stage['cmd']!r} is not `python -m <module>`"
    return match.group(1)


def code_deps(stage: dict) -> list[str]:
    """The stage's deps under the project's packages (files and folders), without a trailing slash."""
    deps = [next(iter(dep)) if isinstance(dep, dict) else dep for dep in stage.get("deps", [])]
    return [dep.rstrip("/") for dep in deps if dep.split("/")[0] in PACKAGES]


def covers(dep: str, file: str) -> bool:
    return file == dep or file.startswith(dep + "/")


def listing(paths_by_stage: dict[str, list[str]], verb: str) -> str:
    """The dvc.yaml lines to change, per stage, ready to paste."""
    return "\n".join(
        f"  {name}: {verb}\n" + "".join(f"      - {path}\n" for path in paths) for name, paths in paths_by_stage.items()
    )


def test_every_stage_module_exists():
    for name, stage in stages().items():
        assert module_file(stage_module(name, stage)), f"stage {name}: no module for {stage['cmd']!r}"


def test_stages_depend_on_every_file_they_import():
    missing = {}
    for name, stage in stages().items():
        deps = code_deps(stage)
        files = imported_files(stage_module(name, stage))
        uncovered = sorted(file for file in files if not any(covers(dep, file) for dep in deps))
        if uncovered:
            missing[name] = uncovered
    assert not missing, f"dvc.yaml stages import files their deps do not list:\n{listing(missing, 'add')}"


def test_stages_depend_on_no_code_they_do_not_import():
    stale = {}
    for name, stage in stages().items():
        files = imported_files(stage_module(name, stage))
        unused = [dep for dep in code_deps(stage) if not any(covers(dep, file) for file in files)]
        if unused:
            stale[name] = unused
    assert not stale, f"dvc.yaml stages depend on code they never import:\n{listing(stale, 'remove')}"


def test_the_import_scan_sees_lazy_submodule_and_parent_imports():
    """Guards the scanner itself on imports this repo has today."""
    train = imported_files("pipeline.train")
    assert "pipeline/__init__.py" in train  # the package runs before `python -m pipeline.train`
    assert "videogan/__init__.py" in train  # a parent package of every videogan module
    assert "videogan/training/api.py" in train  # imported inside a function
    assert "videogan/config.py" in train  # through pipeline.stage / pipeline.tracking
    # `from videogan.training import checkpoint` imports the submodule
    assert "videogan/training/checkpoint.py" in imported_files("videogan.sampling")
