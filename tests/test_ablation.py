"""The ablation benchmark: rows of Tables 2-3 and the paradigms, files written, a fact of zero-init DGLM."""

from __future__ import annotations

import copy
import json

import numpy as np
import torch

from longanimation.evaluation.ablation import ablation_rows, mean_curve, run_ablation
from longanimation.models.longanimation_model import LongAnimationModel


def test_rows_follow_the_paper():
    with_ccr = ablation_rows(True)
    assert [row.label[0] for row in with_ccr if row.table == "Table 2"] == ["0", "1", "2", "3", "4"]
    assert {row.fusion_fraction for row in with_ccr if row.table == "Table 3"} == {0.0, 1.0, 0.8, 0.4}
    # Table 3 runs at its own step count, where the four fusion starts stay distinct.
    table3 = [row for row in ablation_rows(True, table3_steps=5) if row.table == "Table 3"]
    assert [row.fusion_steps() for row in table3] == [0, 5, 4, 2] and {row.steps for row in table3} == {5}
    assert table3[2].label == "CCF t_st = 4/5 (paper 40/50)"
    assert all(row.model == "final" for row in ablation_rows(False))
    assert not any("CCR" in row.label for row in ablation_rows(False))
    # One table at a time: only its rows.
    assert [row.label[0] for row in ablation_rows(False, tables=("Table 2",))] == ["0", "1", "2", "3"]


def test_ablation_run_writes_tables_and_plots(tmp_path):
    model = LongAnimationModel.from_preset("tiny", seed=0)
    summary = run_ablation(
        {"final": model}, [100], 40, 32, tmp_path, steps=1, table3_steps=2, command="test", report=lambda _: None
    )
    rows = {row["label"]: row for row in summary["rows"]}
    assert {row["steps"] for row in summary["rows"] if row["table"] != "Table 3"} == {1}
    assert {row["steps"] for row in summary["rows"] if row["table"] == "Table 3"} == {2}
    assert len(rows) == len(ablation_rows(False))
    # A freshly initialised DGLM adds exactly zero, so memory on/off give the same frames.
    assert rows["0 SketchDiT"]["long_psnr"] == rows["3 + DGLM (global + local)"]["long_psnr"]
    # 40 frames (20 distinct drawings) in segments of 17: one seam, whose color jump is measured on the world's flat part colors.
    assert rows["0 SketchDiT"]["seam_jump"]["mean"] >= 0 and "seam jump" in (tmp_path / "ablation.md").read_text()
    saved = json.loads((tmp_path / "ablation.json").read_text())
    assert saved["seeds"] == [100] and "## Table 3" in (tmp_path / "ablation.md").read_text()
    assert saved["weights"] == {"final": model.weights_digest()}
    assert f"Weights: final {model.weights_digest()}" in (tmp_path / "ablation.md").read_text()
    # A rerun of the same command finds seed 100's scores and colors nothing.
    calls = []
    again = run_ablation(
        {"final": model}, [100], 40, 32, tmp_path, steps=1, table3_steps=2, command="test", report=calls.append
    )
    assert calls == [] and again["rows"] == summary["rows"]
    # Another seed list (another command line) colors only the seed it lacks.
    run_ablation({"final": model}, [100, 101], 40, 32, tmp_path, steps=1, table3_steps=2, command="other", report=calls.append)
    assert len(calls) == len(ablation_rows(False)) and all(line.startswith("seed 101 ") for line in calls)
    calls.clear()
    # The same command on other weights does not reuse them.
    changed = copy.deepcopy(model)
    with torch.no_grad():
        next(changed.sketch_dit.parameters()).add_(1.0)
    assert changed.weights_digest() != model.weights_digest()
    run_ablation({"final": changed}, [100], 40, 32, tmp_path, steps=1, table3_steps=2, command="test", report=calls.append)
    assert len(calls) == len(ablation_rows(False))
    assert (tmp_path / "psnr_over_frames.png").stat().st_size > 1000
    assert (tmp_path / "frequency_decay.png").stat().st_size > 1000


def test_per_frame_curves_of_different_lengths_average_over_their_common_frames():
    np.testing.assert_allclose(mean_curve([[1.0, 2.0, 3.0], [3.0, 4.0]]), [2.0, 3.0])


def test_unknown_table_is_a_one_line_error(run_cli, tmp_path):
    result = run_cli("benchmark", "ablation", "--tables", "2,4", "--out", tmp_path / "o")
    assert result.returncode == 2 and "--tables" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "o").exists()
