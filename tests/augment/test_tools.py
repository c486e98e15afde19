"""tools/augment_offline.py and tools/augment_gallery.py on a three-utterance corpus made here."""
import json
from pathlib import Path

import augment_offline  # tools/ is on sys.path (tests/conftest.py)
import pytest
import soundfile as sf
import torch

from tests.augment.conftest import RATE, sine, write_wav

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def corpus(tmp_path):
    rows = []
    for k, (speaker, text, freq) in enumerate([("S1", "甲", 300.0), ("S2", "乙乙", 700.0), ("S3", "丙", 1100.0)]):
        write_wav(tmp_path / f"u{k}.wav", sine(freq, 0.4 + 0.1 * k))
        rows.append({"id": f"u{k}", "audio": f"u{k}.wav", "duration": 0.4 + 0.1 * k, "speaker": speaker, "text": text})
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    g = torch.Generator().manual_seed(0)
    noise = write_wav(tmp_path / "noise.wav", 0.1 * torch.randn(1, RATE, generator=g))
    rir = write_wav(tmp_path / "rir.wav", torch.randn(1, 400, generator=g) * torch.exp(-torch.arange(400) / 40))
    return {"manifest": str(tmp_path / "train.jsonl"), "noise": noise, "rir": rir, "rows": rows}


def _offline(corpus, out, config="full"):
    return augment_offline.main(["--manifest", corpus["manifest"], "--out", str(out), "--copies", "2",
                                 "--config", str(ROOT / f"conf/augment/{config}.yaml"),
                                 "--noise-list", corpus["noise"], "--rir-list", corpus["rir"]])


def test_offline_writes_copies_that_match_their_manifest_and_reruns_identically(corpus, tmp_path):
    assert _offline(corpus, tmp_path / "a") == 0
    rows = [json.loads(line) for line in (tmp_path / "a" / "manifest.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == [f"u{k}-aug{c}" for k in range(3) for c in range(2)]
    for row in rows:
        wav, rate = sf.read(tmp_path / "a" / row["audio"])
        assert rate == RATE and row["duration"] == pytest.approx(len(wav) / RATE, abs=1e-4)
        assert row["speaker"].endswith(f"S{int(row['id'][1]) + 1}")
    assert _offline(corpus, tmp_path / "b") == 0
    assert (tmp_path / "a" / "manifest.jsonl").read_text() == (tmp_path / "b" / "manifest.jsonl").read_text()
    for row in rows:
        assert (tmp_path / "a" / row["audio"]).read_bytes() == (tmp_path / "b" / row["audio"]).read_bytes()


def test_offline_with_no_augmentation_copies_the_audio(corpus, tmp_path):
    assert _offline(corpus, tmp_path / "c", config="none") == 0
    rows = [json.loads(line) for line in (tmp_path / "c" / "manifest.jsonl").read_text().splitlines()]
    for row, source in zip(rows[::2], corpus["rows"]):
        assert row["text"] == source["text"] and row["speaker"] == source["speaker"]
        copy, _ = sf.read(tmp_path / "c" / row["audio"])
        original, _ = sf.read(Path(corpus["manifest"]).parent / source["audio"])
        assert abs(copy - original).max() <= 1 / 32768  # 16-bit rounding


def test_offline_names_a_missing_config(corpus, tmp_path, capsys):
    assert augment_offline.main(["--manifest", corpus["manifest"], "--config", "nope.yaml", "--out", str(tmp_path)]) == 1
    assert "nope.yaml" in capsys.readouterr().err


@pytest.mark.slow
def test_gallery_writes_every_panel_small(corpus, tmp_path):
    import augment_gallery  # matplotlib: imported only when this slow test runs

    out = tmp_path / "gallery"
    assert augment_gallery.main(["--manifest", corpus["manifest"], "--out", str(out), "--n", "2",
                                 "--config", str(ROOT / "conf/augment/full.yaml"),
                                 "--noise-list", corpus["noise"], "--rir-list", corpus["rir"]]) == 0
    panels = ["original", "speed", "volume", "noise", "reverb", "splice", "specaug", "full"]
    for utt in ("u0", "u1"):
        assert sorted(p.stem for p in (out / utt).glob("*.png")) == sorted(panels)
        assert sorted(p.stem for p in (out / utt).glob("*.wav")) == sorted(set(panels) - {"specaug"})
    pngs = list(out.rglob("*.png"))
    assert (out / "overview.png") in pngs and all(p.stat().st_size < 150_000 for p in pngs)
