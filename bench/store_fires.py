"""What a fire's records cost the SQLite store: CPU microseconds per fire.

    python bench/store_fires.py [--tree TREE] [--jobs N] [--batches N]
    python bench/store_fires.py --parent TREE [--rounds N]

A fire writes three times: its claim (the job's conditional UPDATE and the queued
execution, `claim_fires`), its running mark and its terminal record with the job's
counter bump (`record_progress`, as the recorder batches them). Here 100 fires a batch,
on a file holding `jobs` jobs made as bench/store_fill.py makes them; the figure is the
process's CPU time over all batches divided by the fires. `--tree` puts another
checkout's packages first on the path (run as a script by path for that reason);
`--parent` runs this tree and TREE in child processes, alternating, `rounds` times each,
and prints both medians: the same-run A/B for a change to the jobs table's row.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from statistics import median
from typing import Any

HERE = Path(__file__).resolve()
BATCH = 100


def measure(folder: Path, jobs: int, batches: int) -> float:
    """CPU microseconds per fire over `batches` batches of BATCH fires."""
    spec = importlib.util.spec_from_file_location("store_fill", HERE.with_name("store_fill.py"))
    assert spec is not None and spec.loader is not None
    filler = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(filler)

    from engine.model import Execution, Status
    from stores.base import FireClaim
    from stores.sqlite import SqliteStore

    path = folder / "fires.db"
    filler.fill("jobs", path, jobs)
    store = SqliteStore(path)
    store.open()
    try:
        loaded = store.list_jobs()[: BATCH * batches]
        started = time.process_time()
        for number in range(batches):
            chunk = loaded[number * BATCH : (number + 1) * BATCH]
            runs: list[Any] = []
            claims = []
            for job in chunk:
                due = job.next_run_time
                assert due is not None
                run = Execution(
                    f"f{number}-{job.id}",
                    job.id,
                    Status.QUEUED,
                    created_at=due,
                    scheduled_for=due,
                    owner=job.owner,
                    job_name=job.name,
                )
                runs.append(run)
                claims.append(FireClaim(job.id, due, due + timedelta(days=1), [run]))
            store.claim_fires(claims)
            for run in runs:
                run.status, run.started_at = Status.RUNNING, run.created_at
            store.record_progress(runs, [])
            for run in runs:
                run.status, run.completed_at = Status.COMPLETED, run.created_at
                run.output = "done\n"
            store.record_progress([], runs)
        seconds = time.process_time() - started
    finally:
        store.close()
    return seconds / (BATCH * batches) * 1e6


def compare(parent: Path, rounds: int, jobs: int, batches: int) -> int:
    figures: dict[str, list[float]] = {"parent": [], "this": []}
    trees = {"parent": parent.resolve(), "this": HERE.parent.parent}
    for number in range(rounds):
        order = ["parent", "this"] if number % 2 == 0 else ["this", "parent"]
        for name in order:
            argv = [sys.executable, str(HERE), "--tree", str(trees[name])]
            argv += ["--jobs", str(jobs), "--batches", str(batches)]
            done = subprocess.run(argv, capture_output=True, text=True, check=True)
            found = re.search(r"us_per_fire ([0-9.]+)", done.stdout)
            assert found, done.stdout + done.stderr
            figures[name].append(float(found.group(1)))
            print(f"round {number + 1} {name}: {figures[name][-1]:.1f} us per fire", flush=True)
    for name, values in figures.items():
        print(f"{name}: median {median(values):.1f} us per fire over {len(values)} rounds")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", type=Path, help="the checkout whose store to use")
    parser.add_argument("--parent", type=Path, help="A/B this tree against TREE")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--batches", type=int, default=50)
    args = parser.parse_args(argv)
    if args.parent is not None:
        return compare(args.parent, args.rounds, args.jobs, args.batches)
    tree = args.tree if args.tree is not None else HERE.parent.parent
    sys.path.insert(0, str(tree.resolve()))
    with tempfile.TemporaryDirectory(prefix="cronwell-fires-") as folder:
        print(f"us_per_fire {measure(Path(folder), args.jobs, args.batches):.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
