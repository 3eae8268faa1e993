"""Nothing lost, nothing wrong in silence: image modes, frame names, output folders, evaluate sizes, model folders.

Each test pins one failure that used to pass unnoticed: a 16-bit keyframe read
as white, a frame dropped for sharing its name, an output folder emptied, a
prediction scored against a truth of another shape, a corrupt or mislabelled
model loaded. Bad input must give one line and exit code 2, never a traceback
or a half-written output.
"""

from __future__ import annotations

import errno
import json
import shutil

import cv2
import numpy as np
import pytest
from PIL import Image

import longanimation.cli.colorize as colorize_cli
from longanimation.cli.app import main
from longanimation.cli.colorize import DEFAULT_MODEL
from longanimation.data import video_io
from longanimation.data.lineart import binarize_frames, image_to_lineart, is_binary
from longanimation.data.video_io import read_image, read_shot, write_frames, write_png_folder
from longanimation.errors import UserError
from longanimation.evaluation.runner import Networks, check_frame_sizes, evaluate
from longanimation.models.longanimation_model import INDEX_NAME, LongAnimationModel, weights_digests


def _one_line_exit_2(code: int, capsys) -> str:
    """The error line of a CLI run that must fail with exit 2 and a single line, no traceback."""
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def _frames(count=3, height=32, width=48, seed=0):
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(count, height // 16, width // 16, 3), dtype=np.uint8)
    return small.repeat(16, axis=1).repeat(16, axis=2)


# ---------------------------------------------------------------------------------------------- image modes


def _gray16(value_at, shape=(8, 12)):
    gray = np.full(shape, 65535, np.uint16)
    gray[2:4] = value_at
    gray[6, :] = 0
    return gray


@pytest.mark.parametrize(
    ("name", "make", "opened_as"),
    [
        ("g16.png", lambda g: Image.fromarray(g), "I;16"),
        ("g16b.tif", lambda g: Image.fromarray(g.astype(">u2")), "I;16B"),
        ("g32.tif", lambda g: Image.fromarray(g.astype(np.int32)), "I"),
    ],
)
def test_16_bit_gray_is_scaled_to_8_bit_not_clipped(tmp_path, name, make, opened_as):
    gray = _gray16(20000)
    make(gray).save(tmp_path / name)
    with Image.open(tmp_path / name) as image:
        assert image.mode == opened_as  # the mode this case is about
    expected = np.rint(gray / 257.0).astype(np.uint8)
    assert np.array_equal(read_image(tmp_path / name, "L"), expected)  # was 255 wherever gray > 255
    rgb = read_image(tmp_path / name, "RGB")
    assert np.array_equal(rgb, np.repeat(expected[..., None], 3, axis=2))
    assert read_image(tmp_path / name, "RGBA")[..., 3].min() == 255


def test_16_bit_keyframe_is_not_white(tmp_path):
    ramp = (np.arange(16 * 16, dtype=np.uint32).reshape(16, 16) * 256).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "key.png")
    key = read_image(tmp_path / "key.png")
    assert key.mean() < 160 and (key < 128).mean() > 0.4  # a dark-to-light ramp, not a white frame


def test_16_bit_gray_transparency_becomes_white(tmp_path):
    Image.fromarray(np.array([[1000, 60000]], np.uint16)).save(tmp_path / "t.png", transparency=1000)
    assert read_image(tmp_path / "t.png", "L").tolist() == [[255, 233]]
    assert read_image(tmp_path / "t.png", "RGBA")[..., 3].tolist() == [[0, 255]]


def test_48_bit_rgb_png_is_scaled(tmp_path):
    rgb = np.zeros((6, 6, 3), np.uint16)
    rgb[...] = (30000, 1000, 65535)
    cv2.imwrite(str(tmp_path / "rgb48.png"), rgb[..., ::-1])  # cv2 writes BGR
    expected = np.rint(rgb / 257.0)
    assert np.abs(read_image(tmp_path / "rgb48.png").astype(int) - expected).max() <= 1
    assert np.abs(read_image(tmp_path / "rgb48.png", "L").astype(int) - np.rint(expected @ [0.299, 0.587, 0.114])).max() <= 1


