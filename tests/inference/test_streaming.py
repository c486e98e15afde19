"""Streaming recognition (Recognizer.stream) against whole-utterance decoding of the same chunk-masked model."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from asr.decoding.ctc_prefix_beam import PrefixBeam, ctc_prefix_beam_search, ctc_prefix_beam_search_reference
from asr.inference.backends import TorchBackend
from asr.inference.backends.chunk_encoder import TorchChunkEncoder
from asr.inference.cli import EXIT_CANNOT_START
from asr.inference.cli import main as transcribe_main
from asr.inference.lm_modes import FusionLM
from asr.inference.realtime import feed
from asr.inference.recognizer import Recognizer
from asr.inference.streaming import EndpointRule, StreamClosed
from asr.modelfile import load_model_file
from tests.decoding.test_ctc_prefix_beam import BigramScorer, assert_same_nbest
from tests.export.conftest import write_random_model_file

SR = 16000


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    return write_random_model_file(tmp_path_factory.mktemp("stream") / "model.safetensors", streaming=True, causal=True)


@pytest.fixture(scope="module")
def loaded(model_file):
    return load_model_file(model_file)


def recognizer(loaded, chunk_size: int = 0, num_left_chunks: int = -1, **kwargs) -> Recognizer:
    """A recognizer whose batch decoding is the chunk-masked whole-utterance computation."""
    return Recognizer(TorchBackend(loaded.model, chunk_size=chunk_size, num_left_chunks=num_left_chunks),
                      loaded.tokenizer, loaded.fbank, loaded.cmvn, beam=4, nbest=4, **kwargs)


def signal(seconds: float, seed: int = 0) -> np.ndarray:
    """Tones sweeping in pitch with bursts of noise: (N,) float32, different features in every chunk."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    pitch = 150 + 100 * np.sin(2 * np.pi * 0.7 * t)
    x = 0.3 * np.sin(2 * np.pi * np.cumsum(pitch) / SR) * (0.5 + 0.5 * np.sin(2 * np.pi * 2.3 * t) ** 2)
    return (x + 0.05 * rng.standard_normal(len(t))).astype(np.float32)


def whole_utterance(rec: Recognizer, samples: np.ndarray, mode: str) -> str:
    return rec.transcribe([torch.from_numpy(samples)[None]], mode)[0]


def stream_text(rec: Recognizer, samples: np.ndarray, block: int, **stream_args) -> str:
    stream = rec.stream(**stream_args)
    for i in range(0, len(samples), block):
        stream.accept_waveform(samples[i : i + block])
    return stream.finalize()


@pytest.mark.parametrize("chunk_size,num_left_chunks", [(1, -1), (4, -1), (8, 2), (16, 1)])
def test_stream_equals_the_chunk_masked_whole_utterance(loaded, chunk_size, num_left_chunks):
    samples = signal(3.3)
    rec = recognizer(loaded, chunk_size, num_left_chunks)
    for mode, rescore in (("attention_rescoring", True), ("ctc_prefix_beam_search", False)):
        expected = whole_utterance(rec, samples, mode)
        got = stream_text(rec, samples, 1234, chunk_size=chunk_size, num_left_chunks=num_left_chunks,
                          rescore=rescore, endpoint=None)
        assert got == expected and got  # a random model says plenty


def test_streaming_search_equals_whole_search_on_the_chunk_masked_log_probs(loaded):
    """The search state carried across chunk encoder outputs vs one search over the masked full forward."""
    feats = loaded.cmvn(loaded.fbank(torch.from_numpy(signal(4.0))))  # (T, F)
    encoder, ctc = loaded.model.encoder, loaded.model.ctc
    for chunk_size, left in ((4, -1), (8, 2)):
        with torch.no_grad():
            enc, lens = encoder(feats[None], torch.tensor([len(feats)]), chunk_size=chunk_size, num_left_chunks=left)
            whole = ctc_prefix_beam_search_reference(ctc(enc)[0].double().numpy(), beam=5)
        chunks, search, start = TorchChunkEncoder(encoder, chunk_size, left), PrefixBeam(beam=5), 0
        while len(feats) - start >= chunks.min_input_frames:
            with torch.no_grad():
                search.advance(ctc(chunks(feats[start : start + chunks.input_frames]))[0].double().numpy())
            start += chunks.stride
        assert search.frames == int(lens[0])
        assert_same_nbest(search.nbest(), whole, tol=1e-4)


def test_one_sample_at_a_time_equals_ten_seconds_at_once(loaded):
    samples = np.concatenate([signal(4.0, 1), np.zeros(SR, np.float32), signal(5.0, 2)])  # 10 s
    rec = recognizer(loaded)
    stream = rec.stream(chunk_size=8)
    for x in samples:  # one sample per call (a float scalar's 1-element array)
        stream.accept_waveform(x[None])
    one_by_one = stream.finalize()
    at_once = rec.stream(chunk_size=8)
    at_once.accept_waveform(samples)
    assert at_once.finalize() == one_by_one and one_by_one
    assert [(s.start, s.end) for s in at_once.segments] == [(s.start, s.end) for s in stream.segments]


