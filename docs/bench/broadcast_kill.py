#!/usr/bin/env python3
"""Broadcast benchmark: a broadcast to 100,000+ readers of the 1,000,000-registration fixture,
sent by the release `yorisoi serve` to `yorisoi line-double` (multicast limited to 200
requests/s, as LINE), with a `kill -9` of serve once the double has taken about a third of the
recipients, a restart, and a check that every expected reader received it exactly once; then
the same broadcast again on a fresh copy without the kill, for a clean rate figure.

    cargo build --release --bin yorisoi --example bench_fixture
    target/release/examples/bench_fixture --db /tmp/bcbench/1m.db --registrations 1000000 \
        --today $(TZ=Asia/Tokyo date +%F)
    python3 docs/bench/broadcast_kill.py --fixture /tmp/bcbench/1m.db

Python 3 standard library only. Each run copies the fixture to a scratch file (the fixture is
never written), starts its own double and serve on free ports, and stops them. The expected
recipients are computed here from the database (SQL over registrations, registration_readers
and line_users with the audience's rule: an active child registration born in the window,
read by a LINE user who follows the account, each user once), independently of the service,
and compared with what the double received (`/__double/messages`, every accepted multicast
recipient with its time, and `/__double/per-user`), with the API's count, and with the batches
the database recorded. The audience is counted on the Asia/Tokyo date of the run (a fixture
made for another date still works; its over-represented cohort is then elsewhere). Exit status
1 if any reader is duplicated, missing or unexpected, or the API's or the database's figures
disagree.

Serve runs with its defaults (`YORISOI_MULTICAST_RATE` 190, the environment passes through).
For experiments: `--double-multicast-rate 0` with `YORISOI_MULTICAST_RATE=100000
YORISOI_PUSH_RATE=100000` measures the engine unthrottled; `--serve-prefix "strace -f -qq
--seccomp-bpf -o /dev/null -e trace=fsync -e inject=fsync:delay_exit=5000"` runs serve with every
fsync 5 ms slower (a slow disk); `--bin` runs another build.
"""
import argparse
import datetime
import json
import os
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request

TOKEN = "bench-access-token"
SECRET = "bench-channel-secret"
JST = datetime.timezone(datetime.timedelta(hours=9))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, token=None, timeout=30):
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = "Bearer " + token
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def parse_ts(s):
    """chrono's RFC 3339 (nanoseconds, Z) to epoch seconds."""
    s = s.rstrip("Z")
    whole, _, frac = s.partition(".")
    t = datetime.datetime.fromisoformat(whole).replace(tzinfo=datetime.timezone.utc)
    return t.timestamp() + (float("0." + frac) if frac else 0.0)


def add_months(d, n):
    """d + n months, clamped to the month's end (as chrono's checked_add_months)."""
    m = d.month - 1 + n
    y, m = d.year + m // 12, m % 12 + 1
    for day in range(d.day, 0, -1):
        try:
            return datetime.date(y, m, day)
        except ValueError:
            continue
    raise ValueError(d)


def completed_months(birthday, today):
    m = max((today.year - birthday.year) * 12 + today.month - birthday.month, 0)
    if m > 0 and add_months(birthday, m) > today:
        m -= 1
    return m


def birth_window(today, lo, hi):
    """The birthdays of a child aged lo..hi completed months on `today`, as (first, last)."""
    days = [today - datetime.timedelta(days=k) for k in range(0, 31 * (hi + 3))]
    hits = sorted(d for d in days if lo <= completed_months(d, today) <= hi)
    # The window is one run of consecutive days.
    assert (hits[-1] - hits[0]).days + 1 == len(hits), "not contiguous"
    return hits[0], hits[-1]


def expected_recipients(db, today, lo, hi):
    first, last = birth_window(today, lo, hi)
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    rows = conn.execute(
        """SELECT DISTINCT u.line_user_id FROM registrations r
           JOIN registration_readers rr ON rr.registration_id = r.id
           JOIN line_users u ON u.id = rr.user_id
           WHERE r.status = 'active' AND r.stage = 'child'
             AND r.birthday BETWEEN ? AND ? AND u.following = 1""",
        (first.isoformat(), last.isoformat()),
    ).fetchall()
    conn.close()
    return {r[0] for r in rows}, (first, last)


