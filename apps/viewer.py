"""Review UI over a run directory: see, search and correct global identities.

Start it with ``track-view RUN_DIR_or_RUNS_DIR`` (which sets ``TRACK_VIEW_PATH`` and runs Streamlit bound
to 127.0.0.1). Pages: Overview, Review (the association's least certain decisions, one question at a time,
keys S / D / K, U to undo), Identities (gallery), Identity detail, Cameras, Search, Corrections (merge, take
out, label, picked by their pictures). Every answer and correction goes into the store's edit log and the
exports (MOT files, identities.csv, mtmc.txt) are written again at once.

Everything shown comes from ``RUN_DIR/results.sqlite`` and files inside the run directory (run.json,
metrics.json, videos/<camera>.mp4), plus the camera sources the store records; no page reads a path a
user typed. Bad input (no run, no database, an old schema, an upload that is not an image) is one
``st.error`` line.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from tracker import review
from tracker.annotate import draw_boxes
from tracker.errors import InputError
from tracker.export import export_run
from tracker.review.queue import TITLES
from tracker.search import embed_query, run_embedder, search
from tracker.store import SORT_KEYS, ResultsStore, decode_image
from tracker.view import DB_NAME, PATH_ENV, find_runs, read_frame, run_file

PAGES = ("Overview", "Review", "Identities", "Identity detail", "Cameras", "Search", "Corrections")
GALLERY_PAGE_SIZE = 24
GALLERY_COLUMNS = 4
CAMERA_COLUMNS = 2
THUMB_WIDTH = 560  # overview thumbnails (shown at half this)
DRAW_WIDTH = 640  # camera frames are drawn at this width, with lines thick enough to read when shown small
UPLOAD_TYPES = ["jpg", "jpeg", "png", "bmp", "webp"]
STRIP_HEIGHT = 200  # review and correction crops: tall enough to judge clothing
CARD_HEIGHT = 150  # gallery crops
STRIP_CROPS = 6  # crops per tracklet in a review strip
GAP = 10  # pixels between the crops of a strip
METRIC_KEYS = ("HOTA", "IDF1", "MOTA", "IDSW")


# ---------------------------------------------------------------- shared helpers


@st.cache_data(max_entries=256, show_spinner=False)
def camera_frame(source: str, index: int) -> np.ndarray | None:
    """A camera source's frame (BGR), cached across reruns; None when the source cannot be read."""
    return read_frame(source, index)


@st.cache_resource(max_entries=4, show_spinner="Loading the run's embedder ...")
def cached_embedder(reid_meta_json: str):
    """The embedder of a run (see tracker.search.run_embedder), built once per distinct configuration."""
    return run_embedder(json.loads(reid_meta_json))


def goto(page: str, **state) -> None:
    """Button callback: switch page and set session values (runs before the next script run)."""
    st.session_state["page"] = page
    st.session_state.update(state)


def to_width(image: np.ndarray, width: int) -> tuple[np.ndarray, float]:
    """``image`` resized to ``width`` columns and the scale factor applied."""
    import cv2

    h, w = image.shape[:2]
    scale = width / w
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(image, (width, max(1, round(h * scale))), interpolation=interp), scale


def identity_picker(store: ResultsStore, key: str, label: str = "Global id") -> int | None:
    """A number input for a global id, defaulting to the first identity; None when the run has none."""
    first = store.identities(limit=1)
    if not first:
        st.info("This run has no identities.")
        return None
    st.session_state.setdefault(key, first[0].global_id)
    return int(st.number_input(label, min_value=0, step=1, key=key))


def strip(images: list[np.ndarray], height: int, gap: int = GAP) -> np.ndarray | None:
    """Crops side by side, each scaled to ``height`` rows, ``gap`` pixels of page-grey between them: one
    ``uint8 (height, W, 3)`` BGR image (None for no crops)."""
    import cv2

    parts = []
    for img in images:
        if img is None or not img.size:
            continue
        h, w = img.shape[:2]
        scaled = cv2.resize(img, (max(1, round(w * height / h)), height), interpolation=cv2.INTER_CUBIC)
        if parts:
            parts.append(np.full((height, gap, 3), 245, np.uint8))
        parts.append(scaled)
    return np.concatenate(parts, axis=1) if parts else None


