"""The warm checker children: bounded like the one-shot child, replaced when they must be, and
one file's verdict never another's. Real child processes throughout; a hung child is made by
stopping it (SIGSTOP), a dying one by killing it, a memory breach by a real radiograph that does
not fit its limit."""

from __future__ import annotations

import json
import os
import select
import signal
import threading
import time
from pathlib import Path

import pydicom
import pytest

from ingest import validator_pool
from ingest.validation import Limits, check_files
from ingest.validator_pool import ChildLimits, ValidatorPool
from tests.paths import CT_HEAD, EDGE_CASES, REAL_OTHER

CAT = REAL_OTHER / "DX_veterinary_cat_thorax_deid-data" / "cat.dcm"
SLICES = sorted(CT_HEAD.glob("*.dcm"))
ROOMY = ChildLimits(memory_bytes=1536 * 1024**2, cpu_seconds=30, wall_seconds=60, files_per_child=200)


@pytest.fixture
def make_pool():
    pools: list[ValidatorPool] = []

    def make(limits: ChildLimits = ROOMY, size: int = 1) -> ValidatorPool:
        pools.append(ValidatorPool(limits, size))
        return pools[-1]

    yield make
    for pool in pools:
        pool.close()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A killed child reaped by the pool is gone; a zombie would still answer: check its state.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split()[2] != "Z"


def wait_until_ready(pool: ValidatorPool) -> int:
    """The idle child's pid once it has said it is ready (its first line is in the pipe)."""
    [child] = pool._idle
    assert child.proc.stdout is not None
    readable, _, _ = select.select([child.proc.stdout.fileno()], [], [], 60)
    assert readable, "the child never said it was ready"
    return child.pid


def uid_of(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)


@pytest.mark.testdata
def test_a_child_that_breaches_its_memory_limit_is_replaced_and_the_next_file_is_checked(make_pool, tmp_path):
    pool = make_pool(
        ChildLimits(memory_bytes=230 * 1024**2, cpu_seconds=20, wall_seconds=60, files_per_child=200)
    )
    first = pool.check(SLICES[0], tmp_path / "a")
    assert first is not None and first["ok"]
    [warm_pid] = pool.pids()
    breach = pool.check(CAT, tmp_path / "b")
    # The warm child failed it, so it was checked again alone in a fresh child: same refusal.
    assert breach is None or breach["code"] in ("exceeded_limits", "too_large", "undecodable")
    assert pool.replaced >= 1 and not alive(warm_pid)
    after = pool.check(SLICES[1], tmp_path / "c")
    assert after is not None and after["ok"] and after["facts"]["SOPInstanceUID"] == uid_of(SLICES[1])


def test_a_child_is_replaced_after_files_per_child_files(make_pool, tmp_path):
    pool = make_pool(
        ChildLimits(memory_bytes=1536 * 1024**2, cpu_seconds=30, wall_seconds=60, files_per_child=3)
    )
    pids = set()
    for i, path in enumerate(SLICES[:7]):
        assert pool.check(path, tmp_path / str(i))["ok"]
        pids.update(pool.pids())
    assert pool.replaced == 2  # after files 3 and 6
    assert len(pids) == 3


def test_a_hung_warm_child_is_killed_at_wall_time_and_its_file_checked_alone(make_pool, tmp_path):
    pool = make_pool(
        ChildLimits(memory_bytes=1536 * 1024**2, cpu_seconds=30, wall_seconds=2, files_per_child=200)
    )
    assert pool.check(SLICES[0], tmp_path / "a")["ok"]
    [pid] = pool.pids()
    os.kill(pid, signal.SIGSTOP)  # hangs like a parser stuck in a loop that burns no CPU
    started = time.monotonic()
    line = pool.check(SLICES[1], tmp_path / "b")
    took = time.monotonic() - started
    assert line is not None and line["ok"], line  # not the file's fault: a fresh child accepts it
    assert 2 <= took < 30
    assert not alive(pid)


def test_a_file_that_hangs_a_fresh_child_is_refused_for_its_limits_without_a_second_try(make_pool, tmp_path):
    pool = make_pool(
        ChildLimits(memory_bytes=1536 * 1024**2, cpu_seconds=30, wall_seconds=2, files_per_child=1)
    )
    assert pool.check(SLICES[0], tmp_path / "a")["ok"]
    fresh = wait_until_ready(pool)  # the replacement, started at once, has checked nothing yet
    os.kill(fresh, signal.SIGSTOP)
    started = time.monotonic()
    assert pool.check(SLICES[1], tmp_path / "b") is None
    assert time.monotonic() - started < 10  # one wall time, not two
    assert not alive(fresh)
    assert pool.check(SLICES[2], tmp_path / "c")["ok"]


