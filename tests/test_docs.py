"""The generated configuration reference is current."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_docs_config_md_matches_the_typed_config():
    done = subprocess.run(
        [sys.executable, "scripts/config_reference.py", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def test_every_config_key_is_in_docs_config_md():
    from videogan.config import Config, flatten, to_dict

    text = (REPO / "docs/config.md").read_text()
    missing = [key for key in flatten(to_dict(Config())) if f"`{key}`" not in text]
    assert not missing, missing