def test_lm_fusion_keeps_working_in_streaming(loaded):
    rng = np.random.default_rng(0)
    scorer = BigramScorer(rng.standard_normal((len(loaded.tokenizer),) * 2))
    samples = signal(3.0)
    rec = recognizer(loaded, 8, lm=FusionLM(scorer, end_of_sentence=False))
    feats = rec.pipeline.features(torch.from_numpy(samples)[None])
    with torch.no_grad():
        enc, _ = loaded.model.encoder(feats[None], torch.tensor([len(feats)]), chunk_size=8)
        log_probs = loaded.model.ctc(enc)[0].numpy()
    expected = loaded.tokenizer.decode(list(ctc_prefix_beam_search(log_probs, beam=4, scorer=scorer)[0][0]))
    plain = stream_text(rec, samples, 4000, chunk_size=8, rescore=False, endpoint=None)
    fused = stream_text(rec, samples, 4000, chunk_size=8, rescore=False, endpoint=None, use_lm=True)
    assert fused == expected and fused != plain
    with pytest.raises(ValueError, match="language model"):
        recognizer(loaded).stream(use_lm=True)


def test_audio_shorter_than_one_chunk_is_decoded_and_shorter_than_one_frame_is_empty(loaded):
    rec = recognizer(loaded, 16)
    short = signal(0.5)  # 50 fbank frames, a 16-frame chunk reads 101
    assert stream_text(rec, short, 800, chunk_size=16) == whole_utterance(rec, short, "attention_rescoring")
    tiny = rec.stream(chunk_size=16)
    tiny.accept_waveform(signal(0.1))  # 8 fbank frames: fewer than the subsampling's 11
    assert tiny.finalize() == "" and tiny.segments == []
    empty = rec.stream()
    assert empty.partial() == "" and empty.finalize() == ""


def test_bad_input_is_refused_with_clear_errors(loaded, model_file, tmp_path):
    rec = recognizer(loaded)
    for chunk in (0, -4, 2.5, True):
        with pytest.raises(ValueError, match="chunk size must be a positive"):
            rec.stream(chunk_size=chunk)
    stream = rec.stream()
    with pytest.raises(ValueError, match="16000 Hz audio, got 8000 Hz"):
        stream.accept_waveform(signal(0.5), sample_rate=8000)
    with pytest.raises(ValueError, match="float samples"):
        stream.accept_waveform((signal(0.5) * 32767).astype(np.int16))
    with pytest.raises(ValueError, match="NaN"):
        stream.accept_waveform(np.array([0.1, np.nan], dtype=np.float32))
    with pytest.raises(ValueError, match="mono"):
        stream.accept_waveform(np.zeros((2, 100), dtype=np.float32))
    stream.accept_waveform(torch.from_numpy(signal(1.0))[None])  # (1, N) tensors are fine
    text = stream.finalize()
    assert stream.finalize() == text  # finalize again: the same text
    with pytest.raises(StreamClosed, match="after finalize"):
        stream.accept_waveform(signal(0.1))
    with pytest.raises(ValueError, match="trailing_silence"):
        EndpointRule(trailing_silence=0)
    centred = write_random_model_file(tmp_path / "offline.safetensors")  # not causal: no streaming
    with pytest.raises(ValueError, match="not causal"):
        Recognizer.from_model_file(centred).stream()


class MarkerEncoder:
    """A stand-in chunk encoder: one output frame per 4 feature frames, holding their mean log-energy."""

    chunk_size, stride, input_frames, min_input_frames, subsampling = 4, 16, 19, 7, "conv2d4"

    def __init__(self):
        self.resets = 0

    def reset(self):
        self.resets += 1

    def __call__(self, feats):  # (T_c, F) NumPy, as a stream gives them
        feats = torch.as_tensor(feats)
        n = (feats.size(0) - 3) // 4
        return feats[: 4 * n].reshape(n, 4, -1).mean(dim=(1, 2)).reshape(1, n, 1)  # (1, C', 1)


class MarkerBackend:
    """CTC says 好 where the marker is loud, blank elsewhere; the decoder prefers nothing."""

    device = torch.device("cpu")

    def stream_encoder(self, chunk_size, num_left_chunks):
        return MarkerEncoder()

    def ctc_log_probs(self, enc_out):
        loud = enc_out[..., 0] > 15.0  # (B, T')
        log_probs = torch.full((*loud.shape, 4), -10.0)  # blank, <unk>, 好, <sos/eos>
        log_probs[..., 0] = torch.where(loud, -10.0, 0.0)
        log_probs[..., 2] = torch.where(loud, 0.0, -10.0)
        return log_probs

    def decoder_scores(self, enc_out, enc_lens, hyps, hyps_lens):
        return torch.zeros(len(hyps))

    def set_reverse_weight(self, weight):
        pass


