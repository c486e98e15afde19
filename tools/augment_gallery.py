"""Listen to and look at each augmentation: wavs and waveform + log-mel pictures for a few utterances.

    python tools/augment_gallery.py --manifest data/dev.jsonl --out exp/gallery --config conf/augment/full.yaml \\
        [--n 2] [--noise-list musan_noise.lst] [--rir-list rirs.lst]

For each of the first ``--n`` utterances, writes ``OUT/<id>/<panel>.wav`` and ``.png`` for the panels original,
speed, volume, noise, reverb, splice, specaug (picture only: it acts on features) and full (the config's chain
and SpecAugment as configured), plus ``OUT/overview.png`` (utterances x panels). Single augmentations are taken
from the config with ``prob=1``; one the config lacks or cannot build (noise without a list) is left out.
Spectrograms are per-utterance normalised log-mel (80 bins), the input SpecAugment sees; titles give the
transcript in pinyin.
"""
from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
import torch  # noqa: E402
from hydra.errors import InstantiationException  # noqa: E402
from hydra.utils import instantiate  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from PIL import Image  # noqa: E402
from pypinyin import Style, lazy_pinyin  # noqa: E402

from asr.augment.chain import utterance_seed  # noqa: E402
from asr.augment.config import build_augment, load_augment_config  # noqa: E402
from asr.data.dataset import ManifestDataset  # noqa: E402
from asr.data.manifest import Manifest  # noqa: E402
from asr.data.pipeline import SamplePipeline  # noqa: E402
from asr.features.fbank import Fbank  # noqa: E402
from asr.utils.io import atomic_write  # noqa: E402

SINGLE = ("speed", "volume", "noise", "reverb", "splice")  # panels, in this order (names of conf/augment entries)
DPI = 72


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--manifest", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--config", required=True, help="augment yaml, e.g. conf/augment/full.yaml")
    p.add_argument("--n", type=int, default=2, help="utterances shown")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--noise-list")
    p.add_argument("--rir-list")
    return p.parse_args(argv)


def single_augments(cfg) -> dict:
    """Panel name -> augmentation built from its config entry with ``prob=1`` (speed without factor 1), in
    ``SINGLE``'s order."""
    built = {}
    for name in SINGLE:
        entry = cfg.get(name)
        if entry is None:
            continue
        params = {**entry, "prob": 1.0, "enabled": True}
        if name == "speed":
            params["factors"] = [f for f in entry.factors if f != 1.0] or [1.0]
        try:
            built[name] = instantiate(params)
        except InstantiationException as e:
            print(f"augment_gallery: {name} left out: {e.__cause__ or e}", file=sys.stderr)
    return {name: built[name] for name in SINGLE if name in built}


def label(text: str, limit: int = 48) -> str:
    """Transcript as tone-numbered pinyin (matplotlib's default font has no Chinese glyphs), shortened."""
    text = " ".join(lazy_pinyin(text, style=Style.TONE3))
    return text if len(text) <= limit else text[:limit - 3] + "..."


def normalised_logmel(fbank: Fbank, wav: torch.Tensor) -> torch.Tensor:
    """``wav: (1, N)`` -> ``(T, 80)`` log-mel with zero mean and unit variance per bin."""
    feats = fbank(wav)  # (T, F)
    return (feats - feats.mean(0)) / (feats.std(0) + 1e-5)


def draw_spectrogram(ax, feats: torch.Tensor, title: str) -> None:
    ax.imshow(feats.t().numpy(), origin="lower", aspect="auto", cmap="magma", vmin=-3, vmax=3,
              interpolation="nearest")
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def save_png(fig: Figure, path: Path) -> None:
    """Render ``fig`` and write it as a 128-colour palette PNG (a few times smaller than true colour)."""
    canvas = FigureCanvasAgg(fig)
    fig.set_dpi(DPI)
    canvas.draw()
    image = Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3]).quantize(colors=128)
    with atomic_write(path, "wb") as f:
        image.save(f, format="png", optimize=True)


