"""Load test: N concurrent clients against POST /api/ask and /api/ask/stream on loopback.

    .venv/bin/python scripts/load_test.py --clients 20 --requests 500        # starts the app on a free port
    .venv/bin/python scripts/load_test.py --url http://127.0.0.1:7860 ...    # or uses a running one

Each client asks seed questions in turn, alternating the JSON and the streaming endpoint; a 503 "busy, retry" is
retried after its Retry-After, as a client should. Prints throughput, latency p50/p95, errors, busy answers, lost
requests and the server's memory (RSS) along the run. Bounded in count (--requests) and time (--max-seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [json.loads(line)["question"] for line in (ROOT / "tests/eval/seed_questions.jsonl").read_text().splitlines()
             if line.strip() and "history" not in line]


def rss_mb(pid: int | None) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, TypeError):
        return None
    return None


def start_app(index_dir: str | None) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "QA_HOST": "127.0.0.1", "QA_PORT": str(port), "QA_RATE_LIMIT_PER_MINUTE": "100000"}
    if index_dir:
        env["QA_INDEX_DIR"] = index_dir
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py")], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 300
    while time.time() < deadline:
        try:
            if httpx.get(url + "/api/health", timeout=5).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise SystemExit("the app did not become ready")


def ask(client: httpx.Client, url: str, question: str, stream: bool) -> tuple[int, dict | None]:
    if not stream:
        r = client.post(url + "/api/ask", json={"question": question})
        return r.status_code, (r.json() if r.status_code == 200 else {"retry": r.headers.get("retry-after")})
    answer = None
    with client.stream("POST", url + "/api/ask/stream", json={"question": question}) as r:
        if r.status_code != 200:
            r.read()
            return r.status_code, {"retry": r.headers.get("retry-after")}
        kind = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: ") and kind in ("answer", "error"):
                data = json.loads(line[6:])
                if kind == "error":
                    return (503 if data.get("busy") else 500), {"retry": "1"}
                answer = data
    return (200 if answer else 500), answer


def run(url: str, clients: int, requests: int, max_seconds: float, pid: int | None) -> dict:
    lock = threading.Lock()
    counter = {"next": 0}
    done, errors, busy = [], [], [0]
    memory = [rss_mb(pid)]
    by_progress: dict[int, float | None] = {}  # RSS when 10%, 20%, ... of the requests were answered
    t_end = time.time() + max_seconds

    def worker(i: int) -> None:
        with httpx.Client(timeout=300) as client:
            while time.time() < t_end:
                with lock:
                    n = counter["next"]
                    if n >= requests:
                        return
                    counter["next"] += 1
                q, stream = QUESTIONS[n % len(QUESTIONS)], n % 2 == 1
                t0 = time.perf_counter()
                while True:
                    try:
                        status, body = ask(client, url, q, stream)
                    except httpx.HTTPError as exc:
                        errors.append(f"{type(exc).__name__}")
                        break
                    if status == 503 and time.time() < t_end:
                        busy[0] += 1
                        time.sleep(float((body or {}).get("retry") or 1))
                        continue
                    if status == 200 and body and "answer" in body:
                        done.append(time.perf_counter() - t0)
                    else:
                        errors.append(str(status))
                    break

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        time.sleep(2)
        memory.append(rss_mb(pid))
        by_progress.setdefault(10 * (10 * len(done) // requests), memory[-1])
    wall = time.perf_counter() - t0
    lost = requests - len(done) - len(errors)  # never answered, not even with an error
    lat = sorted(done)
    mem = [m for m in memory if m]
    return {"clients": clients, "requests": requests, "answered": len(done), "errors": len(errors), "error_kinds": sorted(set(errors)),
            "busy_retries": busy[0], "lost": lost, "seconds": round(wall, 1), "throughput_per_s": round(len(done) / wall, 2),
            "latency_p50_s": round(statistics.median(lat), 2) if lat else None,
            "latency_p95_s": round(lat[int(0.95 * len(lat)) - 1], 2) if lat else None,
            "rss_mb_start": round(mem[0], 1) if mem else None, "rss_mb_end": round(mem[-1], 1) if mem else None,
            "rss_mb_max": round(max(mem), 1) if mem else None,
            "rss_mb_by_percent_done": {k: round(v, 1) for k, v in sorted(by_progress.items()) if v}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", help="a running app; by default one is started on a free port")
    ap.add_argument("--index", help="index folder for the started app (default: the configured one)")
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--max-seconds", type=float, default=1800)
    args = ap.parse_args()
    proc = None
    url, pid = args.url, None
    if not url:
        proc, url = start_app(args.index)
        pid = proc.pid
    try:
        print(json.dumps(run(url, args.clients, args.requests, args.max_seconds, pid)))
    finally:
        if proc:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
