#!/usr/bin/env bash
# Install, then track the people in the committed sample scene and score the result against its ground truth.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/track-cameras --videos sample_videos/cam1.mp4 sample_videos/cam2.mp4 sample_videos/cam3.mp4 \
  --out runs/demo --calibration sample_videos/scene.json "$@"
.venv/bin/track-eval runs/demo --gt sample_videos/gt
