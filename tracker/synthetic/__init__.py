"""Synthetic test data with ground truth: rendered multi-camera scenes (``track-sim``) and tracklet scenes.

``render``: people drawn walking on a ground plane seen by several cameras (videos, MOT ground truth,
scene.json). ``composite``: the same geometry with real people (ReID data set crops) on a real background
(semi-real). ``tracklets``: tracklets with known identities and embeddings, without pixels (association tests,
benchmarks).
"""
