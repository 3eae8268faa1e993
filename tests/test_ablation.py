"""The ablation benchmark: rows of Tables 2-3 and the paradigms, files written, a fact of zero-init DGLM."""

from __future__ import annotations

import json

from longanimation.evaluation.ablation import ablation_rows, run_ablation
from longanimation.models.longanimation_model import LongAnimationModel


def test_rows_follow_the_paper():
    with_ccr = ablation_rows(True)
    assert [row.label[0] for row in with_ccr if row.table == "Table 2"] == ["0", "1", "2", "3", "4"]
    assert {row.fusion_fraction for row in with_ccr if row.table == "Table 3"} == {0.0, 1.0, 0.8, 0.4}
    assert all(row.model == "final" for row in ablation_rows(False))
    assert not any("CCR" in row.label for row in ablation_rows(False))


def test_ablation_run_writes_tables_and_plots(tmp_path):
    model = LongAnimationModel.from_preset("tiny", seed=0)
    summary = run_ablation({"final": model}, [100], 24, 32, tmp_path, command="test", report=lambda _: None)
    rows = {row["label"]: row for row in summary["rows"]}
    assert len(rows) == len(ablation_rows(False))
    # A freshly initialised DGLM adds exactly zero, so memory on/off give the same frames.
    assert rows["0 SketchDiT"]["long_psnr"] == rows["3 + DGLM (global + local)"]["long_psnr"]
    saved = json.loads((tmp_path / "ablation.json").read_text())
    assert saved["seeds"] == [100] and "## Table 3" in (tmp_path / "ablation.md").read_text()
    assert (tmp_path / "psnr_over_frames.png").stat().st_size > 1000
    assert (tmp_path / "frequency_decay.png").stat().st_size > 1000