def identity_strip(store: ResultsStore, global_id: int, height: int = STRIP_HEIGHT, per_track: int = 2):
    """The crops of an identity for picking it: the best crops of each of its tracklets (one person, whole
    body), at most 8, as one strip (None when it has no crops)."""
    crops = []
    for t in store.tracklet_infos(global_id):
        crops += [c.crop.image for c in store.crop_choices(t.camera, t.track_id, per_track)]
        if len(crops) >= 8:
            break
    return strip(crops[:8], height)


def identity_name(store: ResultsStore, global_id: int) -> str:
    """``#5 courier · cam1, cam2 · 12.0–40.5 s`` (or the id alone when it is gone)."""
    ident = store.identity(global_id)
    return f"#{global_id}" if ident is None else ident_words(ident)


def ident_words(ident) -> str:
    """An :class:`~tracker.store.Identity` in words: id, label, cameras, time span."""
    label = f" {ident.label}" if ident.label else ""
    cams = ", ".join(ident.cameras)
    return f"#{ident.global_id}{label} · {cams} · {ident.first_time:.1f}–{ident.last_time:.1f} s"


def draw_identities(image: np.ndarray, xyxy: np.ndarray, ids: list[int], labels: list[str]) -> np.ndarray:
    """Boxes (N, 4) xyxy on a copy of ``image`` resized to DRAW_WIDTH, drawn as in the annotated videos but
    with lines and labels thick enough to read in a half-page column."""
    out, scale = to_width(image, DRAW_WIDTH)
    return draw_boxes(out, np.asarray(xyxy) * scale, ids, labels, size=1.5)


def attempt(action, *args):
    """Run a correction; an InputError becomes one st.error line and None, so the page still renders."""
    try:
        return action(*args)
    except InputError as exc:
        st.error(str(exc))
        return None


DETECTOR_WORDS = {
    "yolo": "YOLO person detector (ultralytics)",
    "motion": "motion detector (OpenCV background subtraction, for static cameras)",
    "hog": "HOG pedestrian detector (OpenCV)",
    "file": "detections read from MOT files",
    "detections": "detections read from MOT files",
}
EMBEDDER_WORDS = {
    "mgn": "MGN re-identification network",
    "histogram": "colour and texture histograms (offline descriptor, no network)",
}


def detector_words(info) -> str:
    """A detector's run.json entry in words: what it is, then its weights and device when known."""
    if not isinstance(info, dict):
        return DETECTOR_WORDS.get(str(info), str(info))
    name = str(info.get("detector") or info.get("name") or "unknown")
    extra = [
        f"{k} {Path(str(v)).name if k == 'weights' else v}"
        for k, v in info.items()
        if k in ("weights", "device") and v
    ]
    return DETECTOR_WORDS.get(name, name) + (f" ({', '.join(extra)})" if extra else "")


def embedder_words(info) -> str:
    """An embedder's run.json entry in words."""
    if not info:
        return "none: identities are matched by time and place only"
    if not isinstance(info, dict):
        return str(info)
    name = str(info.get("embedder"))
    extra = []
    if info.get("weights"):
        extra.append(f"weights {Path(str(info['weights'])).name}")
    if info.get("dim"):
        extra.append(f"{info['dim']}-d vectors")
    if info.get("device"):
        extra.append(f"on {info['device']}")
    return EMBEDDER_WORDS.get(name, name) + (f" ({', '.join(extra)})" if extra else "")


def seconds(t: float) -> str:
    return f"{t:.2f} s"


# ---------------------------------------------------------------- pages


