"""``track-review RUN_DIR``: the review queue from the command line (the same as the app's Review page).

    track-review RUN_DIR                       one-screen summary: identities, answers, the next questions
    track-review RUN_DIR --next [--json]       the question to answer next ({"id": null} when none is left)
    track-review RUN_DIR --answer ID same|different|skip [--json]
    track-review RUN_DIR --undo [EDIT_ID]      take back the latest edit, or an older answer, merge or split
    track-review RUN_DIR --list N [--json]     the next N questions
    track-review RUN_DIR --rebuild             make the queue again from a fresh association of the whole run

``--next --json`` prints ``{"id", "a": {"camera", "track_id", "global_id", "samples": [[frame, x, y, w, h],
...]}, "b": {...}, "distance", "reason"}`` (``samples``: up to 5 frames spread over the tracklet with its box,
MOT pixel convention). ``--answer`` records the answer in the edit log, re-associates what it affects and
re-exports the MOT files, identities.csv and mtmc.txt. The queue is made on first use (one association of the
whole run) and kept in the results store.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tracker.errors import InputError, cli_entry
from tracker.export import export_run, results_path
from tracker.review.carry import editing
from tracker.review.constraints import active_edits, describe, run_setting
from tracker.review.queue import TITLES, name, question_json, ranked
from tracker.review.reassociate import REPLIES, answer, build_queue, refill, require_setting, undo
from tracker.store import ResultsStore


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="track-review",
        description="Review a run's least certain identity decisions: the question most likely to change "
        "the identities first; each answer is kept as a constraint and the exports are rewritten.",
    )
    p.add_argument("run_dir", type=Path, help="a run directory written by track-cameras")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--next", action="store_true", help="print the question to answer next")
    what.add_argument(
        "--answer", nargs=2, metavar=("ID", "REPLY"), help="answer question ID: same, different or skip"
    )
    what.add_argument(
        "--undo",
        nargs="?",
        const=-1,
        type=int,
        metavar="EDIT_ID",
        help="take back the latest edit, or the older answer / merge / split EDIT_ID",
    )
    what.add_argument("--list", type=int, metavar="N", help="print the next N questions")
    what.add_argument("--rebuild", action="store_true", help="make the queue again from a fresh association")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    return p


def run_cli(argv: list[str] | None = None) -> int:
    """``track-review`` without the one-line error wrapper (for scripts that call it in-process): prints to
    stdout, raises InputError for bad input."""
    args = _parser().parse_args(argv)
    path = results_path(args.run_dir)
    if args.answer is None and args.undo is None:
        with ResultsStore.open(path) as store:
            return _show(store, args)
    if args.answer:
        qid, reply = args.answer
        if not qid.isdigit():
            raise InputError(f"--answer {qid}: a question id is a whole number (see --next)")
        if reply not in REPLIES:
            raise InputError(f"--answer {qid} {reply}: the answer is one of {', '.join(REPLIES)}")
    with editing(args.run_dir, "track-review") as store:  # a correction: never beside a re-run
        if args.answer:
            outcome = answer(store, int(args.answer[0]), args.answer[1])
        else:
            outcome = undo(store, None if args.undo == -1 else args.undo)
        identities = store.count_identities()
    written = export_run(args.run_dir)
    if args.json:
        print(
            json.dumps(
                {
                    "edit": outcome.edit_id,
                    "message": outcome.message,
                    "identities": identities,
                    "exported": [str(p) for p in written],
                }
            )
        )
    else:
        print(f"{outcome.message} {identities} identities; re-exported {len(written)} files.")
    return 0


def _show(store: ResultsStore, args: argparse.Namespace) -> int:
    require_setting(store)
    build_queue(store, force=args.rebuild)
    refill(store)
    threshold = run_setting(store).cfg.threshold
    if args.next:
        top = ranked(store, threshold, limit=1)
        q = top[0].question if top else None
        if args.json:
            print(json.dumps(question_json(store, q)))
        elif q is None:
            print("Nothing left to ask.")
        else:
            print(_question_text(store, top[0]))
        return 0
    if args.list is not None:
        if args.list < 1:
            raise InputError(f"--list {args.list}: must be 1 or more")
        items = ranked(store, threshold, limit=args.list)
        if args.json:
            print(
                json.dumps(
                    [question_json(store, r.question) | {"expected_change": r.priority} for r in items]
                )
            )
        else:
            print(_table(items))
        return 0
    print(summary(store, args.run_dir))
    return 0


def _question_text(store: ResultsStore, r) -> str:
    q = r.question
    ga, gb = r.global_ids
    lines = [
        f"Question {q.id}: {TITLES[q.kind]}.",
        f"  a: {name(q.a)} (identity {ga}), b: {name(q.b)} (identity {gb})",
        f"  {q.reason}",
        f"  Answer: track-review {store.path.parent} --answer {q.id} same|different|skip",
    ]
    return "\n".join(lines)


def _table(items) -> str:
    if not items:
        return "  (no open question)"
    rows = [("id", "kind", "a", "b", "distance", "boxes at stake", "chance it changes")]
    for r in items:
        q = r.question
        rows.append(
            (
                str(q.id),
                q.kind.replace("_", " "),
                f"{name(q.a)} ({r.global_ids[0]})",
                f"{name(q.b)} ({r.global_ids[1]})",
                "-" if q.distance is None else f"{q.distance:.2f}",
                str(r.change),
                f"{r.p_flip:.0%}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows)


def summary(store: ResultsStore, run_dir: Path) -> str:
    """The one-screen summary: the run, the answers so far, the next questions, warnings."""
    setting = run_setting(store)
    counts = store.counts()
    multi = store.count_identities(min_cameras=2)
    answers = [e for e in active_edits(store) if e.action == "answer"]
    by = {r: sum(1 for e in answers if e.params["answer"] == r) for r in REPLIES}
    items = ranked(store, setting.cfg.threshold)
    lines = [
        f"Run {run_dir}: {counts['identities']} identities ({multi} seen by 2 or more cameras), "
        f"{counts['tracklets']} tracklets, {counts['cameras']} cameras.",
        f"Review: {len(answers)} answers ({by['same']} same, {by['different']} different, "
        f"{by['skip']} skipped); {len(items)} questions open.",
        "Next questions (the answer most likely to change the identities first):",
        _table(items[:8]),
        f"Answer one: track-review {run_dir} --answer ID same|different|skip   (--next --json for scripts)",
    ]
    recent = [e for e in store.edits() if not e.undone][-3:]
    if recent:
        lines.append("Latest edits: " + "; ".join(f"{e.id}: {describe(e)}" for e in recent))
    stale = store.run_value("stale_edits", {})
    for eid, reason in sorted(stale.items(), key=lambda item: int(item[0])):
        lines.append(f"Warning: edit {eid} no longer applies: {reason}")
    lines += [f"Warning: {w}" for w in setting.warnings]
    return "\n".join(lines)


main = cli_entry("track-review")(run_cli)

if __name__ == "__main__":
    sys.exit(main())
