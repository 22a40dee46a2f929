#!/usr/bin/env python3
"""Batata's Consul HTTP API driven by the Consul Python client py-consul (pinned in requirements.txt).

    python compat_consul.py consul <127.0.0.1:PORT[,127.0.0.1:PORT...]>

The addresses are Batata's HTTP addresses; the Consul API is http://<addr>/v1/... Client A is
given only the first address, client B only the last one, so on a cluster every step crosses
nodes. Every key and service name starts with $COMPAT_PREFIX. COMPAT_NACOS_SERVICE (with
COMPAT_NACOS_INSTANCE=ip:port and COMPAT_NACOS_META=k=v, both optional) names a service
registered beforehand by a Nacos client (step nacos_visible, skipped when unset). COMPAT_STEPS=a,b
runs only those steps (debugging).

stdout: one `PASS <step>` per step; on the first failure `FAIL <step>: <why>` and exit 1.
Diagnostics go to stderr. Every HTTP call is bounded (py-consul: 30 s + the blocking wait; our
own waits are shorter), every wait has a deadline, and a watchdog ends the run after
OVERALL_DEADLINE seconds.

What py-consul needs from the server (read from its 1.8.0 source):
- X-Consul-Index on every kv.get / catalog / health / session.info reply, 404s included, or it
  raises ConsulException("Missing index header"); the index comes back as the header string.
- kv.get returns (index, None) on 404; values are base64-decoded only when not null.
- txn.put raises ClientError("409 ...") when the transaction is rolled back.
- session.renew raises NotFound on 404; session.info returns (index, None) for `[]`.
- JSON bodies use lowercase keys ("name", "ttl", "lockdelay", "checks", ...).
"""

import base64
import os
import sys
import threading
import time
import traceback

import consul
from consul import Check
from consul.exceptions import ClientError, ConsulException, NotFound

OVERALL_DEADLINE = 110.0  # s; the contract allows 120 s for the whole scenario
VISIBLE_WITHIN = 10.0  # s; agent registration -> catalog/health (and Nacos -> Consul)
POLL = 0.2
T0 = time.monotonic()

_out_lock = threading.Lock()
_failed = threading.Event()
_step = "setup"


class StepFailure(Exception):
    pass


def log(msg):
    sys.stderr.write(f"[compat-consul-py {time.monotonic() - T0:7.3f}] {msg}\n")
    sys.stderr.flush()


def out(line):
    line = " | ".join(part.strip() for part in line.splitlines() if part.strip())
    with _out_lock:
        if _failed.is_set():
            return
        if line.startswith("FAIL"):
            _failed.set()
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def fail(msg):
    raise StepFailure(msg)


def watchdog():
    time.sleep(OVERALL_DEADLINE)
    out(f"FAIL {_step}: scenario did not finish within {OVERALL_DEADLINE:.0f} s")
    os._exit(1)


def poll(within, check):
    """Calls check() -> (done, observed) until done or within seconds pass; returns (done, last)."""
    deadline = time.monotonic() + within
    while True:
        try:
            done, observed = check()
        except ConsulException as e:
            done, observed = False, f"{type(e).__name__}: {e}"
        if done:
            return True, observed
        if time.monotonic() + POLL > deadline:
            return False, observed
        time.sleep(POLL)


def idx(i):
    """py-consul returns X-Consul-Index as the header string."""
    if i is None:
        fail("no X-Consul-Index")
    n = int(i)
    if n <= 0:
        fail(f"X-Consul-Index {i!r}; never 0")
    return n


def b64(s):
    return base64.b64encode(s.encode()).decode()


def desc(entry):
    if entry is None:
        return "None"
    keep = ("Key", "Value", "Flags", "Session", "LockIndex", "CreateIndex", "ModifyIndex")
    return "{" + ", ".join(f"{k}={entry.get(k)!r}" for k in keep if k in entry) + "}"


