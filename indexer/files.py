"""Finding input files: the one rule for what a named path stands for.

A named file is taken as it is; a named directory stands for the files below it whose suffix
is wanted, skipping anything hidden *below* it (a part of the path under the directory that
starts with '.'), so a directory that is itself inside a hidden one (``.cache/transcripts``)
still yields its files. Used by the loader (transcripts) and the ASR batch (recordings).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Expansion:
    """What the named paths stand for, in a stable order."""

    files: list[Path] = field(default_factory=list)
    unwanted: list[Path] = field(default_factory=list)  # under a directory, wrong suffix
    missing: list[Path] = field(default_factory=list)  # named, but not there
    empty: list[Path] = field(default_factory=list)  # named directories that yielded no file


def is_hidden_below(child: Path, directory: Path) -> bool:
    return any(part.startswith(".") for part in child.relative_to(directory).parts)


def expand_paths(paths: Iterable[Path], suffixes: Collection[str]) -> Expansion:
    """Files named directly, and files with one of ``suffixes`` (lower case, with the dot)
    found under named directories, hidden ones below them left out."""
    found = Expansion()
    for path in paths:
        if path.is_dir():
            before = len(found.files)
            for child in sorted(path.rglob("*")):
                if not child.is_file() or is_hidden_below(child, path):
                    continue
                if child.suffix.lower() in suffixes:
                    found.files.append(child)
                else:
                    found.unwanted.append(child)
            if len(found.files) == before:
                found.empty.append(path)
        elif path.exists():
            found.files.append(path)
        else:
            found.missing.append(path)
    return found
