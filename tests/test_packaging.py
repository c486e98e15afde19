"""Installing the project: `pip install .` into a fresh virtual environment puts only `asr` into site-packages."""
from __future__ import annotations

import shutil
import subprocess
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_pip_install_leaves_no_top_level_export_package(tmp_path):
    src = tmp_path / "src"  # only what the build reads: pip builds in the source tree, which stays clean this way
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for package in ("asr", "export"):
        shutil.copytree(ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    env = tmp_path / "venv"
    venv.create(env, with_pip=True)
    python = env / "bin" / "python"
    r = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(src)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    top_level = {p.name for p in site.iterdir() if not p.name.endswith((".dist-info", ".pth")) and p.name != "__pycache__"}
    assert "asr" in top_level and (site / "asr" / "export" / "format.py").is_file()
    assert "export" not in top_level, top_level
    assert not (top_level - {"asr", "pip", "setuptools", "_distutils_hack", "pkg_resources", "distutils-precedence.pth"})
