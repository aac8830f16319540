"""``python -m tracker.synthetic`` is ``track-sim``."""

from tracker.synthetic.cli import main

main()
