"""Review: the association's least certain decisions put to a person, answers kept as constraints.

* :mod:`~tracker.review.constraints`: the edit log as must-link / cannot-link constraints, and the run's
  association setting;
* :mod:`~tracker.review.queue`: the questions and their order (by how much an answer is expected to change
  the identities);
* :mod:`~tracker.review.reassociate`: answers, merges, splits and undo, each re-associating only the part of
  the run it affects;
* :mod:`~tracker.review.carry`: corrections kept when ``track-cameras`` runs again into the same directory;
* :mod:`~tracker.review.cli`: ``track-review``.
"""

from tracker.review.carry import carry_edits, editing
from tracker.review.cli import main
from tracker.review.constraints import active_constraints, describe, run_setting
from tracker.review.queue import Ranked, question_json, ranked
from tracker.review.reassociate import Outcome, answer, build_queue, label, merge, refill, split, undo

__all__ = [
    "Outcome",
    "Ranked",
    "active_constraints",
    "answer",
    "build_queue",
    "carry_edits",
    "describe",
    "editing",
    "label",
    "main",
    "merge",
    "question_json",
    "ranked",
    "refill",
    "run_setting",
    "split",
    "undo",
]