def page_overview(store: ResultsStore, run_dir: Path) -> None:
    meta = store.meta()
    counts = store.counts()
    st.header(f"Run {run_dir.name}")
    cols = st.columns(4)
    for col, key in zip(cols, ("cameras", "tracklets", "identities", "boxes")):
        col.metric(key.capitalize(), f"{counts[key]:,}")
    st.caption(
        (
            "Global ids from cross-camera association."
            if store.associated()
            else "Association did not run: every tracklet is its own identity, MOT files use track ids."
        )
        + (f" Created {meta['created']}." if meta.get("created") else "")
    )

    cams = store.cameras()
    rows = [
        {
            "camera": c.name,
            "resolution": f"{c.width}x{c.height}",
            "fps": round(c.fps, 2),
            "offset (s)": c.offset,
            "frames": c.frames_total,
            "processed": c.frames_processed,
            "duration (s)": round((c.frames_total or c.frames_processed) / c.fps, 1) if c.fps else None,
            "calibrated": c.homography is not None,
            "source": c.source,
        }
        for c in cams
    ]
    st.subheader("Cameras")
    st.dataframe(pd.DataFrame(rows), hide_index=True)
    thumbs = st.columns(max(1, min(len(cams), 4)))
    for i, cam in enumerate(cams):
        middle = max(1, (cam.frames_total or cam.frames_processed or 2) // 2)
        image = camera_frame(cam.source, middle)
        with thumbs[i % len(thumbs)]:
            if image is None:
                st.caption(f"{cam.name}: source not readable here")
            else:
                st.image(
                    to_width(image, THUMB_WIDTH)[0],
                    channels="BGR",
                    width=280,
                    caption=f"{cam.name} frame {middle}",
                )

    st.subheader("Models")
    detectors = meta.get("detectors") or {}
    groups: dict[str, list[str]] = {}
    for cam, info in detectors.items():
        groups.setdefault(detector_words(info), []).append(cam)
    lines = [f"{words} on {', '.join(cams)}" for words, cams in groups.items()] or ["unknown"]
    st.markdown("**Detector:** " + "; ".join(lines))
    if meta.get("detector_fallback"):
        st.caption(f"The detector fell back: {meta['detector_fallback']}")
    st.markdown("**Appearance:** " + embedder_words(meta.get("embedder")))
    if meta.get("embedder_fallback"):
        st.caption(f"The embedder fell back: {meta['embedder_fallback']}")
    for w in meta.get("warnings") or []:
        st.warning(w.get("message", "") if isinstance(w, dict) else w)

    run_json = run_file(run_dir, "run.json")
    if run_json.is_file():
        timings = json.loads(run_json.read_text()).get("timings")
        if timings:
            st.subheader("Timings")
            st.table(
                pd.DataFrame({"stage": list(timings), "seconds": [f"{v:.1f}" for v in timings.values()]})
            )
    metrics = run_file(run_dir, "metrics.json")
    if metrics.is_file():
        st.subheader("Metrics")
        data = json.loads(metrics.read_text())
        rows = [
            ("all cameras as one (multi-camera)", data.get("ALL")),
            ("per-camera pooled", data.get("COMBINED")),
        ]
        rows += [(cam, m) for cam, m in (data.get("cameras") or {}).items()]
        table = [
            {"": name, **{k: (f"{m[k]:.1%}" if k != "IDSW" else str(m[k])) for k in METRIC_KEYS if k in m}}
            for name, m in rows
            if m
        ]
        st.table(pd.DataFrame(table).set_index(""))
        st.caption(
            "HOTA, IDF1 and MOTA as TrackEval computes them (track-eval); IDSW: identity switches. "
            "The first row scores all cameras as one sequence, so a person must keep one id across cameras."
        )


def page_identities(store: ResultsStore, run_dir: Path) -> None:
    st.header("Identities")
    cams = [c.name for c in store.cameras()]
    c = st.columns([2, 1, 1, 2, 2, 1.3])
    camera = c[0].selectbox("Seen by camera", ["(any)"] + cams, key="g_camera")
    min_cams = c[1].number_input("Min cameras", 1, max(1, len(cams)), 1, key="g_min_cameras")
    min_dur = c[2].number_input("Min seconds", 0.0, None, 0.0, 1.0, key="g_min_duration")
    text = c[3].text_input("Label or id", key="g_text")
    sort = c[4].selectbox("Sort by", SORT_KEYS, key="g_sort")
    desc = c[5].checkbox("Descending", key="g_desc")
    filters = dict(
        camera=None if camera == "(any)" else camera,
        min_cameras=int(min_cams),
        min_duration=float(min_dur),
        text=text.strip() or None,
    )
    total = store.count_identities(**filters)
    pages = max(1, math.ceil(total / GALLERY_PAGE_SIZE))
    if st.session_state.get("g_page", 1) > pages:
        st.session_state["g_page"] = pages
    page = int(st.number_input(f"Page (of {pages})", 1, pages, 1, key="g_page"))
    idents = store.identities(
        sort=sort, descending=desc, limit=GALLERY_PAGE_SIZE, offset=(page - 1) * GALLERY_PAGE_SIZE, **filters
    )
    st.caption(f"{total:,} identities match; showing {len(idents)}.")
    crops = store.best_crops([i.global_id for i in idents])
    for start in range(0, len(idents), GALLERY_COLUMNS):
        cols = st.columns(GALLERY_COLUMNS)
        for col, ident in zip(cols, idents[start : start + GALLERY_COLUMNS]):
            with col.container(border=True):
                st.markdown(f"**#{ident.global_id}** {ident.label}")
                shown = crops.get(ident.global_id, [])
                picture = strip([img for _, img in shown[:3]], CARD_HEIGHT)
                if picture is not None:
                    st.image(picture, channels="BGR", caption=" · ".join(cam for cam, _ in shown[:3]))
                st.caption(
                    f"{ident.num_cameras} camera(s) · {ident.num_tracklets} tracklet(s) · "
                    f"{ident.first_time:.1f}–{ident.last_time:.1f} s"
                )
                b1, b2 = st.columns(2)
                b1.button(
                    "Details",
                    key=f"open_{ident.global_id}",
                    on_click=goto,
                    args=("Identity detail",),
                    kwargs={"identity": ident.global_id},
                    width="stretch",
                )
                b2.button(
                    "Search",
                    key=f"find_{ident.global_id}",
                    on_click=goto,
                    args=("Search",),
                    kwargs={"s_mode": "Pick a stored crop", "s_identity": ident.global_id},
                    width="stretch",
                )
                st.button(
                    "Correct",
                    key=f"fix_{ident.global_id}",
                    on_click=goto,
                    args=("Corrections",),
                    kwargs={"c_keep": ident.global_id},
                    width="stretch",
                )


def page_identity(store: ResultsStore, run_dir: Path) -> None:
    import altair as alt

    gid = identity_picker(store, "identity")
    if gid is None:
        return
    ident = store.identity(gid)
    if ident is None:
        st.warning(f"There is no identity {gid} in this run (merged away, or never there).")
        return
    st.header(f"Identity {gid}" + (f": {ident.label}" if ident.label else ""))
    st.caption(
        f"Cameras {', '.join(ident.cameras)} · {ident.num_tracklets} tracklet(s) · "
        f"{seconds(ident.first_time)} to {seconds(ident.last_time)}"
    )
    cams = store.cameras()
    fps = {c.name: c.fps for c in cams}
    tracklets = store.tracklet_infos(gid)
    chart_rows = [
        {
            "camera": t.camera,
            "track": f"{t.camera}/{t.track_id}",
            "start": t.first_time,
            "end": max(t.last_time, t.first_time + 1.0 / fps.get(t.camera, 25.0)),
            "frames": f"{t.first_frame}–{t.last_frame}",
        }
        for t in tracklets
    ]
    chart = (
        alt.Chart(pd.DataFrame(chart_rows))
        .mark_bar(height=16)
        .encode(
            x=alt.X("start:Q", title="time on the common clock (s)"),
            x2="end:Q",
            y=alt.Y("camera:N", sort=[c.name for c in cams], title=None),
            color=alt.Color("track:N", legend=None),
            tooltip=["track", "start", "end", "frames"],
        )
    )
    st.subheader("Timeline")
    st.altair_chart(chart, width="stretch")

    st.button(
        "Correct this identity", key="d_fix", on_click=goto, args=("Corrections",), kwargs={"c_keep": gid}
    )
    st.subheader("Crops")
    for t in tracklets:
        choices = store.crop_choices(t.camera, t.track_id, STRIP_CROPS)
        st.markdown(
            f"**{t.camera} / track {t.track_id}**: frames {t.first_frame}–{t.last_frame}, "
            f"{seconds(t.first_time)}–{seconds(t.last_time)}"
        )
        picture = strip([c.crop.image for c in choices], CARD_HEIGHT)
        if picture is None:
            st.caption("no crops stored")
        else:
            st.image(picture, channels="BGR", caption=" · ".join(f"frame {c.crop.frame}" for c in choices))

    st.subheader("Why these tracklets are one person")
    evidence = store.evidence(gid)
    if not evidence:
        st.caption("No evidence: a single tracklet, or association did not run.")
    for e in evidence:
        distance = "" if e.distance is None else f" · distance {e.distance:.2f}"
        st.markdown(f"**{e.a[0]} / track {e.a[1]} and {e.b[0]} / track {e.b[1]}**{distance}  \n{e.reason}")


def shift_time(delta: float, lo: float, hi: float) -> None:
    st.session_state["cam_time"] = min(hi, max(lo, st.session_state.get("cam_time", lo) + delta))


def page_cameras(store: ResultsStore, run_dir: Path) -> None:
    st.header("Cameras")
    cams = store.cameras()
    if not cams:
        st.info("This run has no cameras.")
        return
    lo, hi = store.time_range()
    step = 1.0 / max(c.fps for c in cams)
    hi = max(hi, lo + step)
    st.session_state.setdefault("cam_time", lo)
    st.session_state["cam_time"] = min(hi, max(lo, float(st.session_state["cam_time"])))
    b = st.columns(4)
    steps = [("◀ 1 s", -1.0), ("◀ frame", -step), ("frame ▶", step), ("1 s ▶", 1.0)]
    for col, (label, delta) in zip(b, steps):
        col.button(label, key=f"step_{label}", on_click=shift_time, args=(delta, lo, hi), width="stretch")
    t = st.slider("Time on the common clock (s)", lo, hi, step=step, key="cam_time", format="%.2f")
    boxes = store.boxes_at(t)
    labels = {}
    for g in {int(g) for fb in boxes for g in fb.global_ids}:
        ident = store.identity(g)
        labels[g] = f"{g} {ident.label}" if ident and ident.label else str(g)
    info = {c.name: c for c in cams}
    for start in range(0, len(boxes), CAMERA_COLUMNS):
        cols = st.columns(CAMERA_COLUMNS)
        for col, fb in zip(cols, boxes[start : start + CAMERA_COLUMNS]):
            cam = info[fb.camera]
            image = None if fb.frame is None else camera_frame(cam.source, fb.frame)
            if image is None:
                image = np.full((cam.height, cam.width, 3), 48, np.uint8)
            if fb.frame is None:
                col.image(
                    to_width(image, DRAW_WIDTH)[0],
                    channels="BGR",
                    width="stretch",
                    caption=f"{fb.camera} · not recording at {t:.2f} s",
                )
                continue
            xyxy = np.c_[fb.xywh[:, :2], fb.xywh[:, :2] + fb.xywh[:, 2:]]
            ids = fb.global_ids.tolist()
            drawn = draw_identities(image, xyxy, ids, [labels[g] for g in ids])
            note = "" if fb.box_frame in (None, fb.frame) else f" (boxes of frame {fb.box_frame})"
            col.image(
                drawn,
                channels="BGR",
                width="stretch",
                caption=f"{fb.camera} · frame {fb.frame}{note} · {len(ids)} box(es)",
            )
    videos = [(c.name, run_file(run_dir, "videos", f"{c.name}.mp4")) for c in cams]
    videos = [(name, path) for name, path in videos if path.is_file()]
    if videos:
        st.subheader("Annotated videos")
        for name, path in videos:
            with st.expander(name):
                st.video(str(path))


def page_search(store: ResultsStore, run_dir: Path) -> None:
    st.header("Search")
    meta = store.meta()
    if not meta.get("embedder"):
        st.error("This run used no appearance embedder (reid.embedder: none), so it cannot be searched.")
        return
    mode = st.radio("Query", ["Upload a crop", "Pick a stored crop"], horizontal=True, key="s_mode")
    image = None
    if mode == "Upload a crop":
        upload = st.file_uploader("An image of the person", type=UPLOAD_TYPES, key="s_upload")
        if upload is not None:
            image = decode_image(upload.getvalue())
            if image is None:
                st.error(f"{upload.name}: not an image (JPEG, PNG, BMP or WebP expected)")
                return
    else:
        gid = identity_picker(store, "s_identity", "Identity")
        tracklets = [] if gid is None else store.tracklet_infos(gid)
        if gid is not None and not tracklets:
            st.warning(f"There is no identity {gid} in this run.")
        if tracklets:
            key = st.selectbox(
                "Tracklet",
                [t.key for t in tracklets],
                key="s_tracklet",
                format_func=lambda k: f"{k[0]} / track {k[1]}",
            )
            crops = store.crops(*key)
            if not crops:
                st.warning("This tracklet has no stored crops.")
            else:
                i = st.slider("Crop", 1, len(crops), 1, key="s_crop") if len(crops) > 1 else 1
                image = crops[i - 1].image
    if image is None:
        st.info("Upload a crop or pick a stored one to search the run.")
        return
    top = int(st.number_input("Results", 1, 100, 10, key="s_top"))
    st.image(image, channels="BGR", width=96, caption="query")
    reid_meta = {"config": {"reid": meta.get("config", {}).get("reid")}, "embedder": meta["embedder"]}
    embedder = cached_embedder(json.dumps(reid_meta, sort_keys=True))
    result = search(store, embed_query(embedder, image), top)
    st.subheader("Identities")
    best = store.best_crops([m.global_id for m in result.identities])
    for rank, m in enumerate(result.identities, 1):
        c1, c2 = st.columns([1, 5])
        shown = best.get(m.global_id, [])
        if shown:
            c1.image(shown[0][1], channels="BGR", width=56)
        c2.markdown(
            f"**{rank}. identity {m.global_id}** {m.label} · distance **{m.distance:.4f}** · "
            f"{', '.join(m.cameras)} · {m.first_time:.1f}–{m.last_time:.1f} s · "
            f"closest: {m.best.camera}/{m.best.track_id}"
        )
        c2.button(
            "Details",
            key=f"s_open_{m.global_id}",
            on_click=goto,
            args=("Identity detail",),
            kwargs={"identity": m.global_id},
        )
    st.subheader("Tracklets")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "camera": t.camera,
                    "track": t.track_id,
                    "identity": t.global_id,
                    "distance": round(t.distance, 4),
                    "first (s)": round(t.first_time, 2),
                    "last (s)": round(t.last_time, 2),
                }
                for t in result.tracklets
            ]
        ),
        hide_index=True,
    )


