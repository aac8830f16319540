"""Synthetic test data with ground truth: rendered multi-camera scenes (``track-sim``) and tracklet scenes.

``render``: people drawn walking on a ground plane seen by several cameras (videos, MOT ground truth,
scene.json). ``tracklets``: tracklets with known identities and embeddings, without pixels (association tests,
benchmarks).
"""
