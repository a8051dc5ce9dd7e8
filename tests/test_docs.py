"""The documentation site: it builds offline with warnings as errors, its getting-started commands are the
README's, and every Python block of its pages runs (each page's blocks in order, in one namespace), with
the ``print(...)  # True`` lines checked."""

import contextlib
import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted([DOCS / "getting-started.md", *(DOCS / "concepts").glob("*.md"), *(DOCS / "tutorials").glob("*.md")])
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
CHECKED_PRINT = re.compile(r"^(\s*)print\((.+)\)\s+#\s*(True|False)\b.*$", re.MULTILINE)


def test_site_builds_strict_and_offline(tmp_path):
    config = "\n".join(line.split("#")[0] for line in (ROOT / "mkdocs.yml").read_text().splitlines())
    assert "strict: true" in config
    assert "inventories" not in config and "import:" not in config, "the build must not fetch inventories"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    site = tmp_path / "site"
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)]
    if shutil.which("unshare") and subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0:
        command = ["unshare", "-n", *command]  # no network namespace: proof that the build fetches nothing
    run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-6000:]
    api = (site / "api" / "nn" / "index.html").read_text()
    assert 'id="steerable3d.nn.conv.SteerableConv3d"' in api
    for name in ("kernel_0e_1o", "kernel_0e_2e_isosurfaces", "field_slice", "equivariance_bars"):
        assert (site / "figures" / f"{name}.png").stat().st_size > 10_000, f"figure {name} was not drawn"
    assert ":func:" not in (site / "api" / "metrics" / "index.html").read_text()


def test_getting_started_gives_the_readme_commands():
    fence = re.compile(r"```bash\n(.*?)```", re.DOTALL)
    readme = fence.search((ROOT / "README.md").read_text()).group(1)
    assert readme in (DOCS / "getting-started.md").read_text()


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_page_examples_run(page, tmp_path, monkeypatch):
    import torch

    blocks = BLOCK.findall(page.read_text())
    assert blocks, f"{page.name} has no Python example"
    monkeypatch.chdir(tmp_path)
    threads, dtype = torch.get_num_threads(), torch.get_default_dtype()
    namespace = {"__name__": "__docs__"}

    def check(value, expected):
        assert value == expected, f"{page.name}: a line documented as printing {expected} printed {value}"
        print(value)

    namespace["__check"] = check
    try:
        for block in blocks:
            source = CHECKED_PRINT.sub(lambda m: f"{m.group(1)}__check({m.group(2)}, {m.group(3)})", block)
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(source, str(page), "exec"), namespace)
    finally:
        torch.set_num_threads(threads)
        torch.set_default_dtype(dtype)