class State(str):
    """A callback argument read from the session when the button is clicked (a widget's value then), not
    when it was drawn (which may be before the user typed)."""


def act(run_dir: Path, action: str, *args) -> None:
    """Button callback: one answer or correction (:mod:`tracker.review`), then the exports written again.
    Its message (or the one-line error) is kept in the session for the next script run to show."""
    args = tuple(st.session_state.get(a) if isinstance(a, State) else a for a in args)
    func = {
        "answer": review.answer,
        "merge": review.merge,
        "split": review.split,
        "label": review.label,
        "undo": review.undo,
    }[action]
    try:
        with review.editing(run_dir, "track-view") as store:  # not while track-cameras rewrites the run
            outcome = func(store, *args)
        export_run(run_dir)
        st.session_state["notice"] = ("success", f"{outcome.message} Files re-exported.")
    except InputError as exc:
        st.session_state["notice"] = ("error", str(exc))


def show_notice() -> None:
    kind, text = st.session_state.pop("notice", (None, None))
    if kind == "success":
        st.success(text)
    elif kind == "error":
        st.error(text)


def stale_warnings(store: ResultsStore) -> None:
    """Corrections that no longer apply after the run was computed again, in words."""
    stale = store.run_value("stale_edits", {})
    if stale:
        st.warning(
            "Corrections made before this run was computed again that no longer apply: "
            + "; ".join(
                f"edit {eid}: {reason}" for eid, reason in sorted(stale.items(), key=lambda i: int(i[0]))
            )
        )


