"""The results store: ``RUN_DIR/results.sqlite``, the one place a run's results live.

Every other output of a run (MOT files, ``identities.csv``, the MTMC file) is an export of this store
(:mod:`tracker.export`), and the review UI reads and corrects it. Three jobs, three modules:
:mod:`~tracker.store.write` (the pipeline writes a run once, :func:`write_store`),
:mod:`~tracker.store.read` (queries) and :mod:`~tracker.store.edit` (corrections in an undoable edit log);
:mod:`~tracker.store.schema` holds the file's layout, versions and migrations.

Tables (schema version :data:`SCHEMA_VERSION`, kept in ``PRAGMA user_version``):

* ``run``: key/value JSON (``meta`` = the run.json dict, ``associated`` = whether association gave ids).
* ``cameras``: one row a camera in pipeline order (``idx`` 0-based), homography as JSON or NULL.
* ``tracklets``: one row a per-camera track with its global id, span and float32 embedding blob.
* ``crops``: JPEG crops of each tracklet with the detector's box, score and quality.
* ``track_boxes``: one row a track's box in a frame (camera, frame, common-clock time, track id, global id,
  x, y, w, h, conf): the Kalman-filtered box after each matched detection, and rows interpolated across short
  gaps (conf 0). These, not the raw detections, are what the MOT files report, as MOTChallenge trackers do;
  the detector's own boxes are kept with the crops. Indexed on (camera, frame), global_id, (camera, track_id).
* ``identities``: one row a global identity with its label and cached statistics (cameras, span, counts)
  so that sorting and filtering thousands of identities happens in SQL.
* ``evidence``: why tracklets were joined (from association, or "merged by user").
* ``edit_log``: corrections (merge, split, label, review answers, reverts) with what is needed to undo them.
* ``questions``: the review queue (schema 3): pairs of tracklets put to a reviewer, made and ordered by
  :mod:`tracker.review`.

Every tracklet belongs to an identity: tracklets that association left at ``global_id = -1`` get a new
identity of their own, so the review UI can show and correct any run. MOT files use the global ids when
association ran or once a correction has been made (:meth:`ResultsStore.uses_global_ids`), else the
per-camera track ids.
"""

from tracker.store.codec import decode_image, encode_jpeg
from tracker.store.edit import Change, ResultsStore
from tracker.store.read import (
    SORT_KEYS,
    CropChoice,
    Edit,
    EvidenceRow,
    FrameBoxes,
    Identity,
    Question,
    TrackletInfo,
)
from tracker.store.schema import CAMERA_SEPARATOR, MIGRATIONS, SCHEMA_VERSION
from tracker.store.write import write_store

__all__ = [
    "CAMERA_SEPARATOR",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "SORT_KEYS",
    "Change",
    "CropChoice",
    "Edit",
    "EvidenceRow",
    "FrameBoxes",
    "Identity",
    "Question",
    "ResultsStore",
    "TrackletInfo",
    "decode_image",
    "encode_jpeg",
    "write_store",
]