class Scenario:
    def __init__(self, addrs, prefix):
        self.prefix = prefix
        self.a = self.client(addrs[0])
        self.b = self.client(addrs[-1])
        self.ttl_session = None

    @staticmethod
    def client(addr):
        host, _, port = addr.rpartition(":")
        return consul.Consul(host=host, port=int(port))

    # ---- helpers

    def get(self, c, key, **kw):
        i, v = c.kv.get(key, **kw)
        idx(i)
        return v

    # ---- steps

    def setup(self):
        for who, c in (("A", self.a), ("B", self.b)):
            ok, last = poll(15, lambda: (bool(c.status.leader()), "no leader"))
            if not ok:
                fail(f"{who}: GET /v1/status/leader named no leader within 15 s: {last}")

    def session_ttl_start(self):
        key = f"{self.prefix}/ttl/k"
        created = time.monotonic()
        sid = self.a.session.create(name=f"{self.prefix}-ttl", ttl=10, behavior="delete")
        i, s = self.b.session.info(sid)
        idx(i)
        if not s or s.get("ID") != sid or s.get("TTL") != "10s" or s.get("Behavior") != "delete":
            fail(f"B session.info({sid}) right after create = {s}; want TTL 10s, Behavior delete")
        if s.get("LockDelay") != 15_000_000_000:
            fail(f"B session.info({sid}) LockDelay = {s.get('LockDelay')!r}; want 15000000000 (ns)")
        if self.a.kv.put(key, "ephemeral", acquire=sid) is not True:
            fail(f"A kv.put({key}, acquire={sid}) did not return True")
        log(f"session {sid} (ttl 10 s, never renewed) created; checked at the end")
        self.ttl_session = (sid, key, created)

    def session_ttl_finish(self):
        sid, key, created = self.ttl_session
        left = 30 - (time.monotonic() - created)

        def gone():
            i, s = self.b.session.info(sid)
            idx(i)
            return s is None, str(s)

        ok, last = poll(max(left, 0.5), gone)
        took = time.monotonic() - created
        if not ok:
            fail(f"session {sid} with ttl 10 s, never renewed, still listed {took:.1f} s after creation: {last}")
        if took < 10:
            fail(f"session {sid} with ttl 10 s gone after only {took:.1f} s")
        if self.get(self.b, key) is not None:
            fail(f"session {sid} (behavior delete) expired but {key} is still there")
        try:
            r = self.a.session.renew(sid)
            fail(f"A session.renew of the expired session {sid} returned {r}; want NotFound (404)")
        except NotFound:
            pass

    def kv_crud(self):
        pre = f"{self.prefix}/kv/"
        ka, kb, kc = pre + "a", pre + "b", pre + "sub/c"
        if self.a.kv.put(ka, "1", flags=42) is not True:
            fail(f"A kv.put({ka}) did not return True")
        i, v = self.b.kv.get(ka)
        if v is None or v.get("Value") != b"1" or v.get("Flags") != 42 or "Session" in v:
            fail(f"B kv.get({ka}) = {desc(v)}; want Value b'1', Flags 42, no Session")
        if idx(i) != v["ModifyIndex"]:
            fail(f"B kv.get({ka}): X-Consul-Index {i}, want the entry's ModifyIndex {v['ModifyIndex']}")
        self.a.kv.put(ka, "1b")
        v2 = self.get(self.b, ka)
        if v2 is None or v2["Value"] != b"1b" or v2["Flags"] != 0 or v2["CreateIndex"] != v["CreateIndex"]:
            fail(f"B kv.get({ka}) after the update = {desc(v2)}; want b'1b', Flags 0, CreateIndex {v['CreateIndex']}")
        self.b.kv.put(kb, "2")
        self.b.kv.put(kc, None)  # no body: stored as null
        i, missing = self.b.kv.get(pre + "missing")
        if missing is not None:
            fail(f"B kv.get({pre}missing) = {desc(missing)}; want None")
        idx(i)
        i, entries = self.a.kv.get(pre, recurse=True)
        idx(i)
        got = [(e["Key"], e["Value"]) for e in entries or []]
        if got != [(ka, b"1b"), (kb, b"2"), (kc, None)]:
            fail(f"A kv.get({pre}, recurse) = {got}; want [({ka}, b'1b'), ({kb}, b'2'), ({kc}, None)]")
        i, ks = self.a.kv.get(pre, keys=True, separator="/")
        if ks != [ka, kb, pre + "sub/"]:
            fail(f"A kv.get({pre}, keys, separator /) = {ks}; want [{ka}, {kb}, {pre}sub/]")
        if self.b.kv.delete(ka) is not True:
            fail(f"B kv.delete({ka}) did not return True")
        if self.get(self.a, ka) is not None:
            fail(f"A kv.get({ka}) after delete is not None")
        if self.b.kv.delete(pre + "sub/", recurse=True) is not True:
            fail(f"B kv.delete({pre}sub/, recurse) did not return True")
        i, entries = self.a.kv.get(pre, recurse=True)
        if [e["Key"] for e in entries or []] != [kb]:
            fail(f"A kv.get({pre}, recurse) after the deletes = {[desc(e) for e in entries or []]}; want only {kb}")
        i, none = self.a.kv.get(pre + "sub/", recurse=True)
        if none is not None:
            fail(f"A kv.get({pre}sub/, recurse) after the recursive delete = {none}; want None (404)")
        idx(i)
        out("PASS kv_crud")

    def kv_cas(self):
        k = f"{self.prefix}/cas/k"
        self.a.kv.put(k, "v1")
        v = self.get(self.b, k)
        m = v["ModifyIndex"]
        if self.b.kv.put(k, "wrong", cas=m - 1) is not False:
            fail(f"B kv.put({k}, cas={m - 1}) with a stale index (current {m}) did not return False")
        if self.b.kv.put(k, "wrong", cas=0) is not False:
            fail(f"B kv.put({k}, cas=0) on an existing key did not return False")
        if self.get(self.a, k)["Value"] != b"v1":
            fail(f"{k} changed after two refused CAS writes")
        if self.b.kv.put(k, "v2", cas=m) is not True:
            fail(f"B kv.put({k}, cas={m}) with the current index did not return True")
        v2 = self.get(self.a, k)
        if v2["Value"] != b"v2" or v2["ModifyIndex"] <= m:
            fail(f"A kv.get({k}) after the CAS = {desc(v2)}; want b'v2' with ModifyIndex > {m}")
        if self.a.kv.delete(k, cas=m) is not False:
            fail(f"A kv.delete({k}, cas={m}) with a stale index did not return False")
        if self.a.kv.delete(k, cas=v2["ModifyIndex"]) is not True:
            fail(f"A kv.delete({k}, cas={v2['ModifyIndex']}) with the current index did not return True")
        if self.get(self.b, k) is not None:
            fail(f"B kv.get({k}) after the CAS delete is not None")
        out("PASS kv_cas")

    def blocking(self):
        k = f"{self.prefix}/blk/k"
        self.a.kv.put(k, "v1")
        i, _ = self.b.kv.get(k)
        start_index = idx(i)

        def writer():
            time.sleep(1)
            try:
                self.a.kv.put(k, "v2")
            except Exception as e:  # noqa: BLE001 - reported by the reader's check
                log(f"writer thread: {e!r}")

        threading.Thread(target=writer, daemon=True).start()
        t = time.monotonic()
        i, v = self.b.kv.get(k, index=start_index, wait="20s")
        took = time.monotonic() - t
        log(f"blocking get on index {start_index} returned after {took:.3f} s with index {i}")
        if took < 0.7:
            fail(f"B kv.get({k}, index={start_index}, wait=20s) returned after {took:.2f} s, before the write at 1 s")
        if took > 10:
            fail(f"B kv.get({k}, index={start_index}, wait=20s) did not wake on the write at 1 s (took {took:.1f} s)")
        if v is None or v["Value"] != b"v2" or idx(i) <= start_index:
            fail(f"B kv.get({k}, index={start_index}) woke with {desc(v)}, index {i}; want b'v2' and a higher index")
        same = idx(i)
        t = time.monotonic()
        i, v = self.b.kv.get(k, index=same, wait="1s")
        took = time.monotonic() - t
        if not 0.9 <= took <= 4:
            fail(f"B kv.get({k}, index={same}, wait=1s) on an unchanged key took {took:.2f} s; want ~1 s")
        if idx(i) != same or v is None or v["Value"] != b"v2":
            fail(f"B kv.get({k}, index={same}, wait=1s) timed out with {desc(v)}, index {i}; want the same index {same}")
        out("PASS blocking")

    def txn(self):
        ka, kb, kc = (f"{self.prefix}/txn/{x}" for x in "abc")
        r = self.a.txn.put(
            [
                {"KV": {"Verb": "set", "Key": ka, "Value": b64("1")}},
                {"KV": {"Verb": "set", "Key": kb, "Value": b64("2"), "Flags": 7}},
                {"KV": {"Verb": "get", "Key": ka}},
            ]
        )
        results = (r or {}).get("Results") or []
        if (r or {}).get("Errors") or len(results) != 3:
            fail(f"A txn [set a, set b, get a] = {r}; want 3 results and no errors")
        got = results[2].get("KV") or {}
        if got.get("Key") != ka or got.get("Value") != b64("1"):
            fail(f"A txn get result = {got}; want Key {ka}, Value {b64('1')!r}")
        vb = self.get(self.b, kb)
        if vb is None or vb["Value"] != b"2" or vb["Flags"] != 7:
            fail(f"B kv.get({kb}) after the txn = {desc(vb)}; want b'2', Flags 7")
        va = self.get(self.b, ka)
        try:
            r = self.b.txn.put(
                [
                    {"KV": {"Verb": "set", "Key": kc, "Value": b64("3")}},
                    {"KV": {"Verb": "cas", "Key": ka, "Value": b64("x"), "Index": va["ModifyIndex"] - 1}},
                ]
            )
            fail(f"B txn with a stale cas returned {r}; want a 409 (py-consul raises ClientError)")
        except ClientError as e:
            if not str(e).startswith("409"):
                fail(f"B txn with a stale cas raised {e!r}; want a 409")
            log(f"rolled-back txn: {e}")
            if '"OpIndex":1' not in str(e).replace(" ", ""):
                fail(f"409 body does not name OpIndex 1: {e}")
        if self.get(self.a, kc) is not None:
            fail(f"{kc} exists after the rolled-back txn (all or nothing)")
        if self.get(self.a, ka)["ModifyIndex"] != va["ModifyIndex"]:
            fail(f"{ka} changed by the rolled-back txn")
        out("PASS txn")

    def sessions(self):
        k = f"{self.prefix}/lock"
        # s1 keeps the default lock-delay (15 s): its explicit release below must not start it.
        s1 = self.a.session.create(name=f"{self.prefix}-s1")
        s2 = self.b.session.create(name=f"{self.prefix}-s2", lock_delay=0, ttl=30)
        i, info = self.b.session.info(s1)
        if not info or info["ID"] != s1 or info.get("LockDelay") != 15_000_000_000 or info.get("Behavior") != "release":
            fail(f"B session.info({s1}) = {info}; want LockDelay 15000000000 (ns), Behavior release")
        i, info = self.a.session.info(s2)
        if not info or info["ID"] != s2 or info.get("LockDelay") != 0 or info.get("TTL") != "30s":
            fail(f"A session.info({s2}) = {info}; want LockDelay 0 (sent as lockdelay \"0s\"), TTL 30s")
        renewed = self.a.session.renew(s2)
        if not renewed or renewed.get("ID") != s2 or renewed.get("TTL") != "30s":
            fail(f"A session.renew({s2}) = {renewed}; want the session with TTL 30s")
        i, listed = self.a.session.list()
        idx(i)
        if not {s1, s2} <= {s["ID"] for s in listed or []}:
            fail(f"A session.list() lacks {s1} or {s2}: {[s['ID'] for s in listed or []]}")

        if self.a.kv.put(k, "by-s1", acquire=s1) is not True:
            fail(f"A kv.put({k}, acquire=s1) did not return True")
        if self.b.kv.put(k, "by-s2", acquire=s2) is not False:
            fail(f"B kv.put({k}, acquire=s2) while s1 holds it did not return False")
        v = self.get(self.b, k)
        if v["Session"] != s1 or v["LockIndex"] != 1 or v["Value"] != b"by-s1":
            fail(f"B kv.get({k}) = {desc(v)}; want Session s1, LockIndex 1, b'by-s1'")
        try:
            r = self.a.kv.put(k, "x", acquire="00000000-0000-0000-0000-000000000000")
            fail(f"kv.put(acquire=<unknown session>) returned {r!r}; want an error (500 invalid session)")
        except ConsulException as e:
            if not str(e).startswith("500"):
                fail(f"kv.put(acquire=<unknown session>) raised {e!r}; want a 500")
        if self.b.kv.put(k, "wrong", release=s2) is not False:
            fail(f"B kv.put({k}, release=s2) by a non-holder did not return False")
        if self.a.kv.put(k, "released", release=s1) is not True:
            fail(f"A kv.put({k}, release=s1) did not return True")
        v = self.get(self.b, k)
        if "Session" in v or v["Value"] != b"released" or v["LockIndex"] != 1:
            fail(f"B kv.get({k}) after release = {desc(v)}; want no Session, b'released', LockIndex 1")
        # An explicit release starts no lock-delay (s1's is 15 s): s2 gets the key at once.
        if self.b.kv.put(k, "by-s2", acquire=s2) is not True:
            fail(f"B kv.put({k}, acquire=s2) after s1 released it did not return True")
        if self.b.session.destroy(s2) is not True:
            fail(f"B session.destroy({s2}) did not return True")
        v = self.get(self.a, k)
        if v is None or "Session" in v or v["LockIndex"] != 2:
            fail(f"A kv.get({k}) after s2 (behavior release) was destroyed = {desc(v)}; want no Session, LockIndex 2")
        i, gone = self.a.session.info(s2)
        if gone is not None:
            fail(f"A session.info({s2}) after destroy = {gone}; want None")
        try:
            r = self.a.session.renew(s2)
            fail(f"A session.renew of the destroyed {s2} returned {r}; want NotFound")
        except NotFound:
            pass
        self.a.session.destroy(s1)
        out("PASS sessions")

    def agent_ttl(self):
        name = f"{self.prefix}-ttl-svc"
        sid = name + "-1"
        check_id = "service:" + sid
        self.svc = (name, sid)
        ok = self.a.agent.service.register(
            name, service_id=sid, address="10.0.0.8", port=9002, tags=["v1"], meta={"k": "v"}, check=Check.ttl("30s")
        )
        if ok is not True:
            fail(f"A agent.service.register({sid}) = {ok!r}")
        svcs = self.a.agent.services()
        if sid not in svcs or svcs[sid].get("Port") != 9002 or svcs[sid].get("Service") != name:
            fail(f"A agent.services()[{sid}] = {svcs.get(sid)}; want Service {name}, Port 9002")
        checks = self.a.agent.checks()
        if check_id not in checks or checks[check_id].get("Status") != "critical":
            fail(f"A agent.checks()[{check_id}] = {checks.get(check_id)}; want the TTL check, critical before a pass")

        def health(passing):
            i, nodes = self.b.health.service(name, passing=passing)
            idx(i)
            return nodes or []

        def status_of(nodes):
            return [(n["Service"]["ID"], next((c["Status"] for c in n["Checks"] if c["CheckID"] == check_id), None)) for n in nodes]

        ok, last = poll(VISIBLE_WITHIN, lambda: (status_of(h := health(False)) == [(sid, "critical")], status_of(h)))
        if not ok:
            fail(f"B health.service({name}) did not list {sid} with its check critical within {VISIBLE_WITHIN} s: {last}")
        i, nodes = self.b.health.service(name, passing=True)
        if nodes:
            fail(f"B health.service({name}, passing=True) lists the instance before its first TTL pass")

        # B watches with blocking queries (index + wait 20 s); A's ttl_pass 0.5 s later wakes it.
        def passer():
            time.sleep(0.5)
            try:
                self.a.agent.check.ttl_pass(check_id, "ok")
            except Exception as e:  # noqa: BLE001 - the watch below then fails
                log(f"ttl_pass thread: {e!r}")

        threading.Thread(target=passer, daemon=True).start()
        index, deadline, seen = idx(i), time.monotonic() + VISIBLE_WITHIN, []
        while status_of(seen) != [(sid, "passing")]:
            if time.monotonic() > deadline:
                fail(f"B's blocking health.service({name}, passing=True) did not show {sid} passing within {VISIBLE_WITHIN} s: {status_of(seen)}")
            i, seen = self.b.health.service(name, passing=True, index=index, wait="20s")
            index = idx(i) if idx(i) >= index else 0
            seen = seen or []
        if self.a.agent.check.ttl_fail(check_id, "broken") is not True:
            fail(f"A agent.check.ttl_fail({check_id}) did not return True")
        ok, last = poll(VISIBLE_WITHIN, lambda: ((h := health(True)) == [], status_of(h)))
        if not ok:
            fail(f"B health.service({name}, passing=True) still lists {sid} after ttl_fail: {last}")
        if status_of(health(False)) != [(sid, "critical")]:
            fail(f"B health.service({name}) after ttl_fail = {status_of(health(False))}; want [({sid}, critical)]")
        try:
            r = self.a.agent.check.ttl_pass(check_id + "-nope")
            fail(f"ttl_pass of an unknown check returned {r!r}; want an error")
        except ConsulException:
            pass
        out("PASS agent_ttl")

    def catalog(self):
        name, sid = self.svc
        ok, last = poll(VISIBLE_WITHIN, lambda: (name in (s := self.b.catalog.services()[1]), sorted(s)))
        if not ok:
            fail(f"B catalog.services() does not list {name}: {last}")
        i, services = self.b.catalog.services()
        idx(i)
        if services[name] != ["v1"] or "consul" not in services:
            fail(f"B catalog.services() = {services}; want {name}: ['v1'] and the 'consul' service")
        i, nodes = self.b.catalog.service(name)
        idx(i)
        if len(nodes or []) != 1:
            fail(f"B catalog.service({name}) = {nodes}; want one entry")
        n = nodes[0]
        want = {"ServiceID": sid, "ServiceName": name, "ServiceAddress": "10.0.0.8", "ServicePort": 9002, "ServiceTags": ["v1"]}
        got = {k: n.get(k) for k in want}
        if got != want or (n.get("ServiceMeta") or {}).get("k") != "v" or not n.get("Node"):
            fail(f"B catalog.service({name}) entry {got}, meta {n.get('ServiceMeta')}, node {n.get('Node')!r}; want {want}, meta k=v")
        if len(self.a.catalog.service(name, tag="v1")[1] or []) != 1 or self.a.catalog.service(name, tag="nope")[1]:
            fail(f"A catalog.service({name}, tag=...) does not filter by tag")
        if self.a.agent.service.deregister(sid) is not True:
            fail(f"A agent.service.deregister({sid}) did not return True")
        ok, last = poll(VISIBLE_WITHIN, lambda: (not (c := self.b.catalog.service(name)[1]), c))
        if not ok:
            fail(f"B catalog.service({name}) still lists the service after deregister: {last}")
        out("PASS catalog")

    def nacos_visible(self):
        name = os.environ.get("COMPAT_NACOS_SERVICE", "")
        if not name:
            log("nacos_visible skipped: COMPAT_NACOS_SERVICE is not set")
            return
        inst = os.environ.get("COMPAT_NACOS_INSTANCE", "")
        ip, _, port = inst.rpartition(":")
        mk, _, mv = os.environ.get("COMPAT_NACOS_META", "").partition("=")

        def matches(n):
            if inst and (n.get("ServiceAddress") != ip or n.get("ServicePort") != int(port)):
                return False
            return not mk or (n.get("ServiceMeta") or {}).get(mk) == mv

        ok, last = poll(VISIBLE_WITHIN, lambda: (len(c := self.b.catalog.service(name)[1] or []) == 1 and matches(c[0]), c))
        if not ok:
            fail(f"B catalog.service({name}) does not list the Nacos-registered instance {inst} (meta {mk}={mv}): {last}")
        ok, last = poll(VISIBLE_WITHIN, lambda: (len(h := self.a.health.service(name, passing=True)[1] or []) == 1, h))
        if not ok:
            fail(f"A health.service({name}, passing=True) does not list the Nacos-registered instance: {last}")
        off = os.environ.get("COMPAT_NACOS_DISABLED_SERVICE", "")
        if off:
            # A disabled Nacos instance: listed with a critical check, not among the passing ones.
            def critical():
                h = self.b.health.service(off)[1] or []
                states = [[c["Status"] for c in n["Checks"] if c.get("ServiceName") == off] for n in h]
                return len(h) == 1 and "critical" in states[0], states

            ok, last = poll(VISIBLE_WITHIN, critical)
            if not ok:
                fail(f"B health.service({off}) does not list the disabled Nacos instance with a critical check: {last}")
            if self.b.health.service(off, passing=True)[1]:
                fail(f"B health.service({off}, passing=True) lists the disabled Nacos instance")
        out("PASS nacos_visible")


