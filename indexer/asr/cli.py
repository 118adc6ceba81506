"""``transcribe`` and ``ingest`` commands (placeholder until the ASR pipeline lands)."""

from __future__ import annotations

import argparse
from typing import Any


def register(commands: Any) -> None:
    _ = commands, argparse
