"""The synthetic NST split: labelled speakers whole, unlabelled audio without text, its text kept aside."""
from __future__ import annotations

import json

import numpy as np

from asr.data.audio import load_audio
from asr.data.manifest import Manifest
from asr.utils.io import read_jsonl, write_jsonl
from conftest import write_tone
from make_nst_split import main
from tests.data.test_pipeline import tone_data


def test_split_by_speaker_without_text_and_noisy_copies(tmp_path):
    data = tone_data(tmp_path)
    rows = list(Manifest(data / "train.jsonl"))  # one speaker in the tone corpus: make three
    write_jsonl(data / "train.jsonl", [{**r, "speaker": f"S{i % 3}"} for i, r in enumerate(rows)])
    write_tone(tmp_path / "noise" / "n.wav", 3.0, 1000.0, seed=5)
    (tmp_path / "noise" / "noise.list").write_text("n.wav\n", encoding="utf-8")
    out = tmp_path / "nst"
    args = ["--data", str(data), "--noise-list", str(tmp_path / "noise" / "noise.list"), "--out", str(out),
            "--labelled-utts", "1", "--clean-fraction", "0.3", "--seed", "3"]
    assert main(args) == 0
    train = {r["id"]: r for r in Manifest(data / "train.jsonl")}
    labelled = list(read_jsonl(out / "labelled.jsonl"))
    unlabelled = list(read_jsonl(out / "unlabelled.jsonl"))
    assert sorted(r["id"] for r in labelled + unlabelled) == sorted(train)
    assert not {r["speaker"] for r in labelled} & {r["speaker"] for r in unlabelled}
    assert all("text" not in r for r in unlabelled)  # the pipeline's input carries no transcript
    assert {r["id"]: r["text"] for r in read_jsonl(out / "unlabelled_text.jsonl")} == \
        {r["id"]: train[r["id"]]["text"] for r in unlabelled}
    Manifest(out / "test_noisy.jsonl")  # a scoring manifest: with text
    for r in unlabelled:
        original = load_audio(train[r["id"]]["audio"])
        noisy = load_audio(r["audio"])
        assert len(noisy) == len(original)
        assert (r["snr_db"] is None) == np.array_equal(noisy, original)
    first = (out / "unlabelled.jsonl").read_bytes()
    assert main(args) == 0 and (out / "unlabelled.jsonl").read_bytes() == first  # the same arguments, the same files
    assert json.loads((out / "split.json").read_text())["unlabelled"]["utterances"] == len(unlabelled)


def test_other_domain_rows_join_the_unlabelled_set_under_their_own_ids(tmp_path):
    data = tone_data(tmp_path)
    rows = list(Manifest(data / "train.jsonl"))
    write_jsonl(data / "train.jsonl", [{**r, "speaker": f"S{i % 3}"} for i, r in enumerate(rows)])
    other = tone_data(tmp_path / "other")  # another corpus numbered the same way: its ids collide with the first's
    write_tone(tmp_path / "noise" / "n.wav", 3.0, 1000.0, seed=5)
    (tmp_path / "noise" / "noise.list").write_text("n.wav\n", encoding="utf-8")
    base = ["--data", str(data), "--noise-list", str(tmp_path / "noise" / "noise.list"), "--labelled-utts", "1",
            "--seed", "3"]
    assert main(base + ["--out", str(tmp_path / "plain")]) == 0
    assert main(base + ["--out", str(tmp_path / "nst"), "--other-domain", str(other / "train.jsonl")]) == 0
    plain = list(read_jsonl(tmp_path / "plain" / "unlabelled.jsonl"))
    with_other = list(read_jsonl(tmp_path / "nst" / "unlabelled.jsonl"))
    other_rows = {r["id"]: r for r in Manifest(other / "train.jsonl")}
    added = with_other[len(plain):]
    # the corpus's own rows are unchanged (their noise draws too: the other domain has a stream of its own)
    assert [{k: v for k, v in r.items() if k != "audio"} for r in with_other[:len(plain)]] == \
        [{k: v for k, v in r.items() if k != "audio"} for r in plain]
    assert sorted(r["id"] for r in added) == sorted("other_" + u for u in other_rows)
    assert len({r["id"] for r in with_other}) == len(with_other)
    assert all(r["speaker"].startswith("other_") and "text" not in r for r in added)
    refs = {r["id"]: r for r in read_jsonl(tmp_path / "nst" / "unlabelled_text.jsonl")}
    assert all(refs[r["id"]] == {"id": r["id"], "text": other_rows[r["id"][6:]]["text"], "domain": "other"}
               for r in added)
    assert {refs[r["id"]]["domain"] for r in plain} == {"corpus"}
    facts = json.loads((tmp_path / "nst" / "split.json").read_text())
    assert facts["unlabelled_other_domain"]["utterances"] == len(other_rows)