def page_review(store: ResultsStore, run_dir: Path) -> None:
    st.header("Review")
    show_notice()
    setting = review.run_setting(store)
    if setting is None:
        st.info(
            "Association did not run for this run (track-cameras --no-associate), so there is nothing to "
            "review: each tracklet is its own identity. Join or take apart identities in Corrections."
        )
        return
    for w in setting.warnings:
        st.warning(w)
    stale_warnings(store)
    if not review.reassociate.queue_built(store):
        with st.spinner("Finding the decisions to ask about (one association of the whole run) ..."):
            review.build_queue(store)
    review.refill(store)  # the queue running low: look for more partners
    items = review.ranked(store, setting.cfg.threshold)
    answers = [e for e in review.constraints.active_edits(store) if e.action == "answer"]
    st.caption(
        f"{len(answers)} answered · {len(items)} open · {store.count_identities():,} identities. "
        "The question most likely to change the identities comes first; every answer is kept as a "
        "constraint and the files are written again at once."
    )
    if not items:
        st.success("Nothing left to ask: every decision the association was unsure about has an answer.")
    else:
        question(store, run_dir, items[0], setting.cfg.threshold)
        with st.expander(f"Next questions ({len(items) - 1})"):
            st.dataframe(
                pd.DataFrame(
                    [
                        {
                            "question": r.question.id,
                            "kind": TITLES[r.question.kind],
                            "a": f"{r.question.a[0]}#{r.question.a[1]} (identity {r.global_ids[0]})",
                            "b": f"{r.question.b[0]}#{r.question.b[1]} (identity {r.global_ids[1]})",
                            "distance": r.question.distance,
                            "boxes at stake": r.change,
                        }
                        for r in items[1:51]
                    ]
                ),
                hide_index=True,
            )
    if answers:
        st.subheader("Answers so far")
        for e in reversed(answers[-10:]):
            c1, c2 = st.columns([6, 1])
            c1.markdown(f"{e.id}. {review.describe(e).capitalize()} · {e.time}")
            c2.button("Undo", key=f"r_undo_{e.id}", on_click=act, args=(run_dir, "undo", e.id))


