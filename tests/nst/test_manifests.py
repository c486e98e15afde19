"""An NST iteration's manifests: the kept pseudo-labels join the labelled rows in a valid training manifest."""
from __future__ import annotations

import json
from collections import Counter

import pytest

from asr.data.manifest import Manifest
from asr.nst.cer_hypo import cer_hypo
from asr.nst.manifests import build, main
from asr.utils.io import read_jsonl, write_jsonl
from tests.data.test_pipeline import datamodule, tone_data


@pytest.fixture
def iteration(tmp_path):
    """Tone data (labelled = train) and hyps.jsonl for its test utterances as if they were unlabelled: plain and LM
    hypotheses that agree on some utterances and not on others, labels from the training vocabulary."""
    data = tone_data(tmp_path)
    texts = [r["text"] for r in Manifest(data / "train.jsonl")]
    rows = []
    for i, r in enumerate(Manifest(data / "test.jsonl")):
        label = texts[i % len(texts)]
        plain = label if i % 2 == 0 else label[:-1]  # every other one: one deletion
        rows.append({"id": r["id"], "audio": r["audio"], "duration": r["duration"], "speaker": r["speaker"],
                     "plain": plain, "lm": label, "label": label})
    write_jsonl(tmp_path / "hyps.jsonl", rows)
    return data, tmp_path / "hyps.jsonl", rows


def test_kept_pseudo_labels_make_a_training_manifest_the_datamodule_loads(iteration, tmp_path):
    data, hyps, rows = iteration
    record = build(hyps, data / "train.jsonl", tmp_path / "filter", threshold=0.0)
    scores = cer_hypo({r["id"]: r["lm"] for r in rows}, {r["id"]: r["plain"] for r in rows})
    kept = [r for r in rows if scores[r["id"]] <= 0.0]
    assert 0 < len(kept) < len(rows) and record["kept"]["utterances"] == len(kept)
    pseudo = list(read_jsonl(tmp_path / "filter" / "pseudo.jsonl"))
    assert [(p["id"], p["text"]) for p in pseudo] == [(r["id"], r["label"]) for r in kept]
    labelled = list(Manifest(data / "train.jsonl"))
    train = list(read_jsonl(tmp_path / "filter" / "train.jsonl"))
    assert [r["id"] for r in train] == [r["id"] for r in labelled] + [p["id"] for p in pseudo]
    flags = {r["id"]: r["kept"] for r in read_jsonl(tmp_path / "filter" / "cer_hypo.jsonl")}
    assert flags == {r["id"]: scores[r["id"]] <= 0.0 for r in rows}

    # the project's DataModule trains on it: every utterance once per epoch, labels decode to the pseudo-labels
    dm = datamodule(data, global_batch_frames=400, num_workers=0)
    dm.manifests["train"] = str(tmp_path / "filter" / "train.jsonl")
    seen, expected = Counter(), {r["id"]: r["text"] for r in train}
    for batch in dm.train_dataloader():
        for b, uid in enumerate(batch["ids"]):
            assert dm.tokenizer.decode(batch["ys"][b, : batch["ys_lens"][b]].tolist()) == expected[uid]
        seen.update(batch["ids"])
    assert seen == Counter(set(expected))


def test_keeping_nothing_stops_and_writes_nothing(iteration, tmp_path, capsys):
    data, hyps, _ = iteration
    out = tmp_path / "filter"
    with pytest.raises(SystemExit, match="keeps none of .* raise the threshold or use keep_best"):
        main(["--hyps", str(hyps), "--labelled", str(data / "train.jsonl"), "--out", str(out), "--keep-best", "1"])
    assert not out.exists()


def test_pseudo_labelled_ids_must_not_be_labelled_ones(iteration, tmp_path):
    data, hyps, rows = iteration
    clash = json.loads((data / "train.jsonl").read_text(encoding="utf-8").splitlines()[0])["id"]
    write_jsonl(hyps, [{**rows[0], "id": clash}] + rows[1:])
    with pytest.raises(ValueError, match="labelled ids too"):
        build(hyps, data / "train.jsonl", tmp_path / "filter", keep_best=100)
    assert not (tmp_path / "filter" / "train.jsonl").exists()
