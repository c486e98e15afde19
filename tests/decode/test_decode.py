"""The decoding entry point on the tiny model: output files, CER against jiwer, bad input."""
from __future__ import annotations

import json
import subprocess
import sys

import jiwer
import pytest
import soundfile as sf
import torch
from omegaconf import OmegaConf
from safetensors.torch import save_file

from asr.data.manifest import Manifest
from asr.data.text import normalize_text
from asr.decode import decode_manifest, run
from asr.inference.modes import MODES as DEFAULT_MODES
from asr.inference.recognizer import Recognizer
from asr.modelfile import load_model_file
from asr.utils.io import read_jsonl, write_jsonl
from conftest import ROOT
from tests.decoding.test_cer import edit_distance


@pytest.fixture(scope="module")
def short_manifest(prepared_synthetic, tmp_path_factory):
    """Four test utterances cut to 1.2 s: the barely trained model's attention search stays short."""
    out = tmp_path_factory.mktemp("short")
    manifest = Manifest(prepared_synthetic / "test.jsonl")
    rows = [manifest[i] for i in range(4)]
    for row in rows:
        audio, sr = sf.read(row["audio"], dtype="float32")
        row["audio"], row["duration"] = str(out / f"{row['id']}.wav"), 1.2
        sf.write(row["audio"], audio[: int(1.2 * sr)], sr)
    path = out / "test.jsonl"
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def read_text(path) -> dict[str, str]:
    pairs = (line.split(" ", 1) for line in path.read_text(encoding="utf-8").splitlines())
    return {p[0]: p[1] if len(p) > 1 else "" for p in pairs}


def decode_cli(*overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "asr.decode", "threads=1", "progress=false", *overrides],
                          capture_output=True, text=True)


def config(**values):
    """conf/decoding/decode.yaml with ``values`` set, as the entry point would see it."""
    return OmegaConf.merge(OmegaConf.load(ROOT / "conf/decoding/decode.yaml"), values)


def test_decode_writes_every_mode_and_its_cer_is_jiwers(tiny_model_file, short_manifest, tmp_path, capsys):
    out = tmp_path / "decode"
    run(config(model=str(tiny_model_file), manifest=str(short_manifest), out_dir=str(out), beam=2, nbest=2,
               batch_frames=300, progress=False))
    printed = capsys.readouterr().out.splitlines()
    rows = list(Manifest(short_manifest))
    refs = {row["id"]: normalize_text(row["text"]) for row in rows}
    for mode in DEFAULT_MODES:
        assert len([line for line in printed if line.startswith(f"{mode}: CER ")]) == 1
        hyps = read_text(out / mode / "text")
        assert list(hyps) == list(refs)  # every utterance, in manifest order
        s = json.loads((out / mode / "summary.json").read_text(encoding="utf-8"))
        assert s["cer"] == pytest.approx(jiwer.cer(list(refs.values()), list(hyps.values())))
        assert s["utterances"] == len(rows) and s["failed"] == 0 and s["rtf"] > 0
        assert s["audio_seconds"] == pytest.approx(sum(row["duration"] for row in rows))
        assert (out / mode / "errors.txt").read_text(encoding="utf-8").startswith(f"CER {100 * s['cer']:.2f}%")
        per_utt = list(read_jsonl(out / mode / "utterances.jsonl"))
        assert [r["id"] for r in per_utt] == list(refs)
        for r in per_utt:  # each utterance's counts are its edit distance
            assert r["substitutions"] + r["deletions"] + r["insertions"] == edit_distance(refs[r["id"]], hyps[r["id"]])
        assert sum(r["substitutions"] + r["deletions"] + r["insertions"] for r in per_utt) == round(
            s["cer"] * s["ref_chars"])
        assert "focus" not in s
    tokenizer = load_model_file(tiny_model_file).tokenizer
    oov_ids = [line.split("\t")[0] for line in (out / "oov.tsv").read_text(encoding="utf-8").splitlines()]
    assert oov_ids == [u for u, ref in refs.items() if tokenizer.oov(ref)]
    assert (out / "failed.tsv").read_text() == ""


def test_a_manifest_with_focus_characters_is_also_scored_on_them(tiny_model_file, short_manifest, tmp_path):
    rows = list(Manifest(short_manifest))
    for row in rows:
        row["focus_chars"] = normalize_text(row["text"])[:2]
    manifest = tmp_path / "focus.jsonl"
    write_jsonl(manifest, rows)
    rec = Recognizer.from_model_file(tiny_model_file, "cpu")
    summaries = decode_manifest(rec, manifest, tmp_path / "out", ["ctc_greedy_search"], progress=False)
    focus = summaries["ctc_greedy_search"]["focus"]
    chars = set("".join(row["focus_chars"] for row in rows))
    assert focus["characters"] == "".join(sorted(chars))
    assert focus["ref_chars"] == sum(c in chars for row in rows for c in normalize_text(row["text"]))
    per_utt = list(read_jsonl(tmp_path / "out" / "ctc_greedy_search" / "utterances.jsonl"))
    errors = focus["substitutions"] + focus["deletions"] + focus["insertions"]
    assert errors == sum(r["focus_errors"] for r in per_utt)
    assert focus["cer"] == pytest.approx(errors / focus["ref_chars"])


