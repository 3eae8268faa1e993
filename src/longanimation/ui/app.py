"""The Gradio page of ``longanimation ui``: uploads in, a ``colorize`` run, videos and zips out.

Layout only: every decision about the inputs is made by :mod:`longanimation.ui.job`
(and through it by the CLI's code), so the page cannot drift from the CLI.
This module imports Gradio at the top and is therefore imported only by the
``ui`` command and by tests, never by the core package.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path

import gradio as gr

from ..errors import UserError
from . import job

_COLOR_CHOICES = [
    ("model colors", "model"),
    ("flat: one color per closed area (--flat)", "flat"),
    ("flat, areas tracked from the keyframes (--flat --track-regions)", "tracked"),
]
_LINEART_CHOICES = [
    ("binary black-and-white drawings", "binary"),
    ("gray drawings: binarize (--binarize)", "gray"),
    ("colored frames: extract the lines (--extract-sketches)", "colored"),
]


class _Sessions:
    """Per-browser-session run folder and stop flag.

    Gradio's ``cancels=`` drops the pending result, but a plain function keeps
    running in its worker thread; the flag is what actually stops the pipeline
    (checked in the progress callback, between two denoising steps). The run
    folder of a session's previous run is deleted when it starts another, so a
    long-lived server does not fill the temporary folder (Gradio keeps its own
    copies of the files it served).
    """

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="longanimation-ui-"))
        self.lock = threading.Lock()
        self.stops: dict[str, threading.Event] = {}
        self.folders: dict[str, Path] = {}

    def start(self, session: str) -> tuple[Path, threading.Event]:
        with self.lock:
            previous = self.folders.pop(session, None)
            stop = self.stops.setdefault(session, threading.Event())
            stop.clear()
            folder = Path(tempfile.mkdtemp(prefix="run-", dir=self.root))
            self.folders[session] = folder
        if previous is not None:
            shutil.rmtree(previous, ignore_errors=True)
        return folder, stop

    def stop(self, session: str) -> None:
        with self.lock:
            event = self.stops.get(session)
        if event is not None:
            event.set()


def build_app(model_path: str | Path) -> gr.Blocks:
    """The page, not yet launched (the ``ui`` command and tests launch it); ``model_path`` fills the model field."""
    sessions = _Sessions()

    def colorize(lineart, keyframes, indices, model, prompt, colors, lineart_kind, steps, seed,
                 request: gr.Request, progress=gr.Progress()):  # noqa: B008 (Gradio finds its progress bar by this default)
        session = getattr(request, "session_hash", None) or "default"
        folder, stop = sessions.start(session)

        def report(job_index: int, jobs: int, step: int, steps_per_job: int) -> None:
            if stop.is_set():
                raise job.Cancelled()
            done = job_index * steps_per_job + step
            progress(done / max(jobs * steps_per_job, 1), desc=f"segment {job_index + 1}/{jobs}, step {step}/{steps_per_job}")

        progress(0.0, desc="reading the uploads")
        try:
            result = job.run(
                _paths(lineart), _paths(keyframes), indices, folder,
                model=model, prompt=prompt, colors=colors, lineart_kind=lineart_kind,
                steps=int(steps or 0), seed=int(seed or 0), progress=report,
            )
        except UserError as error:
            return f"error: {error}", None, None, None, None  # the CLI's line, word for word
        except job.Cancelled:
            return "cancelled", None, None, None, None
        side = str(result.side_by_side) if result.side_by_side is not None else None
        return result.summary, str(result.video), side, str(result.frames_zip), str(result.color_layer_zip)

    def cancel(request: gr.Request):
        sessions.stop(getattr(request, "session_hash", None) or "default")
        return "cancelled"

    with gr.Blocks(title="LongAnimation", analytics_enabled=False) as page:
        gr.Markdown(
            "## LongAnimation: color long line-art animation from keyframes\n"
            "The same run as `longanimation colorize`: upload the line art and one or more colored keyframes, "
            "give each keyframe's frame index, and run."
        )
        with gr.Row():
            with gr.Column():
                lineart = gr.File(
                    label="Line art: a video, a zip of an image folder, or images",
                    file_count="multiple", height=220, elem_id="lineart",
                )
                lineart_kind = gr.Radio(_LINEART_CHOICES, value="binary", label="The line art is")
                keyframes = gr.File(
                    label="Colored keyframes (same size as the line art)", file_count="multiple",
                    file_types=["image"], elem_id="keyframes",
                )
                indices = gr.Textbox(
                    label="Keyframe indices: the frame of each keyframe, in upload order (empty: one keyframe at frame 0)",
                    placeholder="0, 150", elem_id="indices",
                )
            with gr.Column():
                model = gr.Textbox(value=str(model_path), label="Model folder", elem_id="model")
                prompt = gr.Textbox(label="Prompt", placeholder="a red cat walks through a town at dusk")
                colors = gr.Radio(_COLOR_CHOICES, value="model", label="Colors")
                with gr.Row():
                    steps = gr.Number(value=0, precision=0, minimum=0, label="Steps (0: the model's default)", elem_id="steps")
                    seed = gr.Number(value=0, precision=0, label="Seed", elem_id="seed")
                with gr.Row():
                    run_button = gr.Button("Run", variant="primary", elem_id="run")
                    cancel_button = gr.Button("Cancel", variant="stop", elem_id="cancel")
                status = gr.Textbox(label="Status", interactive=False, elem_id="status")
        with gr.Row():
            video = gr.Video(label="Colored", interactive=False, elem_id="video")
            side = gr.Video(label="Line art | colored", interactive=False, elem_id="side")
        with gr.Row():
            frames_zip = gr.File(label="Frames (PNG, zip)", interactive=False, elem_id="frames_zip")
            layer_zip = gr.File(label="Color layer without lines (PNG, zip)", interactive=False, elem_id="layer_zip")

        running = run_button.click(
            colorize,
            inputs=[lineart, keyframes, indices, model, prompt, colors, lineart_kind, steps, seed],
            outputs=[status, video, side, frames_zip, layer_zip],
        )
        cancel_button.click(cancel, outputs=[status], cancels=[running])
    return page


def _paths(files) -> list[str]:
    """Uploaded files as paths, whichever form this Gradio version hands them in (path, file object, None)."""
    if files is None:
        return []
    if not isinstance(files, (list, tuple)):
        files = [files]
    return [getattr(file, "name", file) for file in files]
