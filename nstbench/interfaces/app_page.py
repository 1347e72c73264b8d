"""The nstbench web app page (a Streamlit script; `nstbench app` serves it, logic in nstbench/interfaces/app.py).

Sidebar: the content image (an upload or a named asset) and the working size. Tabs: Fast (a
trained network, one forward pass), Gatys (an optimisation with a preset, live), and both side by
side with their times (E6). Every output names the backbone weights behind it.
"""

from __future__ import annotations

import tempfile
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import streamlit as st

from nstbench.config.errors import NstbenchError
from nstbench.config.presets import PRESETS, get_preset
from nstbench.interfaces import app
from nstbench.methods.gatys_run import override
from nstbench.nets.images import MAX_PIXELS, to_pil

THUMB_PX = 72


@contextmanager
def guarded(what: str):
    """Any error of the block becomes one line on the page (Streamlit's own control flow, which
    derives from BaseException, passes through)."""
    try:
        yield
    except NstbenchError as e:
        st.error(f"{what}: {e}")
    except Exception as e:  # never a traceback on the page; the server keeps serving
        st.error(f"{what} failed: {type(e).__name__}: {e}")


def workdir() -> Path:
    if "workdir" not in st.session_state:
        st.session_state.workdir = tempfile.mkdtemp(prefix="nstbench-app-")
    return Path(st.session_state.workdir)


def uploaded_picture(upload, folder: Path) -> app.Picture:
    """The upload decoded once per file (reruns reuse it); a refused upload raises NstbenchError."""
    cached = st.session_state.get(f"pic:{folder.name}")
    if cached is not None and cached[0] == upload.file_id:
        if isinstance(cached[1], str):
            raise NstbenchError(cached[1])
        return cached[1]
    try:
        pic = app.read_upload(upload.name, upload.getvalue(), folder / upload.file_id)
    except NstbenchError as e:
        st.session_state[f"pic:{folder.name}"] = (upload.file_id, str(e))
        raise
    st.session_state[f"pic:{folder.name}"] = (upload.file_id, pic)
    return pic


def pick_picture(kind: str, names: list[str], default: str, where) -> app.Picture | None:
    """An upload when there is one, else the named asset; None (with the reason shown) when refused."""
    upload = where.file_uploader(f"Upload a {kind} image", key=f"{kind}_upload")
    idx = names.index(default) if default in names else 0
    name = where.selectbox(f"or a named {kind} image", names, index=idx, key=f"{kind}_name")
    try:
        pic = uploaded_picture(upload, workdir() / kind) if upload is not None else app.named_picture(name)
    except NstbenchError as e:
        st.error(f"Upload refused: {e}")
        return None
    for note in pic.notes:
        st.warning(f"{pic.name}: {note}")
    return pic


def show_weights(label: str, what: str = "Backbone weights") -> None:
    (st.warning if label.startswith("RANDOM") else st.caption)(f"{what}: {label}")


# ---------------------------------------------------------------------------------------------
# Fast tab
# ---------------------------------------------------------------------------------------------


def no_checkpoints(dirs: list[Path]) -> None:
    st.info(
        "No fast-network checkpoint found in " + ", ".join(f"`{d}`" for d in dirs) + ".\n\n"
        "Train the HUST four with `make app-models` (cpu profile, coco100), or one with\n"
        f"`{app.train_hint('mosaic')}`,\n\nor place nstbench `transformer.pt` files or pytorch/examples "
        "`<style>.pth` files in one of these folders (or start with `nstbench app --models DIR`)."
    )


def list_models(entries: list[app.ModelEntry], problems: list[str]) -> int:
    """The checkpoints with thumbnail and loss-network weights; returns the chosen index."""
    for e in entries:
        c1, c2 = st.columns([1, 8])
        if e.style_image is not None:
            c1.image(str(e.style_image), width=THUMB_PX)
        c2.markdown(
            f"**{e.style}** - {e.format} `{e.network}` network"
            + (f", {e.steps} steps" if e.steps else "")
            + f"  \n`{e.path}`  \nloss network: {e.weights}"
        )
    found = {e.style for e in entries}
    missing = [s for s in app.HUST_STYLES if s not in found]
    if missing:
        st.caption(f"HUST styles not trained yet: {', '.join(missing)}. {app.train_hint(missing[0])}")
    if problems:
        with st.expander(f"{len(problems)} file(s) skipped"):
            for p in problems:
                st.text(p)
    styles = [e.style for e in entries]  # a style found twice is told apart by its file
    labels = [
        s if styles.count(s) == 1 else f"{s} ({e.path.parent.name}/{e.path.name})" for s, e in zip(styles, entries)
    ]
    return st.radio("Style", range(len(entries)), format_func=labels.__getitem__, key="fast_style", horizontal=True)


