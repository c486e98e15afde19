import torch
import torch.nn.functional as F

from asr.model.ctc import CTCHead, ctc_min_frames


def test_min_frames_is_the_feasibility_boundary_of_ctc_loss():
    torch.manual_seed(0)
    ys = torch.tensor([[1, 1, 2, 2, 2, 3], [3, 1, 3, 3, -1, -1], [2, 2, 1, 2, 2, -1], [1, -1, -1, -1, -1, -1]])
    ys_lens = torch.tensor([6, 4, 5, 1])
    need = ctc_min_frames(ys, ys_lens)
    for b, n in enumerate(ys_lens.tolist()):
        target = ys[b : b + 1, :n]
        for t, feasible in ((int(need[b]), True), (int(need[b]) - 1, False)):
            log_probs = torch.randn(t + 1, 1, 4).log_softmax(-1)  # only the first t frames are used
            loss = F.ctc_loss(log_probs, target, torch.tensor([t]), torch.tensor([n]), reduction="none")
            assert bool(torch.isfinite(loss)) == feasible, (b, t)


def test_batched_loss_equals_one_by_one():
    torch.manual_seed(0)
    head = CTCHead(vocab_size=6, d_model=8).double()
    enc_out = torch.randn(3, 10, 8, dtype=torch.float64)
    enc_lens = torch.tensor([10, 7, 4])
    ys = torch.tensor([[1, 2, 3, 4], [5, 5, -1, -1], [2, -1, -1, -1]])
    ys_lens = torch.tensor([4, 2, 1])
    log_probs = head(enc_out)
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(3, 10, dtype=torch.float64))
    losses = head.loss(log_probs, enc_lens, ys, ys_lens)
    for b in range(3):
        t, n = int(enc_lens[b]), int(ys_lens[b])
        alone = F.ctc_loss(log_probs[b, :t].unsqueeze(1), ys[b : b + 1, :n], [t], [n], reduction="sum")
        torch.testing.assert_close(losses[b], alone)
