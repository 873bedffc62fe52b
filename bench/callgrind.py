"""Counting a command's instructions with valgrind's callgrind, for the
benches that compare costs on a machine whose load they cannot control
(app_instructions.py, ort_options.py). Needs valgrind (Debian package valgrind)."""

import re
import subprocess


def instructions(command):
    """The instructions callgrind counts for command (a list), or SystemExit with what it said."""
    done = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *command],
                          capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed under valgrind:\n{done.stderr[-2000:]}")
    return int(re.search(r"Collected : (\d+)", done.stderr).group(1))