def show_fast(res: app.FastResult, pic: app.Picture) -> None:
    c1, c2 = st.columns(2)
    shown = to_pil(pic.image)
    shown.thumbnail((1024, 1024))  # a large upload is shown, not sent, at full size
    c1.image(shown, caption=f"input: {pic.name}", width="stretch")
    with c2.container(key="fast_output"):
        h, w = res.size_hw
        st.image(
            res.image, caption=f"{res.entry.style}: {w}x{h}, forward pass {res.seconds * 1000:.0f} ms", width="stretch"
        )
    show_weights(res.entry.weights, f"Loss network this {res.entry.format} network was trained against")
    st.download_button(
        "Download PNG",
        res.png,
        file_name=f"{Path(pic.name).stem}-{res.entry.style}.png",
        mime="image/png",
        key="fast_download",
    )


def fast_tab(pic: app.Picture | None, long_side: int) -> None:
    dirs = app.model_dirs()
    entries, problems = app.find_checkpoints(dirs)
    if not entries:
        no_checkpoints(dirs)
        return
    entry = entries[list_models(entries, problems)]
    if pic is None:
        st.info("Choose a usable content image in the sidebar.")
        return
    key = (str(pic.path), str(entry.path), long_side)
    if st.button("Stylize", key="fast_go", type="primary"):
        with guarded("Fast stylisation"):
            st.session_state.fast = (key, app.run_fast(entry, pic, long_side, workdir() / "fast"))
    done = st.session_state.get("fast")
    if done is not None and done[0] == key:
        show_fast(done[1], pic)


# ---------------------------------------------------------------------------------------------
# Gatys tab (and the Gatys half of the comparison): a background job, polled while it runs
# ---------------------------------------------------------------------------------------------


def curve_chart(job: app.GatysJob) -> None:
    if job.losses:
        st.line_chart(pd.DataFrame(job.losses).set_index("step")[["total"]], height=180)


def show_job_final(job: app.GatysJob, slot: str) -> None:
    if job.status == "cancelled":
        st.warning(f"Cancelled at step {job.step} of {job.preset.steps}; nothing was written.")
    elif job.status == "error":
        st.error(f"Gatys run failed: {job.error}")
    elif job.status == "done":
        rec, out = job.record, job.out
        with st.container(key=f"{slot}_output"):
            st.image(
                str(out / "output.png"),
                caption=f"{job.preset.name}, {job.preset.steps} steps, {rec['seconds']:.1f} s",
                width="stretch",
            )
        show_weights(app.weights_summary(rec["weights"]))
        curve_chart(job)
        cols = st.columns(3)
        for col, name, mime in zip(
            cols, ("output.png", "curve.csv", "run.json"), ("image/png", "text/csv", "application/json")
        ):
            col.download_button(name, (out / name).read_bytes(), file_name=name, mime=mime, key=f"{slot}_dl_{name}")


@st.fragment(run_every=0.5)
def show_job_live(slot: str) -> None:
    job: app.GatysJob = st.session_state[slot]
    if not job.running:
        st.rerun()  # the whole page once more: final state, and this polling stops
    st.progress(job.step / job.preset.steps, text=f"step {job.step} / {job.preset.steps}")
    if job.preview is not None:
        st.image(
            job.preview,
            caption=f"step {job.step}; backbone weights requested: {job.weights} (the result names the ones used)",
            width=320,
        )
    curve_chart(job)


def start_job(slot: str, preset, content: Path, style: Path, weights: str) -> None:
    out = workdir() / slot / str(len(st.session_state.get("runs", [])))
    st.session_state.setdefault("runs", []).append(str(out))
    st.session_state[slot] = app.GatysJob(preset, content, style, out, weights=weights).start()


def job_controls(slot: str, start) -> None:
    """Run / Cancel buttons and the job's state; `start()` starts a job in `slot`."""
    job = st.session_state.get(slot)
    running = job is not None and job.running
    c1, c2 = st.columns([1, 6])
    if c1.button("Run", key=f"{slot}_go", type="primary", disabled=running):
        with guarded("Starting the run"):
            start()
            st.rerun()  # drawn again with Run disabled and Cancel enabled
    if c2.button("Cancel", key=f"{slot}_cancel", disabled=not running) and job is not None:
        job.cancel()
    if job is None:
        return
    if job.running:
        show_job_live(slot)
    else:
        show_job_final(job, slot)


