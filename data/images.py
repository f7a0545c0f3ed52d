"""Decode any image into 8-bit RGB the same way everywhere, crop and resize it."""
from __future__ import annotations

from sms.images import (  # noqa: F401  (one crop for the whole suite)
    centre_crop,
    square_resized,
    to_rgb,  # noqa: F401
)
from sms.images import decode_rgb as load_rgb  # noqa: F401  (one decoder for the whole suite)
