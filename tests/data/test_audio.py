"""The one audio loader: channels, resampling, blocks and spans, damaged files, and training data through it."""
from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.functional as AF

from asr.data.audio import ArrayAudio, AudioError, AudioFile, load_audio, wav_shortfall
from asr.data.pipeline import SamplePipeline
from asr.features.fbank import Fbank


def signal(seconds: float, sr: int = 16000, channels: int = 1, seed: int = 0) -> np.ndarray:
    """(N, C) float32: a different low tone plus a little noise in each channel."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = [0.3 * np.sin(2 * np.pi * (150 + 100 * c) * t) + 0.01 * rng.standard_normal(len(t)) for c in range(channels)]
    return np.stack(x, axis=1).astype(np.float32)


def write(path, data: np.ndarray, sr: int = 16000, **kwargs):
    sf.write(path, data, sr, **kwargs)
    return path


def test_stereo_is_mixed_down_by_default_and_a_channel_can_be_chosen(tmp_path):
    data = signal(1.0, channels=2)
    path = write(tmp_path / "stereo.wav", data, subtype="FLOAT")
    audio = AudioFile(path)
    np.testing.assert_allclose(audio.read(), data.mean(axis=1), atol=1e-7)
    assert audio.notes == ["2 channels mixed down to mono"]
    np.testing.assert_array_equal(load_audio(path, channel=1), data[:, 1])
    with pytest.raises(AudioError, match="has 2 channel\\(s\\), channel 2 requested"):
        AudioFile(path, channel=2)


def test_resampling_agrees_with_torchaudio_and_is_noted(tmp_path):
    data = signal(2.0, sr=8000)[:, 0]
    path = write(tmp_path / "8k.wav", data, 8000, subtype="FLOAT")
    audio = AudioFile(path)
    ours = audio.read()
    theirs = AF.resample(torch.from_numpy(data), 8000, 16000).numpy()  # a different filter design
    assert len(ours) == len(theirs) == 2 * len(data)
    middle = slice(400, -400)  # the filters differ most at the edges
    assert np.abs(ours[middle] - theirs[middle]).max() < 0.02
    assert audio.notes == ["resampled 8000 Hz -> 16000 Hz"]
    with pytest.raises(AudioError, match="resampling is off"):
        AudioFile(path, resample=False)


def test_blocks_and_spans_equal_the_whole(tmp_path):
    data = signal(3.3, channels=2)
    audio = AudioFile(write(tmp_path / "a.flac", data))
    whole = audio.read()
    np.testing.assert_array_equal(np.concatenate(list(audio.blocks(seconds=0.7))), whole)
    np.testing.assert_array_equal(audio.read(1.25, 2.5), whole[20000:40000])
    assert abs(audio.duration - 3.3) < 1e-9


def test_a_file_object_reads_like_its_path(tmp_path):
    path = write(tmp_path / "a.wav", signal(1.0, channels=2), subtype="PCM_16")
    np.testing.assert_array_equal(load_audio(io.BytesIO(path.read_bytes()), name="member"), load_audio(path))


def test_samples_in_memory_read_like_their_file(tmp_path):
    path = write(tmp_path / "a.wav", signal(3.3)[:, 0], subtype="PCM_16")
    wav = sf.read(path, dtype="float32")[0]
    on_disk, in_memory = AudioFile(path), ArrayAudio(wav, 16000)
    assert (in_memory.rate, in_memory.frames, in_memory.duration) == (on_disk.rate, on_disk.frames, on_disk.duration)
    np.testing.assert_array_equal(np.concatenate(list(in_memory.blocks(0.7))), np.concatenate(list(on_disk.blocks())))
    for start, end in [(0.0, None), (0.12345, 1.0), (1.00004, 2.99996), (3.0, 9.0), (0.5, 0.5)]:
        np.testing.assert_array_equal(in_memory.read(start, end), on_disk.read(start, end))
    with pytest.raises(AudioError, match="request 3: empty audio"):
        ArrayAudio(wav[:0], 16000, "request 3")


def test_truncated_wav_is_refused_unless_allowed(tmp_path):
    data = signal(2.0)[:, 0]
    full = write(tmp_path / "full.wav", data, subtype="PCM_16")
    raw = full.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(raw[: len(raw) // 2])
    with open(full, "rb") as f:
        assert wav_shortfall(f) is None
    with open(cut, "rb") as f:
        declared, present = wav_shortfall(f)
    assert declared == 2 * len(data) and present == len(raw) // 2 - 44
    with pytest.raises(AudioError, match=f"^{cut}: truncated"):
        AudioFile(cut)
    audio = AudioFile(cut, allow_truncated=True)
    assert audio.notes[0].startswith("truncated")
    np.testing.assert_array_equal(audio.read(), load_audio(full)[: present // 2])


def test_truncated_flac_fails_with_the_file_named(tmp_path):
    full = write(tmp_path / "full.flac", signal(3.0)[:, 0])
    cut = tmp_path / "cut.flac"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(AudioError, match=f"^{cut}: (truncated|cannot read)"):
        AudioFile(cut).read()
    with pytest.raises(AudioError, match=f"^{cut}: (truncated|cannot read)"):
        list(AudioFile(cut).blocks())


@pytest.mark.parametrize("kind, message", [("missing", "no such file"), ("empty", "empty file"),
                                           ("no samples", "empty audio"), ("text", "cannot read audio"),
                                           ("folder", "is a directory")])
def test_unusable_inputs_are_named_with_a_reason(kind, message, tmp_path):
    path = tmp_path / "x.wav"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "no samples":
        write(path, np.zeros(0, np.float32))
    elif kind == "text":
        path.write_text("not audio")
    elif kind == "folder":
        path.mkdir()
    with pytest.raises(AudioError, match=f"^{path}: {message}"):
        AudioFile(path)


def test_training_data_goes_through_the_same_loader(tmp_path):
    path = write(tmp_path / "stereo.wav", signal(1.0, channels=2), subtype="PCM_16")
    sample = SamplePipeline(Fbank(), None, None).load({"id": "u1", "audio": str(path), "text": "你好"})
    assert sample["wav"].shape == (1, 16000)
    np.testing.assert_array_equal(sample["wav"][0].numpy(), load_audio(path))