def test_endpoints_close_segments_at_trailing_silence_with_times(loaded):
    from asr.tokenizer.char import CharTokenizer

    tokenizer = CharTokenizer.build(["好"])
    rng = np.random.default_rng(0)
    loud, quiet = (lambda s: (0.3 * rng.standard_normal(int(s * SR))).astype(np.float32),
                   lambda s: (1e-4 * rng.standard_normal(int(s * SR))).astype(np.float32))
    samples = np.concatenate([quiet(0.5), loud(1.0), quiet(1.5), loud(0.8), quiet(0.3)])
    # no CMVN: raw log-mel energies, loud frames (about 23) above 15 and quiet ones (about 7) below
    rec = Recognizer(MarkerBackend(), tokenizer, loaded.fbank, None, beam=3, nbest=3)
    stream = rec.stream(endpoint=EndpointRule(trailing_silence=0.6))
    stream.accept_waveform(samples)
    assert len(stream.segments) == 1  # the first closed by 0.6 s of silence, the second still open
    first = stream.segments[0]
    assert first.text == "好" and abs(first.start - 0.0) < 1e-9 and abs(first.end - 1.5) < 0.1
    assert stream.partial() == "好好"
    stream.finalize()
    second = stream.segments[1]
    assert len(stream.segments) == 2 and abs(second.start - first.end) > 0.5 and abs(second.end - 3.8) < 0.1
    assert stream.encoder.resets >= 2  # caches start afresh for each segment
    long_silence = rec.stream(endpoint=EndpointRule(leading_silence=1.0))
    long_silence.accept_waveform(np.concatenate([quiet(2.5), loud(0.5)]))
    assert long_silence.segment_start > 0  # the silent start was closed (and dropped) on its own
    assert long_silence.finalize() == "好" and long_silence.segments[0].start >= 1.0


def test_realtime_feeding_waits_for_the_audio_and_measures_latency(loaded):
    rec = recognizer(loaded)
    now = [0.0]
    sleeps = []

    def sleep(seconds):
        sleeps.append(seconds)
        now[0] += seconds

    run = feed(rec.stream(chunk_size=4), signal(2.0), block_seconds=0.25, realtime=True, speech_start=0.1,
               speech_end=1.9, clock=lambda: now[0], sleep=sleep)
    assert len(sleeps) == 8 and abs(sum(sleeps) - 2.0) < 1e-9  # 1x: the clock ends at the end of the audio
    assert run.final == pytest.approx(0.1) and run.final_after_audio == pytest.approx(0.0)  # no time in compute
    first_at = run.partials[0][0] if run.partials[0][1] else run.partials[1][0]
    assert run.first_partial == pytest.approx(first_at - 0.1)
    fast = feed(rec.stream(chunk_size=4), signal(2.0), block_seconds=0.25)
    assert fast.text == run.text and fast.final is None


def test_cli_streaming_prints_partials_segments_and_refuses_bad_settings(model_file, tmp_path, capsys):
    import soundfile as sf

    wav = tmp_path / "a.wav"
    sf.write(wav, signal(2.5), SR)
    assert transcribe_main([str(wav), "--model", str(model_file), "--streaming", "--chunk", "8", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    partials = [x for x in lines if "partial" in x]
    segments = [x for x in lines if "start" in x]
    assert partials and segments and all(x["file"] == str(wav) for x in lines)
    rec = Recognizer.from_model_file(model_file)
    assert "".join(s["text"] for s in segments) == stream_text(rec, signal(2.5), 1600, chunk_size=8)
    # bad settings stop the run before any file (asr-transcribe's "could not start"); a bad file fails alone
    assert transcribe_main([str(wav), "--model", str(model_file), "--streaming", "--chunk", "0"]) == EXIT_CANNOT_START
    assert "chunk size must be a positive" in capsys.readouterr().err
    assert transcribe_main([str(wav), "--model", str(model_file), "--streaming", "--mode", "attention"]) \
        == EXIT_CANNOT_START
    assert transcribe_main([str(wav), str(tmp_path / "missing.wav"), "--model", str(model_file), "--streaming"]) == 1
    out = capsys.readouterr()
    assert out.out.startswith(f"{wav}\t") and "missing.wav" in out.err


def test_cli_streaming_reads_with_the_one_reader_resampling_or_refusing_other_rates(model_file, tmp_path, capsys):
    import soundfile as sf

    from asr.data.audio import load_audio

    wav = tmp_path / "a8k.wav"
    sf.write(wav, signal(2.0)[::2], 8000)  # 8 kHz
    assert transcribe_main([str(wav), "--model", str(model_file), "--streaming", "--chunk", "8"]) == 0
    out = capsys.readouterr()
    assert "resampled 8000 Hz -> 16000 Hz" in out.err
    rec = Recognizer.from_model_file(model_file)
    resampled = load_audio(wav, SR)  # the reader's own resampling, then streamed as the CLI does
    expected = stream_text(rec, resampled, 1600, chunk_size=8)
    assert expected and out.out == f"{wav}\t{expected}\n"
    # --no-resample: that file fails alone, with the reason, and the run goes on to the next file
    ok = tmp_path / "b.wav"
    sf.write(ok, signal(1.0), SR)
    assert transcribe_main([str(wav), str(ok), "--model", str(model_file), "--streaming", "--no-resample"]) == 1
    out = capsys.readouterr()
    assert "sample rate 8000 Hz, the model needs 16000 Hz" in out.err and out.out.startswith(f"{ok}\t")
