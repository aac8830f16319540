"""Re-identification: appearance embeddings of person crops and tracklets.

``build_embedder(cfg)`` gives an :class:`Embedder` (MGN, an ONNX or OpenVINO network, or the offline
histogram descriptor);
``tracklet_embedding`` and ``crop_quality`` turn crop embeddings into one vector per tracklet.
Importing this package is light: torch is only imported when an MGN embedder is built.
"""

from tracker.reid.aggregate import crop_quality, tracklet_embedding
from tracker.reid.config import ReidConfig
from tracker.reid.embedder import Embedder, build_embedder

__all__ = ["Embedder", "ReidConfig", "build_embedder", "crop_quality", "tracklet_embedding"]
