"""The package as it is installed: every module and every file of mappings/ is in the wheel, so
an installed Earshot finds its index definitions without a checkout."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from indexer.settings import PROJECT_ROOT


def test_the_wheel_carries_every_module_and_mapping(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    # A copy, so the build's egg-info and build/ never land in the checkout.
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(PROJECT_ROOT / name, source / name)
    for name in ("indexer", "api", "mappings"):
        shutil.copytree(
            PROJECT_ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__")
        )
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path / "dist"), str(source)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("earshot-*.whl")
    inside = set(zipfile.ZipFile(wheel).namelist())

    mappings = {f"indexer/mappings/{p.name}" for p in (PROJECT_ROOT / "mappings").glob("*.json")}
    modules = {
        str(p.relative_to(PROJECT_ROOT))
        for package in ("indexer", "api")
        for p in (PROJECT_ROOT / package).rglob("*.py")
    }
    assert mappings
    assert mappings <= inside, sorted(mappings - inside)
    assert modules <= inside, f"not packaged (add to pyproject.toml): {sorted(modules - inside)}"

    # Installed without a checkout beside it, the package still reads its definitions.
    installed = tmp_path / "installed"
    zipfile.ZipFile(wheel).extractall(installed)
    read = subprocess.run(
        [sys.executable, "-c", "from indexer.index import definitions as d; "
         "print(d.MAPPINGS_DIR, d.schema_version(), sorted(d.read_definition('trackers.json')))"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(installed), "PYTHONNOUSERSITE": "1"},
    )  # fmt: skip
    assert read.returncode == 0, read.stderr
    assert str(installed / "indexer" / "mappings") in read.stdout
    assert "['mappings', 'settings']" in read.stdout