def question(store: ResultsStore, run_dir: Path, r, threshold: float) -> None:
    """One question: both tracklets as strips of crops, the evidence in words, the three answers."""
    q = r.question
    st.subheader(f"Are these the same person? · {TITLES[q.kind]}")
    cols = st.columns(2)
    for col, side, k, gid in ((cols[0], "A", q.a, r.global_ids[0]), (cols[1], "B", q.b, r.global_ids[1])):
        with col.container(border=True):
            info = store.tracklet_info(*k)
            st.markdown(f"**{side}: {k[0]} · track {k[1]}** · identity {identity_name(store, gid)}")
            if info is not None:
                st.caption(
                    f"{seconds(info.first_time)} to {seconds(info.last_time)} on the common clock · "
                    f"frames {info.first_frame}–{info.last_frame}"
                )
            choices = store.crop_choices(*k, STRIP_CROPS)
            picture = strip([c.crop.image for c in choices], STRIP_HEIGHT)
            if picture is None:
                st.caption("no crops stored for this tracklet")
            else:
                st.image(
                    picture, channels="BGR", caption=" · ".join(f"frame {c.crop.frame}" for c in choices)
                )
    st.info(q.reason)
    together = r.global_ids[0] == r.global_ids[1]
    st.caption(
        ("They are one identity now. " if together else "They are two identities now. ")
        + (
            f"Distance {q.distance:.2f} against the threshold {threshold:.2f}; "
            if q.distance is not None
            else ""
        )
        + f"an answer that disagrees moves about {r.change:,} boxes ({r.p_flip:.0%} likely)."
    )
    b = st.columns(4)
    b[0].button(
        "Same person",
        key="r_same",
        shortcut="S",
        type="primary",
        on_click=act,
        args=(run_dir, "answer", q.id, "same"),
    )
    b[1].button(
        "Different",
        key="r_different",
        shortcut="D",
        on_click=act,
        args=(run_dir, "answer", q.id, "different"),
    )
    b[2].button("Skip", key="r_skip", shortcut="K", on_click=act, args=(run_dir, "answer", q.id, "skip"))
    b[3].button("Undo last", key="r_undo", shortcut="U", on_click=act, args=(run_dir, "undo", None))
    st.caption("Keys: S same person · D different · K skip · U undo the last answer.")


