"""The synthetic toon world: ground-truth invariants, hard cases, determinism, speed and the CLI."""

from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from longanimation.data.toon import ToonConfig, ToonWorld, frame_ranges, write_world
from longanimation.errors import UserError

SHOT = ToonConfig(seed=3, frames=600, height=256, width=256)


@pytest.fixture(scope="module")
def world() -> ToonWorld:
    return ToonWorld(SHOT)


@pytest.fixture(scope="module")
def manifest(world: ToonWorld) -> dict:
    return world.manifest()


def _color_table(manifest: dict) -> np.ndarray:
    """Region id -> RGB, as the manifest states it."""
    table = np.zeros((manifest["region_count"], 3), dtype=np.uint8)
    for obj in manifest["objects"]:
        for region in obj["parts"] + obj["outlines"]:
            table[region["id"]] = region["color"]
    return table


def _outline_ids(manifest: dict) -> np.ndarray:
    return np.array([region["id"] for obj in manifest["objects"] for region in obj["outlines"]])


def _object_of_region(manifest: dict) -> np.ndarray:
    lookup = np.full(manifest["region_count"], -1)
    for obj in manifest["objects"]:
        for region in obj["parts"] + obj["outlines"]:
            lookup[region["id"]] = obj["id"]
    return lookup


@pytest.fixture(scope="module")
def frame_checks(world: ToonWorld, manifest: dict) -> dict:
    """Render every frame of the 600-frame shot once and record what the tests below assert."""
    colors = _color_table(manifest)
    outline_ids = _outline_ids(manifest)
    is_outline = np.zeros(manifest["region_count"], dtype=bool)
    is_outline[outline_ids] = True
    checks = {"flat_colors": [], "lines_are_outlines": [], "regions_never_touch": [], "ids_in_range": [],
              "seen": np.zeros((world.frames, manifest["region_count"]), dtype=bool)}
    for t in range(world.frames):
        frame = world.render(t)
        regions = frame.regions
        assert frame.color.dtype == np.uint8 and frame.color.shape == (256, 256, 3)
        assert frame.lineart.dtype == bool and regions.dtype == np.int32
        checks["ids_in_range"].append(bool(regions.min() >= 1 and regions.max() < min(manifest["region_count"], 65536)))
        checks["flat_colors"].append(bool((colors[regions] == frame.color).all()))
        checks["lines_are_outlines"].append(bool((is_outline[regions] == frame.lineart).all()))
        # Two different paint regions never touch directly: there is always ink between them.
        paint = np.where(frame.lineart, -1, regions)
        touch_h = (paint[:, 1:] != paint[:, :-1]) & (paint[:, 1:] >= 0) & (paint[:, :-1] >= 0)
        touch_v = (paint[1:] != paint[:-1]) & (paint[1:] >= 0) & (paint[:-1] >= 0)
        checks["regions_never_touch"].append(not touch_h.any() and not touch_v.any())
        checks["seen"][t] = np.bincount(regions.ravel(), minlength=manifest["region_count"]) > 0
    return checks


def test_every_region_has_one_flat_color_in_every_frame(frame_checks):
    assert all(frame_checks["ids_in_range"])
    assert all(frame_checks["flat_colors"])


def test_line_art_is_exactly_the_outline_pixels(frame_checks):
    assert all(frame_checks["lines_are_outlines"])
    assert all(frame_checks["regions_never_touch"])


def test_outlines_use_dark_inks_of_several_colors(manifest):
    inks = [tuple(obj["outlines"][0]["color"]) for obj in manifest["objects"]]
    assert all(sum(ink) / 3 < 80 for ink in inks)
    assert len(set(inks)) > 1 or inks[0] != (0, 0, 0)


def test_background_is_outlined_and_pans_reveal_more_of_it(manifest, frame_checks):
    background = manifest["objects"][0]
    assert background["kind"] == "background" and len(background["parts"]) >= 6
    assert frame_checks["seen"][:, background["outlines"][0]["id"]].all()
    always = sum(part["visible_frames"] == [[0, 599]] for part in background["parts"])
    assert always < len(background["parts"])  # some background regions come and go with the camera


def test_manifest_visibility_matches_rendering(manifest, frame_checks):
    for obj in manifest["objects"]:
        for region in obj["parts"] + obj["outlines"]:
            expected = np.zeros(600, dtype=bool)
            for start, end in region["visible_frames"]:
                expected[start:end + 1] = True
            assert (frame_checks["seen"][:, region["id"]] == expected).all(), region["name"]


