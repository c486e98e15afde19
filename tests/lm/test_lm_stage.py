"""The recipe's LM stage on a small made-up corpus: LMs by the Python estimator, a default TLG that decodes."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("kaldifst", reason="TLG needs kaldifst, kaldilm, kaldi-decoder (pip install)")

from asr.lm.arpa import read_arpa  # noqa: E402
from asr.lm.normalise import max_normalisation_error  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
LINES = ["北京 天气 很好", "上海 天气 不错", "今天 北京 天气 很好", "上海 很好", "明天 上海 下雨", "今天 天气 不错",
         "明天 北京 下雨", "北京 今天 很 冷"]


def test_lm_stage_with_the_python_estimator(tmp_path):
    corpus, data = tmp_path / "corpus", tmp_path / "data"
    (corpus / "lm_text").mkdir(parents=True)
    (corpus / "lm_text" / "train.txt").write_text("\n".join(LINES * 4) + "\n", encoding="utf-8")
    (data / "lang_char").mkdir(parents=True)
    chars = sorted(set("".join(LINES).replace(" ", "")))
    (data / "lang_char" / "units.txt").write_text(
        "\n".join(f"{u} {i}" for i, u in enumerate(["<blank>", "<unk>", *chars, "<sos/eos>"])) + "\n", encoding="utf-8")
    for split in ("dev", "test"):
        (data / f"{split}.jsonl").write_text(json.dumps({"id": split, "audio": "x.wav", "duration": 1.0,
                                                         "speaker": "s", "text": "北京天气不错"}, ensure_ascii=False)
                                             + "\n", encoding="utf-8")
    r = subprocess.run(["bash", str(ROOT / "recipes/aishell/local/lm_stage.sh"), "--data", str(data), "--corpus",
                        str(corpus), "--estimator", "python"], capture_output=True, text=True,
                       env={**os.environ, "PYTHON": sys.executable})
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("python modified Kneser-Ney") == 2
    for name in ("char_5gram.arpa", "word_3gram.arpa"):
        error, _ = max_normalisation_error(read_arpa(data / "lm" / name), exhaustive=True)
        assert error < 1e-6
    meta = json.loads((data / "lm" / "tlg" / "tlg.json").read_text(encoding="utf-8"))
    assert (meta["topology"], meta["backoff"]) == ("compact", "epsilon")