def identity_choice(store: ResultsStore, key: str, label: str, options: dict[int, str]) -> int | None:
    """A selectbox of identities (``options``: id -> its words) with the chosen one's crops under it."""
    if not options:
        return None
    if st.session_state.get(key) not in options:
        st.session_state[key] = next(iter(options))
    gid = st.selectbox(label, list(options), key=key, format_func=options.__getitem__)
    picture = identity_strip(store, gid, CARD_HEIGHT)
    if picture is not None:
        st.image(picture, channels="BGR")
    return gid


def partner_of(store: ResultsStore, gid: int, options) -> int:
    """The identity most worth merging ``gid`` with: the other side of its most likely open review question,
    else the first identity that could be the same person (no camera sees both at once)."""
    setting = review.run_setting(store)
    if setting is not None and review.reassociate.queue_built(store):
        for r in review.ranked(store, setting.cfg.threshold):
            ga, gb = r.global_ids
            if ga != gb and gid in (ga, gb):
                return gb if ga == gid else ga
    for g in options:
        if g != gid:
            try:
                store.check_merge(gid, g)
                return g
            except InputError:
                continue
    return next((g for g in options if g != gid), gid)


def page_corrections(store: ResultsStore, run_dir: Path) -> None:
    st.header("Corrections")
    show_notice()
    stale_warnings(store)
    options = {i.global_id: ident_words(i) for i in store.identities()}
    if not options:
        st.info("This run has no identities.")
        return

    st.subheader("Merge two identities into one")
    c = st.columns(2)
    with c[0]:
        keep = identity_choice(store, "c_keep", "Keep this identity", options)
    partner = partner_of(store, keep, options)
    if st.session_state.get("c_other") in (keep, None) or st.session_state.get("c_other_for") != keep:
        st.session_state["c_other"] = partner
        st.session_state["c_other_for"] = keep
    with c[1]:
        other = identity_choice(store, "c_other", "and merge this one into it", options)
    st.button(
        f"Merge #{other} into #{keep}",
        key="c_merge",
        type="primary",
        disabled=keep == other,
        on_click=act,
        args=(run_dir, "merge", State("c_keep"), State("c_other")),
    )

    st.subheader("Take a tracklet out of its identity")
    split_id = identity_choice(store, "c_split_identity", "Identity", options)
    tracklets = store.tracklet_infos(split_id)
    if len(tracklets) < 2:
        st.caption("This identity has one tracklet: nothing to take out.")
    for t in tracklets if len(tracklets) > 1 else []:
        c1, c2 = st.columns([5, 1])
        picture = strip([ch.crop.image for ch in store.crop_choices(t.camera, t.track_id, 4)], 110)
        with c1:
            st.markdown(
                f"**{t.camera} / track {t.track_id}** · {seconds(t.first_time)}–{seconds(t.last_time)}"
            )
            if picture is not None:
                st.image(picture, channels="BGR")
        c2.button(
            "Take out",
            key=f"c_split_{t.camera}_{t.track_id}",
            on_click=act,
            args=(run_dir, "split", t.camera, t.track_id),
        )

    st.subheader("Label an identity")
    c = st.columns([3, 3, 1])
    with c[0]:
        identity_choice(store, "c_label_id", "Identity", options)
    c[1].text_input("Label (empty clears it)", key="c_label_text")
    c[2].button(
        "Set label",
        key="c_label",
        on_click=act,
        args=(run_dir, "label", State("c_label_id"), State("c_label_text")),
    )

    c = st.columns(2)
    c[0].button("Undo last correction", key="c_undo", on_click=act, args=(run_dir, "undo", None))
    if c[1].button("Re-export files", key="c_export"):
        paths = export_run(run_dir)
        names = ", ".join(p.relative_to(run_dir).as_posix() for p in paths)
        st.success(f"Wrote {len(paths)} files: {names}")

    edits = store.edits()
    st.subheader("Edit log")
    if edits:
        stale = store.run_value("stale_edits", {})
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "edit": e.id,
                        "time": e.time,
                        "what": review.describe(e),
                        "state": "undone"
                        if e.undone
                        else ("no longer applies" if str(e.id) in stale else "in force"),
                    }
                    for e in edits
                ]
            ),
            hide_index=True,
        )
    else:
        st.caption("No corrections yet.")


