"""tools/baseline_torchaudio_ctc.py: its greedy decoding and CER against the project's on the same log-probs, a
one-batch overfit, and a 3-step run end to end on a tiny generated corpus."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

import baseline_torchaudio_ctc as bt
import collect_ablation as ca
from asr.data.manifest import Manifest
from asr.data.pipeline import SamplePipeline, collate
from asr.data.text import normalize_text
from asr.decoding.cer import compute_cer
from asr.decoding.ctc_greedy import ctc_greedy_search
from asr.features.cmvn import CMVNAccumulator, GlobalCMVN
from asr.features.fbank import Fbank
from asr.tokenizer import load_tokenizer
from asr.tokenizer.char import CharTokenizer
from asr.utils.io import read_jsonl, write_jsonl
from conftest import write_tone

TEXTS = ["今天天气很好", "我们去北京", "人工智能", "你好世界", "学习语音识别", "上海下雨"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """train (6), dev (3) and test (3) manifests of tones with Mandarin text, char units and CMVN."""
    root = tmp_path_factory.mktemp("baseline_data")
    fbank, acc, n = Fbank(), CMVNAccumulator(Fbank().num_mel_bins), 0
    for split, count in (("train", 6), ("dev", 3), ("test", 3)):
        rows = []
        for k in range(count):
            path = root / "wav" / f"{split}{k}.wav"
            seconds = 0.6 + 0.15 * k
            write_tone(path, seconds, 180 + 35 * k, seed=n)
            rows.append({"id": f"{split}{k}", "audio": str(path), "duration": seconds, "speaker": "S1",
                         "text": TEXTS[n % len(TEXTS)]})
            if split == "train":
                acc.add(fbank(torch.from_numpy(sf.read(path, dtype="float32")[0])))
            n += 1
        write_jsonl(root / f"{split}.jsonl", rows)
    CharTokenizer.build(TEXTS).save(root / "lang_char")
    acc.result().save(root / "cmvn.json")
    return root


def pipeline_of(data) -> SamplePipeline:
    return SamplePipeline(Fbank(), GlobalCMVN.load(data / "cmvn.json"), load_tokenizer(data / "lang_char"))


def tiny_model(vocab: int) -> bt.ConformerCTC:
    torch.manual_seed(0)
    return bt.ConformerCTC(80, vocab, d_model=32, heads=4, ffn_dim=64, layers=2, dropout=0.0)


def test_greedy_is_the_projects_ctc_greedy_search():
    rng = np.random.default_rng(0)
    log_probs = torch.log_softmax(torch.tensor(3 * rng.normal(size=(6, 20, 5))), dim=-1)  # peaky: repeats, blanks
    lens = torch.tensor([20, 1, 7, 13, 20, 4])
    assert bt.greedy(log_probs, lens) == ctc_greedy_search(log_probs.numpy(), lens.numpy(), blank=0)[0]


def test_evaluate_is_ctc_greedy_search_and_cer_on_the_same_log_probs(data):
    pipeline = pipeline_of(data)
    model = tiny_model(len(pipeline.tokenizer))
    manifest = Manifest(data / "train.jsonl")
    got = bt.evaluate(model, manifest, pipeline, max_frames=300)  # several batches, padded
    refs, hyps = {}, {}
    with torch.no_grad():
        for batch in bt.batch_loader(manifest, pipeline, 300, shuffle=False):
            log_probs, lens = model(batch["feats"], batch["feats_lens"])
            ids, _ = ctc_greedy_search(log_probs.numpy(), lens.numpy(), blank=pipeline.tokenizer.blank_id)
            for uid, text, h in zip(batch["ids"], batch["texts"], ids):
                refs[uid], hyps[uid] = normalize_text(text), normalize_text(pipeline.tokenizer.decode(h))
    assert len(refs) == 6 and got["hyps"] == hyps
    total = compute_cer(refs, hyps).total
    assert got["cer"] == total.cer and got["ref_chars"] == total.ref_len
    assert (got["substitutions"], got["deletions"], got["insertions"]) == \
        (total.substitutions, total.deletions, total.insertions)


def test_training_on_one_repeated_batch_lowers_the_loss(data):
    pipeline = pipeline_of(data)
    manifest = Manifest(data / "train.jsonl")
    batch = collate([pipeline(pipeline.load(manifest[i])) for i in range(3)])
    model = tiny_model(len(pipeline.tokenizer))
    steps, _, losses = bt.train(model, [batch], steps=30, seconds=600, lr=3e-3, warmup=5, log_every=0)
    assert steps == 30 and len(losses) == 30
    assert losses[-1] < losses[0]


def test_three_steps_end_to_end_as_a_run_the_collector_reads(data, tmp_path):
    out = tmp_path / "stock" / "torchaudio_ctc" / "seed1"
    small = ["--d-model", "32", "--layers", "1", "--workers", "0", "--threads", "1", "--batch-frames", "300"]
    assert bt.main(["--data", str(data), "--out", str(out), "--steps", "3", "--eval", "train.jsonl", *small]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["status"] == "ok" and m["arm"] == "torchaudio_ctc" and m["seed"] == 1 and m["name"] == "stock"
    assert m["steps"] == 3 and len(m["last_losses"]) == 3 and m["num_params"] > 0
    assert set(m["cer"]) == {"dev", "test", "train"} and m["counts"]["test"]["ctc_greedy_search"]["utterances"] == 3
    assert (out / "model.pt").exists()
    # where it ran, as the recipe's runs say it: the threads asked for and PyTorch's CPU kernels
    assert m["machine"]["torch_threads"] == 1
    assert m["machine"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    # the collector's view of the run: per-utterance errors that add up to the recorded CER
    (run,) = ca.find_runs(tmp_path / "stock")
    for split in ("dev", "test", "train"):
        rows = ca.utterance_errors(run, split, "ctc_greedy_search", "cer")
        assert len(rows) == m["counts"][split]["ctc_greedy_search"]["utterances"]
        assert sum(e for e, _ in rows.values()) / sum(n for _, n in rows.values()) == pytest.approx(
            ca.run_value(run, split, "ctc_greedy_search", "cer"))


def test_the_wall_clock_budget_stops_training(data, tmp_path):
    small = ["--d-model", "32", "--layers", "1", "--workers", "0", "--threads", "1", "--batch-frames", "300"]
    assert bt.main(["--data", str(data), "--out", str(tmp_path / "a"), "--minutes", "0", *small]) == 0
    assert json.loads((tmp_path / "a" / "metrics.json").read_text())["steps"] == 0
    recipe = tmp_path / "recipe"  # the recipe run's training time, as its metrics.json says
    recipe.mkdir()
    (recipe / "metrics.json").write_text(json.dumps({"status": "ok", "train_seconds": 1e-9}))
    assert bt.main(["--data", str(data), "--out", str(tmp_path / "b"), "--minutes-from", str(recipe), *small]) == 0
    m = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert m["steps"] == 0 and m["args"]["minutes"] == pytest.approx(1e-9 / 60)


def test_focus_characters_and_snr_are_scored_as_asr_decode_scores_them(data, tmp_path):
    rows = list(Manifest(data / "dev.jsonl"))
    for row, snr in zip(rows, (0.0, 5.0, None)):
        row["focus_chars"], row["snr_db"] = row["text"][:2], snr
    write_jsonl(tmp_path / "noisy.jsonl", rows)
    pipeline = pipeline_of(data)
    got = bt.evaluate(tiny_model(len(pipeline.tokenizer)), Manifest(tmp_path / "noisy.jsonl"), pipeline)
    focus = set("".join(row["focus_chars"] for row in rows))
    assert got["focus"]["ref_chars"] == sum(c in focus for row in rows for c in row["text"])
    assert got["focus"]["substitutions"] + got["focus"]["deletions"] + got["focus"]["insertions"] == \
        sum(r["focus_errors"] for r in got["rows"])
    assert {r["id"]: r["snr_db"] for r in got["rows"]} == {row["id"]: row["snr_db"] for row in rows}


def test_the_collector_compares_the_stock_baseline_with_the_recipes_runs(data, tmp_path):
    out = tmp_path / "stock" / "torchaudio_ctc" / "seed1"
    small = ["--d-model", "32", "--layers", "1", "--workers", "0", "--threads", "1", "--batch-frames", "300"]
    assert bt.main(["--data", str(data), "--out", str(out), "--steps", "1", *small]) == 0
    stock = list(read_jsonl(out / "decode" / "test" / "ctc_greedy_search" / "utterances.jsonl"))
    recipe = tmp_path / "posenc" / "rel" / "seed1"  # a recipe run that decoded test in two modes, error-free
    for mode in ("ctc_greedy_search", "attention_rescoring"):
        write_jsonl(recipe / "decode" / "test" / mode / "utterances.jsonl",
                    [{**r, "substitutions": 0, "deletions": 0, "insertions": 0} for r in stock])
    zero = {"substitutions": 0, "deletions": 0, "insertions": 0, "ref_chars": sum(r["ref_chars"] for r in stock)}
    (recipe / "metrics.json").write_text(json.dumps({
        "status": "ok", "arm": "rel", "seed": 1,
        "cer": {"test": {"ctc_greedy_search": 0.0, "attention_rescoring": 0.0}},
        "counts": {"test": {"ctc_greedy_search": zero, "attention_rescoring": zero}}}))
    text = ca.collect(tmp_path / "stock", "rel", tmp_path / "t.md", tmp_path / "t.png", tmp_path / "c.png",
                      resamples=200, baseline_from=tmp_path / "posenc" / "rel")
    row = next(line for line in text.split("## test\n", 1)[1].splitlines() if line.startswith("| torchaudio_ctc |"))
    m = json.loads((out / "metrics.json").read_text())
    greedy, rescoring = row.split(" | ")[2:4]
    assert greedy.startswith(f"{100 * m['cer']['test']['ctc_greedy_search']:.2f} (1 seed) (Δ ")
    assert rescoring == "- |"  # finished, but the stock baseline decodes greedy CTC only