def test_manifest_lists_objects_entering_late_and_returning_after_100_frames(manifest):
    objects = manifest["objects"]
    late = [o for o in objects if o["visible_frames"] and o["visible_frames"][0][0] > 0]
    assert late and {o["id"] for o in late} >= set(manifest["events"]["enters_late"])
    returning = [o for o in objects
                 if any(b[0] - a[1] - 1 >= 100 for a, b in zip(o["visible_frames"], o["visible_frames"][1:]))]
    assert any(o["kind"] == "character" for o in returning)
    assert manifest["events"]["returns"]


def test_manifest_holds_the_shot_description(manifest):
    assert (manifest["seed"], manifest["frames"], manifest["height"], manifest["width"], manifest["fps"]) == (
        3, 600, 256, 256, 24)
    assert manifest["caption"].startswith("a ") and " walk " in manifest["caption"]
    kinds = [o["kind"] for o in manifest["objects"]]
    assert kinds[0] == "background" and kinds.count("character") >= 3 and "prop" in kinds
    ids = [region["id"] for o in manifest["objects"] for region in o["parts"] + o["outlines"]]
    assert sorted(ids) == list(range(1, manifest["region_count"]))
    json.dumps(manifest)  # serialisable


@pytest.mark.parametrize("seed", range(6))
def test_hard_cases_are_guaranteed_for_300_frame_shots(seed):
    manifest = ToonWorld(ToonConfig(seed=seed, frames=300, height=96, width=96)).manifest()
    events = manifest["events"]
    wanderer = next(o for o in manifest["objects"] if o["role"] == "wanderer")
    assert wanderer["visible_frames"][0][0] == 0
    assert any(r["object"] == wanderer["id"] and r["absent_frames"] >= 100 for r in events["returns"])
    assert events["enters_late"] and events["crossings"]


def test_twins_have_one_shape_two_colors_and_cross_paths(world, manifest):
    (first, second), = manifest["events"]["same_shape"]
    twin_a, twin_b = manifest["objects"][first], manifest["objects"][second]
    assert twin_a["template"] == twin_b["template"] and twin_a["kind"] == "character"
    def part_names(twin):
        return [p["name"].removeprefix(twin["name"]) for p in twin["parts"]]

    assert part_names(twin_a) == part_names(twin_b)
    assert [p["color"] for p in twin_a["parts"]] != [p["color"] for p in twin_b["parts"]]
    owner = _object_of_region(manifest)
    (crossing,) = manifest["events"]["crossings"]
    assert crossing["objects"] == [first, second]
    overlapping = []
    for t in range(crossing["frame"] - 12, crossing["frame"] + 12):
        objects = owner[world.render_regions(t)]
        boxes = []
        for index in (first, second):
            ys, xs = np.nonzero(objects == index)
            boxes.append((xs.min(), xs.max(), ys.min(), ys.max()) if len(xs) else None)
        a, b = boxes
        overlapping.append(a is not None and b is not None and a[0] <= b[1] and b[0] <= a[1]
                           and a[2] <= b[3] and b[2] <= a[3])
    assert any(overlapping)


def test_held_drawings_are_byte_identical(world, manifest):
    stretches = manifest["held_stretches"]
    assert {2, 3} <= {s["hold"] for s in stretches}
    drawing = np.array(manifest["drawing_index"])
    for stretch in stretches[:4]:
        start, hold = stretch["start"], stretch["hold"]
        assert len(set(drawing[start:start + hold])) == 1
        first, last = world.render(start), world.render(start + hold - 1)
        assert np.array_equal(first.color, last.color)
        assert np.array_equal(first.lineart, last.lineart) and np.array_equal(first.regions, last.regions)
        assert world.drawing_index(start + hold) == world.drawing_index(start) + 1
    on_ones = [t for t in range(599) if drawing[t + 1] != drawing[t]]
    assert len(on_ones) > 100


