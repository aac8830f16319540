"""Images in the store: crops kept as JPEG, and decoding of encoded images (sized before decoding)."""

from __future__ import annotations

import numpy as np

from tracker.errors import InputError

JPEG_QUALITY = 90


def encode_jpeg(image: np.ndarray) -> bytes:
    """JPEG bytes of a ``uint8 (H, W, 3)`` BGR image."""
    import cv2

    if image.ndim != 3 or image.shape[2] != 3 or image.size == 0 or image.dtype != np.uint8:
        raise ValueError(f"a crop must be a non-empty uint8 (H, W, 3) image, got {image.dtype} {image.shape}")
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(image), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError(f"cannot encode an image of shape {image.shape} as JPEG")
    return buf.tobytes()


def decode_image(data: bytes) -> np.ndarray | None:
    """``uint8 (H, W, 3)`` BGR image from encoded bytes (JPEG, PNG, BMP, WebP, TIFF), or None when they are
    not one, are damaged, or claim more pixels than :data:`tracker.video.MAX_PIXELS` (read from the header,
    before decoding). :func:`tracker.video.decode_image_bytes` says which, as an InputError."""
    from tracker.video import decode_image_bytes

    try:
        return decode_image_bytes(data, "image")
    except InputError:
        return None