def test_a_child_killed_between_files_costs_the_next_file_nothing(make_pool, tmp_path):
    pool = make_pool()
    assert pool.check(SLICES[0], tmp_path / "a")["ok"]
    [pid] = pool.pids()
    os.kill(pid, signal.SIGKILL)
    line = pool.check(SLICES[1], tmp_path / "b")
    assert line is not None and line["ok"] and line["facts"]["SOPInstanceUID"] == uid_of(SLICES[1])


def test_a_refused_file_retires_its_child(make_pool, tmp_path):
    pool = make_pool()
    assert pool.check(SLICES[0], tmp_path / "a")["ok"]
    [pid] = pool.pids()
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"\0" * 128 + b"DICM" + os.urandom(4000))
    assert not pool.check(junk, tmp_path / "b")["ok"]
    assert pool.replaced == 1 and pid not in pool.pids()


def test_threads_sharing_a_pool_each_get_their_own_files_verdict(tmp_path):
    refused = sorted(p for p in (EDGE_CASES).rglob("*") if p.is_file() and "trunc" in p.name.lower())[:4]
    inputs = [*SLICES[:12], *refused]
    expected = {p: uid_of(p) for p in SLICES[:12]}
    results: dict[tuple[int, int], list] = {}
    limits = Limits(pool_size=2, files_per_child=5)

    def send(worker: int) -> None:
        for round_ in range(2):
            mine = inputs[worker::4]
            results[(worker, round_)] = list(
                zip(mine, check_files(mine, tmp_path / f"{worker}-{round_}", limits), strict=True)
            )

    threads = [threading.Thread(target=send, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(results) == 8
    for pairs in results.values():
        for path, verdict in pairs:
            if path in expected:
                assert verdict.ok and verdict.facts["SOPInstanceUID"] == expected[path]
                assert verdict.clean_path.read_bytes()[128:] == path.read_bytes()[128:]
            else:
                assert verdict.facts.get("SOPInstanceUID") not in expected.values()


def test_a_forked_process_builds_its_own_pool_and_leaves_its_parents_alone(tmp_path):
    limits = Limits(pool_size=1)
    assert check_files([SLICES[0]], tmp_path / "parent", limits)[0].ok
    [pool] = [p for p in validator_pool._pools.values() if p.size == 1 and p.limits.files_per_child == 200]
    [parent_child] = pool.pids()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the forked process: Celery prefork's worker child
        os.close(read)
        try:
            verdict = check_files([SLICES[1]], tmp_path / "forked", limits)[0]
            mine = [c for p in validator_pool._pools.values() for c in p.pids()]
            os.write(write, json.dumps({"ok": verdict.ok, "children": mine}).encode())
        finally:
            validator_pool.close_pools()
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        answer = json.loads(pipe.read())
    os.waitpid(pid, 0)
    assert answer["ok"] and parent_child not in answer["children"]
    assert alive(parent_child)  # the fork neither used nor closed the parent's child
    assert check_files([SLICES[2]], tmp_path / "again", limits)[0].ok
    assert pool.pids() == [parent_child]


BIG_PARENT = """
import json, sys, tempfile
from pathlib import Path
big = bytearray(400 * 1024**2)
big[::4096] = b"\\1" * len(big[::4096])  # resident, not only reserved
from ingest.validator_pool import ChildLimits, ValidatorPool
limits = ChildLimits(memory_bytes=512 * 1024**2, cpu_seconds=30, wall_seconds=60, files_per_child=200)
pool = ValidatorPool(limits, 1)
out = Path(tempfile.mkdtemp())
ok = [pool.check(Path(p), out / str(i))["ok"] for i, p in enumerate(sys.argv[1:])]
print(json.dumps({"ok": ok, "replaced": pool.replaced}))
pool.close()
"""


def test_a_child_of_a_large_worker_is_not_taken_for_a_worn_one():
    """Linux carries a parent's memory peak across fork and exec into the child's ru_maxrss: a
    worker with a model loaded (here 400 MB against a 512 MB child limit) must still get warm
    children that check many files, not one each (the pool reads the child's own VmHWM)."""
    import subprocess
    import sys

    from tests.paths import REPO

    env = {**os.environ, "PYTHONPATH": f"{REPO / 'platform'}:{REPO}"}
    run = subprocess.run(
        [sys.executable, "-c", BIG_PARENT, *map(str, SLICES[:4])],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads(run.stdout.splitlines()[-1]) == {"ok": [True] * 4, "replaced": 0}
