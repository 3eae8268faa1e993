"""benchmarks/real_shots.py on tiny synthetic sprite sheets and backgrounds (no Debian package needed)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "real_shots.py"


@pytest.fixture(scope="module")
def rs():
    spec = importlib.util.spec_from_file_location("real_shots_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _frame(color: tuple[int, int, int], size: int, notch: int) -> np.ndarray:
    """An opaque blob with a dark outline on transparency; ``notch`` moves a light dot so frames differ."""
    image = np.zeros((size, size, 4), np.uint8)
    cv2.circle(image, (size // 2, size // 2), size // 2 - 1, (*color, 255), -1)
    cv2.circle(image, (size // 2, size // 2), size // 2 - 1, (20, 20, 20, 255), 1)
    image[size // 2, 2 + notch] = (250, 250, 250, 255)
    return image


def _background(width: int, height: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.linspace(60, 200, width, dtype=np.float64)[None, :, None] * np.ones((height, 1, 3))
    return np.clip(base + rng.normal(0, 5, (height, width, 3)), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    """A fake pingus tree (one sheet, two .sprite files) and a fake supertux tree (one creature)."""
    base = tmp_path_factory.mktemp("sources")
    pingus = base / "pingus"
    (pingus / "pingus" / "player0" / "walker").mkdir(parents=True)
    (pingus / "textures").mkdir()
    sheet = np.zeros((24, 48, 4), np.uint8)  # 4 frames x 2 rows of 12x12
    for row, color in enumerate([(200, 40, 40), (40, 40, 200)]):
        for col in range(4):
            sheet[row * 12:(row + 1) * 12, col * 12:(col + 1) * 12] = _frame(color, 12, col)
    Image.fromarray(sheet, "RGBA").save(pingus / "pingus" / "player0" / "walker.png")
    for row, side in enumerate(["left", "right"]):
        (pingus / "pingus" / "player0" / "walker" / f"{side}.sprite").write_text(
            f'(pingus-sprite\n  (image "../walker.png")\n  (speed 80)\n  (array 4 1)\n  (position 0 {row * 12})\n'
            "  (size 12 12))\n"
        )
    Image.fromarray(_background(320, 200, 1)).save(pingus / "textures" / "plain.png")
    supertux = base / "supertux"
    (supertux / "creatures" / "blob").mkdir(parents=True)
    (supertux / "background").mkdir()
    for i in range(3):
        Image.fromarray(_frame((40, 180, 40), 10, i), "RGBA").save(supertux / "creatures" / "blob" / f"walk-{i}.png")
    (supertux / "creatures" / "blob" / "blob.sprite").write_text(
        '(supertux-sprite\n (action\n  (name "walk-left")\n  (fps 10)\n'
        '  (images "walk-0.png" "walk-1.png" "walk-2.png")))\n'
    )
    Image.fromarray(_background(200, 200, 2)).save(supertux / "background" / "sky.png")
    return pingus, supertux


def _sources(rs, roots):
    pingus, supertux = roots
    return rs.open_source("pingus", rs.DirStore(pingus)), rs.open_source("supertux", rs.DirStore(supertux))


def test_catalogs_parse_sprite_files(rs, roots):
    pingus, supertux = _sources(rs, roots)
    assert [s.name for s in pingus.sprites] == ["pingus/player0/walker/left", "pingus/player0/walker/right"]
    assert pingus.sprites[0].faces_left and pingus.sprites[0].fps == pytest.approx(12.5)
    assert pingus.sprites[1].frames[0].box == (0, 12, 12, 12)
    frames = pingus.sprite_frames(pingus.sprites[0])
    assert len(frames) == 4 and frames[0].shape == (11, 11, 4)  # cropped to the drawn alpha box
    assert [s.name for s in supertux.sprites] == ["creatures/blob/blob:walk-left"]
    assert pingus.split == "test" and supertux.split == "train"


def test_shot_is_built_with_ground_truth(rs, roots, tmp_path):
    pingus, _ = _sources(rs, roots)
    shot = rs.plan_shot("tiny", "test", [pingus], 96, 64, 40, seed=3, actors=3)
    manifest = rs.write_shot(shot, tmp_path / "tiny")
    folder = tmp_path / "tiny"
    for name in ("color", "lineart", "regions"):
        assert len(list((folder / name).glob("*.png"))) == 40
    color = [cv2.imread(str(p))[..., ::-1] for p in sorted((folder / "color").glob("*.png"))]
    regions = [cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in sorted((folder / "regions").glob("*.png"))]
    lineart = cv2.imread(str(folder / "lineart" / "00000.png"), cv2.IMREAD_UNCHANGED)
    assert color[0].shape == (64, 96, 3) and regions[0].dtype == np.uint16 and regions[0].shape == (64, 96)
    assert lineart.ndim == 2 and set(np.unique(lineart)) <= {0, 255}
    assert manifest["frames"] == 40 and (manifest["width"], manifest["height"]) == (96, 64)
    assert manifest["split"] == "test" and manifest["sources"] == ["pingus"]
    # region ids: 0 background, 1..N the sprites; where a sprite's id is, the frame shows its ink or fill
    assert {o["id"] for o in manifest["objects"]} == {0, 1, 2, 3}
    for t in range(40):
        ids = regions[t]
        assert ids.max() <= 3
        fresh_color, fresh_ids = rs.render_drawing(shot, float(shot.drawing_tau[shot.drawing_index[t]]))
        assert np.array_equal(fresh_ids, ids) and np.array_equal(fresh_color, color[t])
        cx, cy = shot.camera_at(float(shot.drawing_tau[shot.drawing_index[t]]))
        left, top = int(round(cx)), int(round(cy))
        background = shot.background[top:top + 64, left:left + 96]
        on_sprite = ids > 0
        assert np.array_equal(color[t][~on_sprite], background[~on_sprite])  # the synthetic alpha is 0 or 255
        if on_sprite.any():
            assert (color[t][on_sprite] != background[on_sprite]).any(axis=1).mean() > 0.9
    visible = {o["id"]: o["visible_frames"] for o in manifest["objects"]}
    assert visible[0] == [[0, 39]]
    assert any(r for i, r in visible.items() if i > 0 and r and r[0][0] == 0)  # someone is in the keyframe
    # held drawings repeat exactly, changed drawings are allowed to differ
    index = manifest["drawing_index"]
    held = [t for t in range(1, 40) if index[t] == index[t - 1]]
    assert held, "expected stretches on twos or threes"
    for t in held:
        assert np.array_equal(color[t], color[t - 1]) and np.array_equal(regions[t], regions[t - 1])
    json.dumps(manifest)


def _panning_shot(rs, roots, out, frames):
    """A small test shot whose camera pans, written to ``out``; (shot, manifest)."""
    pingus, _ = _sources(rs, roots)
    for seed in range(12):
        shot = rs.plan_shot("pan", "test", [pingus], 96, 64, frames, seed=seed, actors=1)
        if shot.camera[0] != shot.camera[1]:
            break
    return shot, rs.write_shot(shot, out)


def test_screen_pans_are_the_rendered_background_motion(rs, roots, tmp_path):
    """``screen_pans`` (what benchmarks/pan_tracking.py scores the pan tracker against), from the manifest
    alone, is the motion of the view's corner that ``render_drawing`` crops the background at."""
    shot, manifest = _panning_shot(rs, roots, tmp_path / "pan", 40)
    pans = rs.screen_pans(manifest)
    assert pans.shape == (40, 2) and (pans[0] == 0).all() and np.abs(pans[-1]).max() > 0
    for t in (10, 25, 39):
        cx, cy = shot.camera_at(float(shot.drawing_tau[shot.drawing_index[t]]))
        x0, y0 = shot.camera_at(0.0)
        assert tuple(pans[t]) == (round(x0) - round(cx), round(y0) - round(cy))


