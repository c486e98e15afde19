"""The Recognizer gives the same text on the torch, onnxruntime and om (static profile on CPU) backends.

Run on the synthetic test set with the trained tiny model, and with the random-weight model, whose
outputs are never empty (a barely trained model may emit only blanks, which would agree vacuously).
"""
from __future__ import annotations

import pytest
import torch

from asr.data.audio import load_audio
from asr.data.manifest import Manifest
from asr.inference.cli import open_recognizer
from asr.inference.recognizer import Recognizer

MODES = ["ctc_greedy_search", "ctc_prefix_beam_search", "attention_rescoring"]
SEARCH = {"beam": 4, "nbest": 4}


@pytest.fixture(scope="module")
def models(tiny_model_file, tiny_onnx, random_model_file, random_onnx, random_static_default) -> dict:
    """Model file, dynamic export and default static profile of the tiny and the random model."""
    random_static = random_static_default
    return {"tiny": (tiny_model_file, tiny_onnx["dynamic"], tiny_onnx["static"]),
            "random": (random_model_file, random_onnx, random_static)}


@pytest.mark.parametrize("name", ["tiny", "random"])
def test_same_text_on_every_backend(name, models, prepared_synthetic):
    model_file, dynamic, static = models[name]
    recognizers = {
        "torch": Recognizer.from_model_file(str(model_file), **SEARCH),
        "onnxruntime": open_recognizer(str(dynamic), threads=1, **SEARCH),
        "om": open_recognizer(str(static), "om", threads=1, om_runtime="onnxruntime", **SEARCH),
    }
    reference = recognizers["torch"]
    rows = Manifest(prepared_synthetic / "test.jsonl")
    feats = [reference.pipeline.features(load_audio(row["audio"])) for row in rows]
    lens = torch.tensor([len(f) for f in feats])
    padded = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)  # (B, T, F)
    assert lens.max() <= recognizers["om"].backend.max_input_frames  # one window each: the decoder can rescore

    texts = {backend: rec.decode_feats(padded, lens, MODES) for backend, rec in recognizers.items()}
    assert texts["onnxruntime"] == texts["torch"] == texts["om"]
    if name == "random":
        assert all(all(hyps) for hyps in texts["torch"].values())  # not vacuously equal
    encoded = {backend: rec.encode(padded, lens) for backend, rec in recognizers.items()}
    for backend in ("onnxruntime", "om"):
        assert (encoded[backend].lens == encoded["torch"].lens).all()
        for b, n in enumerate(encoded["torch"].lens.tolist()):
            torch.testing.assert_close(torch.from_numpy(encoded[backend].ctc_log_probs[b, :n]),
                                       torch.from_numpy(encoded["torch"].ctc_log_probs[b, :n]), atol=1e-3, rtol=1e-4)