def test_16_bit_line_art_with_dark_gray_lines_keeps_its_lines(tmp_path):
    """`binarize` reads RGBA frames: 16-bit lines at 20000/65535 (gray 78) were clipped to white."""
    folder = tmp_path / "sketch"
    folder.mkdir()
    gray = _gray16(20000)
    gray[6, :] = 65535
    for index in range(2):
        Image.fromarray(gray).save(folder / f"{index:05d}.png")
    shot = read_shot(folder, mode="RGBA")
    masks = binarize_frames(shot.frames)
    assert np.array_equal(masks[0], gray < 60000) and masks[1].sum() == 2 * gray.shape[1]


def test_float_gray_in_unit_range_is_scaled(tmp_path):
    Image.fromarray(np.array([[0.0, 0.25, 1.0]], np.float32)).save(tmp_path / "f.tif")
    assert read_image(tmp_path / "f.tif", "L").tolist() == [[0, 64, 255]]


def test_palette_with_transparency_is_composited_over_white(tmp_path):
    image = Image.fromarray(np.array([[0, 1], [1, 2]], np.uint8), "P")
    image.putpalette([255, 0, 0, 0, 0, 255, 0, 0, 0])
    image.save(tmp_path / "p.png", transparency=0)
    rgb = read_image(tmp_path / "p.png")
    assert rgb[0, 0].tolist() == [255, 255, 255] and rgb[0, 1].tolist() == [0, 0, 255]
    assert read_image(tmp_path / "p.png", "RGBA")[0, 0, 3] == 0
    assert read_image(tmp_path / "p.png", "L")[1, 1] == 0


def test_gray_with_a_transparent_level_is_composited_over_white(tmp_path):
    Image.fromarray(np.array([[10, 200]], np.uint8)).save(tmp_path / "l.png", transparency=10)
    assert read_image(tmp_path / "l.png", "L").tolist() == [[255, 200]]


def test_la_and_1_bit_and_cmyk(tmp_path):
    la = np.zeros((2, 2, 2), np.uint8)
    la[0, 0] = (0, 255)  # opaque black
    la[0, 1] = (0, 0)  # transparent black
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    assert read_image(tmp_path / "la.png", "L").tolist() == [[0, 255], [255, 255]]

    Image.fromarray(np.array([[0, 255], [255, 0]], np.uint8)).convert("1").save(tmp_path / "b.png")
    assert read_image(tmp_path / "b.png", "L").tolist() == [[0, 255], [255, 0]]
    assert is_binary(read_image(tmp_path / "b.png"))

    color = _frames(1)[0]
    Image.fromarray(color).convert("CMYK").save(tmp_path / "c.tif")
    with Image.open(tmp_path / "c.tif") as image:
        assert image.mode == "CMYK"
    assert np.abs(read_image(tmp_path / "c.tif").astype(int) - color).max() <= 2
    Image.fromarray(color).convert("CMYK").save(tmp_path / "c.jpg", quality=95)
    assert np.abs(read_image(tmp_path / "c.jpg").astype(int) - color).mean() < 8


def test_lab_image_reads_in_every_mode(tmp_path):
    Image.fromarray(_frames(1)[0]).convert("LAB").save(tmp_path / "lab.tif")
    for mode in ("RGB", "RGBA", "L"):
        assert read_image(tmp_path / "lab.tif", mode).shape[:2] == (32, 48)


# ---------------------------------------------------------------------------------------------- frame names


