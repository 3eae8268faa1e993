"""The web UI driven by a real browser: upload, run, download the video; and a bad upload's one-line error.

Only a browser exercises what users actually touch (Gradio's upload widgets,
the queue, the progress bar, the served files), so this test launches the
page and clicks through it in headless Chromium. It needs the optional ``ui``
extra, Playwright and Debian's Chromium (Playwright's own browser download is
never used); without any of them it skips, so the suite stays green anywhere.

Set ``LONGANIMATION_UI_SCREENSHOT=docs/ui.png`` to also keep the full-page
screenshot taken after the run (that is how ``docs/ui.png`` is made).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
from pathlib import Path
from urllib.parse import urljoin

import numpy as np
import pytest
from PIL import Image

gr = pytest.importorskip("gradio", reason="the web UI needs the ui extra: pip install -e '.[ui]'")
sync_api = pytest.importorskip("playwright.sync_api", reason="the browser test needs playwright")
av = pytest.importorskip("av")

CHROMIUM = Path("/usr/bin/chromium")
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "toon-shot"
FRAMES = 20
# Generous: the machine may be shared; nothing here asserts on elapsed time.
RUN_TIMEOUT_MS = 300_000
UI_TIMEOUT_MS = 60_000

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.is_file(), reason=f"no system Chromium at {CHROMIUM} (apt-get install chromium)"),
    pytest.mark.timeout(900),
    # Gradio 6 with pandas 3 warns about pandas options from inside its queue: not ours to fix.
    pytest.mark.filterwarnings("ignore::DeprecationWarning:gradio"),
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The page served on a free local port with a freshly made tiny model (fast to run)."""
    from longanimation.models.longanimation_model import LongAnimationModel
    from longanimation.ui.app import build_app

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no network calls from an offline test
    model = tmp_path_factory.mktemp("ui") / "model"
    LongAnimationModel.from_preset("tiny", seed=0).save_pretrained(model)
    page = build_app(model)
    port = _free_port()
    page.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        page.close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    tab = context.new_page()
    tab.set_default_timeout(UI_TIMEOUT_MS)
    tab.goto(server, wait_until="domcontentloaded")
    tab.locator("#run").wait_for(state="visible")
    try:
        yield tab
    finally:
        context.close()


def _upload(page, elem_id: str, files: list[Path]) -> None:
    """Upload through the component's own file input, then wait until it links the last file (upload done)."""
    page.locator(f"#{elem_id} input[type=file]").set_input_files([str(file) for file in files])
    done = page.locator(f'#{elem_id} a[href$="/{files[-1].name}"]')
    sync_api.expect(done).to_be_attached(timeout=UI_TIMEOUT_MS)


def _fill_and_run(page, keyframe: Path) -> None:
    _upload(page, "lineart", [EXAMPLE / "lineart" / f"{index:05d}.png" for index in range(FRAMES)])
    _upload(page, "keyframes", [keyframe])
    page.locator("#indices textarea, #indices input").first.fill("0")
    steps = page.locator("#steps input")
    steps.fill("1")
    steps.press("Tab")  # Gradio takes a number field's value when it loses focus
    page.locator("#run").click()


def test_upload_run_and_download_video(page, tmp_path):
    _fill_and_run(page, EXAMPLE / "color" / "00000.png")
    status = page.locator("#status textarea")
    sync_api.expect(status).to_have_value(re.compile(rf"^colored {FRAMES} frames"), timeout=RUN_TIMEOUT_MS)

    video = page.locator("#video video")
    video.wait_for(state="attached")
    source = urljoin(page.url, video.get_attribute("src"))
    response = page.request.get(source)
    assert response.ok, (source, response.status)
    downloaded = tmp_path / "colorized.mp4"
    downloaded.write_bytes(response.body())
    with av.open(str(downloaded)) as container:
        assert sum(1 for _ in container.decode(video=0)) == FRAMES
    sync_api.expect(page.locator("#side video")).to_be_attached()
    sync_api.expect(page.locator('#frames_zip a[href$="frames.zip"]')).to_be_attached()
    sync_api.expect(page.locator('#layer_zip a[href$="color_layer.zip"]')).to_be_attached()

    shot = tmp_path / "ui.png"
    page.screenshot(path=str(shot), full_page=True)
    keep = os.environ.get("LONGANIMATION_UI_SCREENSHOT")
    if keep:
        Path(keep).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, keep)


def test_wrong_size_keyframe_shows_the_cli_error(page, tmp_path):
    small = tmp_path / "small-key.png"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(small)
    _fill_and_run(page, small)
    status = page.locator("#status textarea")
    sync_api.expect(status).to_have_value(re.compile(r"^error: "), timeout=RUN_TIMEOUT_MS)
    message = status.input_value()
    # The pipeline's own line, as `longanimation colorize` prints it on stderr.
    assert message == "error: keyframe @0 is 64x64 but the line art is 128x128"
    assert page.locator("#video video").count() == 0