def test_pan_tracking_scores_the_tracker_against_the_rendered_pan(rs, roots, tmp_path, monkeypatch):
    """benchmarks/pan_tracking.py: the known-pan correspondence takes each drawing's rendered pan, and the
    tracker's error is measured against the same pans."""
    monkeypatch.syspath_prepend(str(SCRIPT.parent))
    import pan_tracking

    _panning_shot(rs, roots, tmp_path / "pan", 30)
    sketches, pans = pan_tracking.drawings_and_pans(tmp_path / "pan")
    carry = pan_tracking.known_pan_carry(sketches, pans)()
    for t in (5, 29):
        carry.track_camera(sketches[t])
        assert tuple(carry.camera) == tuple(pans[t])
    monkeypatch.setattr(pan_tracking, "FlowCarry", pan_tracking.known_pan_carry(sketches, pans))
    exact = pan_tracking.tracking_errors(sketches, pans)
    assert exact["max_error"] == 0 and exact["measured_end"] == exact["true_end"] == pans[-1].tolist()

    class StandingStill(pan_tracking.FlowCarry):
        def track_camera(self, lineart):
            pass

    monkeypatch.setattr(pan_tracking, "FlowCarry", StandingStill)
    still = pan_tracking.tracking_errors(sketches, pans)
    off = np.abs(pans).max(axis=1)
    assert still["max_error"] == off.max() > 0 and still["measured_end"] == [0, 0]
    assert still["share_off_1"] == round(float(np.mean(off >= 1)), 3)