PAGE_FUNCS = dict(
    zip(
        PAGES,
        (
            page_overview,
            page_review,
            page_identities,
            page_identity,
            page_cameras,
            page_search,
            page_corrections,
        ),
    )
)


def main() -> None:
    st.set_page_config(page_title="multicam-tracker review", layout="wide")
    root = os.environ.get(PATH_ENV)
    if not root:
        st.error(f"No run directory given: start the app with track-view RUN_DIR (or set {PATH_ENV}).")
        return
    try:
        runs = find_runs(root)
    except InputError as exc:
        st.error(str(exc))
        return
    st.sidebar.title("multicam-tracker")
    run_dir = (
        runs[0]
        if len(runs) == 1
        else st.sidebar.selectbox("Run", runs, format_func=lambda p: p.name, key="run")
    )
    if "page" not in st.session_state:  # deep links: ?page=Identities&identity=3
        wanted = st.query_params.get("page")
        st.session_state["page"] = wanted if wanted in PAGES else PAGES[0]
        if str(st.query_params.get("identity", "")).isdigit():
            st.session_state["identity"] = int(st.query_params["identity"])
    page = st.sidebar.radio("Page", PAGES, key="page")
    try:
        store = ResultsStore.open(run_file(run_dir, DB_NAME))
    except InputError as exc:
        st.error(str(exc))
        return
    try:
        PAGE_FUNCS[page](store, run_dir)
    except InputError as exc:
        st.error(str(exc))
    finally:
        store.close()


main()
