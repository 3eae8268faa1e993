"""``longanimation evaluate``: Table 1 metrics, skipped heavy metrics, region color consistency, CLI behaviour."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from longanimation.cli.app import main
from longanimation.errors import UserError
from longanimation.evaluation.distribution import frechet_distance, i3d_features, inception_features
from longanimation.evaluation.frame_metrics import PSNR_CAP, to_protocol
from longanimation.evaluation.keyframe_coverage import coverage_report
from longanimation.evaluation.networks import I3D, FIDInceptionV3, LPIPSAlexNet
from longanimation.evaluation.region_truth import load_region_truth
from longanimation.evaluation.report import to_markdown
from longanimation.evaluation.runner import ConsistencyInputs, Networks, evaluate
from longanimation.evaluation.segments import Segmentation, fixed_segments, read_segments

FRAMES, SIZE = 16, 64
SHIFTED_FRAME = 11
PARTS = {  # region id -> (object id, object, part, flat color)
    1: (0, "backdrop", "sky", (90, 160, 220)),
    2: (0, "backdrop", "ground", (80, 140, 60)),
    3: (1, "red ball", "red ball body", (200, 40, 40)),
    4: (1, "red ball", "red ball stripe", (250, 220, 60)),
    6: (2, "blue box", "blue box body", (40, 60, 200)),
}
OUTLINE = 5  # the red ball's ink: not evaluated


def _region_maps() -> np.ndarray:
    """A ball moving right over sky and ground, and a box that enters at frame 5 (absent from frame 0)."""
    maps = np.ones((FRAMES, SIZE, SIZE), np.uint16)
    maps[:, 48:] = 2
    for t in range(FRAMES):
        x = 2 + t
        maps[t, 20:38, x : x + 18] = OUTLINE
        maps[t, 21:37, x + 1 : x + 17] = 3
        maps[t, 27:32, x + 1 : x + 17] = 4
        if t >= 5:
            maps[t, 36:50, 44:58] = 6
    return maps


def _paint(maps: np.ndarray) -> np.ndarray:
    palette = np.zeros((8, 3), np.uint8)
    for region, (_, _, _, color) in PARTS.items():
        palette[region] = color
    palette[OUTLINE] = (20, 20, 20)
    return palette[maps]


def _write_pngs(folder, frames) -> None:
    folder.mkdir(parents=True)
    for t, frame in enumerate(frames):
        image = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR) if frame.ndim == 3 else frame
        cv2.imwrite(str(folder / f"{t:05d}.png"), image)


def _manifest() -> dict:
    objects = {}
    for region, (object_id, name, part, color) in PARTS.items():
        entry = objects.setdefault(object_id, {"id": object_id, "name": name, "parts": [], "outlines": []})
        entry["parts"].append({"id": region, "name": part, "color": list(color)})
    objects[1]["outlines"].append({"id": OUTLINE, "name": "red ball outline", "color": [20, 20, 20]})
    return {"generator": "test", "objects": list(objects.values())}


@pytest.fixture
def shot(tmp_path):
    """A toon-like world on disk (color/, regions/, manifest.json) and its frames; pred shifts the box once."""
    maps = _region_maps()
    gt = _paint(maps)
    pred = gt.copy()
    box = maps[SHIFTED_FRAME] == 6
    pred[SHIFTED_FRAME][box] = np.clip(pred[SHIFTED_FRAME][box].astype(int) + (60, 60, -60), 0, 255)
    world = tmp_path / "world"
    _write_pngs(world / "color", gt)
    _write_pngs(world / "regions", maps)
    (world / "manifest.json").write_text(json.dumps(_manifest()))
    _write_pngs(tmp_path / "pred", pred)
    return {"root": tmp_path, "world": world, "gt": gt, "pred": pred, "maps": maps}


def _random_weights(network: nn.Module, path) -> str:
    """Save a random network of the right architecture; He-initialised so activations keep their scale."""
    torch.manual_seed(0)
    for module in network.modules():
        if isinstance(module, (nn.Conv2d, nn.Conv3d)):
            nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    if isinstance(network, LPIPSAlexNet):  # learned LPIPS heads are non-negative
        for head in (network.lin0, network.lin1, network.lin2, network.lin3, network.lin4):
            head.model[0].weight.data.abs_()
    save_file({k: v.contiguous() for k, v in network.state_dict().items()}, str(path))
    return str(path)


def _consistency(world, segmentation: Segmentation | None = None) -> ConsistencyInputs:
    return ConsistencyInputs(load_region_truth(world / "regions", None), segmentation or fixed_segments(FRAMES, 8))


def test_identical_shots_score_perfectly_with_random_lpips(shot, tmp_path):
    networks = Networks.load(_random_weights(LPIPSAlexNet(), tmp_path / "lpips.safetensors"), None, None, "cpu")
    gt = shot["gt"]
    report = evaluate(gt, gt.copy(), networks, _consistency(shot["world"]))
    for row in ("short_term", "long_term"):
        cells = report["table"][row]
        assert cells["psnr"] == PSNR_CAP and cells["ssim"] == pytest.approx(1.0) and cells["lpips"] == 0.0
    assert report["per_frame"]["psnr"] == [PSNR_CAP] * FRAMES
    consistency = report["consistency"]
    assert consistency["summary"]["mean_delta_e"] == 0.0
    assert consistency["worst"] == [] and consistency["worst_jumps"] == []
    assert {obj["object"] for obj in consistency["objects"]} == {"backdrop", "red ball", "blue box"}
    assert consistency["summary"]["objects_absent_in_frame_0"] == ["blue box"]
    lpips = evaluate(shot["pred"], gt, networks)["per_frame"]["lpips"]
    assert lpips[SHIFTED_FRAME] > 0 and lpips[SHIFTED_FRAME - 1] == 0.0


def test_one_frame_color_shift_names_that_object_and_frame(shot):
    world = shot["world"]
    report = evaluate(shot["pred"], shot["gt"], Networks(), _consistency(world))["consistency"]
    worst = report["worst"]
    assert [(w["object"], w["frame"]) for w in worst] == [("blue box", SHIFTED_FRAME)]
    assert worst[0]["delta_e"] > 30
    jumps = {(w["object"], w["frame"]) for w in report["worst_jumps"]}
    assert jumps == {("blue box", SHIFTED_FRAME), ("blue box", SHIFTED_FRAME + 1)}
    box = next(obj for obj in report["objects"] if obj["object"] == "blue box")
    assert box["absent_in_frame_0"] and box["first_visible"] == 5 and box["worst_frame"] == SHIFTED_FRAME
    assert box["delta_e_per_frame"][0] is None and box["segment_spread"] > 0
    ball = next(obj for obj in report["objects"] if obj["object"] == "red ball")
    assert ball["max_delta_e"] == 0.0 and [p["part"] for p in ball["parts"]] == ["red ball body", "red ball stripe"]
    # A seam right at the shifted frame shows the jump; the seam elsewhere does not.
    seams = evaluate(shot["pred"], shot["gt"], Networks(), _consistency(world, fixed_segments(FRAMES, 11)))
    by_frames = {tuple(s["frames"]): s for s in seams["consistency"]["seams"]}
    assert by_frames[(10, 11)]["worst_object"] == "blue box" and by_frames[(10, 11)]["worst_jump"] > 30


def test_without_manifest_each_region_is_measured_against_the_ground_truth(shot):
    (shot["world"] / "manifest.json").unlink()
    truth = load_region_truth(shot["world"] / "regions", None)
    assert truth.source.startswith("mean ground-truth color")
    report = evaluate(shot["pred"], shot["gt"], Networks(), ConsistencyInputs(truth, fixed_segments(FRAMES, 8)))
    assert [(w["object"], w["frame"]) for w in report["consistency"]["worst"]] == [("region 6", SHIFTED_FRAME)]


def test_skipped_metrics_name_the_missing_weights(shot):
    report = evaluate(shot["pred"], shot["gt"], Networks())
    for metric, option in (("lpips", "--lpips-weights"), ("fid", "--inception-weights"), ("fvd", "--i3d-weights")):
        assert report["table"]["long_term"][metric] is None
        assert report["skipped"][metric].startswith(f"skipped: no {option} given (")
        assert "nothing is downloaded" in report["skipped"][metric]
    assert report["consistency"]["skipped"].startswith("skipped: no --ids given")
    markdown = to_markdown(report)
    assert "| long-term (all 16) | skipped |" in markdown and "no --lpips-weights given" in markdown
    assert any("high variance" in note for note in report["notes"])


def test_fid_and_fvd_run_with_random_networks(shot, tmp_path):
    networks = Networks.load(
        None,
        _random_weights(FIDInceptionV3(), tmp_path / "inception.safetensors"),
        _random_weights(I3D(), tmp_path / "i3d.safetensors"),
        "cpu",
    )
    gt = shot["gt"]
    table = evaluate(gt, gt.copy(), networks)["table"]
    for row in ("short_term", "long_term"):
        assert table[row]["fid"] == pytest.approx(0.0, abs=1e-6)
        assert table[row]["fvd"] == pytest.approx(0.0, abs=1e-6)
    noisy = np.clip(gt + np.random.default_rng(0).normal(0, 40, gt.shape), 0, 255).astype(np.uint8)
    gt_p, noisy_p = to_protocol(gt), to_protocol(noisy)
    inception_gt = inception_features(gt_p, networks.inception)
    assert inception_gt.shape == (FRAMES, 2048)
    assert frechet_distance(inception_features(noisy_p, networks.inception), inception_gt) > 1e-3
    i3d_gt = i3d_features(gt_p, networks.i3d)
    assert i3d_gt.shape == (1, 400)
    assert frechet_distance(i3d_features(noisy_p, networks.i3d), i3d_gt) > 1e-6


@pytest.mark.parametrize("samples, dims", [(10, 32), (200, 6)])  # singular covariances / many samples
def test_frechet_distance_matches_closed_form(samples, dims):
    rng = np.random.default_rng(1)
    a = rng.normal(size=(samples, dims))
    b = 2 * a + 1  # cov_b = 4 cov_a, so tr sqrt(cov_a cov_b) = 2 tr cov_a
    expected = np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(np.cov(a, rowvar=False))
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    assert frechet_distance(a[:1], b[:1]) == pytest.approx(np.sum((a[0] - b[0]) ** 2))


def test_segments_file_and_seams(tmp_path):
    path = tmp_path / "segments.json"
    path.write_text(json.dumps({"segments": [{"start": 0, "end": 81}, {"start": 64, "end": 100}]}))
    segmentation = read_segments(path, 100)
    assert segmentation.ranges == ((0, 81), (64, 100)) and segmentation.seams() == [(63, 81)]
    plan = [{"run": 0, "frames": [0, 72]}, {"run": 0, "frames": []}, {"run": 1, "frames": [73, 99]}]
    path.write_text(json.dumps({"segments": plan}))  # colorize's segments.json: inclusive contributed frames
    assert read_segments(path, 100).ranges == ((0, 73), (73, 100)) and read_segments(path, 100).seams() == [(72, 73)]
    path.write_text(json.dumps([[0, 50], [50, 120]]))
    with pytest.raises(UserError, match=r"\[50, 120\) does not fit"):
        read_segments(path, 100)


def _error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    return lines[0]


def test_cli_bad_inputs_exit_2_with_one_line(shot, tmp_path, capsys):
    root, world = shot["root"], shot["world"]
    out = root / "out" / "report.json"
    out.parent.mkdir()
    out.write_text("old")
    base = ["evaluate", "--gt", str(world / "color"), "--out", str(out), "-q"]
    assert main([*base, "--pred", str(root / "missing")]) == 2
    assert "does not exist" in _error_line(capsys)
    short = root / "short"
    _write_pngs(short, shot["pred"][:-1])
    assert main([*base, "--pred", str(short)]) == 2
    assert "15 frames but --gt has 16" in _error_line(capsys)
    pickle_file = tmp_path / "lpips.pth"
    torch.save({"x": torch.zeros(1)}, pickle_file)
    assert main([*base, "--pred", str(root / "pred"), "--lpips-weights", str(pickle_file)]) == 2
    assert "pickle" in _error_line(capsys)
    wrong = _random_weights(LPIPSAlexNet(), tmp_path / "wrong.safetensors")
    assert main([*base, "--pred", str(root / "pred"), "--i3d-weights", wrong]) == 2
    assert "does not match I3D" in _error_line(capsys)
    assert out.read_text() == "old" and sorted(p.name for p in out.parent.iterdir()) == ["report.json"]


def test_cli_report_defaults_to_beside_pred(shot, tmp_path, monkeypatch):
    root, elsewhere = shot["root"], tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["evaluate", "--pred", str(root / "pred"), "--gt", str(shot["world"] / "color"), "-q"]) == 0
    assert json.loads((root / "report.json").read_text())["inputs"]["pred"] == str(root / "pred")
    assert (root / "report.md").is_file() and not any(elsewhere.iterdir())


def test_cli_writes_json_and_markdown(shot, run_cli):
    root = shot["root"]
    out = root / "reports" / "report.json"
    done = run_cli(
        "evaluate",
        "--pred",
        root / "pred",
        "--gt",
        shot["world"] / "color",
        "--ids",
        shot["world"] / "regions",
        "--segment-length",
        "8",
        "--out",
        out,
    )
    assert done.returncode == 0, done.stderr
    assert "| frames | LPIPS ↓ | SSIM ↑ | PSNR ↑ | FVD ↓ | FID ↓ |" in done.stdout
    report = json.loads(out.read_text())
    assert report["consistency"]["worst"][0]["object"] == "blue box"
    assert report["consistency"]["worst"][0]["frame"] == SHIFTED_FRAME
    assert len(report["per_frame"]["psnr"]) == FRAMES and report["per_frame"]["psnr"][SHIFTED_FRAME] < PSNR_CAP
    markdown = out.with_suffix(".md").read_text()
    assert "| blue box | 11 | blue box body |" in markdown and "blue box (not in frame 0)" in markdown
    assert sorted(p.name for p in out.parent.iterdir()) == ["report.json", "report.md"]


def test_keyframe_coverage_splits_what_no_keyframe_shows(shot):
    """The box enters at frame 5: from frame 0 alone its shifted color lies on uncovered pixels only."""
    root, world = shot["root"], shot["world"]
    base = ["evaluate", "--pred", str(root / "pred"), "--gt", str(world / "color"), "--ids", str(world / "regions")]
    assert main([*base, "--keyframe-ids", str(world / "regions" / "00000.png"), "--out", str(root / "a.json"), "-q"]) == 0
    report = json.loads((root / "a.json").read_text())
    coverage = report["keyframe_coverage"]
    assert coverage["keyframes"] == 1 and report["inputs"]["keyframe_ids"] == [str(world / "regions" / "00000.png")]
    box_share = 14 * 14 / SIZE**2
    assert coverage["per_frame"]["uncovered_fraction"] == pytest.approx([0.0] * 5 + [box_share] * 11, abs=1e-6)
    assert coverage["uncovered_fraction_long"] == pytest.approx(11 * box_share / FRAMES, abs=1e-6)
    assert coverage["covered_psnr_long"] == PSNR_CAP  # every error is on the box
    assert coverage["psnr_long_without_covered_decay"] == pytest.approx(coverage["psnr_long"])  # nothing decays
    assert coverage["psnr_long"] == pytest.approx(report["table"]["long_term"]["psnr"])
    assert coverage["psnr_long"] < PSNR_CAP
    markdown = (root / "a.md").read_text()
    assert "| long-term | 3.29% |" in markdown
    assert f"kept their short-term error (the decay left is the uncovered pixels'): {coverage['psnr_long']:.2f}" in markdown

    keyframes = [str(world / "regions" / name) for name in ("00000.png", "00005.png")]
    assert main([*base, *(x for k in keyframes for x in ("--keyframe-ids", k)), "--out", str(root / "b.json"), "-q"]) == 0
    coverage = json.loads((root / "b.json").read_text())["keyframe_coverage"]
    assert coverage["keyframes"] == 2 and coverage["uncovered_fraction_long"] == 0.0
    assert coverage["covered_psnr_long"] == pytest.approx(coverage["psnr_long"]) and coverage["psnr_long"] < PSNR_CAP


def test_long_term_without_covered_decay_keeps_only_the_uncovered_error():
    """Covered error 0.1 in the short-term frames, 0.3 later; 4 of 16 pixels uncovered later, error 0.5."""
    gt = np.zeros((4, 4, 4, 3))
    maps = np.ones((4, 4, 4), np.int32)
    maps[2:, :2, :2] = 2  # a region frame 0 does not show
    pred = gt + np.array([0.1, 0.1, 0.3, 0.3])[:, None, None, None]
    pred[2:, :2, :2] = 0.5
    coverage = coverage_report(pred, gt, maps, maps[:1], short_frames=2)
    late = (12 * 0.1**2 + 4 * 0.5**2) / 16  # covered pixels back at the short-term error
    assert coverage["psnr_long_without_covered_decay"] == pytest.approx((2 * 20 + 2 * 10 * np.log10(1 / late)) / 4)
    assert coverage["covered_psnr_long"] < coverage["covered_psnr_short"] == pytest.approx(20)


def test_keyframe_ids_bad_inputs_exit_2_with_one_line(shot, capsys):
    root, world = shot["root"], shot["world"]
    out = root / "report.json"
    base = ["evaluate", "--pred", str(root / "pred"), "--gt", str(world / "color"), "--out", str(out), "-q"]
    keyframe = str(world / "regions" / "00000.png")
    assert main([*base, "--keyframe-ids", keyframe]) == 2
    assert "give --ids too" in _error_line(capsys)
    small = root / "small.png"
    cv2.imwrite(str(small), np.ones((8, 8), np.uint16))
    assert main([*base, "--ids", str(world / "regions"), "--keyframe-ids", str(small)]) == 2
    assert "keyframe region maps are 8x8 but --ids maps are 64x64" in _error_line(capsys)
    assert main([*base, "--ids", str(world / "regions"), "--keyframe-ids", str(world / "color" / "00000.png")]) == 2
    assert "is not a single-channel" in _error_line(capsys)
    assert not out.exists()
