"""What the peer scripts of `ember bench` share: argument types and memory readings.

Imported by the scripts beside it (Python puts a script's own folder on its path).
"""

import argparse
import os
import resource
import sys


def existing_file(path):
    if not os.path.isfile(path):
        raise argparse.ArgumentTypeError(f"no such file: {path}")
    return path


def positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def rss_mib():
    """The resident set now, from /proc/self/status (Linux), in MiB; None elsewhere."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0  # the field is in kB
    except OSError:
        pass
    return None


def peak_rss_mib():
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # ru_maxrss is in KiB on Linux, in bytes on macOS.
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0
