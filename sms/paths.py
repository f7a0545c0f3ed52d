"""Where the suite keeps files it generates itself (the stand-in LoRA, caches)."""
from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    return Path(os.environ.get("SMS_CACHE", Path.home() / ".cache" / "sms-suite")).expanduser()
