"""n-gram LM pipeline at AISHELL-1 scale on synthetic text: estimation, ARPA and TLG sizes, decoding speed.

Synthetic, never AISHELL-1: a vocabulary of ``--units`` (4,233 as AISHELL-1's units.txt, blank, <unk>
and <sos/eos> included) made of the most frequent characters of pypinyin's phrase table, a lexicon of
those characters and the table's phrases written with them, and ``--sentences`` sentences drawn from
it (a word is Zipf-drawn from its length class, or with probability 0.4 one of eight fixed successors
of the previous word; 3 to 12 words). A character ``--order``-gram is estimated on them and a TLG
graph built from it; utterances of ``--seconds`` (40 ms frames after 4x subsampling) get synthetic
CTC posteriors from held-out sentences (one to two peak frames per character, blanks between; each
peak gives the true character 0.25 to 0.99, blank 0.01 and the rest to three fixed look-alike
characters, so the LM has something to correct). Then per utterance: CTC prefix beam search without
LM (the reference), with shallow fusion of the character LM through KenLM, and TLG decoding
(kaldi-decoder); the last two also with the frames that are almost surely blank skipped
(``--blank-skip``), and whether that changed any hypothesis.

Timings are wall-clock with one thread, decoding the fastest of ``--repeats`` passes over the same
utterances; on a shared machine what matters is the ratio to the reference measured in the same run.
The earlier TLG construction (back-off epsilons removed, full CTC topology) needs about (LG states x
units) arcs at this scale, far beyond memory (an estimate is printed), so it is compared with the new
one at a scale where it can be built (``--compare-units`` units, a character bigram on
``--compare-sentences`` sentences): sizes, build and decoding times, and whether the best paths agree.

    .venv/bin/python tools/bench_lm.py                       # AISHELL scale (about a minute on 2 cores)
    .venv/bin/python tools/bench_lm.py --sentences 20000 --utterances 10 --compare-units 300   # quick
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from asr.decoding.ctc_prefix_beam import ctc_prefix_beam_search
from asr.lm.estimate import estimate
from asr.lm.fusion import CharLMScorer
from asr.lm.perplexity import perplexity
from asr.lm.query import KenLMQuery
from asr.lm.tlg import build_tlg
from asr.lm.wfst_decoder import TLGDecoder
from asr.tokenizer.base import wrap_units
from asr.tokenizer.char import CharTokenizer

SPECIAL_UNITS = 3  # <blank>, <unk>, <sos/eos>
FRAME_SECONDS = 0.04  # 10 ms features, 4x subsampling


# --- synthetic text ------------------------------------------------------------------------------------

def lexicon(num_chars: int) -> tuple[list[str], list[str]]:
    """The ``num_chars`` characters most used by pypinyin's phrase table, and its phrases made of them."""
    from pypinyin.phrases_dict import phrases_dict

    counts = Counter(ch for phrase in phrases_dict for ch in phrase)
    chars = sorted(ch for ch, _ in counts.most_common(num_chars))
    if len(chars) < num_chars:
        raise ValueError(f"pypinyin's phrases use {len(chars)} characters, fewer than {num_chars}")
    allowed = set(chars)
    phrases = sorted(p for p in phrases_dict if len(p) > 1 and set(p) <= allowed)
    return chars, phrases


def sentence_sampler(chars: list[str], phrases: list[str], seed: int):
    """A function ``draw(count, rng) -> list of character lists`` (module docstring); the lexicon's Zipf
    ranks and successor sets are fixed by ``seed`` so that training and held-out text share them."""
    rng = np.random.default_rng(seed)
    words = chars + phrases
    lengths = np.array([len(w) for w in words])
    share = {1: 0.40, 2: 0.45, 3: 0.07, 4: 0.08}  # token share of each word length (longer: with 4)
    p = np.zeros(len(words))
    for length, mass in share.items():
        idx = np.nonzero(np.minimum(lengths, 4) == length)[0]
        zipf = 1.0 / np.arange(1, len(idx) + 1) ** 1.05
        p[rng.permutation(idx)] = mass * zipf / zipf.sum()
    cdf = np.cumsum(p / p.sum())
    successors = np.searchsorted(cdf, rng.random((len(words), 8)))  # (W, 8)

    def draw(count: int, draw_rng: np.random.Generator) -> list[list[str]]:
        n_words = draw_rng.integers(3, 13, count)
        ids = np.zeros((count, n_words.max()), np.int64)
        ids[:, 0] = np.searchsorted(cdf, draw_rng.random(count))
        for k in range(1, ids.shape[1]):
            follow = successors[ids[:, k - 1], draw_rng.integers(0, 8, count)]
            fresh = np.searchsorted(cdf, draw_rng.random(count))
            ids[:, k] = np.where(draw_rng.random(count) < 0.4, follow, fresh)
        return [list("".join(words[i] for i in row[:n])) for row, n in zip(ids.tolist(), n_words.tolist())]

    return draw


