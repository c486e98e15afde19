"""tools/nst_report.py's per-domain table against a direct count and jiwer's CER of each domain's utterances."""
from __future__ import annotations

from pathlib import Path

import jiwer
import numpy as np

from asr.decoding.cer import compute_cer
from nst_report import domain_table


def test_domain_table_counts_and_pools_each_domain_alone():
    truth = {"a": "你好世界", "b": "今天很好", "c": "去买东西", "d": "我们走吧"}
    label = {"a": "你好世界", "b": "今天好", "c": "去卖东西吧", "d": "他们走"}
    domains = {"a": "corpus", "b": "corpus", "c": "other", "d": "other"}
    kept = {"a", "c"}
    per_utt = {u.utt_id: u.stats for u in compute_cer(truth, label).utts}
    fact = {"exp": Path("seed1"), "iteration": 1, "ids": list(truth), "kept": kept, "label": per_utt,
            "domain": domains}
    rows = domain_table([fact])
    assert rows[0] == "| run | iter | corpus | other |"

    def cer(ids):  # reference: jiwer's pooled CER of those utterances alone
        return jiwer.cer([truth[u] for u in ids], [label[u] for u in ids])

    cells = rows[2].split(" | ")[2:]
    for cell, name in zip(cells, ("corpus", "other")):
        ids = [u for u in truth if domains[u] == name]
        k = [u for u in ids if u in kept]
        assert cell.strip(" |") == f"{len(k)}/{len(ids)} kept; CER-Label all {100 * cer(ids):.2f}, kept " \
                                   f"{100 * cer(k):.2f}"
    assert np.isclose(cer(["c", "d"]), 4 / 8)  # "去卖东西吧" 1 sub + 1 ins; "他们走" 1 sub + 1 del
    assert domain_table([{**fact, "domain": {}}]) == []
