"""The speed benchmark: one measured case, the table and plot, and bad options."""

from __future__ import annotations

from longanimation.evaluation.speed import SpeedCase, _measure, plot_speed, speed_cases, speed_markdown
from longanimation.models.longanimation_model import LongAnimationModel


def test_one_case_is_measured():
    row = _measure(SpeedCase("streaming-24", 24), size=32, model_dir=None, threads=1)
    assert row["segments"] >= 2 and row["seconds"] > 0 and row["peak_rss_mb"] > 0
    assert row["last_segments_s"] > 0 and row["frames_per_second"] > 0
    assert row["weights"] == LongAnimationModel.from_preset("tiny").weights_digest()


def test_cases_table_and_plot(tmp_path):
    lengths = [200, 500]
    cases = speed_cases(lengths, 500)
    assert {c.name for c in cases} >= {"streaming-200", "reencode-500", "sketchdit-only-500", "twos-collapsed-500"}
    results = [
        dict(name=c.name, last_segments_s=1.0 + i, peak_rss_mb=900.0 + i, seconds=10.0 + i) for i, c in enumerate(cases)
    ]
    summary = dict(command="longanimation benchmark speed", size=128, model="m", weights="0123abcd", results=results,
                   dglm_overhead=1.5, held_drawing_speedup=2.0)
    table = speed_markdown(summary, lengths)
    assert "Model: m (weights 0123abcd), frames 128x128." in table
    assert "| 200 | 1.000 | 900 | 3.000 | 902 |" in table and "2.00x faster" in table
    plot_speed(summary, lengths, tmp_path / "speed.png")
    assert (tmp_path / "speed.png").stat().st_size > 1000


def test_bad_lengths(run_cli, tmp_path):
    result = run_cli("benchmark", "speed", "--lengths", "abc", "--out", tmp_path / "o")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()