def test_two_images_with_one_stem_are_refused(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    frames = _frames(3)
    Image.fromarray(frames[0]).save(folder / "00002.png")
    Image.fromarray(frames[1]).save(folder / "00003.png")
    Image.fromarray(frames[2]).save(folder / "00003.bmp")
    with pytest.raises(UserError, match=r"00003\.bmp and 00003\.png|00003\.png and 00003\.bmp"):
        read_shot(folder)
    line = _one_line_exit_2(main(["convert", str(folder), str(tmp_path / "out")]), capsys)
    assert "00003" in line
    assert not (tmp_path / "out").exists()


def test_frame_names_must_be_unique_when_writing(tmp_path):
    with pytest.raises(ValueError, match="unique"):
        write_png_folder(tmp_path / "out", _frames(2), names=["a", "a"])


# ---------------------------------------------------------------------------------------------- polarity


def test_image_to_lineart_reads_white_on_black(tmp_path):
    image = np.zeros((8, 8), np.uint8)
    image[3] = 255  # one white line on black
    assert image_to_lineart(image).sum() == 56  # the on-disk convention: black is line
    assert image_to_lineart(image, light_lines=True).sum() == 8
    assert image_to_lineart(image, light_lines=None).sum() == 8


def test_colorize_takes_white_on_black_binary_line_art_as_it_is(tmp_path, monkeypatch):
    folder = tmp_path / "lineart"
    folder.mkdir()
    for index in range(3):
        frame = np.zeros((32, 32), np.uint8)
        frame[:, 4 + index] = 255
        frame[10, :] = 255
        Image.fromarray(frame).save(folder / f"{index:05d}.png")
    Image.fromarray(_frames(1, 32, 32)[0]).save(tmp_path / "key.png")
    seen = {}

    def capture(sketches, *args, **kwargs):
        seen["sketches"] = sketches

    monkeypatch.setattr(colorize_cli, "_run", capture)
    assert main(["colorize", str(folder), str(tmp_path / "out"), "-k", str(tmp_path / "key.png")]) == 0
    sketches = np.stack(list(seen["sketches"]))  # spooled to disk frame by frame
    assert sketches.dtype == np.bool_ and sketches.shape == (3, 32, 32)
    assert sketches.mean() < 0.1  # the white strokes are the lines (was: 94% of pixels read as lines)
    assert sketches[0, 10].all() and sketches[2, :, 6].all() and not sketches[0, 0, 0]


# ---------------------------------------------------------------------------------------------- output folders


def _source(tmp_path, count=3):
    write_png_folder(tmp_path / "in", _frames(count))
    return tmp_path / "in"


def _occupied(tmp_path):
    target = tmp_path / "target"
    target.mkdir()
    (target / "keep.txt").write_text("mine\n")
    Image.fromarray(_frames(1, seed=5)[0]).save(target / "photo.png")
    return target


def test_convert_refuses_a_folder_that_holds_files(tmp_path, capsys):
    source, target = _source(tmp_path), _occupied(tmp_path)
    line = _one_line_exit_2(main(["convert", str(source), str(target)]), capsys)
    assert "not empty" in line and "--overwrite" in line
    assert sorted(path.name for path in target.iterdir()) == ["keep.txt", "photo.png"]


def test_convert_overwrite_replaces_only_its_frames(tmp_path, capsys):
    source, target = _source(tmp_path), _occupied(tmp_path)
    photo = (target / "photo.png").read_bytes()
    (target / "00001.png").write_bytes(b"old frame")
    assert main(["convert", str(source), str(target), "--overwrite"]) == 0
    assert sorted(path.name for path in target.iterdir()) == ["00000.png", "00001.png", "00002.png", "keep.txt", "photo.png"]
    assert (target / "keep.txt").read_text() == "mine\n" and (target / "photo.png").read_bytes() == photo
    assert np.array_equal(read_image(target / "00001.png"), _frames(3)[1])
    assert main(["convert", str(source), str(target), "--overwrite"]) == 0  # again: same result
    assert len(list(target.iterdir())) == 5


def test_write_frames_never_deletes_foreign_files(tmp_path):
    target = _occupied(tmp_path)
    write_frames(target, _frames(2), 24.0)
    assert sorted(path.name for path in target.iterdir()) == ["00000.png", "00001.png", "keep.txt", "photo.png"]
    with pytest.raises(UserError, match="not empty"):
        write_frames(target, _frames(2), 24.0, overwrite=False)
    write_frames(tmp_path / "empty", _frames(2), 24.0, overwrite=False)  # a new folder is fine
    (tmp_path / "blank").mkdir()
    write_frames(tmp_path / "blank", _frames(2), 24.0, overwrite=False)  # and so is an empty one
    assert len(list((tmp_path / "blank").iterdir())) == 2


def test_convert_refuses_an_existing_video_without_overwrite(tmp_path, capsys):
    source = _source(tmp_path)
    video = tmp_path / "v.mp4"
    video.write_bytes(b"someone's video")
    line = _one_line_exit_2(main(["convert", str(source), str(video)]), capsys)
    assert "exists" in line and video.read_bytes() == b"someone's video"
    assert main(["convert", str(source), str(video), "--overwrite"]) == 0
    assert read_shot(video).num_frames == 3


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), "No space left on device"),
        (PermissionError(errno.EACCES, "Permission denied"), "Permission denied"),
    ],
)
@pytest.mark.parametrize("existing", [False, True])
def test_convert_disk_full_or_denied_is_one_line_and_leaves_nothing(tmp_path, capsys, monkeypatch, error, words, existing):
    source = _source(tmp_path)
    target = _occupied(tmp_path) if existing else tmp_path / "out"
    before = sorted(path.name for path in tmp_path.iterdir())
    inside = sorted(path.name for path in target.iterdir()) if existing else None
    calls = []

    def failing_save(self, fp, *args, **kwargs):
        calls.append(fp)
        if len(calls) == 2:  # the first frame is written, the second is not
            raise error
        return original(self, fp, *args, **kwargs)

    original = Image.Image.save
    monkeypatch.setattr(Image.Image, "save", failing_save)
    argv = ["convert", str(source), str(target)] + (["--overwrite"] if existing else [])
    line = _one_line_exit_2(main(argv), capsys)
    assert words in line and str(target) in line
    assert sorted(path.name for path in tmp_path.iterdir()) == before  # no temporary folder left beside it
    if existing:
        assert sorted(path.name for path in target.iterdir()) == inside  # not one frame moved in
    else:
        assert not target.exists()


