"""The README's Python examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the examples write files
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, str(README), "exec"), {})


def test_readme_has_exactly_two_setup_commands():
    text = README.read_text()
    section = text.split("<!-- ci:setup:begin -->")[1].split("<!-- ci:setup:end -->")[0]
    commands = [line for line in section.splitlines() if line.strip() and not line.startswith("```")]
    assert len(commands) == 2
    assert "pip install '.[test]'" in commands[0] and "examples/main_job.py" in commands[0]
    assert "pytest" in commands[1]
