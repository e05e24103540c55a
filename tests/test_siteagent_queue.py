"""The agent's durable queue opened by several threads at once (serve.py's grouping and sending)."""

from __future__ import annotations

import threading

from siteagent.queue import Queue


def test_threads_opening_a_new_queue_at_once_all_get_it(tmp_path):
    # CI saw the sending thread die on "database is locked" while the grouping thread set WAL up.
    failures: list[BaseException] = []
    for round_ in range(25):
        state = tmp_path / str(round_)
        start = threading.Barrier(6)

        def open_queue(state=state, start=start) -> None:
            start.wait()
            try:
                Queue(state).close()
            except BaseException as exc:  # noqa: BLE001 — collected, asserted below
                failures.append(exc)

        threads = [threading.Thread(target=open_queue) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert failures == []
    queue = Queue(tmp_path / "0")
    assert queue.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    columns = [row[1] for row in queue.db.execute("PRAGMA table_info(instances)")]
    assert columns.count("outcome") == 1
