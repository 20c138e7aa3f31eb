"""Where btic keeps what is not configured: its per-user cache directory.

The platform's own place, from platformdirs: ``$XDG_CACHE_HOME/btic`` or
``~/.cache/btic`` on Linux, ``~/Library/Caches/btic`` on macOS,
``%LOCALAPPDATA%\\btic\\Cache`` on Windows. A service account gets its own (the
systemd units set ``XDG_CACHE_HOME=/var/cache/btic``).
"""

from __future__ import annotations

from pathlib import Path

import platformdirs


def cache_directory() -> Path:
    """btic's cache directory for this user (not created here)."""
    return Path(platformdirs.user_cache_dir("btic", appauthor=False))