def test_render_is_random_access_and_deterministic(world):
    fresh = ToonWorld(SHOT)
    for t in (517, 3, 250):
        a, b = world.render(t), fresh.render(t)
        assert np.array_equal(a.color, b.color) and np.array_equal(a.regions, b.regions)
    clip = fresh.render_range(240, 260)
    assert clip.color.shape == (20, 256, 256, 3) and clip.regions.shape == (20, 256, 256)
    for k in (0, 7, 19):
        assert np.array_equal(clip.regions[k], world.render(240 + k).regions)
        assert clip.drawing_index[k] == world.drawing_index(240 + k)
    other = ToonWorld(ToonConfig(seed=4, frames=600))
    assert not np.array_equal(other.render(0).color, world.render(0).color)
    with pytest.raises(IndexError):
        world.render(600)


def test_rendering_runs_at_least_100_frames_per_second_on_one_thread(world):
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        world.render(0)
        started = time.perf_counter()
        for t in range(200, 400):
            world.render(t)
        fps = 200 / (time.perf_counter() - started)
    finally:
        cv2.setNumThreads(threads)
    assert fps >= 100, f"{fps:.0f} frames per second"


def test_sizes_scale_and_bad_configs_are_user_errors():
    wide = ToonWorld(ToonConfig(seed=1, frames=30, height=64, width=160))
    frame = wide.render(29)
    assert frame.color.shape == (64, 160, 3) and frame.regions.shape == (64, 160)
    assert ToonConfig(height=512, width=512).outline_width > ToonConfig().outline_width == 1
    assert ToonWorld(ToonConfig(seed=2, frames=1, height=32, width=32)).render(0).lineart.any()
    for bad in ({"frames": 0}, {"height": 16}, {"seed": -1}, {"fps": 0}):
        with pytest.raises(UserError):
            ToonConfig(**bad)


def test_frame_ranges():
    assert frame_ranges(np.array([0, 1, 1, 0, 1], dtype=bool)) == [[1, 2], [4, 4]]
    assert frame_ranges(np.zeros(3, dtype=bool)) == []


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_cli_generate_writes_the_layout_deterministically(run_cli, tmp_path):
    out = tmp_path / "shot"
    result = run_cli("toon", "generate", "--frames", "40", "--size", "64", "--seed", "1", out)
    assert result.returncode == 0, result.stderr
    assert "40 frames" in result.stdout and len(result.stdout.strip().splitlines()) == 1
    manifest = json.loads((out / "manifest.json").read_text())
    assert (manifest["frames"], manifest["height"], manifest["width"], manifest["seed"]) == (40, 64, 64, 1)
    for folder in ("color", "lineart", "regions"):
        assert sorted(p.name for p in (out / folder).iterdir()) == [f"{t:05d}.png" for t in range(40)]
    world = ToonWorld(ToonConfig(seed=1, frames=40, height=64, width=64))
    frame = world.render(17)
    color = cv2.cvtColor(cv2.imread(str(out / "color/00017.png"), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)
    lineart = cv2.imread(str(out / "lineart/00017.png"), cv2.IMREAD_UNCHANGED)
    regions = cv2.imread(str(out / "regions/00017.png"), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(color, frame.color)
    assert lineart.dtype == np.uint8 and set(np.unique(lineart)) <= {0, 255}
    assert np.array_equal(lineart == 0, frame.lineart)
    assert regions.dtype == np.uint16 and np.array_equal(regions, frame.regions)
    stretch = manifest["held_stretches"][0]
    held = [f"lineart/{t:05d}.png" for t in (stretch["start"], stretch["start"] + 1)]
    files = _files(out)
    assert files[held[0]] == files[held[1]]

    again = tmp_path / "again"
    write_world(world, again)
    assert _files(again) == files
    write_world(world, out)  # an earlier toon world is replaced
    assert _files(out) == files


@pytest.mark.parametrize("case", ["no frames", "tiny", "out is a file", "parent is a file", "foreign folder"])
def test_cli_bad_input_is_one_line_and_exit_code_2(run_cli, tmp_path, case):
    (tmp_path / "a file").write_text("x")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    out, options = tmp_path / "shot", ["--frames", "5", "--size", "32"]
    if case == "no frames":
        options = ["--frames", "0"]
    elif case == "tiny":
        options = ["--size", "16"]
    elif case == "out is a file":
        out = tmp_path / "a file"
    elif case == "parent is a file":
        out = tmp_path / "a file" / "shot"
    else:
        out = tmp_path / "notes"
    before = _files(tmp_path)
    result = run_cli("toon", "generate", *options, out)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("error:")
    assert "Traceback" not in result.stderr
    assert _files(tmp_path) == before and sorted(p.name for p in tmp_path.iterdir()) == ["a file", "notes"]