# --- synthetic CTC posteriors ----------------------------------------------------------------------------

def utterance_log_probs(text: list[str], tokenizer: CharTokenizer, frames: int, lookalikes: np.ndarray,
                        rng: np.random.Generator) -> np.ndarray:
    """(T, V) float32 CTC log-posteriors of ``text`` (module docstring)."""
    V = len(tokenizer)
    probs = rng.uniform(0.5e-6, 1.5e-6, (frames, V))  # a floor without ties (as real posteriors have none)
    probs[:, tokenizer.blank_id] = 1.0
    starts = np.linspace(0, frames, len(text) + 1)[:-1].astype(int)
    for start, ch in zip(starts.tolist(), text):
        unit = tokenizer.unit_to_id[ch]
        p_true = rng.uniform(0.25, 0.99)
        rest = rng.dirichlet(np.ones(3)) * (1.0 - p_true)  # the three look-alikes
        for f in range(start + 1, min(start + 1 + int(rng.integers(1, 3)), frames)):
            probs[f, tokenizer.blank_id] = 0.01
            probs[f, unit] = p_true
            probs[f, lookalikes[unit]] = rest
    return np.log(probs / probs.sum(axis=1, keepdims=True)).astype(np.float32)


def utterance_texts(sentences: list[list[str]], count: int, length: int) -> list[list[str]]:
    """``count`` texts of ``length`` characters, each from consecutive sentences."""
    out, current = [], []
    for s in sentences:
        current += s
        if len(current) >= length:
            out.append(current[:length])
            current = []
            if len(out) == count:
                break
    return out


def char_errors(hyp: list[int], ref: list[int]) -> int:
    d = np.arange(len(ref) + 1)
    for h in hyp:
        prev, d[0] = d.copy(), d[0] + 1
        for j, r in enumerate(ref, 1):
            d[j] = min(prev[j] + 1, d[j - 1] + 1, prev[j - 1] + (h != r))
    return int(d[-1])


# --- measurements ---------------------------------------------------------------------------------------

def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def build_graph(arpa: Path, tokenizer, out: Path, **kwargs) -> dict:
    _, seconds = timed(build_tlg, arpa, tokenizer, out, **kwargs)
    meta = json.loads((out / "tlg.json").read_text(encoding="utf-8"))
    return {"seconds": seconds, "mb": (out / "TLG.fst").stat().st_size / 1e6, "states": meta["states"],
            "arcs": meta["arcs"]}


def decode_all(decode, inputs: list[np.ndarray], repeats: int) -> tuple[list[tuple[int, ...]], float]:
    """Best hypothesis of each input and the mean seconds per input (the fastest of ``repeats`` passes)."""
    decode(inputs[0])  # warm-up (caches, graph pages)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        hyps = [tuple(decode(lp)) for lp in inputs]
        best = min(best, time.perf_counter() - start)
    return hyps, best / len(inputs)


