import pytest
import torch

pytest.importorskip("pyroomacoustics")

from asr.augment.room import ShoeboxRirs  # noqa: E402


def test_room_k_depends_on_seed_and_k_only():
    a, b = ShoeboxRirs(num_rooms=4, max_order=2, seed=1), ShoeboxRirs(num_rooms=4, max_order=2, seed=1)
    assert torch.equal(a[3], b[3])  # b builds room 3 first, a builds it alone
    assert torch.equal(a[0], b[0])
    assert not torch.equal(a[0], a[1])
    assert not torch.equal(a[0], ShoeboxRirs(num_rooms=4, max_order=2, seed=2)[0])


def test_room_size_must_leave_room_for_the_margin():
    with pytest.raises(ValueError, match="room_size"):
        ShoeboxRirs(room_size=[[0.5, 1.0], [3, 4], [3, 4]], margin=0.5)
