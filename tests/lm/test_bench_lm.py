"""tools/bench_lm.py at a tiny scale: it runs end to end, and its old and new graphs agree."""
import json

import pytest

pytest.importorskip("kaldi_decoder", reason="TLG needs kaldifst, kaldilm, kaldi-decoder (pip install)")

import bench_lm  # noqa: E402  (tools/ is on sys.path: tests/conftest.py)


def test_tiny_benchmark_runs_and_the_two_constructions_agree(tmp_path):
    out = tmp_path / "bench.json"
    bench_lm.main(["--units", "400", "--sentences", "3000", "--utterances", "4", "--compare-units", "150",
                   "--compare-sentences", "1500", "--json", str(out)])
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["text"]["characters"] == 397
    n = report["compare"]["same_best_paths"].split("/")[1]
    assert report["compare"]["same_best_paths"] == f"{n}/{n}" and int(n) > 0
    assert report["compare"]["max_score_difference"] < 1e-3
    assert report["compare"]["new (compact, epsilons kept)"]["arcs"] < report["compare"]["old (full, epsilons removed)"]["arcs"]
