"""minisc.memory: freed memory is reused, not page-faulted back in (glibc only)."""

import os
import subprocess
import sys

import pytest

from minisc import memory

glibc_only = pytest.mark.skipif(memory._glibc() is None, reason="the setting exists on glibc only")

# Allocate and write 8 arrays of 8 MB and free them, five times over, on the main thread or on
# two worker threads taking turns; count the page faults.
CHILD = """
import resource, sys
from concurrent.futures import ThreadPoolExecutor
import numpy as np
import minisc
from minisc.memory import freed_memory_kept

def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

def step(_=None):
    arrays = [np.ones(2**20) for _ in range(8)]
    del arrays

if sys.argv[1] == "threads":
    pool = ThreadPoolExecutor(2)
    run = lambda: list(pool.map(step, range(2)))     # two steps, one on each thread
else:
    run = lambda: [step(), step()]
run()
before = faults()
for _ in range(5):
    run()
print(freed_memory_kept(), faults() - before)
"""
# 5 rounds of 2 steps write 10 * 64 MB = 163,840 pages of 4 KB
PAGES = 163_840


def run_child(keep, where="main"):
    env = dict(os.environ, MINISC_KEEP_MEMORY=keep)
    out = subprocess.run([sys.executable, "-c", CHILD, where], env=env, capture_output=True,
                         text=True, check=True)
    kept, faults = out.stdout.split()
    return kept == "True", int(faults)


@glibc_only
@pytest.mark.parametrize("where", ["main", "threads"])
def test_import_keeps_freed_memory_and_steps_reuse_it(where):
    kept, faults = run_child("1", where)
    assert kept
    # reused memory faults on almost none of the pages written
    assert faults < PAGES // 40, f"{faults} page faults of {PAGES} pages: memory was not reused"


@glibc_only
@pytest.mark.parametrize("where", ["main", "threads"])
def test_opt_out_leaves_the_allocator_alone(where):
    kept, faults = run_child("0", where)
    assert not kept
    # glibc's own settings hand much of it back and fault it in again
    assert faults > PAGES // 40, f"only {faults} page faults with glibc's own settings"


def test_keep_freed_memory_answers_true_or_false():
    # on glibc it takes the settings (again: they are idempotent); elsewhere it says False
    assert memory.keep_freed_memory() is (memory._glibc() is not None)


def test_a_bad_opt_out_value_says_what_is_expected(monkeypatch):
    monkeypatch.setenv("MINISC_KEEP_MEMORY", "no")
    with pytest.raises(ValueError, match="MINISC_KEEP_MEMORY must be 0 .* or 1 .*got 'no'"):
        memory.keep_memory_from_env()
    for text, wanted in (("", True), ("1", True), ("0", False)):
        monkeypatch.setenv("MINISC_KEEP_MEMORY", text)
        assert memory.keep_memory_from_env() is wanted
