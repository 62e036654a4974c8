"""Celery, a peer of the airtasks benchmarks (run with Debian's /usr/bin/python3 and python3-celery).

Durability as close to airtasks as Celery gets: RabbitMQ broker with durable queues, persistent
messages and publisher confirms, acks_late (ack after the task returned), prefetch 1 per process,
and task state (STARTED, then SUCCESS) stored in Postgres by the SQLAlchemy result backend.

Usage: celery_peer.py chain LENGTH RUNS | fanout COUNT CONCURRENCY
Prints one JSON line with the measured times (seconds since the epoch, floats).
Environment: BENCH_BROKER_URL, BENCH_DATABASE_URL (postgres://...), BENCH_SCHEMA, BENCH_TIMES.
"""
import json
import os
import subprocess
import sys
import time

from celery import Celery, chain, group

SCHEMA = os.environ["BENCH_SCHEMA"]
QUEUE = SCHEMA
TIMES = os.environ["BENCH_TIMES"]
DB = os.environ["BENCH_DATABASE_URL"].replace("postgres://", "db+postgresql+psycopg2://", 1)

app = Celery("celery_peer", broker=os.environ["BENCH_BROKER_URL"], backend=DB)
app.conf.update(
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    task_default_delivery_mode="persistent",
    task_default_queue=QUEUE,
    broker_transport_options={"confirm_publish": True},
    task_track_started=True,
    database_table_schemas={"task": SCHEMA, "group": SCHEMA},
    database_table_names={"task": "celery_taskmeta", "group": "celery_groupmeta"},
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)


@app.task(name="link")
def link(run, i):
    start = time.time()
    with open(TIMES, "a") as f:
        f.write(f"{run} {i} {start} {time.time()}\n")


@app.task(name="noop")
def noop(i):
    with open(TIMES, "a") as f:
        f.write("x\n")


def lines():
    try:
        with open(TIMES) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def wait_lines(n, timeout):
    end = time.time() + timeout
    while len(lines()) < n:
        if time.time() > end:
            raise SystemExit(f"celery: only {len(lines())} of {n} tasks done after {timeout}s")
        time.sleep(0.002)


def start_worker(concurrency):
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.abspath(__file__)))
    w = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "celery_peer", "worker", "-P", "prefork",
         "-c", str(concurrency), "-Q", QUEUE, "--without-gossip", "--without-mingle",
         "--without-heartbeat", "-l", "ERROR"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return w


def main():
    import psycopg2

    mode = sys.argv[1]
    pgc = psycopg2.connect(os.environ["BENCH_DATABASE_URL"])
    pgc.autocommit = True
    pgc.cursor().execute(f'CREATE SCHEMA IF NOT EXISTS "{SCHEMA}"')
    worker = start_worker(1 if mode == "chain" else int(sys.argv[3]))
    try:
        # Warm-up: one task through the whole path (worker up, tables created).
        noop.apply_async((0,)).get(timeout=60)
        open(TIMES, "w").close()
        if mode == "chain":
            length, runs = int(sys.argv[2]), int(sys.argv[3])
            out = []
            for r in range(runs):
                before = len(lines())
                triggered = time.time()
                chain(link.si(r, i) for i in range(length)).apply_async()
                wait_lines(before + length, 120)
                got = [l.split() for l in lines() if l.split()[0] == str(r)]
                got.sort(key=lambda x: int(x[1]))
                out.append({"triggered": triggered * 1000,
                            "links": [{"start": float(x[2]) * 1000, "end": float(x[3]) * 1000} for x in got]})
            print(json.dumps({"runs": out}))
        else:
            count = int(sys.argv[2])
            t0 = time.time()
            group(noop.s(i) for i in range(count)).apply_async()
            wait_lines(count, 600)
            # The last SUCCESS state is written right after the task returned; wait for it too.
            cur = pgc.cursor()
            end = time.time() + 60
            while True:
                cur.execute(f"SELECT count(*) FROM \"{SCHEMA}\".celery_taskmeta WHERE status = 'SUCCESS'")
                if cur.fetchone()[0] >= count + 1 or time.time() > end:
                    break
                time.sleep(0.005)
            print(json.dumps({"tasksPerSecond": count / (time.time() - t0)}))
    finally:
        worker.terminate()
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
        pgc.cursor().execute(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')


if __name__ == "__main__":
    main()
