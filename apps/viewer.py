"""Review UI over a run directory: see, search and correct global identities.

Start it with ``track-view RUN_DIR_or_RUNS_DIR`` (which sets ``TRACK_VIEW_PATH`` and runs Streamlit bound
to 127.0.0.1). Pages: Overview, Identities (gallery), Identity detail, Cameras, Search, Corrections.

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

from tracker.annotate import draw_boxes
from tracker.errors import InputError
from tracker.export import export_run
from tracker.search import embed_query, run_embedder, search
from tracker.store import SORT_KEYS, ResultsStore, decode_image
from tracker.view import DB_NAME, PATH_ENV, find_runs, read_frame, run_file

PAGES = ("Overview", "Identities", "Identity detail", "Cameras", "Search", "Corrections")
GALLERY_PAGE_SIZE = 24
GALLERY_COLUMNS = 4
CAMERA_COLUMNS = 2
THUMB_WIDTH = 560  # overview thumbnails (shown at half this)
DRAW_WIDTH = 640  # camera frames are drawn at this width, with lines thick enough to read when shown small
UPLOAD_TYPES = ["jpg", "jpeg", "png", "bmp", "webp"]


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


def describe(info) -> str:
    """One line of a detector's or embedder's info (a dict of settings, or a plain value)."""
    if isinstance(info, dict):
        return ", ".join(f"{k}: {v}" for k, v in info.items() if v is not None)
    return str(info)


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
    st.write("Detector: " + ("; ".join(f"{k}: {describe(v)}" for k, v in detectors.items()) or "unknown"))
    embedder = meta.get("embedder")
    st.write("Embedder: " + (describe(embedder) if embedder else "none (no appearance features)"))

    run_json = run_file(run_dir, "run.json")
    if run_json.is_file():
        timings = json.loads(run_json.read_text()).get("timings")
        if timings:
            st.subheader("Timings (s)")
            st.dataframe(pd.DataFrame([timings]), hide_index=True)
    metrics = run_file(run_dir, "metrics.json")
    if metrics.is_file():
        st.subheader("Metrics (metrics.json)")
        st.json(json.loads(metrics.read_text()), expanded=False)


def page_identities(store: ResultsStore, run_dir: Path) -> None:
    st.header("Identities")
    cams = [c.name for c in store.cameras()]
    c = st.columns([2, 1, 1, 2, 2, 1])
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
                if shown:
                    st.image(
                        [img for _, img in shown], caption=[cam for cam, _ in shown], channels="BGR", width=64
                    )
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
                )
                b2.button(
                    "Search",
                    key=f"find_{ident.global_id}",
                    on_click=goto,
                    args=("Search",),
                    kwargs={"s_mode": "Pick a stored crop", "s_identity": ident.global_id},
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

    st.subheader("Crops")
    for t in tracklets:
        crops = store.crops(t.camera, t.track_id)
        st.markdown(
            f"**{t.camera} / track {t.track_id}**: frames {t.first_frame}–{t.last_frame}, "
            f"{seconds(t.first_time)}–{seconds(t.last_time)}"
        )
        if crops:
            st.image(
                [c.image for c in crops],
                caption=[f"frame {c.frame}" for c in crops],
                channels="BGR",
                width=64,
            )
        else:
            st.caption("no crops stored")

    st.subheader("Evidence")
    evidence = store.evidence(gid)
    if not evidence:
        st.caption("No evidence: a single tracklet, or association did not run.")
    else:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "a": f"{e.a[0]}/{e.a[1]}",
                        "b": f"{e.b[0]}/{e.b[1]}",
                        "distance": None if e.distance is None else round(e.distance, 4),
                        "reason": e.reason,
                        **{k: round(v, 4) for k, v in e.terms.items()},
                    }
                    for e in evidence
                ]
            ),
            hide_index=True,
        )


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


def page_corrections(store: ResultsStore, run_dir: Path) -> None:
    st.header("Corrections")
    notice = st.empty()  # filled at the end, after this run's correction or export

    st.subheader("Merge two identities")
    first = store.identities(limit=2)
    if len(first) == 2:
        st.session_state.setdefault("c_keep", first[0].global_id)
        st.session_state.setdefault("c_other", first[1].global_id)
    if first:
        st.session_state.setdefault("c_label_id", first[0].global_id)
    c = st.columns(3)
    keep = c[0].number_input("Keep identity", min_value=0, step=1, key="c_keep")
    other = c[1].number_input("Merge this identity into it", min_value=0, step=1, key="c_other")
    if c[2].button("Merge", key="c_merge"):
        if attempt(store.merge, int(keep), int(other)) is not None:
            st.success(f"Merged identity {int(other)} into {int(keep)}.")

    st.subheader("Split a tracklet into a new identity")
    c = st.columns(3)
    cams = [cam.name for cam in store.cameras()]
    if first:
        first_tracklet = store.tracklet_infos(first[0].global_id)[0]
        st.session_state.setdefault("c_split_camera", first_tracklet.camera)
        st.session_state.setdefault("c_split_track", first_tracklet.track_id)
    camera = c[0].selectbox("Camera", cams, key="c_split_camera")
    track = c[1].number_input("Track id", min_value=0, step=1, key="c_split_track")
    if c[2].button("Split", key="c_split"):
        new = attempt(store.split, camera, int(track))
        if new is not None:
            st.success(f"Tracklet {camera}/{int(track)} is now identity {new}.")

    st.subheader("Label an identity")
    c = st.columns(3)
    gid = c[0].number_input("Identity", min_value=0, step=1, key="c_label_id")
    text = c[1].text_input("Label (empty clears it)", key="c_label_text")
    if c[2].button("Set label", key="c_label"):
        if attempt(store.set_label, int(gid), text) is not None:
            st.success(f"Identity {int(gid)} labelled '{text.strip()}'.")

    c = st.columns(2)
    if c[0].button("Undo last correction", key="c_undo"):
        edit = store.undo()
        st.success(f"Undid {edit.action} {edit.params}." if edit else "Nothing to undo.")
    if c[1].button("Re-export files", key="c_export", type="primary"):
        paths = export_run(run_dir)
        names = ", ".join(p.relative_to(run_dir).as_posix() for p in paths)
        st.success(f"Wrote {len(paths)} files: {names}")

    csv = run_file(run_dir, "identities.csv")
    db = run_file(run_dir, DB_NAME)
    if not csv.is_file() or csv.stat().st_mtime < db.stat().st_mtime:
        notice.warning("The exported files are older than the last change of the database: re-export them.")

    edits = store.edits()
    st.subheader("Edit log")
    if edits:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "id": e.id,
                        "time": e.time,
                        "action": e.action,
                        "details": json.dumps(e.params),
                        "undone": e.undone,
                    }
                    for e in edits
                ]
            ),
            hide_index=True,
        )
    else:
        st.caption("No corrections yet.")


PAGE_FUNCS = dict(
    zip(PAGES, (page_overview, page_identities, page_identity, page_cameras, page_search, page_corrections))
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
