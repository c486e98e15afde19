"""Long audio: the bound on pieces, pieces decoded in batches equal one-by-one decoding, overlapping windows merge
to what decoding the whole gives, short inputs decode alike on every backend, and the two-minute JSON output."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.data.audio import AudioFile
from asr.features.cmvn import GlobalCMVN
from asr.features.fbank import Fbank
from asr.inference.cli import main, open_recognizer
from asr.inference.long_audio import join_texts, segment_bound, transcribe_file
from asr.inference.recognizer import Recognizer
from asr.inference.segmenter import Segmenter
from asr.inference.vad import EnergyVAD
from asr.tokenizer.char import CharTokenizer
from tests.export.conftest import RANDOM_MODEL_LENGTHS, join_with_silences

MODE = "ctc_greedy_search"


@pytest.fixture(scope="module")
def recognizer(random_onnx):
    return open_recognizer(str(random_onnx), threads=1)


@pytest.fixture(scope="module")
def joined(test_utterances, tmp_path_factory):
    """Six test utterances joined by pauses (longer than the random model's training utterances), as a wav, with
    the spans of their speech."""
    utterances = [x for x, _ in test_utterances[:6]]
    signal, spans = join_with_silences(utterances, list(np.random.default_rng(3).uniform(0.4, 1.0, 7)))
    path = tmp_path_factory.mktemp("long") / "joined.wav"
    sf.write(path, signal, 16000, subtype="PCM_16")
    return path, spans


def test_the_bound_is_the_longest_training_utterance_capped_by_the_backend(recognizer, random_static):
    assert segment_bound(recognizer) == (RANDOM_MODEL_LENGTHS.max, "the longest training utterance")
    assert segment_bound(recognizer, 5.0)[0] == 5.0
    static = open_recognizer(str(random_static), "om", threads=1, om_runtime="onnxruntime")
    frames = static.backend.max_input_frames  # 201 frames of the small test profile: 2 s
    assert segment_bound(static) == (pytest.approx((frames - 1) * 0.01 + 0.015), "the backend's static input window")


def test_pieces_decoded_in_batches_equal_one_by_one_decoding(recognizer, joined):
    path, spans = joined
    audio = AudioFile(path)
    assert audio.duration > RANDOM_MODEL_LENGTHS.max
    transcript = transcribe_file(recognizer, audio, EnergyVAD(), MODE, batch_size=4)
    pieces = Segmenter(max_segment=RANDOM_MODEL_LENGTHS.max).plan(EnergyVAD().frames(audio.blocks(), audio.rate))
    assert len(transcript.segments) == len(pieces) == len(spans) and transcript.notes == []
    for segment, piece, (speech_start, speech_end) in zip(transcript.segments, pieces, spans):
        assert abs(segment.start - speech_start) < 0.1 and abs(segment.end - speech_end) < 0.1
        assert segment.text == recognizer.transcribe([audio.read(piece.start, piece.end)], MODE)[0]
    assert transcript.text == "".join(s.text for s in transcript.segments)


def test_join_texts_spaces_only_between_latin_words():
    assert join_texts(["你好", "世界", "", "ok", "go", "好"]) == "你好世界ok go好"


class FrameLocalBackend:
    """A stand-in network whose CTC output at a frame depends on that frame's features alone (no subsampling):
    decoding overlapping windows and keeping each token once must then give exactly the whole input's tokens."""

    device = torch.device("cpu")
    has_decoder_step = False
    min_input_frames = 1

    def __init__(self, vocab: int, dims: int = 80, seed: int = 0):
        self.weight = torch.randn(dims, vocab, generator=torch.Generator().manual_seed(seed)) * 3

    def set_reverse_weight(self, weight):
        pass

    def encode(self, feats, feats_lens):
        return feats, feats_lens

    def ctc_log_probs(self, enc_out):
        enc_out = torch.as_tensor(enc_out)
        x = enc_out - enc_out.mean(-1, keepdim=True)  # (B, T, F) the frame's spectral shape
        return (x @ self.weight).log_softmax(-1)  # (B, T, V)


def test_overlapping_windows_merge_to_the_whole_decoding(tmp_path):
    tokenizer = CharTokenizer.build(["今天天气很好我们去北京人工智能"])
    cmvn = GlobalCMVN(torch.full((80,), 10.0 * 100), torch.full((80,), 104.0 * 100), 100)
    rec = Recognizer(FrameLocalBackend(len(tokenizer)), tokenizer, Fbank(), cmvn)
    rng = np.random.default_rng(5)
    pieces, n = [], 0
    while n < 16000 * 20:  # 20 s of tones changing every 20-80 ms, at one level: no pause
        length = int(rng.integers(320, 1280))
        pieces.append(0.3 * np.sin(2 * np.pi * rng.uniform(100, 4000) * np.arange(length) / 16000))
        n += length
    signal = (np.concatenate(pieces) + 0.05 * rng.standard_normal(n)).astype(np.float32)
    path = tmp_path / "no_pause.wav"
    sf.write(path, signal, 16000, subtype="FLOAT")
    audio = AudioFile(path)
    transcript = transcribe_file(rec, audio, EnergyVAD(), MODE, max_segment=3.0)
    whole = rec.transcribe([audio.read()], MODE)[0]
    assert len(transcript.segments) > 6 and len(whole) > 100
    assert transcript.text == whole
    assert all(a.end == b.start for a, b in zip(transcript.segments, transcript.segments[1:]))


@pytest.mark.parametrize("backend", ["torch", "onnxruntime", "om"])
def test_short_inputs_decode_to_nothing_alike_on_every_backend(backend, random_model_file, random_onnx,
                                                               random_static, test_utterances):
    model = {"torch": random_model_file, "onnxruntime": random_onnx, "om": random_static}[backend]
    rec = open_recognizer(str(model), backend, threads=1, om_runtime="onnxruntime")
    utterance = test_utterances[0][0][:16000]  # 1 s: fits the small static profile
    tiny = [np.zeros(n, np.float32) + 0.1 for n in (0, 100, 400, 16 * 10 * (rec.backend.min_input_frames - 1))]
    assert rec.transcribe(tiny, MODE) == [""] * len(tiny)
    alone = rec.transcribe([utterance], MODE)
    assert alone[0] and rec.transcribe([tiny[1], utterance, tiny[2]], MODE) == ["", alone[0], ""]


def test_om_backend_gets_pieces_its_profile_holds(random_static, joined, capsys):
    path, _ = joined
    args = [str(path), "--model", str(random_static), "--backend", "om", "--om-runtime", "onnxruntime", "--json"]
    assert main([*args, "--threads", "1"]) == 0  # attention rescoring: the decoder must hold every piece
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["error"] is None and len(row["segments"]) > 6
    assert all(s["end"] - s["start"] <= 2.0 for s in row["segments"])


def test_two_minute_file_as_json(random_onnx, test_utterances, tmp_path, capsys):
    utterances = [x for x, _ in test_utterances] * 3
    gaps = list(np.random.default_rng(4).uniform(0.5, 1.5, len(utterances) + 1))
    signal, spans = join_with_silences(utterances, gaps)
    assert len(signal) / 16000 >= 120
    path = tmp_path / "two_minutes.flac"
    sf.write(path, signal, 16000)
    assert main([str(path), "--model", str(random_onnx), "--json", "--mode", MODE, "--threads", "1"]) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["file"] == str(path) and row["error"] is None
    assert row["duration"] == pytest.approx(len(signal) / 16000, abs=1e-3)
    assert len(row["segments"]) == len(spans)
    for segment, (speech_start, speech_end) in zip(row["segments"], spans):
        assert segment["text"] and abs(segment["start"] - speech_start) < 0.1 and abs(segment["end"] - speech_end) < 0.1
    assert row["text"] == "".join(s["text"] for s in row["segments"])
