"""A stock baseline beside the recipe (issue 18): torchaudio's Conformer, plain CTC, a short plain training loop.

Usage:
    python tools/baseline_torchaudio_ctc.py --data data/demo --out exp/stock/torchaudio_ctc/seed1 --minutes 34
    python tools/baseline_torchaudio_ctc.py --data data/demo --out exp/ablation_v2/stock/torchaudio_ctc/seed1 \\
        --minutes-from exp/ablation_v2/posenc/rel/seed1 --eval conditions/test_randomtext.jsonl

Settings that win only with the recipe's machinery are not findings: this trains ``torchaudio.models.Conformer``
behind a two-layer convolutional subsampling (x4) with a linear CTC head, nothing of asr.model, asr.losses or
Lightning, on the same data and features as the recipe: DATA/train.jsonl, the project's Kaldi fbank and DATA/cmvn.json
(asr.data.pipeline.SamplePipeline, no augmentation), DATA/lang_char/units.txt, batches of similar length
(asr.data.batching). AdamW with a linear warm-up and inverse-square-root decay (a schedule that needs no step
count), gradients clipped at 5. Training stops at --steps or after --minutes of wall time, whichever comes first
(give the recipe run's training minutes for "the same wall time"). Then greedy CTC decoding of dev, test and every
--eval manifest (relative paths from DATA, named by their file's stem), scored with the project's CER
(asr.decoding.cer, references and hypotheses normalised as asr.decode does; a manifest's ``focus_chars`` and
``snr_db`` are scored and recorded as asr.decode does too).

OUT is laid out like a sweep's run (asr/evaluate.py), as arm ``--arm`` of sweep ``--name`` with seed ``--seed``:
OUT/metrics.json (status, CER and counts per set under the mode ``ctc_greedy_search``, steps, training seconds,
parameters, the last training losses, the arguments), OUT/decode/SET/ctc_greedy_search/{text,utterances.jsonl}
and the weights in OUT/model.pt. So tools/collect_ablation.py tables it against the recipe's runs, with the paired
bootstrap over utterances: ``collect_ablation.py exp/ablation_v2/stock --baseline rel
--baseline-from exp/ablation_v2/posenc/rel``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torchaudio
from torch import nn
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asr.data.batching import DynamicBucketBatchSampler  # noqa: E402
from asr.data.dataset import ManifestDataset  # noqa: E402
from asr.data.manifest import Manifest  # noqa: E402
from asr.data.pipeline import SamplePipeline, collate  # noqa: E402
from asr.data.text import normalize_text  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from asr.decode import SUBSET_KEYS, machine_info  # noqa: E402
from asr.decoding.cer import ErrorStats, compute_cer, focus_stats, per_utterance  # noqa: E402
from asr.evaluate import read_metrics, write_metrics  # noqa: E402
from asr.features.cmvn import GlobalCMVN  # noqa: E402
from asr.features.fbank import Fbank  # noqa: E402
from asr.tokenizer import load_tokenizer  # noqa: E402
from asr.utils.io import atomic_write, write_jsonl  # noqa: E402

MODE = "ctc_greedy_search"  # the mode the results are recorded under (what a sweep's run calls greedy CTC)


class ConformerCTC(nn.Module):
    """Conv2d subsampling (x4) -> ``torchaudio.models.Conformer`` -> linear CTC head."""

    def __init__(self, feat_dim: int, vocab: int, d_model: int = 144, heads: int = 4, ffn_dim: int = 576,
                 layers: int = 4, kernel: int = 15, dropout: float = 0.1):
        super().__init__()
        self.subsample = nn.Sequential(nn.Conv2d(1, d_model, 3, 2), nn.ReLU(), nn.Conv2d(d_model, d_model, 3, 2),
                                       nn.ReLU())
        self.proj = nn.Linear(d_model * (((feat_dim - 1) // 2 - 1) // 2), d_model)
        self.conformer = torchaudio.models.Conformer(d_model, heads, ffn_dim, layers, kernel, dropout)
        self.head = nn.Linear(d_model, vocab)

    def forward(self, feats: torch.Tensor, feats_lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Args: feats (B, T, F), feats_lens (B,). Returns: log_probs (B, T', V), lens (B,), T' = ((T-1)//2-1)//2."""
        x = self.subsample(feats.unsqueeze(1))  # (B, D, T', F')
        B, D, T, F = x.shape
        x = self.proj(x.transpose(1, 2).reshape(B, T, D * F))  # (B, T', D)
        lens = torch.clamp(((feats_lens - 1) // 2 - 1) // 2, min=1)  # (B,)
        x, lens = self.conformer(x, lens)
        return self.head(x).log_softmax(-1), lens


def train(model: nn.Module, batches, steps: int, seconds: float, lr: float = 2e-3, warmup: int = 400,
          log_every: int = 50) -> tuple[int, float, list[float]]:
    """Plain CTC training until ``steps`` optimizer steps or ``seconds`` of wall time; ``batches`` is an iterable
    of :func:`asr.data.pipeline.collate` batches, iterated again when it ends. Returns steps, seconds, losses."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-2)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warmup, (warmup / (s + 1)) ** 0.5))
    ctc = nn.CTCLoss(blank=0, zero_infinity=True)
    model.train()
    step, losses, start = 0, [], time.monotonic()
    while step < steps and time.monotonic() - start < seconds:
        for batch in batches:
            log_probs, lens = model(batch["feats"], batch["feats_lens"])  # (B, T', V), (B,)
            loss = ctc(log_probs.transpose(0, 1), batch["ys"].clamp(min=0), lens, batch["ys_lens"])  # (T', B, V)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            sched.step()
            step += 1
            losses.append(loss.item())
            if log_every and step % log_every == 0:
                print(f"step {step}: loss {sum(losses[-log_every:]) / log_every:.3f}, "
                      f"{time.monotonic() - start:.0f} s", flush=True)
            if step >= steps or time.monotonic() - start >= seconds:
                break
    return step, time.monotonic() - start, losses


def greedy(log_probs: torch.Tensor, lens: torch.Tensor, blank: int = 0) -> list[list[int]]:
    """Best path: argmax per frame, repeats merged, blanks dropped. log_probs (B, T', V), lens (B,)."""
    best = log_probs.argmax(-1)  # (B, T')
    out = []
    for path, n in zip(best, lens.tolist()):
        out.append([t for t in torch.unique_consecutive(path[:n]).tolist() if t != blank])
    return out


@torch.no_grad()
def evaluate(model: nn.Module, manifest: Manifest, pipeline: SamplePipeline, max_frames: int = 20000) -> dict:
    """Greedy-decode and score a manifest: ``{"cer", "substitutions", "deletions", "insertions", "ref_chars",
    "utterances", "hyps": {id: text}, "rows": per-utterance counts (asr.decoding.cer.per_utterance)}``, and
    ``"focus"`` (the CER on the manifest's ``focus_chars``) where it lists some."""
    model.eval()
    loader = batch_loader(manifest, pipeline, max_frames, shuffle=False)
    refs, hyps = {}, {}
    for batch in loader:
        log_probs, lens = model(batch["feats"], batch["feats_lens"])
        for uid, text, ids in zip(batch["ids"], batch["texts"], greedy(log_probs, lens)):
            refs[uid], hyps[uid] = normalize_text(text), normalize_text(pipeline.tokenizer.decode(ids))
    report = compute_cer(refs, hyps)
    focus = set().union(*(row.get("focus_chars", "") for row in manifest))
    subsets = {row["id"]: {k: row[k] for k in SUBSET_KEYS if k in row} for row in manifest}
    out = {"cer": report.total.cer, **counts(report.total), "utterances": len(refs), "hyps": hyps,
           "rows": per_utterance(report, focus, subsets)}
    if focus:
        f = sum((focus_stats(u, focus) for u in report.utts), ErrorStats())
        out["focus"] = {"cer": f.cer, **counts(f)}
    return out


def counts(stats: ErrorStats) -> dict:
    return {"substitutions": stats.substitutions, "deletions": stats.deletions, "insertions": stats.insertions,
            "ref_chars": stats.ref_len}


def batch_loader(manifest: Manifest, pipeline: SamplePipeline, max_frames: int, shuffle: bool, seed: int = 0,
                 workers: int = 0) -> DataLoader:
    """Batches of similar length, up to ``max_frames`` padded feature frames (the recipe's batching)."""
    fbank = pipeline.fbank
    frames = [fbank.num_frames(int(d * fbank.sample_rate)) for d in manifest.durations]
    sampler = DynamicBucketBatchSampler(frames, max(max_frames, max(frames, default=0)), shuffle=shuffle, seed=seed)
    return DataLoader(ManifestDataset(manifest, pipeline), batch_sampler=sampler, collate_fn=collate,
                      num_workers=workers, persistent_workers=workers > 0)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, type=Path, help="prepared data (run.sh stages 1-2)")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--steps", type=int, default=100000, help="most optimizer steps")
    p.add_argument("--minutes", type=float, default=34.0, help="most minutes of training wall time")
    p.add_argument("--minutes-from", type=Path, metavar="RUN",
                   help="instead of --minutes: the training minutes of a recipe run (its metrics.json train_seconds)")
    p.add_argument("--eval", nargs="*", default=[], help="more manifests to decode (relative: from DATA)")
    p.add_argument("--batch-frames", type=int, default=6000, help="padded feature frames per batch")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--warmup", type=int, default=400)
    p.add_argument("--d-model", type=int, default=144)
    p.add_argument("--layers", type=int, default=4, help="Conformer blocks (4 of d-model 144: 2.6M parameters)")
    p.add_argument("--workers", type=int, default=1, help="data loader processes")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--name", default="stock", help="the sweep name recorded in metrics.json")
    p.add_argument("--arm", default="torchaudio_ctc", help="the arm name recorded in metrics.json")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.minutes_from:
        recipe_seconds = read_metrics(args.minutes_from / "metrics.json").get("train_seconds")
        if not recipe_seconds:
            raise SystemExit(f"baseline_torchaudio_ctc: {args.minutes_from}/metrics.json has no train_seconds")
        args.minutes = recipe_seconds / 60
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    tokenizer = load_tokenizer(args.data / "lang_char")
    fbank = Fbank()
    pipeline = SamplePipeline(fbank, GlobalCMVN.load(args.data / "cmvn.json"), tokenizer)
    model = ConformerCTC(fbank.num_mel_bins, len(tokenizer), d_model=args.d_model, ffn_dim=4 * args.d_model,
                         layers=args.layers)
    loader = batch_loader(Manifest(args.data / "train.jsonl"), pipeline, args.batch_frames, True, args.seed,
                          args.workers)
    steps, seconds, losses = train(model, loader, args.steps, 60 * args.minutes, args.lr, args.warmup)
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), args.out / "model.pt")
    sets = {"dev": args.data / "dev.jsonl", "test": args.data / "test.jsonl"}
    sets.update({Path(m).stem: Path(m) if Path(m).is_absolute() else args.data / m for m in args.eval})
    cer, scored = {}, {}
    for name, path in sets.items():
        result = evaluate(model, Manifest(path), pipeline)
        with atomic_write(args.out / "decode" / name / MODE / "text") as f:
            f.writelines(f"{u} {h}\n" for u, h in result.pop("hyps").items())
        write_jsonl(args.out / "decode" / name / MODE / "utterances.jsonl", result.pop("rows"))
        cer[name], scored[name] = {MODE: result["cer"]}, {MODE: {k: v for k, v in result.items() if k != "cer"}}
        print(f"{name}: CER {100 * result['cer']:.2f}% ({result['utterances']} utterances)")
    record = {"status": "ok", "cer": cer, "counts": scored, "steps": steps, "train_seconds": seconds,
              "num_params": sum(p.numel() for p in model.parameters()), "averaged": None,
              "model": "torchaudio.models.Conformer + conv2d subsampling x4 + CTC", "last_losses": losses[-10:],
              "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
              "torch": torch.__version__, "torchaudio": torchaudio.__version__, "machine": machine_info("cpu")}
    identity = OmegaConf.create({"ablation": {"name": args.name, "arm": args.arm}, "seed": args.seed})
    print(f"-> {write_metrics(args.out, identity, record)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