def test_convert_disk_full_writing_a_video(tmp_path, capsys, monkeypatch):
    source = _source(tmp_path)

    def full(self, frame):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(video_io.VideoWriter, "write", full)
    line = _one_line_exit_2(main(["convert", str(source), str(tmp_path / "v.mp4")]), capsys)
    assert "No space left on device" in line and "v.mp4" in line
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in"]

    monkeypatch.undo()
    monkeypatch.setattr(video_io.av, "open", lambda *args, **kwargs: full(None, None))  # fails on opening
    line = _one_line_exit_2(main(["convert", str(source), str(tmp_path / "v.mp4")]), capsys)
    assert "No space left on device" in line
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in"]  # no temporary file left


# ---------------------------------------------------------------------------------------------- evaluate


def test_evaluate_refuses_another_aspect_ratio(tmp_path, capsys):
    pred, gt = _frames(2, 64, 64), _frames(2, 32, 128)
    with pytest.raises(UserError, match="aspect ratios differ"):
        evaluate(pred, gt, Networks())
    write_png_folder(tmp_path / "pred", pred)
    write_png_folder(tmp_path / "gt", gt)
    out = tmp_path / "report.json"
    line = _one_line_exit_2(
        main(["evaluate", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"), "--out", str(out)]), capsys
    )
    assert "64x64" in line and "128x32" in line
    assert not out.exists()


def test_evaluate_states_how_it_compares_two_sizes_of_one_aspect():
    assert check_frame_sizes((1, 64, 64, 3), (1, 64, 64, 3)) is None
    assert check_frame_sizes((1, 48, 64, 3), (1, 47, 63, 3)) is not None  # odd sizes padded by the video writer
    assert check_frame_sizes((1, 576, 1024, 3), (1, 768, 1360, 3)) is not None
    report = evaluate(_frames(2, 64, 64), _frames(2, 128, 128), Networks())
    assert any("64x64" in note and "128x128" in note and "256x256" in note for note in report["notes"])
    assert not any("differ in size" in note for note in evaluate(_frames(2), _frames(2), Networks())["notes"])


# ---------------------------------------------------------------------------------------------- model folders


@pytest.fixture
def model_copy(tmp_path):
    target = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL, target, ignore=shutil.ignore_patterns("training"))
    return target


def _edit_json(path, **changes):
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data, indent=2) + "\n")


def _load_error(folder) -> str:
    with pytest.raises(UserError) as error:
        LongAnimationModel.from_pretrained(folder)
    message = str(error.value)
    assert "\n" not in message
    return message


