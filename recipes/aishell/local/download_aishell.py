"""Download and unpack AISHELL-1 (OpenSLR 33) for users who have a network.

Usage:
    python local/download_aishell.py --dir corpus/aishell [--mirror https://www.openslr.org/resources/33]

Resumes a partial download (HTTP Range), verifies the published MD5 sums, unpacks the per-speaker
archives inside ``data_aishell/wav``, and skips everything already done (a ``.done`` marker per step).
Without a network it stops with a message pointing to the synthetic corpus.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

ARCHIVES = {  # name -> MD5 published with the corpus
    "data_aishell.tgz": "2f494334227864a8a8fec932999db9d8",
    "resource_aishell.tgz": "957d480a0fcac85fc18e550756f624e5",
}
MIRRORS = ["https://www.openslr.org/resources/33", "https://openslr.elda.org/resources/33"]


def md5sum(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch(url: str, dest: Path) -> None:
    """Download ``url`` to ``dest``, resuming from a ``.part`` file."""
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    with urllib.request.urlopen(req, timeout=30) as r:
        if have and r.status != 206:  # server ignored the range: start again
            have = 0
        total = have + int(r.headers.get("Content-Length", 0))
        with open(part, "ab" if have else "wb") as f, tqdm(total=total, initial=have, unit="B", unit_scale=True, desc=dest.name) as bar:
            for block in iter(lambda: r.read(1 << 20), b""):
                f.write(block)
                bar.update(len(block))
    part.rename(dest)


def safe_extract(archive: Path, dest: Path) -> None:
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", required=True, type=Path, help="where data_aishell/ will be")
    p.add_argument("--mirror", action="append", help="base URL (repeatable); default: the OpenSLR mirrors")
    args = p.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    for name, md5 in ARCHIVES.items():
        archive, done = args.dir / name, args.dir / f".{name}.done"
        if done.exists():
            print(f"{name}: already downloaded and unpacked, skipping")
            continue
        if not archive.exists():
            errors = []
            for base in args.mirror or MIRRORS:
                try:
                    fetch(f"{base}/{name}", archive)
                    break
                except (urllib.error.URLError, OSError) as e:
                    errors.append(f"{base}: {e}")
            else:
                sys.exit(f"cannot download {name} ({'; '.join(errors)}).\nNo network? Use the synthetic corpus "
                         "instead: bash run.sh --demo (or tools/make_synthetic_aishell.py), or copy AISHELL-1 "
                         f"into {args.dir} yourself.")
        if md5sum(archive) != md5:
            archive.rename(archive.with_name(name + ".bad"))
            sys.exit(f"{archive}: MD5 mismatch (expected {md5}); moved aside as {name}.bad, run again to re-download")
        print(f"unpacking {name}")
        safe_extract(archive, args.dir)
        if name == "data_aishell.tgz":  # the corpus ships one archive per speaker inside wav/
            inner = sorted((args.dir / "data_aishell" / "wav").glob("*.tar.gz"))
            for spk in tqdm(inner, desc="speakers"):
                safe_extract(spk, spk.parent)
                spk.unlink()
        done.touch()
    return 0


if __name__ == "__main__":
    sys.exit(main())
