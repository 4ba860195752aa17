"""The evaluator file (models/evaluator.pt): weights, held-out accuracy and a version.

The version is a hash of the clip store's digest, the evaluator params (all
but `device`) and the source of the modules that define and fit the network,
so two runs on the same data are scored by the same evaluator, and a stale
file is refused with the reason.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from videogan.errors import EvaluatorError  # noqa: F401  (raised here; also importable from here)
from videogan.metrics import fit, network, tasks
from videogan.metrics.config import EvaluatorConfig
from videogan.metrics.network import Architecture, Evaluator
from videogan.training.checkpoint import save_atomic

KIND = "evaluator"
FORMAT = 1
_CODE = (network, tasks, fit)


class _WithoutAnnotations(ast.NodeTransformer):
    def visit_arg(self, node: ast.arg) -> ast.arg:
        node.annotation = None
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        node.returns = None
        self.generic_visit(node)
        return node

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST | None:
        if node.value is None:
            return None
        return ast.copy_location(ast.Assign(targets=[node.target], value=node.value, lineno=node.lineno), node)


def code_digest() -> str:
    """sha256 of what the evaluator's modules do: their syntax trees without comments, layout or type
    annotations, so that reformatting or typing them does not make fitted evaluators stale."""
    trees = [_WithoutAnnotations().visit(ast.parse(Path(str(m.__file__)).read_text())) for m in _CODE]
    blob = "\n".join(ast.dump(tree, include_attributes=False) for tree in trees).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def params_of(cfg: EvaluatorConfig) -> dict[str, Any]:
    return cfg.model_dump(mode="json", exclude={"device"})


def evaluator_version(store_digest: str, cfg: EvaluatorConfig) -> str:
    blob = json.dumps({"data": store_digest, "params": params_of(cfg), "code": code_digest()}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def save_evaluator(
    path: str | Path, model: Evaluator, cfg: EvaluatorConfig, store_digest: str, accuracy: dict[str, float]
) -> Path:
    state = {
        "kind": KIND,
        "format": FORMAT,
        "version": evaluator_version(store_digest, cfg),
        "store_digest": store_digest,
        "code": code_digest(),
        "params": params_of(cfg),
        "arch": dataclasses.asdict(model.arch),
        "accuracy": dict(accuracy),
        "state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    return save_atomic(state, path)


def load_evaluator(path: str | Path) -> tuple[Evaluator, dict[str, Any]]:
    """(evaluator in eval mode on the CPU, the file's metadata: version, accuracy, params, ...)."""
    path = Path(path)
    if not path.exists():
        raise EvaluatorError(f"evaluator {path} does not exist; fit one with `videogan fit-evaluator`")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # PyTorch's message is left out: it suggests weights_only=False, which runs the file's code
        raise EvaluatorError(
            f"evaluator {path} is unreadable: truncated or corrupted, or not an evaluator this project wrote; "
            "delete it and run `videogan fit-evaluator`"
        ) from None
    if not isinstance(state, dict) or state.get("kind") != KIND or state.get("format") != FORMAT:
        raise EvaluatorError(f"{path} is not a videogan evaluator file (format {FORMAT})")
    model = Evaluator(Architecture(**state["arch"]))
    model.load_state_dict(state["state"])
    info = {k: v for k, v in state.items() if k != "state"}
    return model.eval(), info


def check_version(info: dict[str, Any], store_digest: str, cfg: EvaluatorConfig, path: str | Path) -> None:
    """Refuse an evaluator fitted on other data, with other params or by other code."""
    reasons = []
    if info["store_digest"] != store_digest:
        reasons.append(f"the clip store changed (digest {info['store_digest']} -> {store_digest})")
    if info["params"] != params_of(cfg):
        changed = sorted(k for k in params_of(cfg) if info["params"].get(k) != params_of(cfg)[k])
        reasons.append("evaluator params changed: " + ", ".join(f"evaluator.{k}" for k in changed))
    if info["code"] != code_digest():
        reasons.append("the evaluator code changed")
    if reasons:
        raise EvaluatorError(
            f"evaluator {path} is stale: " + "; ".join(reasons) + "; refit it with `videogan fit-evaluator`"
        )
