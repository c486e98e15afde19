"""Run an entry point under a Python audit hook and report what it tried: processes started, files opened for writing.

Usage: python audited.py WATCHED_DIR MODULE [ARG ...]
Runs ``MODULE.main(ARGS)`` (e.g. ``asr.inference.cli``), then prints one last line ``AUDIT {json}`` with the
events seen: every process start (``os.system``, ``subprocess.Popen``, ``os.exec``, ``os.posix_spawn``,
``os.spawn``, ``os.fork``) and every open for writing of a path under WATCHED_DIR. Exits with main's status.
"""
import importlib
import json
import os
import sys

PROCESS_EVENTS = {"os.system", "subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
                  "os.startfile", "pty.spawn"}
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def main() -> int:
    watched, module, *argv = sys.argv[1:]
    watched = os.path.realpath(watched)
    events: list[str] = []

    def hook(event: str, args: tuple) -> None:
        if event in PROCESS_EVENTS:
            events.append(f"{event} {args[:2]!r}")
        elif event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
            path, mode, flags = args[0], args[1], args[2] if len(args) > 2 else 0
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool((flags or 0) & WRITE_FLAGS)
            if writing and os.path.realpath(os.fsdecode(path)).startswith(watched):
                events.append(f"open-for-writing {os.fsdecode(path)}")

    sys.addaudithook(hook)
    try:
        rc = importlib.import_module(module).main(argv)
    except SystemExit as e:
        rc = e.code if isinstance(e.code, int) else 1
        if not isinstance(e.code, int) and e.code is not None:
            print(e.code, file=sys.stderr)
    print("AUDIT " + json.dumps(events), flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