def test_missing_audio_is_listed_and_the_rest_decoded(tiny_model_file, short_manifest, tmp_path):
    rows = list(Manifest(short_manifest))
    rows[1]["audio"] = str(tmp_path / "gone.wav")
    rows[3]["text"] = ""  # an empty reference: its hypothesis is all insertions
    manifest = tmp_path / "bad.jsonl"
    manifest.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    rec = Recognizer.from_model_file(tiny_model_file, beam=2, nbest=2)
    # 150 frames per batch: one utterance per batch, so one batch holds only the missing one
    summaries = decode_manifest(rec, manifest, tmp_path / "out", ["ctc_greedy_search", "attention_rescoring"],
                                batch_frames=150, progress=False)

    assert (tmp_path / "out" / "failed.tsv").read_text().split("\t")[:2] == [rows[1]["id"], rows[1]["audio"]]
    for mode, s in summaries.items():
        hyps = read_text(tmp_path / "out" / mode / "text")
        assert list(hyps) == [row["id"] for k, row in enumerate(rows) if k != 1]
        assert (s["failed"], s["utterances"], s["empty_refs"]) == (1, len(rows) - 1, 1)
        scored = (0, 2)  # read and with a reference
        counts = jiwer.process_characters([normalize_text(rows[k]["text"]) for k in scored],
                                          [hyps[rows[k]["id"]] for k in scored])
        assert s["insertions"] == counts.insertions + len(hyps[rows[3]["id"]])
        assert (s["substitutions"], s["deletions"]) == (counts.substitutions, counts.deletions)


def test_bad_model_file_and_unknown_mode_are_clear_errors(tiny_model_file, short_manifest, tmp_path):
    bare = tmp_path / "bare.safetensors"
    save_file({"w": torch.zeros(1)}, str(bare))
    with pytest.raises(ValueError, match=f"{bare}: model file format version"):
        run(config(model=str(bare), manifest=str(short_manifest), out_dir=str(tmp_path / "a"), progress=False))
    with pytest.raises(ValueError, match="'beam_search'.*allowed"):
        run(config(model=str(tiny_model_file), manifest=str(short_manifest), out_dir=str(tmp_path / "b"),
                   modes=["ctc_greedy_search", "beam_search"]))


@pytest.mark.slow
def test_entry_point_from_the_command_line(tiny_model_file, short_manifest, tmp_path):
    out = tmp_path / "decode"
    r = decode_cli(f"model={tiny_model_file}", f"manifest={short_manifest}", f"out_dir={out}", "beam=2", "nbest=2")
    assert r.returncode == 0, r.stderr[-3000:]
    for mode in DEFAULT_MODES:
        assert [line for line in r.stdout.splitlines() if line.startswith(f"{mode}: CER ")]
        assert all((out / mode / name).is_file() for name in ("text", "errors.txt", "summary.json"))


@pytest.mark.slow
def test_entry_point_errors_are_one_line(short_manifest, tmp_path):
    bare = tmp_path / "bare.safetensors"
    save_file({"w": torch.zeros(1)}, str(bare))
    r = decode_cli(f"model={bare}", f"manifest={short_manifest}", f"out_dir={tmp_path / 'out'}")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith(f"asr.decode: {bare}: model file format version")


def test_the_snr_of_a_manifest_row_reaches_its_per_utterance_row(tiny_model_file, short_manifest, tmp_path):
    rows = list(Manifest(short_manifest))
    snrs = [0.0, 5.0, 10.0, 0.0]
    for row, snr in zip(rows, snrs):
        row["snr_db"] = snr
    rows[2].pop("snr_db")  # and a row without one: none in its per-utterance row
    manifest = tmp_path / "noisy.jsonl"
    write_jsonl(manifest, rows)
    rec = Recognizer.from_model_file(tiny_model_file, "cpu")
    decode_manifest(rec, manifest, tmp_path / "out", ["ctc_greedy_search"], progress=False)
    per_utt = list(read_jsonl(tmp_path / "out" / "ctc_greedy_search" / "utterances.jsonl"))
    assert [r.get("snr_db", "absent") for r in per_utt] == [0.0, 5.0, "absent", 0.0]