class Run:
    def __init__(self, args, name, kill):
        self.args, self.name, self.kill = args, name, kill
        self.dir = os.path.join(args.scratch, name)
        os.makedirs(self.dir, exist_ok=True)
        self.db = os.path.join(self.dir, "yorisoi.db")
        self.double_port, self.port, self.admin_port = free_port(), free_port(), free_port()
        self.double = f"http://127.0.0.1:{self.double_port}"
        self.admin = f"http://127.0.0.1:{self.admin_port}"
        self.env = dict(
            os.environ,
            YORISOI_DATABASE=self.db,
            LINE_API_BASE=self.double,
            LINE_DATA_API_BASE=self.double,
            LINE_CHANNEL_SECRET=SECRET,
            LINE_CHANNEL_ACCESS_TOKEN=TOKEN,
            YORISOI_LISTEN=f"127.0.0.1:{self.port}",
            YORISOI_ADMIN_LISTEN=f"127.0.0.1:{self.admin_port}",
            YORISOI_PUSH_TIME="off",
            RUST_LOG=os.environ.get("RUST_LOG", "info"),
            YORISOI_LOG_FORMAT="text",
        )
        self.procs = []
        self.serves = 0
        self.r = {"run": name, "kill": kill}

    def log(self, *a):
        print(f"[{self.name} {time.strftime('%H:%M:%S')}]", *a, flush=True)

    def cli(self, *argv):
        out = subprocess.run(
            [self.args.bin, *argv], env=self.env, capture_output=True, text=True, check=True
        )
        return out.stdout.strip().splitlines()

    def start_double(self):
        f = open(os.path.join(self.dir, "double.log"), "w")
        p = subprocess.Popen(
            [self.args.bin, "line-double", "--listen", f"127.0.0.1:{self.double_port}",
             "--multicast-rate", str(self.args.double_multicast_rate), "--record", "--token", TOKEN, "--secret", SECRET],
            stdout=f, stderr=subprocess.STDOUT, env=self.env,
        )
        self.procs.append(p)
        self.double_proc = p
        self.wait_for(lambda: http("GET", self.double + "/__double/stats")[0] == 200, "the double")

    def start_serve(self):
        self.serves += 1
        f = open(os.path.join(self.dir, f"serve{self.serves}.log"), "w")
        t0 = time.time()
        p = subprocess.Popen([*shlex.split(self.args.serve_prefix), self.args.bin, "serve"], stdout=f, stderr=subprocess.STDOUT,
                             env=self.env)
        self.procs.append(p)
        self.serve_proc = p

        def up():
            if p.poll() is not None:
                raise SystemExit(f"serve exited with {p.returncode}: see {f.name}")
            try:
                return http("GET", self.admin + "/api/broadcasts", token=self.token, timeout=2)[0] == 200
            except OSError:
                return False

        self.wait_for(up, "serve")
        return time.time() - t0

    def wait_for(self, cond, what, timeout=120, step=0.02):
        end = time.time() + timeout
        while time.time() < end:
            try:
                if cond():
                    return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(step)
        raise SystemExit(f"{what} did not come up within {timeout} s")

    def stats(self):
        return http("GET", self.double + "/__double/stats", timeout=5)[1]

    def go(self):
        a = self.args
        self.log("copying the fixture")
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(self.db + suffix):
                os.remove(self.db + suffix)
        shutil.copyfile(a.fixture, self.db)
        today = datetime.datetime.now(JST).date()
        expected, window = expected_recipients(self.db, today, a.months[0], a.months[1])
        self.r["expected"] = len(expected)
        self.r["window"] = f"{window[0]}..{window[1]}"
        if len(expected) < 100_000:
            self.log(f"warning: only {len(expected)} readers (the target is 100,000): "
                     "was the fixture made with --today of this date?")
        self.log(f"expected from the database: {len(expected)} readers (born {window[0]} to {window[1]}, JST date {today})")

        self.cli("staff", "add", "bench-sender", "--role", "sender")
        self.token = self.cli("staff", "token", "create", "bench-sender")[-1]
        self.start_double()
        self.r["serve_start_s"] = self.start_serve()
        self.r["load_before"] = loadavg()
        self.log(f"serve up in {self.r['serve_start_s']:.2f} s; load {self.r['load_before']}")

        body = {"text": "【ベンチマーク】4〜6か月児健診のお知らせです。",
                "audience": {"stage": "child", "months": list(a.months)},
                "override_quiet_hours": True}
        t_post = time.time()
        status, created = http("POST", self.admin + "/api/broadcasts", body, self.token)
        if status != 201:
            raise SystemExit(f"POST /api/broadcasts answered {status}: {created}")
        bid = created["id"]
        self.r["api_recipients"] = created["recipients"]
        self.log(f"broadcast {bid} created: {created['recipients']} recipients (API count)")

        if self.kill:
            target = len(expected) * a.kill_at
            while True:
                s = self.stats()["stats"]
                if s["multicast_recipients"] >= target:
                    break
                time.sleep(0.002)
            os.kill(self.real_pid(self.serve_proc), signal.SIGKILL)
            t_kill = time.time()
            self.serve_proc.wait()
            at_kill = s["multicast_recipients"]
            time.sleep(0.2)  # requests already on the wire land
            after = self.stats()["stats"]["multicast_recipients"]
            self.r["at_kill"] = at_kill
            self.r["landed_after_kill"] = after
            self.log(f"kill -9 at {at_kill} recipients taken ({after} once requests on the wire landed, "
                     f"{100 * after / len(expected):.1f} %)")
            self.r["restart_s"] = self.start_serve()
            self.r["t_kill"] = t_kill
            self.log(f"serve restarted in {self.r['restart_s']:.2f} s")

        while True:
            status, b = http("GET", f"{self.admin}/api/broadcasts/{bid}", token=self.token)
            if b["status"] == "done":
                break
            time.sleep(0.05)
        t_done = time.time()
        self.r["load_after"] = loadavg()
        self.r["api"] = {k: b[k] for k in ("recipients", "sent", "failed")}

        st = self.stats()
        per_user = http("GET", self.double + "/__double/per-user", timeout=60)[1]
        messages = http("GET", self.double + "/__double/messages", timeout=120)[1]
        self.stop_all()

        # What the database recorded: the broadcast's batches by status, how many were tried
        # more than once (claimed before the kill, sent again after it), their recipients.
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        batches = dict(conn.execute(
            "SELECT status, count(*) FROM sends WHERE broadcast_id = ? GROUP BY status", (bid,)))
        tried_again = conn.execute(
            "SELECT count(*) FROM sends WHERE broadcast_id = ? AND attempts > 1", (bid,)).fetchone()[0]
        recorded, distinct = conn.execute(
            """SELECT count(*), count(DISTINCT r.user_id) FROM sends s
               JOIN send_recipients r ON r.send_id = s.id WHERE s.broadcast_id = ?""", (bid,)).fetchone()
        conn.close()

        # What the double accepted, per recipient and per request.
        got = {}
        requests = {}
        for d in messages:
            if d["via"] != "multicast":
                continue
            got[d["to"]] = got.get(d["to"], 0) + 1
            requests.setdefault(d["request_id"], parse_ts(d["at"]))
        times = sorted(requests.values())
        dup = sorted(u for u, n in got.items() if n > 1)
        missing = sorted(expected - got.keys())
        unexpected = sorted(got.keys() - expected)
        per_user_bad = sorted(u for u in expected if per_user.get(u) != 1)
        s = st["stats"]
        dur = times[-1] - times[0]
        gaps = [b - a for a, b in zip(times, times[1:])]
        r = self.r
        r.update(
            broadcast=bid,
            multicasts=s["multicasts"],
            multicast_recipients=s["multicast_recipients"],
            answered_409=s["duplicates"],
            answered_429=s["rate_limited"],
            refused=s["refused"],
            other=s["pushes"] + s["replies"],
            distinct_requests=len(requests),
            duplicates=len(dup),
            missing=len(missing),
            unexpected=len(unexpected),
            per_user_not_one=len(per_user_bad),
            post_to_first_s=times[0] - t_post,
            sending_s=dur,
            post_to_done_s=t_done - t_post,
            longest_gap_s=max(gaps) if gaps else 0.0,
            requests_per_s=(len(times) - 1) / dur if dur > 0 else 0.0,
            recipients_per_s=s["multicast_recipients"] / dur if dur > 0 else 0.0,
            max_in_one_second=max_in_window(times, 1.0),
            batches=batches,
            batches_tried_again=tried_again,
            recorded_recipients=recorded,
        )
        if self.kill:
            before = [t for t in times if t < r["t_kill"]]
            afterk = [t for t in times if t >= r["t_kill"]]
            r["requests_before_kill"] = len(before)
            r["requests_after_restart"] = len(afterk)
            if len(before) > 1:
                r["rate_before_kill"] = (len(before) - 1) / (before[-1] - before[0])
            if len(afterk) > 1:
                r["rate_after_restart"] = (len(afterk) - 1) / (afterk[-1] - afterk[0])
            r["kill_to_first_after_s"] = afterk[0] - r["t_kill"] if afterk else None
            del r["t_kill"]
        for what, users in (("duplicated", dup), ("missing", missing), ("unexpected", unexpected),
                            ("per-user counter not 1", per_user_bad)):
            if users:
                self.log(f"{len(users)} {what}, e.g. {users[:5]}")
        problems = []
        if dup or missing or unexpected or per_user_bad:
            problems.append("recipients")
        if not (created["recipients"] == b["recipients"] == b["sent"] == len(expected) and b["failed"] == 0):
            problems.append(f"API figures {created['recipients']=} {b['recipients']=} {b['sent']=} {b['failed']=} "
                            f"against {len(expected)} expected")
        if batches != {"sent": s["multicasts"]} or recorded != distinct or recorded != len(expected):
            problems.append(f"recorded batches {batches}, {recorded} recipients ({distinct} distinct)")
        if s["multicast_recipients"] != len(expected):
            problems.append(f"the double counted {s['multicast_recipients']} multicast recipients")
        r["problems"] = problems
        self.log(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()},
                            ensure_ascii=False))
        if not a.keep:
            os.remove(self.db)
            for suffix in ("-wal", "-shm"):
                if os.path.exists(self.db + suffix):
                    os.remove(self.db + suffix)
        return r

    def real_pid(self, p):
        """The serve process itself when it runs under --serve-prefix (strace): its child."""
        if not self.args.serve_prefix or p is self.double_proc:
            return p.pid
        try:
            with open(f"/proc/{p.pid}/task/{p.pid}/children") as f:
                kids = f.read().split()
            return int(kids[0]) if kids else p.pid
        except OSError:
            return p.pid

    def stop_all(self):
        for p in self.procs:
            if p.poll() is None:
                sig = signal.SIGINT if p is self.double_proc else signal.SIGTERM
                os.kill(self.real_pid(p), sig)
        for p in self.procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def max_in_window(times, w):
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - w:
            j += 1
        best = max(best, i - j + 1)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fixture", default="/tmp/bcbench/1m.db")
    ap.add_argument("--scratch", default="/tmp/bcbench/runs")
    ap.add_argument("--bin", default="target/release/yorisoi")
    ap.add_argument("--months", type=int, nargs=2, default=[4, 6])
    ap.add_argument("--kill-at", type=float, default=1 / 3,
                    help="kill -9 serve once the double has taken this share of the readers")
    ap.add_argument("--runs", default="kill,clean",
                    help="runs in order, comma-separated: kill (with the kill -9) or clean (without)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch databases")
    ap.add_argument("--double-multicast-rate", type=int, default=200,
                    help="multicast requests/s the double accepts (LINE: 200; 0: unlimited)")
    ap.add_argument("--serve-prefix", default="",
                    help="a command serve runs under, for experiments (e.g. strace injecting a delay "
                         "into fsync); not with the kill run")
    a = ap.parse_args()
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}, {os.cpu_count()} cores, load {open('/proc/loadavg').read().strip()}")
    results = []
    for name in a.runs.split(","):
        if name not in ("kill", "clean"):
            raise SystemExit(f"unknown run {name!r}: kill or clean")
        run = Run(a, name, kill=(name == "kill"))
        try:
            results.append(run.go())
        finally:
            run.stop_all()
    print("\nsummary")
    fmt = ("{run:>5}: {expected} expected (API {api_recipients}), {multicasts} multicasts accepted "
           "({distinct_requests} distinct), {answered_409} answered 409, {answered_429} answered 429; "
           "{duplicates} duplicated, {missing} missing, {unexpected} unexpected; "
           "sending {sending_s:.2f} s = {requests_per_s:.1f} requests/s, {recipients_per_s:,.0f} recipients/s "
           "(double's limit {limit} requests/s; at most {max_in_one_second} in any second); "
           "batches recorded {batches}, {batches_tried_again} tried again; "
           "POST to first multicast {post_to_first_s:.2f} s, POST to done {post_to_done_s:.2f} s; "
           "load {load_before} -> {load_after}")
    bad = False
    for r in results:
        print(fmt.format(limit=a.double_multicast_rate or "no", **r))
        if r["kill"]:
            print(f"       kill -9 once {r['at_kill']} recipients were taken ({r['landed_after_kill']} with "
                  f"those on the wire), {r['requests_before_kill']} requests before at "
                  f"{r.get('rate_before_kill', 0):.1f}/s; serve back in {r['restart_s']:.2f} s, first multicast "
                  f"{r['kill_to_first_after_s']:.2f} s after the kill, {r['requests_after_restart']} requests at "
                  f"{r.get('rate_after_restart', 0):.1f}/s")
        if r["problems"]:
            bad = True
            print("       PROBLEMS:", "; ".join(r["problems"]))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
