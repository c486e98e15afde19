"""run_nst.sh refuses incomplete or contradictory arguments before it runs anything."""
from __future__ import annotations

import subprocess

import pytest

from conftest import ROOT

SCRIPT = ROOT / "recipes" / "aishell" / "run_nst.sh"
COMPLETE = ["--data", "d", "--labelled", "l.jsonl", "--unlabelled", "u.jsonl", "--lm", "lm.arpa", "--exp", "e"]


@pytest.mark.parametrize("args, message", [
    ([], "give --data"),
    (COMPLETE, "give --threshold T or --keep-best X"),
    (COMPLETE + ["--threshold", "0.1", "--keep-best", "50"], "not both"),
    (COMPLETE + ["--bogus"], "unknown option --bogus"),
])
def test_bad_arguments_stop_with_a_message(args, message):
    r = subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True)
    assert r.returncode == 2 and message in r.stderr