def test_config_value_of_the_wrong_type_is_one_line(model_copy, capsys):
    _edit_json(model_copy / "sketch_dit" / "config.json", num_attention_heads="four")
    message = _load_error(model_copy)
    assert "sketch_dit" in message and "num_attention_heads: expected an integer" in message
    lineart = model_copy.parent / "lineart"
    lineart.mkdir()
    for index in range(2):
        frame = np.full((32, 32), 255, np.uint8)
        frame[8 + index] = 0
        Image.fromarray(frame).save(lineart / f"{index:05d}.png")
    Image.fromarray(_frames(1, 32, 32)[0]).save(model_copy.parent / "key.png")
    out = model_copy.parent / "out"
    argv = ["colorize", str(lineart), str(out), "-k", str(model_copy.parent / "key.png"), "--model", str(model_copy)]
    line = _one_line_exit_2(main(argv), capsys)
    assert "num_attention_heads: expected an integer" in line
    assert not out.exists()


@pytest.mark.parametrize(
    ("part", "changes", "words"),
    [
        ("memory_model/config.json", {"memory_layers": [1, "2", 3]}, "memory_layers[1]: expected an integer"),
        ("dglm/config.json", {"use_global": "yes"}, "use_global: expected true or false"),
        ("backbone/transformer/config.json", {"num_attention_heads": "four"}, "num_attention_heads: expected an integer"),
        ("backbone/vae/config.json", {"block_out_channels": 16}, "block_out_channels: expected a list"),
        (INDEX_NAME, {"segment": {"frames": "17", "overlap": 4, "num_inference_steps": 1, "guidance_scale": 1.0,
                                  "fusion_steps": 1, "height": 128, "width": 128}}, "segment: frames: expected an integer"),
        (INDEX_NAME, {"preset": ["tiny"]}, "preset must be one of"),
        (INDEX_NAME, {"sha256": {"dglm/model.safetensors": "abc"}}, "sha256 must map"),
    ],
)
def test_bad_model_folder_values_are_one_line(model_copy, part, changes, words):
    _edit_json(model_copy / part, **changes)
    message = _load_error(model_copy)
    assert words in message, message


def test_index_claiming_another_preset_is_refused(model_copy):
    _edit_json(model_copy / INDEX_NAME, preset="paper")
    message = _load_error(model_copy)
    assert "preset paper" in message and "num_layers = 6" in message


def test_save_pretrained_records_the_sha256_of_every_weights_file(tmp_path):
    model = LongAnimationModel.from_preset("tiny", seed=1)
    model.save_pretrained(tmp_path / "saved", include_backbone=False)
    index = json.loads((tmp_path / "saved" / INDEX_NAME).read_text())
    assert set(index["sha256"]) == {"sketch_dit/model.safetensors", "memory_model/model.safetensors", "dglm/model.safetensors"}
    assert index["sha256"] == weights_digests(tmp_path / "saved")
    loaded = LongAnimationModel.from_pretrained(tmp_path / "saved", backbone=model.backbone)
    assert loaded.weights_digest() == model.weights_digest()


def test_shipped_model_index_carries_the_digests_of_its_files():
    index = json.loads((DEFAULT_MODEL / INDEX_NAME).read_text())
    assert index["sha256"] == weights_digests(DEFAULT_MODEL)
    assert len(index["sha256"]) == 6


@pytest.mark.parametrize("weights", ["dglm/model.safetensors", "backbone/vae/diffusion_pytorch_model.safetensors"])
def test_flipped_bytes_are_refused_naming_the_file(model_copy, weights):
    path = model_copy / weights
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x5A  # inside the last tensor: the file still parses, with one wrong value
    path.write_bytes(bytes(data))
    message = _load_error(model_copy)
    assert "corrupt" in message and weights in message


def test_folders_without_digests_still_load(model_copy):
    index = json.loads((model_copy / INDEX_NAME).read_text())
    del index["sha256"]
    (model_copy / INDEX_NAME).write_text(json.dumps(index, indent=2) + "\n")
    model = LongAnimationModel.from_pretrained(model_copy)
    assert model.preset == "tiny"
