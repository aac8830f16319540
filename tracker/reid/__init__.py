"""Re-identification: appearance embeddings of person crops and tracklets.

``build_embedder(cfg)`` gives an :class:`Embedder` (MGN, an ONNX or OpenVINO network, or the offline
histogram descriptor);
``tracklet_embedding`` turns a tracklet's crop embeddings into one vector.
Importing this package is light: torch is only imported when an MGN embedder is built.
"""

from tracker.reid.aggregate import tracklet_embedding
from tracker.reid.embedder import Embedder, build_embedder, resolve_embedder

__all__ = ["Embedder", "build_embedder", "resolve_embedder", "tracklet_embedding"]
