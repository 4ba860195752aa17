"""The evaluator's code digest follows what its modules do, not their layout, comments or type annotations."""

import pytest

from videogan.metrics import artifact


@pytest.fixture
def one_module(tmp_path, monkeypatch):
    path = tmp_path / "module.py"

    class Module:
        __file__ = str(path)

    monkeypatch.setattr(artifact, "_CODE", (Module,))
    return path


def test_layout_comments_and_annotations_leave_the_digest_alone(one_module):
    one_module.write_text("def f(x, y=2):\n    return x * y\n")
    before = artifact.code_digest()
    one_module.write_text("# a comment\ndef f(x: int, y: int = 2) -> int:\n    return (\n        x * y  # why\n    )\n")
    assert artifact.code_digest() == before
    one_module.write_text("def f(x, y=2):\n    z = x * y\n    return z\n")
    unannotated = artifact.code_digest()
    one_module.write_text("def f(x, y=2):\n    z: int = x * y\n    return z\n")
    assert artifact.code_digest() == unannotated != before


def test_a_change_in_what_the_code_does_changes_the_digest(one_module):
    one_module.write_text("def f(x, y=2):\n    return x * y\n")
    before = artifact.code_digest()
    one_module.write_text("def f(x, y=3):\n    return x * y\n")
    assert artifact.code_digest() != before
