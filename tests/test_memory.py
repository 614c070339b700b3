"""minisc.memory: freed memory is reused, not page-faulted back in (glibc only)."""

import os
import subprocess
import sys

import pytest

from minisc import memory

glibc_only = pytest.mark.skipif(memory._glibc() is None, reason="the setting exists on glibc only")

# Allocate and write 8 arrays of 8 MB, free them, five times over; count the page faults.
CHILD = """
import resource
import numpy as np
import minisc
from minisc.memory import freed_memory_kept

def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

def step():
    arrays = [np.ones(2**20) for _ in range(8)]
    del arrays

step()
before = faults()
for _ in range(5):
    step()
print(freed_memory_kept(), faults() - before)
"""


def run_child(keep):
    env = dict(os.environ, MINISC_KEEP_MEMORY=keep)
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True,
                         check=True)
    kept, faults = out.stdout.split()
    return kept == "True", int(faults)


@glibc_only
def test_import_keeps_freed_memory_and_steps_reuse_it():
    kept, faults = run_child("1")
    assert kept
    # 5 rounds write 5 * 64 MB = 81,920 pages of 4 KB; reused memory faults on almost none
    assert faults < 2000, f"{faults} page faults: freed memory was not reused"


@glibc_only
def test_opt_out_leaves_the_allocator_alone():
    kept, faults = run_child("0")
    assert not kept
    # glibc's own defaults hand most of it back and fault it in again
    assert faults > 2000, f"only {faults} page faults with the default allocator settings"


def test_keep_freed_memory_answers_true_or_false():
    # on glibc it takes the settings (again: they are idempotent); elsewhere it says False
    assert memory.keep_freed_memory() is (memory._glibc() is not None)
