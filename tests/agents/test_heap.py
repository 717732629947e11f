"""agents.heap: freed activation-sized blocks are reused, not faulted in again each time."""

import subprocess
import sys

import pytest

# 20 rounds of what an update does: several 4 MiB blocks live at once, then all freed; prints
# the page faults the rounds cost.
_PROBE = """
import resource, sys
import numpy as np
if sys.argv[1] == "encoder":
    from agents.networks import ImageEncoder
    ImageEncoder((32, 32, 1), 50, 16)
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
def round_():
    blocks = [np.ones(1 << 19) for _ in range(6)]  # 6 x 4 MiB of float64
    del blocks
round_()  # the first fault-in is paid by both runs
start = faults()
for _ in range(20):
    round_()
print(faults() - start)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_image_encoder_keeps_freed_blocks_for_reuse():
    def faults(mode: str) -> int:
        out = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True,
                             text=True, check=True, env={"PATH": "/usr/bin:/bin",
                                                          "PYTHONPATH": ":".join(sys.path)})
        return int(out.stdout.split()[-1])

    # glibc's defaults: the freed heap top is trimmed, ~6 x 1024 pages faulted again per round.
    assert faults("plain") > 10_000
    assert faults("encoder") < 1_000