def panel_png(wav: torch.Tensor, feats: torch.Tensor, title: str, rate: int, path: Path) -> None:
    """Waveform above log-mel, one small PNG."""
    fig = Figure(figsize=(6, 3.2))
    wave_ax, spec_ax = fig.subplots(2, 1, gridspec_kw={"height_ratios": [1, 2]})
    step = max(1, wav.shape[-1] // 3000)  # enough points for the picture's width
    x = wav[0, ::step]
    wave_ax.plot(torch.arange(len(x)) * step / rate, x.numpy(), lw=0.5)
    wave_ax.set_xlim(0, wav.shape[-1] / rate)
    wave_ax.set_ylim(-1, 1)
    wave_ax.tick_params(labelsize=6)
    draw_spectrogram(spec_ax, feats, title)
    fig.tight_layout()
    save_png(fig, path)


def make_gallery(args: argparse.Namespace) -> Path:
    cfg = load_augment_config(args.config, args.noise_list, args.rir_list)
    chain, specaug = build_augment(cfg)
    singles = single_augments(cfg)
    specaug_on = instantiate({**cfg.specaug, "prob": 1.0}) if cfg.specaug else None
    manifest = Manifest(args.manifest)
    if len(manifest) == 0:
        raise ValueError(f"{args.manifest}: no utterances")
    fbank = Fbank()
    pipeline = SamplePipeline(fbank, None, None)
    donor = ManifestDataset(manifest, pipeline).donor
    chain.set_donor(donor)
    for augment in singles.values():
        if hasattr(augment, "set_donor"):
            augment.set_donor(donor)

    out = Path(args.out)
    grid = []  # (utterance id, [(panel, feats)])
    for i in range(min(args.n, len(manifest))):
        clean = pipeline.load(manifest[i])
        seed = utterance_seed(args.seed, 0, clean["id"])
        panels = [("original", clean, normalised_logmel(fbank, clean["wav"]))]
        for name, augment in singles.items():
            sample = augment(clean, random.Random(seed))
            panels.append((name, sample, normalised_logmel(fbank, sample["wav"])))
        if specaug_on is not None:
            panels.append(("specaug", None, specaug_on(normalised_logmel(fbank, clean["wav"]), random.Random(seed))))
        rng = random.Random(seed)
        full = chain(clean, rng)
        feats = normalised_logmel(fbank, full["wav"])
        panels.append(("full", full, specaug(feats, rng) if specaug is not None else feats))

        folder = out / clean["id"]
        for name, sample, feats in panels:
            shown = clean if sample is None else sample
            if sample is not None:
                with atomic_write(folder / f"{name}.wav", "wb") as f:
                    sf.write(f, sample["wav"][0].numpy(), sample["sample_rate"], format="WAV", subtype="PCM_16")
            panel_png(shown["wav"], feats, f"{clean['id']} {name}: {label(shown['text'])}", shown["sample_rate"],
                      folder / f"{name}.png")
        grid.append((clean["id"], [(name, feats) for name, _, feats in panels]))

    cols = max(len(panels) for _, panels in grid)
    scale = min(1.0, 4.0 / len(grid))  # at most 4 inches high: the overview stays small for any --n
    fig = Figure(figsize=(1.4 * cols * scale, 1.0 * len(grid) * scale))
    axes = fig.subplots(len(grid), cols, squeeze=False)
    for row, (utt_id, panels) in zip(axes, grid):
        for ax, (name, feats) in zip(row, panels):
            draw_spectrogram(ax, feats, f"{utt_id} {name}" if name == "original" else name)
        for ax in row[len(panels):]:
            ax.axis("off")
    fig.tight_layout()
    save_png(fig, out / "overview.png")
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        out = make_gallery(args)
    except (OSError, ValueError, RuntimeError, InstantiationException) as e:
        print(f"augment_gallery: error: {e}", file=sys.stderr)
        return 1
    print(f"wrote gallery to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
