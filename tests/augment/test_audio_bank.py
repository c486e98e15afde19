import json

import pytest
import torch

from asr.augment.audio_bank import AudioBank, expand_sources
from tests.augment.conftest import write_wav


def test_sources_may_be_folders_lists_and_manifests(tmp_path):
    (tmp_path / "dir" / "sub").mkdir(parents=True)
    a = write_wav(tmp_path / "dir" / "a.wav", torch.zeros(1, 10))
    b = write_wav(tmp_path / "dir" / "sub" / "b.wav", torch.zeros(1, 10))
    (tmp_path / "dir" / "notes.txt").write_text("not audio")
    (tmp_path / "list.txt").write_text("# noises\ndir/a.wav\n\ndir/sub/b.wav\n")
    (tmp_path / "m.jsonl").write_text(json.dumps({"id": "x", "audio": "dir/a.wav"}) + "\n")
    assert [str(p) for p in expand_sources(str(tmp_path / "dir"))] == [a, b]
    assert [str(p) for p in expand_sources([str(tmp_path / "list.txt"), str(tmp_path / "m.jsonl")])] == [a, b, a]


def test_cache_keeps_the_most_recent_clips_within_the_bound(tmp_path):
    paths = [write_wav(tmp_path / f"{k}.wav", torch.full((1, 1024), 0.1 * k)) for k in range(3)]
    bank = AudioBank(paths, 16000, cache_mb=2 * 4096 / 2**20)  # room for two 4 KiB clips
    first = bank.load(0)
    bank.load(1)
    assert bank.load(0) is first  # hit, now most recent
    bank.load(2)  # evicts clip 1
    assert set(bank._cache) == {0, 2}
    assert torch.equal(bank.load(1), torch.full((1, 1024), 0.1))


def test_unreadable_file_is_reported_with_its_name(tmp_path):
    good = write_wav(tmp_path / "good.wav", torch.zeros(1, 10))
    (tmp_path / "broken.wav").write_bytes(b"RIFF not really")
    with pytest.warns(UserWarning, match="broken.wav"):
        bank = AudioBank([good, str(tmp_path / "broken.wav")], 16000, owner="AddNoise")
    assert len(bank) == 1
