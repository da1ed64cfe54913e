"""README code blocks must run as written."""

import os
import pathlib
import re
import subprocess
import sys

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_python_examples_in_readme_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "README has no python example"
    for block in blocks:
        exec(compile(block, str(README), "exec"), {})


def test_readme_test_command_is_the_ci_command():
    ci = (README.parent / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci in README.read_text()


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_the_tour_runs_as_written(tmp_path):
    """The README's tour, verbatim, in bash from the repository root (several minutes)."""
    tour = re.search(r"## A 5-minute tour.*?```bash\n(.*?)```", README.read_text(), re.S)
    # `jaximpala` and `python` as an installed checkout has them, whether or not this one is.
    for name, target in (("jaximpala", f"{sys.executable} -m jaximpala"),
                         ("python", sys.executable)):
        (tmp_path / name).write_text(f'#!/bin/sh\nexec {target} "$@"\n')
        (tmp_path / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(README.parent)}
    done = subprocess.run(["bash", "-e", "-c", tour.group(1)], cwd=README.parent, env=env,
                          capture_output=True, text=True, timeout=3600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (README.parent / "runs" / "tour_seeds.png").exists()
