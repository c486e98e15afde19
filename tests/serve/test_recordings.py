"""Recordings decoded together (a server batch) give what asr-transcribe gives each file alone."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from asr.data.audio import AudioFile
from asr.inference.long_audio import transcribe_file
from asr.inference.open_model import open_recognizer
from asr.inference.vad import EnergyVAD
from asr.serve.recordings import check_recording, transcribe_recordings


@pytest.fixture(scope="module")
def recognizer(served_onnx):
    return open_recognizer(str(served_onnx), threads=1)


@pytest.mark.parametrize("mode", ["ctc_greedy_search", "attention_rescoring"])
def test_recordings_decoded_together_equal_files_decoded_alone(recognizer, recordings, mode):
    wavs = [sf.read(path, dtype="float32")[0] for path in recordings]
    together = transcribe_recordings(recognizer, wavs, mode, batch_size=5)
    for path, transcript in zip(recordings, together):
        alone = transcribe_file(recognizer, AudioFile(path), EnergyVAD(), mode)
        assert transcript.segments == alone.segments, path.name
        assert transcript.text == alone.text and transcript.notes == alone.notes
    assert any(len(t.segments) > 1 for t in together)  # the joined recordings were cut
    assert together[-1].segments == [] and together[-1].notes == ["no speech found"]


def test_check_recording_names_what_is_wrong():
    ok = np.zeros(16000, np.float32)
    assert check_recording(ok, 16000, 16000, 2.0) is None
    assert "empty" in check_recording(ok[:0], 16000, 16000, 2.0)
    assert "8000 Hz, the model needs 16000 Hz" in check_recording(ok, 8000, 16000, 2.0)
    assert "longer than this server takes (0.5 s)" in check_recording(ok, 16000, 16000, 0.5)
    assert "NaN" in check_recording(np.full(100, np.nan, np.float32), 16000, 16000, 2.0)
    assert "one channel" in check_recording(ok.reshape(2, -1), 16000, 16000, 2.0)