def main():
    global _step
    sys.stdout.reconfigure(line_buffering=True)
    threading.Thread(target=watchdog, daemon=True).start()
    try:
        if len(sys.argv) != 3 or sys.argv[1] != "consul":
            _step = "args"
            fail("usage: compat_consul.py consul <host:port[,host:port...]>")
        addrs = [a.strip() for a in sys.argv[2].split(",") if a.strip()]
        if not addrs:
            _step = "args"
            fail(f"no address in {sys.argv[2]!r}")
        prefix = os.environ.get("COMPAT_PREFIX") or f"compat-consul-py-{os.getpid()}"
        only = {s.strip() for s in os.environ.get("COMPAT_STEPS", "").split(",") if s.strip()}
        log(f"servers={addrs} prefix={prefix} py-consul {getattr(consul, '__version__', '?')}")
        sc = Scenario(addrs, prefix)
        _step = "setup"
        sc.setup()
        want = lambda s: not only or s in only  # noqa: E731
        if want("session_ttl"):
            _step = "session_ttl"
            sc.session_ttl_start()
        for name in ("kv_crud", "kv_cas", "blocking", "txn", "sessions", "agent_ttl", "catalog", "nacos_visible"):
            if want(name):
                _step = name
                t = time.monotonic()
                getattr(sc, name)()
                log(f"step {name} took {time.monotonic() - t:.2f} s")
        if want("session_ttl"):
            _step = "session_ttl"
            sc.session_ttl_finish()
            out("PASS session_ttl")
        _step = "cleanup"
        try:
            sc.a.kv.delete(prefix + "/", recurse=True)
        except Exception as e:  # noqa: BLE001 - best effort
            log(f"cleanup failed (ignored): {e!r}")
        log(f"scenario took {time.monotonic() - T0:.1f} s")
        return 0
    except StepFailure as f:
        out(f"FAIL {_step}: {f}")
    except Exception as e:  # noqa: BLE001 - any client error fails the step
        traceback.print_exc(file=sys.stderr)
        out(f"FAIL {_step}: {type(e).__name__}: {e}")
    return 1


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
