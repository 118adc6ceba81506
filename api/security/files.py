"""File confinement: a recording's URI may only name a file inside the configured audio root."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from fastapi import HTTPException

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")


def confined_file(uri: str, root: Path) -> Path:
    """The local file a recording URI names, provided it lies inside ``root``.

    Accepts ``file://`` URIs (percent-decoded; host empty or ``localhost``) and plain paths
    (relative ones are taken from ``root``). Symlinks and ``..`` are resolved first, so neither
    leads out. Raises HTTPException: 403 for anything outside ``root`` or not a local file,
    404 when the file is missing. The server's paths are never put in a message.
    """
    scheme = _SCHEME.match(uri)
    if scheme is None:
        raw = uri
    elif scheme.group(1).lower() == "file":
        parts = urlsplit(uri)
        if parts.netloc not in ("", "localhost"):
            raise HTTPException(status_code=403, detail="the recording is on another host")
        raw = unquote(parts.path)
    else:
        raise HTTPException(
            status_code=403,
            detail=f"only local recordings are served; this one is a '{scheme.group(1)}:' URI",
        )
    if not raw or "\x00" in raw:
        raise HTTPException(status_code=403, detail="the recording's path is not valid")
    try:
        base = root.resolve(strict=True)
        target = (base / raw).resolve()  # an absolute raw replaces base
    except (OSError, RuntimeError) as exc:  # a symlink loop, an unreadable root
        raise HTTPException(
            status_code=403, detail="the recording's path cannot be resolved"
        ) from exc
    if not target.is_relative_to(base):
        raise HTTPException(status_code=403, detail="the recording lies outside the audio root")
    try:
        found = target.is_file()
    except OSError:  # a name past the system's limits (ENAMETOOLONG), an unreadable directory
        found = False
    if not found:
        raise HTTPException(status_code=404, detail="the recording is not in the audio store")
    return target