def test_region_truth_reads_the_shot(rs, roots, tmp_path):
    from longanimation.evaluation.region_truth import load_region_truth

    pingus, _ = _sources(rs, roots)
    rs.write_shot(rs.plan_shot("ids", "test", [pingus], 64, 64, 12, seed=1, actors=2), tmp_path / "ids")
    truth = load_region_truth(tmp_path / "ids" / "regions", None)
    assert truth.maps.shape == (12, 64, 64)
    assert [r.id for r in truth.regions] == [0, 1, 2]


def test_same_seed_same_shot(rs, roots, tmp_path):
    pingus, _ = _sources(rs, roots)
    first = [rs.render_drawing(rs.plan_shot("d", "test", [pingus], 80, 64, 30, seed=7), tau) for tau in (0, 11, 29)]
    again = [rs.render_drawing(rs.plan_shot("d", "test", [pingus], 80, 64, 30, seed=7), tau) for tau in (0, 11, 29)]
    other = rs.plan_shot("d", "test", [pingus], 80, 64, 30, seed=8)
    for (c1, i1), (c2, i2) in zip(first, again):
        assert np.array_equal(c1, c2) and np.array_equal(i1, i2)
    assert other.camera != rs.plan_shot("d", "test", [pingus], 80, 64, 30, seed=7).camera


def test_split_rule_refuses_train_sources_in_test_shots(rs, roots):
    pingus, supertux = _sources(rs, roots)
    with pytest.raises(ValueError, match="supertux belongs to the train split"):
        rs.plan_shot("bad", "test", [pingus, supertux], 64, 64, 10, seed=0)
    with pytest.raises(ValueError, match="pingus belongs to the test split"):
        rs.plan_shot("bad", "train", [supertux, pingus], 64, 64, 10, seed=0)
    shot = rs.plan_shot("ok", "train", [supertux], 64, 64, 10, seed=0)
    assert {a.sprite.source for a in shot.actors} == {"supertux"} and shot.background_source == "supertux"


def test_missing_package_is_one_clear_line(rs, tmp_path):
    with pytest.raises(rs.SourceMissing, match="wesnoth-1.16-data is not installed"):
        rs.open_source("wesnoth", rs.DirStore(tmp_path / "nowhere"))


def test_build_skips_a_finished_shot(rs, roots, tmp_path):
    pingus, _ = _sources(rs, roots)
    shot = rs.plan_shot("again", "test", [pingus], 64, 64, 8, seed=0)
    rs.write_shot(shot, tmp_path / "again")
    assert rs.is_built(tmp_path / "again", "again", 0)
    assert not rs.is_built(tmp_path / "again", "again", 1)
    assert not list(tmp_path.glob(".again.*"))  # no temporary folder left behind
