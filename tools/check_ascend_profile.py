"""List every operator, opset and data type of a static (Ascend) profile outside CANN's documented ONNX support.

Reads the profile written by ``python -m asr.export --om-profile`` (``OUT/om``) and checks each part
against ``asr/export/cann_onnx_ops.json`` (transcribed from CANN's "Supported ONNX Operators" pages; the
document and version are in the file), with :func:`asr.export.ascend.profile_problems`. Exit status 1
when anything is outside it. ``--notes`` also lists the float32 inputs ATC lowers to fp16.

    .venv/bin/python tools/check_ascend_profile.py exp/demo/onnx/om [--notes]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from asr.export.ascend import OPS_TABLE, load_ops_table, profile_problems  # noqa: E402
from asr.export.format import PARTS  # noqa: E402
from asr.export.om import profile_files  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profile", help="the static profile's folder (OUT/om)")
    parser.add_argument("--table", default=str(OPS_TABLE), help="CANN ONNX operator table (JSON)")
    parser.add_argument("--notes", action="store_true", help="also list the inputs lowered to fp16")
    args = parser.parse_args(argv)
    table = load_ops_table(args.table)
    print(f"CANN table: {table['source']['version']}")
    total = 0
    missing = [str(Path(args.profile) / spec.file) for spec in PARTS.values()
               if not (Path(args.profile) / spec.file).is_file()]
    if missing:
        print(f"{missing}: missing (export with `python -m asr.export --om-profile`)", file=sys.stderr)
        return 2
    for path in profile_files(args.profile):
        problems, notes = profile_problems(path, table)
        total += len(problems)
        print(f"{path.name}: {len(problems)} unsupported, {len(notes)} float32 inputs lowered to fp16 by ATC")
        for message in problems + (notes if args.notes else []):
            print(f"  {message}")
    print("OK: every operator and data type is in CANN's documented ONNX support" if not total
          else f"{total} uses outside CANN's documented ONNX support")
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