def lmplz_check(sentences: list[list[str]], order: int, ours: Path, held_out: list[list[str]], work: Path) -> dict:
    """lmplz's time on the same text, and both models' perplexity on held-out text (when lmplz is found)."""
    from train_lm import find_kenlm_program, train_lmplz

    lmplz = find_kenlm_program("lmplz")
    if lmplz is None:
        return {"lmplz": "not found (bash tools/build_kenlm.sh)"}
    _, seconds = timed(train_lmplz, sentences, order, work / "lmplz.arpa", lmplz, "2G", True)
    return {"lmplz_seconds": seconds, "heldout_ppl_lmplz": perplexity(KenLMQuery(work / "lmplz.arpa"), held_out)["ppl"],
            "heldout_ppl_ours": perplexity(KenLMQuery(ours), held_out)["ppl"]}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--units", type=int, default=4233, help="units of the model (blank, <unk>, <sos/eos> included)")
    p.add_argument("--sentences", type=int, default=120_000, help="LM training sentences (AISHELL-1: about 120k)")
    p.add_argument("--order", type=int, default=3)
    p.add_argument("--utterances", type=int, default=50)
    p.add_argument("--seconds", type=float, default=5.0, help="length of each utterance")
    p.add_argument("--beam", type=int, default=10, help="prefix beam search beam")
    p.add_argument("--lm-weight", type=float, default=0.3)
    p.add_argument("--insertion-bonus", type=float, default=1.0)
    p.add_argument("--acoustic-scale", type=float, default=3.0, help="TLG decoding")
    p.add_argument("--blank-skip", type=float, default=0.98,
                   help="the searches are also timed skipping frames whose blank probability exceeds this")
    p.add_argument("--compare-units", type=int, default=1000, help="units of the old-vs-new graph comparison (0: skip)")
    p.add_argument("--compare-sentences", type=int, default=20_000)
    p.add_argument("--repeats", type=int, default=3, help="decoding times: the fastest of this many passes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", type=Path, help="keep the LM and graphs here (default: a temporary folder)")
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # train_lm (lmplz)

    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        report = run(args, work)
    print(json.dumps(report, ensure_ascii=False, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def run(args, work: Path) -> dict:
    report: dict = {"load_before": os.getloadavg()[0], "args": {k: str(v) for k, v in vars(args).items()}}
    chars, phrases = lexicon(args.units - SPECIAL_UNITS)
    draw = sentence_sampler(chars, phrases, args.seed)
    train, gen_seconds = timed(draw, args.sentences, np.random.default_rng(args.seed + 1))
    tokens = sum(len(s) for s in train)
    print(f"text: {len(chars)} characters, {len(phrases)} phrases; {len(train)} sentences, {tokens} characters "
          f"({tokens / len(train):.1f} per sentence), generated in {gen_seconds:.1f} s", flush=True)
    report["text"] = {"characters": len(chars), "phrases": len(phrases), "sentences": len(train),
                      "tokens": tokens}

    # --- estimation ---
    model, est_seconds = timed(estimate, train, args.order)
    arpa, write_seconds = timed(model.write_arpa, work / "char.arpa")
    ngrams = [len(t) for t in model.counts.tables]
    report["lm"] = {"ngrams": ngrams, "discounts": model.discounts, "estimate_seconds": est_seconds,
                    "write_seconds": write_seconds, "arpa_mb": arpa.stat().st_size / 1e6,
                    **lmplz_check(train, args.order, arpa, draw(2000, np.random.default_rng(args.seed + 4)), work)}
    print(f"LM: {report['lm']}", flush=True)
    del model

    # --- graph ---
    tokenizer = CharTokenizer(wrap_units(chars))
    report["tlg"] = build_graph(arpa, tokenizer, work / "tlg")
    report["tlg"]["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3
    if args.order >= 2:  # without back-off epsilons every LG state that backs off gets an arc per unit
        lg_states = json.loads((work / "tlg" / "tlg.json").read_text(encoding="utf-8"))["lg_states"]
        report["old_construction_estimate"] = {"lg_states": lg_states, "arcs_about": lg_states * args.units,
                                               "gb_about": lg_states * args.units * 16 / 1e9}
    print(f"TLG (compact, back-off epsilons): {report['tlg']}", flush=True)

    # --- decoding ---
    rng = np.random.default_rng(args.seed + 2)
    frames = int(round(args.seconds / FRAME_SECONDS))
    lookalikes = rng.integers(SPECIAL_UNITS - 1, len(tokenizer) - 1, (len(tokenizer), 3))  # ordinary units only
    per_utt = max(4, int(args.seconds * 3.4))  # about AISHELL-1's speaking rate (characters per second)
    refs = utterance_texts(draw(4 * args.utterances, rng), args.utterances, per_utt)
    inputs = [utterance_log_probs(r, tokenizer, frames, lookalikes, rng) for r in refs]
    ref_ids = [tokenizer.encode("".join(r)) for r in refs]
    scorer = CharLMScorer(KenLMQuery(arpa), tokenizer.units, args.lm_weight, args.insertion_bonus)
    tlg = TLGDecoder(work / "tlg", tokenizer, acoustic_scale=args.acoustic_scale)
    tlg_skip = TLGDecoder(work / "tlg", tokenizer, acoustic_scale=args.acoustic_scale,
                          blank_skip_threshold=args.blank_skip)
    skip = f"blank frames skipped (p > {args.blank_skip:g})"
    runs = {
        "prefix_beam (no LM)": lambda lp: ctc_prefix_beam_search(lp, beam=args.beam, nbest=1)[0][0],
        "prefix_beam + char LM fusion": lambda lp: ctc_prefix_beam_search(lp, beam=args.beam, nbest=1,
                                                                          scorer=scorer)[0][0],
        "TLG": lambda lp: tlg.best(lp)[0],
        f"prefix_beam + char LM fusion, {skip}": lambda lp: ctc_prefix_beam_search(
            lp, beam=args.beam, nbest=1, scorer=scorer, blank_skip_threshold=args.blank_skip)[0][0],
        f"TLG, {skip}": lambda lp: tlg_skip.best(lp)[0],
    }
    report["decode"] = {"utterances": len(inputs), "frames": frames, "characters": per_utt}
    exact: dict[str, list] = {}
    for name, decode in runs.items():
        hyps, seconds = decode_all(decode, inputs, args.repeats)
        errors = sum(char_errors(list(h), r) for h, r in zip(hyps, ref_ids))
        row = report["decode"][name] = {"ms_per_utt": 1e3 * seconds, "cer": errors / sum(map(len, ref_ids))}
        base = name.split(", blank")[0]
        if base in exact:  # the same search without skipping ran before
            row["same_hypotheses_as_without_skipping"] = f"{sum(a == b for a, b in zip(hyps, exact[base]))}/{len(hyps)}"
        exact[name] = hyps
        print(f"{name}: {row}", flush=True)
    report["load_after"] = os.getloadavg()[0]
    if args.compare_units:
        report["compare"] = compare_constructions(args, work, draw)
    return report


def compare_constructions(args, work: Path, draw) -> dict:
    """Old (full topology, back-off epsilons removed) vs new graph at a scale where the old one fits."""
    chars, _ = lexicon(args.compare_units - SPECIAL_UNITS)
    allowed = set(chars)
    rng = np.random.default_rng(args.seed + 3)
    text = [[c for c in s if c in allowed] for s in draw(args.compare_sentences, rng)]
    text = [s for s in text if s]
    arpa = estimate(text, 2).write_arpa(work / "compare.arpa")
    tokenizer = CharTokenizer(wrap_units(chars))
    out = {"units": args.compare_units, "sentences": len(text), "order": 2}
    graphs = {"new (compact, epsilons kept)": dict(topology="compact", backoff="epsilon"),
              "old (full, epsilons removed)": dict(topology="full", backoff="rmepsilon")}
    frames = int(round(args.seconds / FRAME_SECONDS))
    lookalikes = rng.integers(SPECIAL_UNITS - 1, len(tokenizer) - 1, (len(tokenizer), 3))
    per_utt = max(4, int(args.seconds * 3.4))
    refs = utterance_texts([[c for c in s if c in allowed] for s in draw(4 * args.utterances, rng)],
                           min(20, args.utterances), per_utt)
    inputs = [utterance_log_probs(r, tokenizer, frames, lookalikes, rng) for r in refs]
    best = {}
    for name, kwargs in graphs.items():
        folder = work / f"compare_{kwargs['backoff']}"
        out[name] = build_graph(arpa, tokenizer, folder, **kwargs)
        decoder = TLGDecoder(folder, tokenizer, acoustic_scale=args.acoustic_scale)
        results, seconds = decode_all(decoder.best, inputs, args.repeats)
        out[name]["ms_per_utt"] = 1e3 * seconds
        best[name] = results
        print(f"compare {name}: {out[name]}", flush=True)
    (a, b) = best.values()
    out["same_best_paths"] = f"{sum(x[0] == y[0] for x, y in zip(a, b))}/{len(a)}"
    out["max_score_difference"] = max(abs(x[1] - y[1]) for x, y in zip(a, b))
    print(f"compare: same best paths {out['same_best_paths']}, max score difference "
          f"{out['max_score_difference']:.2e}", flush=True)
    return out


if __name__ == "__main__":
    main()
