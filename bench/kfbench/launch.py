"""Start one sample, time it and read its own peak RSS: ``python -I -S launch.py RESULT CMD...``.

Linux carries a process's resident-set high-water mark into the processes
it starts, across ``exec``: a sample started by the suite itself would read
at least the suite's own RSS (about 22 MB), whatever it used. Started from
this small interpreter instead, a sample reads at least this one's 8 MB,
less than any Python process the suite measures. The wall time starts here,
so this interpreter's own start is not counted either.

Writes ``SECONDS MAXRSS_KB`` to RESULT; exits with the sample's code, or 128
plus the number of the signal that ended it.
"""

import os
import sys
import time


def main() -> int:
    result, command = sys.argv[1], sys.argv[2:]
    started = time.perf_counter()
    pid = os.posix_spawnp(command[0], command, os.environ)
    _, status, usage = os.wait4(pid, 0)
    elapsed = time.perf_counter() - started
    with open(result, "w") as file:
        file.write(f"{elapsed} {usage.ru_maxrss}")
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
