"""Pseudo-labelling: the hypotheses are asr.decode's, and bad input is listed and left out, never labelled empty."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

import asr.nst.pseudo_label as pl
from asr.decode import decode_manifest
from asr.inference.modes import MODES
from asr.inference.recognizer import Recognizer
from asr.utils.io import read_jsonl, write_jsonl
from tests.decode.test_decode import read_text, short_manifest  # noqa: F401 (a fixture)


def rejected(path) -> dict[str, str]:
    return {line.split("\t")[0]: line.split("\t")[2] for line in path.read_text(encoding="utf-8").splitlines()}


def unlabelled_copy(manifest, out, tmp_path) -> list[dict]:
    """The manifest's rows without text, plus a missing file and a file that is not audio."""
    rows = [{k: v for k, v in r.items() if k != "text"} for r in read_jsonl(manifest)]
    (tmp_path / "junk.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    rows += [{"id": "missing", "audio": str(tmp_path / "nowhere.wav"), "duration": 1.0},
             {"id": "junk", "audio": str(tmp_path / "junk.wav"), "duration": 1.0}]
    write_jsonl(out, rows)
    return rows


def test_hypotheses_are_decodes_and_bad_input_is_listed(tiny_model_file, short_manifest, tmp_path):  # noqa: F811
    rows = unlabelled_copy(short_manifest, tmp_path / "unlabelled.jsonl", tmp_path)
    rec = Recognizer.from_model_file(str(tiny_model_file), beam=2, nbest=2)
    modes = dict(plain_mode="ctc_greedy_search", lm_mode="ctc_prefix_beam_search", label_mode="attention_rescoring")
    summary = pl.pseudo_label(rec, tmp_path / "unlabelled.jsonl", tmp_path / "pseudo", **modes, batch_frames=300,
                              progress=False)
    decode_manifest(rec, short_manifest, tmp_path / "decode", list(modes.values()), batch_frames=300, progress=False)
    reference = {key: read_text(tmp_path / "decode" / mode / "text") for key, mode in
                 zip(("plain", "lm", "label"), modes.values())}

    hyps = {h["id"]: h for h in read_jsonl(tmp_path / "pseudo" / "hyps.jsonl")}
    bad = rejected(tmp_path / "pseudo" / "rejected.tsv")
    assert set(hyps) | set(bad) == {r["id"] for r in rows} and not set(hyps) & set(bad)
    assert bad["missing"] == "file not found" and bad["junk"].startswith("unreadable: ")
    for uid in reference["plain"]:  # every readable utterance: its three decodes, or rejected for an empty one
        texts = {key: reference[key][uid] for key in reference}
        if all(texts.values()):
            assert {key: hyps[uid][key] for key in texts} == texts
        else:
            assert uid not in hyps and bad[uid].startswith("empty hypothesis (")
    assert hyps and all(h["plain"] and h["lm"] and h["label"] for h in hyps.values())  # never an empty label
    assert summary["pseudo_labelled"] == len(hyps) and summary["rejected"] == len(bad)


class StubRecognizer:
    """Only what pseudo_label asks of a recognizer; the hypotheses come from the patched decode_batches."""

    pipeline = SimpleNamespace(fbank=SimpleNamespace(sample_rate=16000))

    def check_modes(self, modes):
        assert all(m in MODES for m in modes)


def test_empty_hypotheses_in_any_mode_are_rejected_with_the_mode(tmp_path, monkeypatch):
    wav = tmp_path / "a.wav"
    wav.write_bytes(b"")  # never read: decoding is stubbed
    rows = [{"id": f"u{i}", "audio": str(wav), "duration": 1.0} for i in range(4)]
    write_jsonl(tmp_path / "u.jsonl", rows)
    stub = {"ctc_greedy_search": {"u0": "上海", "u1": "", "u2": "雨", "u3": "下雨"},
            "attention_rescoring": {"u0": "上海", "u1": "上", "u2": " ", "u3": "下雨"}}  # u3 is absent: unreadable
    del stub["ctc_greedy_search"]["u3"], stub["attention_rescoring"]["u3"]
    monkeypatch.setattr(pl, "decode_batches", lambda rec, manifest, modes, *a: (stub, 0.0))
    pl.pseudo_label(StubRecognizer(), tmp_path / "u.jsonl", tmp_path / "out", "ctc_greedy_search",
                    "attention_rescoring", "attention_rescoring", progress=False)
    assert [h["id"] for h in read_jsonl(tmp_path / "out" / "hyps.jsonl")] == ["u0"]
    bad = rejected(tmp_path / "out" / "rejected.tsv")
    assert bad["u1"] == "empty hypothesis (ctc_greedy_search)"
    assert bad["u2"] == "empty hypothesis (attention_rescoring)"
    assert bad["u3"].startswith("unreadable")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert summary["rejected"] == 3 and summary["pseudo_labelled"] == 1
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temporary files left


def test_entry_point_needs_the_lm_for_an_lm_mode(tiny_model_file, short_manifest, tmp_path):  # noqa: F811
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "asr.nst.pseudo_label", f"model={tiny_model_file}",
                        f"manifest={short_manifest}", f"out_dir={tmp_path / 'out'}", "threads=1"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and r.stderr.strip().splitlines()[-1].startswith("asr.nst.pseudo_label: ")
    assert not (tmp_path / "out" / "hyps.jsonl").exists()