def gatys_settings(slot: str, preset_names: list[str], default_steps: int) -> tuple[str, int, int]:
    c1, c2, c3 = st.columns(3)
    preset = c1.selectbox("Preset", preset_names, key=f"{slot}_preset")
    steps = c2.number_input("Steps", 1, 5000, default_steps, key=f"{slot}_steps")
    size = c3.number_input("Size (px, the preset's resize rule)", 32, 1024, 256, step=32, key=f"{slot}_size")
    return preset, int(steps), int(size)


def gatys_tab(pic: app.Picture | None, weights: str) -> None:
    style = pick_picture("style", app.style_names(), "starry_night", st)
    preset_name, steps, size = gatys_settings("gatys", list(PRESETS), 50)
    if pic is None or style is None:
        st.info("Choose a usable content image (sidebar) and style image.")
        return

    def start():
        start_job(
            "gatys", override(get_preset(preset_name), {"steps": steps, "size": size}), pic.path, style.path, weights
        )

    job_controls("gatys", start)


# ---------------------------------------------------------------------------------------------
# Side by side (E6): the hust fast network and the hust Gatys preset on the same photo
# ---------------------------------------------------------------------------------------------


def compare_tab(pic: app.Picture | None, long_side: int, weights: str) -> None:
    st.caption(
        "E6 live: one forward pass of a fast network against the `hust` Gatys optimisation, "
        "same content at the same long side, same style image."
    )
    entries, _ = app.find_checkpoints(app.model_dirs())
    if not entries:
        no_checkpoints(app.model_dirs())
        return
    i = st.selectbox("Fast network", range(len(entries)), format_func=lambda i: entries[i].label, key="cmp_model")
    steps = int(st.number_input("Gatys steps", 1, 5000, 50, key="cmp_steps"))
    entry = entries[i]
    if pic is None:
        st.info("Choose a usable content image in the sidebar.")
        return
    if entry.style_image is None:
        st.info(f"The style image of {entry.style} is not available, so Gatys cannot use the same style.")
        return
    side = min(long_side, max(pic.image.shape[-2:]))

    def start():
        preset = override(get_preset("hust"), {"steps": steps, "size": side})
        same = app.resized_copy(pic, preset.content_resize, workdir() / "compare")
        st.session_state.cmp_fast = app.run_fast(entry, same, side, workdir() / "compare")
        start_job("cmp", preset, same.path, entry.style_image, weights)

    left, right = st.columns(2)
    with right:
        st.subheader("Gatys (hust preset)")
        job_controls("cmp", start)
    fast = st.session_state.get("cmp_fast")
    with left:
        st.subheader("Fast network")
        if fast is not None:
            with st.container(key="cmp_fast_output"):
                st.image(
                    fast.image,
                    caption=f"{fast.entry.style}: forward pass {fast.seconds * 1000:.0f} ms",
                    width="stretch",
                )
            show_weights(fast.entry.weights, "Loss network it was trained against")
    job = st.session_state.get("cmp")
    if fast is not None and job is not None and job.status == "done":
        ratio = job.record["seconds"] / max(fast.seconds, 1e-9)
        st.success(
            f"Gatys {job.record['seconds']:.1f} s for {job.preset.steps} steps, fast {fast.seconds * 1000:.0f} ms "
            f"for one pass: {ratio:,.0f}x"
        )


def main() -> None:
    st.set_page_config(page_title="nstbench style transfer", layout="wide")
    st.title("Style transfer")
    st.caption(
        "nstbench: fast networks (Johnson et al.) as the HUST report's app served them, and the Gatys "
        "optimisation. Everything runs on this machine."
    )
    with st.sidebar:
        st.header("Content")
    pic = None
    with guarded("Content image"):
        pic = pick_picture("content", app.content_names(), "chelsea", st.sidebar)
    long_side = st.sidebar.slider("Fast networks: long side (px, never enlarged)", 64, 1024, 512, step=32)
    weights = st.sidebar.selectbox(
        "Gatys backbone weights",
        ["auto", "random", "imagenet"],
        key="weights",
        help="auto: ImageNet when available, otherwise seeded random weights (labelled)",
    )
    st.sidebar.caption(f"Uploads: at most {app.MAX_UPLOAD_MB} MB and {MAX_PIXELS:,} pixels.")
    fast, gatys, both = st.tabs(["Fast", "Gatys", "Fast vs Gatys"])
    with fast, guarded("Fast tab"):
        fast_tab(pic, long_side)
    with gatys, guarded("Gatys tab"):
        gatys_tab(pic, weights)
    with both, guarded("Comparison"):
        compare_tab(pic, long_side, weights)


main()
