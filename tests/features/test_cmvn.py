import numpy as np
import torch

from asr.features.cmvn import CMVNAccumulator, GlobalCMVN


def test_stats_equal_direct_computation_and_round_trip(tmp_path):
    g = torch.Generator().manual_seed(0)
    mats = [torch.randn(int(n), 80, generator=g) * 3 + 5 for n in torch.randint(10, 200, (6,), generator=g)]
    acc = CMVNAccumulator(80)
    for m in mats:
        acc.add(m)
    cmvn = acc.result()
    allf = torch.cat(mats).double()
    torch.testing.assert_close(torch.from_numpy(cmvn.mean).double(), allf.mean(0), rtol=0, atol=1e-5)
    torch.testing.assert_close(torch.from_numpy(cmvn.istd).double(), 1 / allf.std(0, unbiased=False), rtol=1e-5, atol=0)
    normed = cmvn(torch.cat(mats))
    assert normed.mean(0).abs().max() < 1e-4 and (normed.std(0, unbiased=False) - 1).abs().max() < 1e-4
    cmvn.save(tmp_path / "cmvn.json")
    again = GlobalCMVN.load(tmp_path / "cmvn.json")
    assert again.frames == allf.shape[0]
    np.testing.assert_array_equal(again.mean, cmvn.mean)
    np.testing.assert_array_equal(again.istd, cmvn.istd)
    # NumPy features are normalised with the same float32 arithmetic as tensors
    x = torch.cat(mats)
    np.testing.assert_array_equal(cmvn(x.numpy()), cmvn(x).numpy())
