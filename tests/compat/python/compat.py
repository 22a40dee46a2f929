#!/usr/bin/env python3
"""Batata compatibility scenarios driven by the official Nacos Python SDK 3.x.

    python compat.py <config|naming|auth_denied> <127.0.0.1:PORT[,127.0.0.1:PORT...]>

The SDK is `nacos-sdk-python` (pinned in requirements.txt), used through its
asyncio gRPC API (`from v2.nacos import ...`). It talks gRPC to HTTP port +
1000, which it computes itself (GRPCConfig.port_offset, default 1000).

Client A is given only the first server, client B only the last one.
Every dataId / service name starts with $COMPAT_PREFIX. With NACOS_USERNAME /
NACOS_PASSWORD set, every client is configured with them (the SDK's own
username / password options: it logs in and sends the accessToken itself).

stdout: one `PASS <step>` per step; on the first failure `FAIL <step>: <why>`
and exit 1. Exit 0 only when every step passed. Everything else (our own
diagnostics, and on failure the tail of the SDK logs) goes to stderr; the SDK
writes its own logs under a temp dir, which is kept when a run fails.

Every wait has a deadline (<= 20 s), every SDK call is bounded, and the whole
run gives up after OVERALL_DEADLINE seconds; a watchdog thread ends the process
even if the event loop itself were stuck.

Notes on this SDK (read from its 3.2.0 source) that shape the checks:
- create_config_service / create_naming_service do NOT fail when the server is
  unreachable (they retry 3 x grpc_timeout, then reconnect in the background);
  so after creating a client we wait for server_health() to become true.
- get_config returns "" for a missing config: the server must answer
  ConfigQueryRequest with errorCode 300 (CONFIG_NOT_FOUND). Any other error
  code raises NacosException; error code 400 makes 3.2.0 fall back to its local
  cache file and return a (content, encrypted_data_key) tuple (an SDK bug).
- CAS publish is ConfigParam.cas_md5 -> ConfigPublishRequest.casMd5; a refused
  CAS comes back as a non-200 resultCode, which the SDK raises as
  NacosException (a False return is accepted too).
- Config listeners are awaited: `async def listener(tenant, group, data_id,
  content)`. B's local cache starts empty, so the SDK's first batch-listen
  reports the config as changed and the listener fires once with the current
  content (k=v1) before any push; we wait for that first, so that k=v2 can only
  reach the listener through a server push (ConfigChangeNotifyRequest).
- Naming: one gRPC connection holds ONE ephemeral instance per service (Nacos
  2.x+ semantics: a second registerInstance of the same service on the same
  connection replaces the first). The "second instance" is therefore
  registered by a second client A2 on the same (first) server; "A is shut
  down" closes both A and A2.
- Naming: the SDK ignores pushes whose instance list is empty unless
  update_cache_when_empty is set (default False, the reverse of Java's default);
  we set it so that B can observe 0 instances after A closes. It also drops a
  push whose serviceInfo.lastRefTime is not strictly greater than the cached one.
"""

import asyncio
import hashlib
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
import traceback

OVERALL_DEADLINE = 110.0  # s; the contract allows 120 s for the whole scenario
CONNECT_TIMEOUT = 20.0  # s; creating a client and seeing it connected
CALL_TIMEOUT = 10.0  # s; any single SDK call
SHUTDOWN_TIMEOUT = 10.0  # s; closing clients

T0 = time.monotonic()
_out_lock = threading.Lock()
_finished = threading.Event()
_reported = threading.Event()  # a FAIL line has been printed


def out(line):
    """A PASS/FAIL line on stdout (the only thing ever printed there)."""
    line = " | ".join(part.strip() for part in line.splitlines() if part.strip())
    with _out_lock:
        if line.startswith("FAIL") and _reported.is_set():
            return  # only the first failure is reported
        if line.startswith("FAIL"):
            _reported.set()
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def log(msg):
    sys.stderr.write(f"[compat.py +{time.monotonic() - T0:6.2f}s] {msg}\n")
    sys.stderr.flush()


class CheckFailed(Exception):
    """An assertion of the current step did not hold."""


class Scenario:
    def __init__(self, servers, prefix, workdir):
        self.servers = servers
        self.prefix = prefix
        self.workdir = workdir
        self.step = "setup"
        self.clients = []  # (label, service) for shutdown
        self.closed = set()

    # ---------------------------------------------------------------- helpers

    def cfg(self, label, server, namespace=""):
        from v2.nacos import ClientConfigBuilder

        builder = (
            ClientConfigBuilder()
            .server_address(server)
            .namespace_id(namespace)
            .log_dir(os.path.join(self.workdir, "logs"))
            .cache_dir(os.path.join(self.workdir, "cache", label))
            .log_level(logging.DEBUG)
            .load_cache_at_start(False)
        )
        user = os.environ.get("NACOS_USERNAME")
        if user:
            builder = builder.username(user).password(os.environ.get("NACOS_PASSWORD", ""))
        config = builder.build()
        # Naming only (config ignores it): see the module docstring.
        config.set_update_cache_when_empty(True)
        return config

    @staticmethod
    def grpc_addr(server):
        host, _, port = server.rpartition(":")
        try:
            return f"{host}:{int(port) + 1000}"
        except ValueError:
            return f"{server} (+1000)"

    async def connect(self, label, server, kind, namespace=""):
        """Create a config or naming client on one server and wait until its
        gRPC connection is up."""
        from v2.nacos import NacosConfigService, NacosNamingService

        config = self.cfg(label, server, namespace)
        deadline = time.monotonic() + CONNECT_TIMEOUT
        create = (
            NacosConfigService.create_config_service
            if kind == "config"
            else NacosNamingService.create_naming_service
        )
        where = f"{server} (gRPC {self.grpc_addr(server)})"
        try:
            svc = await asyncio.wait_for(create(config), CONNECT_TIMEOUT)
        except asyncio.TimeoutError:
            raise CheckFailed(
                f"client {label}: creating the {kind} client for {where} "
                f"did not finish within {CONNECT_TIMEOUT:.0f} s"
            )
        self.clients.append((label, svc))
        _dedupe_sdk_log_handlers()
        while True:
            try:
                healthy = await asyncio.wait_for(svc.server_health(), 2.0)
            except Exception as e:  # noqa: BLE001 - report below
                healthy = False
                log(f"client {label}: server_health raised {e!r}")
            if healthy:
                log(f"client {label} ({kind}, namespace {namespace!r}) connected to {where}")
                return svc
            if time.monotonic() >= deadline:
                raise CheckFailed(
                    f"client {label}: could not connect to {where} within "
                    f"{CONNECT_TIMEOUT:.0f} s"
                )
            await asyncio.sleep(0.2)

    async def close(self, label, svc):
        if label in self.closed:
            return
        self.closed.add(label)
        try:
            await asyncio.wait_for(svc.shutdown(), SHUTDOWN_TIMEOUT)
            log(f"client {label} shut down")
        except asyncio.TimeoutError:
            log(f"client {label}: shutdown did not finish within {SHUTDOWN_TIMEOUT:.0f} s")
        except Exception as e:  # noqa: BLE001
            log(f"client {label}: shutdown raised {e!r}")

    async def close_all(self):
        await asyncio.gather(
            *(self.close(label, svc) for label, svc in self.clients),
            return_exceptions=True,
        )

    @staticmethod
    async def call(what, coro, timeout=CALL_TIMEOUT, raw=False):
        """Await one SDK call with a deadline. Errors become CheckFailed naming
        the call, unless raw (then SDK exceptions propagate unchanged)."""
        try:
            return await asyncio.wait_for(coro, timeout)
        except asyncio.TimeoutError:
            raise CheckFailed(f"{what}: no answer within {timeout:.0f} s")
        except Exception as e:  # noqa: BLE001
            if raw:
                raise
            raise CheckFailed(f"{what} raised {_describe_exc(e)}")

    @staticmethod
    async def poll(what, fn, ok, timeout, describe=repr):
        """Call fn() until ok(value) or the deadline; exceptions are retried."""
        deadline = time.monotonic() + timeout
        last, last_exc, calls = None, None, 0
        while True:
            remaining = deadline - time.monotonic()
            try:
                calls += 1
                value = await asyncio.wait_for(fn(), min(CALL_TIMEOUT, max(remaining, 1.0)))
                if ok(value):
                    return value
                last, last_exc = value, None
            except CheckFailed:
                raise
            except asyncio.TimeoutError:
                last_exc = "call timed out"
            except Exception as e:  # noqa: BLE001 - retried, then reported
                last_exc = _describe_exc(e)
            if time.monotonic() >= deadline:
                why = f"{what}: not true within {timeout:.0f} s ({calls} tries); "
                if last_exc is not None:
                    why += f"last error: {last_exc}"
                else:
                    why += f"last value: {describe(last)}"
                raise CheckFailed(why)
            await asyncio.sleep(0.2)

    async def run_step(self, name, fn, budget):
        self.step = name
        log(f"--- step {name}")
        try:
            await asyncio.wait_for(fn(), budget)
        except CheckFailed:
            raise
        except asyncio.TimeoutError:
            raise CheckFailed(f"step did not finish within its {budget:.0f} s budget")
        except Exception as e:  # noqa: BLE001
            log(traceback.format_exc())
            raise CheckFailed(f"unexpected {_describe_exc(e)}")
        out(f"PASS {name}")

    # ---------------------------------------------------------------- config

    async def config(self):
        from v2.nacos import ConfigParam, NacosException

        first, last = self.servers[0], self.servers[-1]
        p = self.prefix
        app, group = f"{p}-app.properties", "DEFAULT_GROUP"
        db, db_group = f"{p}-db.yaml", f"{p}-GROUP"

        self.step = "publish_get"
        a, b = await asyncio.gather(
            self.connect("A", first, "config"), self.connect("B", last, "config")
        )

        def get(client, data_id, grp):
            return lambda: client.get_config(ConfigParam(data_id=data_id, group=grp))

        def describe_content(v):
            if isinstance(v, tuple):
                return (
                    f"{v!r} (a tuple: the SDK fell back to its local cache, "
                    f"i.e. the server answered ConfigQueryRequest with errorCode 400)"
                )
            return repr(v)

        async def publish(client, label, data_id, grp, content, **extra):
            ok = await self.call(
                f"{label}.publish_config({data_id})",
                client.publish_config(
                    ConfigParam(data_id=data_id, group=grp, content=content, **extra)
                ),
            )
            if ok is not True:
                raise CheckFailed(f"{label}.publish_config({data_id}, {content!r}) returned {ok!r}")

        async def expect(client, label, data_id, grp, want, timeout=5.0):
            await self.poll(
                f"{label}.get_config({data_id}, {grp}) == {want!r}",
                get(client, data_id, grp),
                lambda v: v == want,
                timeout,
                describe_content,
            )

        # 1. publish_get
        async def publish_get():
            await publish(a, "A", app, group, "k=v1")
            await expect(a, "A", app, group, "k=v1")

        await self.run_step("publish_get", publish_get, 30)

        # 2. listen_push
        seen = Recorder()

        async def listener(tenant, grp, data_id, content):
            log(f"B listener: tenant={tenant!r} group={grp!r} dataId={data_id!r} content={content!r}")
            await seen.record(content)

        async def listen_push():
            await self.call("B.add_listener", b.add_listener(app, group, listener))
            # The SDK's listen loop runs at least every 5 s; its first
            # ConfigBatchListenRequest registers B at the server and, B's cache
            # being empty, reports the config changed -> listener gets k=v1.
            await seen.wait(
                lambda v: v == "k=v1",
                15.0,
                "B's listener firing with the current content k=v1 (initial sync via "
                "ConfigBatchListenRequest -> changedConfigs -> ConfigQueryRequest)",
            )
            mark = seen.count()
            await publish(a, "A", app, group, "k=v2")
            await seen.wait(
                lambda v: v == "k=v2",
                10.0,
                "B's listener receiving k=v2 after A published it (server push "
                "ConfigChangeNotifyRequest to B)",
                since=mark,
            )

        await self.run_step("listen_push", listen_push, 40)

        # 3. cross_node_get
        async def cross_node_get():
            await expect(b, "B", app, group, "k=v2")

        await self.run_step("cross_node_get", cross_node_get, 15)

        # 4. group_and_type
        async def group_and_type():
            await publish(a, "A", db, db_group, "a: 1", type="yaml")
            await expect(b, "B", db, db_group, "a: 1")

        await self.run_step("group_and_type", group_and_type, 25)

        # 5. cas
        async def cas():
            stale = hashlib.md5(b"k=v1").hexdigest()
            try:
                ok = await self.call(
                    "A.publish_config(cas_md5=<wrong>)",
                    a.publish_config(
                        ConfigParam(data_id=app, group=group, content="k=cas-wrong", cas_md5=stale)
                    ),
                    raw=True,
                )
            except NacosException as e:
                log(f"CAS with a wrong md5 refused as expected: {_describe_exc(e)}")
                ok = False
            if ok is not False:
                raise CheckFailed(
                    f"CAS publish with a wrong md5 ({stale}) returned {ok!r}, expected a refusal"
                )
            await self.poll(
                f"A.get_config({app}) still 'k=v2' after the refused CAS",
                get(a, app, group),
                lambda v: v == "k=v2",
                5.0,
                describe_content,
            )
            right = hashlib.md5(b"k=v2").hexdigest()
            await publish(a, "A", app, group, "k=v3", cas_md5=right)
            await expect(b, "B", app, group, "k=v3")

        await self.run_step("cas", cas, 40)

        # 6. remove
        async def remove():
            ok = await self.call(
                "A.remove_config", a.remove_config(ConfigParam(data_id=app, group=group))
            )
            if ok is not True:
                raise CheckFailed(f"A.remove_config({app}) returned {ok!r}")
            # 3.2.0 reports not-found as "" (server errorCode 300).
            await self.poll(
                f"B.get_config({app}) is empty/not-found after the remove",
                get(b, app, group),
                lambda v: v in ("", None),
                5.0,
                describe_content,
            )

        await self.run_step("remove", remove, 25)

        # 7. namespace: A has namespace "", N has namespace "public".
        async def namespace():
            ns_id = f"{p}-ns.properties"
            n = await self.connect("N", last, "config", namespace="public")
            await publish(a, "A(ns '')", ns_id, group, "ns=from-empty")
            await expect(n, "N(ns 'public')", ns_id, group, "ns=from-empty")
            await publish(n, "N(ns 'public')", ns_id, group, "ns=from-public")
            await expect(a, "A(ns '')", ns_id, group, "ns=from-public")

        await self.run_step("namespace", namespace, 60)

    # ---------------------------------------------------------------- naming

    async def naming(self):
        from v2.nacos import (
            DeregisterInstanceParam,
            ListInstanceParam,
            ListServiceParam,
            RegisterInstanceParam,
            SubscribeServiceParam,
        )

        first, last = self.servers[0], self.servers[-1]
        svc_name, group = f"{self.prefix}-svc", "DEFAULT_GROUP"

        self.step = "register_list"
        a, b = await asyncio.gather(
            self.connect("A", first, "naming"), self.connect("B", last, "naming")
        )

        def reg(ip):
            return RegisterInstanceParam(
                service_name=svc_name,
                group_name=group,
                ip=ip,
                port=8080,
                cluster_name="DEFAULT",
                weight=1.0,
                metadata={"v": "1"},
                ephemeral=True,
            )

        def addrs(instances):
            return sorted(f"{i.ip}:{i.port}" for i in (instances or []))

        async def register(client, label, ip):
            ok = await self.call(f"{label}.register_instance({ip})", client.register_instance(reg(ip)))
            if ok is not True:
                raise CheckFailed(f"{label}.register_instance({ip}:8080) returned {ok!r}")

        # 1. register_list
        async def register_list():
            await register(a, "A", "10.0.0.1")

            def exactly_it(instances):
                if addrs(instances) != ["10.0.0.1:8080"]:
                    return False
                i = instances[0]
                return (
                    i.clusterName == "DEFAULT"
                    and abs(i.weight - 1.0) < 1e-9
                    and (i.metadata or {}).get("v") == "1"
                    and i.healthy
                    and i.enabled
                    and i.ephemeral
                )

            # B's SDK caches its first SubscribeServiceResponse (list_instances
            # subscribes); later changes reach it only by NotifySubscriberRequest.
            await self.poll(
                f"B.list_instances({svc_name}, healthy_only) == [10.0.0.1:8080 DEFAULT w=1 v=1] "
                f"(SDK answers from the first SubscribeServiceResponse, then from pushes)",
                lambda: b.list_instances(
                    ListInstanceParam(
                        service_name=svc_name, group_name=group, healthy_only=True, subscribe=True
                    )
                ),
                exactly_it,
                10.0,
                lambda v: repr([str(i) for i in v]) if isinstance(v, list) else repr(v),
            )

        await self.run_step("register_list", register_list, 20)

        # 2. subscribe_push
        pushes = Recorder()

        async def on_change(instances):
            got = addrs(instances)
            log(f"B subscriber: {got}")
            await pushes.record(got)

        async def subscribe_push():
            await self.call(
                "B.subscribe",
                b.subscribe(
                    SubscribeServiceParam(
                        service_name=svc_name, group_name=group, subscribe_callback=on_change
                    )
                ),
            )
            # One connection holds one instance per service (see docstring):
            # the second instance comes from a second client on the first server.
            a2 = await self.connect("A2", first, "naming")
            await register(a2, "A2", "10.0.0.2")
            await pushes.wait(
                lambda v: v == ["10.0.0.1:8080", "10.0.0.2:8080"],
                10.0,
                "B's subscriber seeing both 10.0.0.1:8080 and 10.0.0.2:8080",
            )

        await self.run_step("subscribe_push", subscribe_push, 40)

        # 3. deregister
        listed_while_alive = {}

        async def deregister():
            mark = pushes.count()
            ok = await self.call(
                "A.deregister_instance(10.0.0.1)",
                a.deregister_instance(
                    DeregisterInstanceParam(
                        service_name=svc_name,
                        group_name=group,
                        ip="10.0.0.1",
                        port=8080,
                        cluster_name="DEFAULT",
                        ephemeral=True,
                    )
                ),
            )
            if ok is not True:
                raise CheckFailed(f"A.deregister_instance(10.0.0.1:8080) returned {ok!r}")
            await pushes.wait(
                lambda v: v == ["10.0.0.2:8080"],
                10.0,
                "B's subscriber seeing only 10.0.0.2:8080",
                since=mark,
            )
            # Snapshot for step 5, taken while the service still has an instance.
            try:
                listed_while_alive["services"] = (
                    await self.call(
                        "B.list_services",
                        b.list_services(ListServiceParam(group_name=group, page_no=1, page_size=100)),
                    )
                ).services
            except Exception as e:  # noqa: BLE001 - reported in step 5
                listed_while_alive["error"] = _describe_exc(e)

        await self.run_step("deregister", deregister, 25)

        # 4. close_drops_ephemeral
        async def close_drops_ephemeral():
            mark = pushes.count()
            for label, svc in list(self.clients):
                if label in ("A", "A2"):
                    await self.close(label, svc)
            await pushes.wait(
                lambda v: v == [],
                15.0,
                "B's subscriber seeing 0 instances after A (and A2) closed",
                since=mark,
            )

        await self.run_step("close_drops_ephemeral", close_drops_ephemeral, 40)

        # 5. service_list
        async def service_list():
            result = await self.call(
                "B.list_services",
                b.list_services(ListServiceParam(group_name=group, page_no=1, page_size=100)),
            )
            log(f"B.list_services: count={result.count} services={result.services}")
            if svc_name in result.services:
                return
            # An empty service may already have been cleaned up; that is
            # consistent as long as it was listed while it had an instance.
            if svc_name in listed_while_alive.get("services", []):
                log(f"{svc_name} no longer listed after its last instance went away; "
                    f"it was listed while it had one")
                return
            raise CheckFailed(
                f"{svc_name} not in list_services now ({result.services!r}) nor while it "
                f"had an instance ({listed_while_alive!r})"
            )

        await self.run_step("service_list", service_list, 15)


    # ---------------------------------------------------------------- auth_denied

    async def auth_denied(self):
        """Run with NACOS_USERNAME / NACOS_PASSWORD of a user whose only
        permission is rw on namespace $P-own: its own namespace works (so the
        SDK's login worked), namespace public is refused by the server."""
        from v2.nacos import ConfigParam, NacosException, RegisterInstanceParam

        first, last = self.servers[0], self.servers[-1]
        p = self.prefix
        group = "DEFAULT_GROUP"

        def reg(svc_name, ip):
            return RegisterInstanceParam(
                service_name=svc_name, group_name=group, ip=ip, port=8080,
                cluster_name="DEFAULT", weight=1.0, ephemeral=True,
            )

        # 1. own_namespace (positive control)
        async def own_namespace():
            own = f"{p}-own"
            o = await self.connect("Own", first, "config", namespace=own)
            data_id = f"{p}-own.properties"
            ok = await self.call(
                f"Own.publish_config({data_id})",
                o.publish_config(ConfigParam(data_id=data_id, group=group, content="own=1")),
            )
            if ok is not True:
                raise CheckFailed(f"Own.publish_config({data_id}) in namespace {own} returned {ok!r}")
            await self.poll(
                f"Own.get_config({data_id}) == 'own=1'",
                lambda: o.get_config(ConfigParam(data_id=data_id, group=group)),
                lambda v: v == "own=1",
                5.0,
            )
            on = await self.connect("OwnNaming", first, "naming", namespace=own)
            ok = await self.call(
                "OwnNaming.register_instance(10.0.0.3)",
                on.register_instance(reg(f"{p}-own-svc", "10.0.0.3")),
            )
            if ok is not True:
                raise CheckFailed(f"OwnNaming.register_instance in namespace {own} returned {ok!r}")

        await self.run_step("own_namespace", own_namespace, 40)

        async def refused(what, coro):
            """The call must be refused: an exception from the SDK (a server
            answer, not a timeout) or a False return."""
            try:
                result = await self.call(what, coro, raw=True)
            except NacosException as e:
                log(f"{what} refused as expected: {_describe_exc(e)}")
                return
            if result is False:
                log(f"{what} refused as expected: returned False")
                return
            raise CheckFailed(
                f"{what} returned {result!r} for a user without permission on namespace public"
            )

        # 2. denied_publish
        async def denied_publish():
            a = await self.connect("A", first, "config")
            data_id = f"{p}-denied.properties"
            await refused(
                f"A.publish_config({data_id})",
                a.publish_config(ConfigParam(data_id=data_id, group=group, content="denied=1")),
            )

        await self.run_step("denied_publish", denied_publish, 30)

        # 3. denied_get: $P-secret.properties exists (the test published
        # secret=1 as administrator); reading it must fail, not return its
        # content nor "" (not found).
        async def denied_get():
            b = await self.connect("B", last, "config")
            data_id = f"{p}-secret.properties"
            await refused(
                f"B.get_config({data_id})",
                b.get_config(ConfigParam(data_id=data_id, group=group)),
            )

        await self.run_step("denied_get", denied_get, 30)

        # 4. denied_register
        async def denied_register():
            n = await self.connect("ANaming", first, "naming")
            svc_name = f"{p}-denied-svc"
            await refused(
                f"ANaming.register_instance({svc_name}, 10.0.0.4)",
                n.register_instance(reg(svc_name, "10.0.0.4")),
            )

        await self.run_step("denied_register", denied_register, 30)


# scenario -> its first step (reported if the scenario fails before any step begins)
SCENARIOS = {"config": "publish_get", "naming": "register_list", "auth_denied": "own_namespace"}


class Recorder:
    """Values pushed into SDK callbacks, with waiting on a predicate."""

    def __init__(self):
        self.values = []
        self.cond = asyncio.Condition()

    async def record(self, value):
        async with self.cond:
            self.values.append(value)
            self.cond.notify_all()

    def count(self):
        return len(self.values)

    async def wait(self, pred, timeout, what, since=0):
        async def until():
            async with self.cond:
                await self.cond.wait_for(lambda: any(pred(v) for v in self.values[since:]))

        try:
            await asyncio.wait_for(until(), timeout)
        except asyncio.TimeoutError:
            raise CheckFailed(
                f"{what}: not seen within {timeout:.0f} s; callback values so far: "
                f"{self.values[since:]!r}"
                + (f" (earlier: {self.values[:since]!r})" if since else "")
            )


def _describe_exc(e):
    code = getattr(e, "error_code", None)
    if code is not None:
        return f"{type(e).__name__}(error_code={code}): {getattr(e, 'message', e)}"
    return f"{type(e).__name__}: {e}"


def _dedupe_sdk_log_handlers():
    """Each SDK client adds a file handler to the shared 'config'/'naming'
    logger; with one log dir that duplicates every line. Keep one per file."""
    for name in ("config", "naming"):
        lg = logging.getLogger(name)
        seen = set()
        for h in list(lg.handlers):
            key = getattr(h, "baseFilename", id(h))
            if key in seen:
                lg.removeHandler(h)
                h.close()
            else:
                seen.add(key)


def _patch_local_ip_if_needed():
    """The SDK puts the host's first non-loopback IPv4 address into every gRPC
    payload's metadata (clientIp) and raises when there is none, which makes
    every request fail inside a loopback-only network namespace. Only in that
    case, answer 127.0.0.1 instead (metadata only; the protocol is unchanged)."""
    from v2.nacos.utils.net_util import NetUtils

    try:
        NetUtils.get_local_ip()
    except Exception as e:  # noqa: BLE001
        log(f"no non-loopback IPv4 interface ({e}); SDK clientIp set to 127.0.0.1")
        NetUtils.get_local_ip = staticmethod(lambda: "127.0.0.1")


def _dump_logs(workdir):
    logdir = os.path.join(workdir, "logs")
    if not os.path.isdir(logdir):
        return
    for fname in sorted(os.listdir(logdir)):
        path = os.path.join(logdir, fname)
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                lines = f.readlines()
        except OSError:
            continue
        sys.stderr.write(f"----- last {min(len(lines), 60)} lines of {path}\n")
        sys.stderr.writelines(lines[-60:])
    sys.stderr.flush()


def _watchdog(sc):
    if _finished.wait(OVERALL_DEADLINE + 8):
        return
    out(f"FAIL {sc.step}: watchdog: scenario still running after {OVERALL_DEADLINE + 8:.0f} s")
    sys.stderr.write("[compat.py] watchdog: exiting\n")
    sys.stderr.flush()
    os._exit(1)


def main(argv):
    if len(argv) != 3 or argv[1] not in SCENARIOS:
        sys.stderr.write("usage: compat.py <config|naming|auth_denied> <host:port[,host:port...]>\n")
        return 2
    scenario_name = argv[1]
    servers = [s.strip() for s in argv[2].split(",") if s.strip()]
    if not servers:
        out(f"FAIL setup: no server address in {argv[2]!r}")
        return 1
    prefix = os.environ.get("COMPAT_PREFIX") or f"pycompat-{os.getpid()}-{int(time.time())}"

    workdir = tempfile.mkdtemp(prefix="batata-compat-py-")
    # Root logger (the SDK logs a few reconnect errors there) -> file, not stderr.
    logging.basicConfig(
        filename=os.path.join(workdir, "root.log"),
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    log(f"scenario={scenario_name} servers={servers} prefix={prefix} sdk logs/cache: {workdir}")

    import v2.nacos

    log(f"nacos-sdk-python {v2.nacos.__version__}")
    _patch_local_ip_if_needed()

    sc = Scenario(servers, prefix, workdir)
    sc.step = SCENARIOS[scenario_name]
    threading.Thread(target=_watchdog, args=(sc,), daemon=True).start()

    async def run():
        body = getattr(sc, scenario_name)
        failure = None
        try:
            await asyncio.wait_for(body(), OVERALL_DEADLINE)
        except CheckFailed as e:
            failure = str(e)
        except asyncio.TimeoutError:
            failure = f"scenario gave up after {OVERALL_DEADLINE:.0f} s"
        except Exception as e:  # noqa: BLE001
            log(traceback.format_exc())
            failure = f"unexpected {_describe_exc(e)}"
        if failure is not None:
            out(f"FAIL {sc.step}: {failure}")
        try:
            await asyncio.wait_for(sc.close_all(), SHUTDOWN_TIMEOUT)
        except asyncio.TimeoutError:
            log(f"closing the clients took more than {SHUTDOWN_TIMEOUT:.0f} s; leaving them")
        return failure is None

    ok = False
    try:
        ok = _run_loop(run)
    finally:
        _finished.set()
    if ok:
        if not os.environ.get("COMPAT_KEEP_TMP"):
            shutil.rmtree(workdir, ignore_errors=True)
    else:
        _dump_logs(workdir)
        log(f"SDK logs and cache kept in {workdir}")
    return 0 if ok else 1


def _run_loop(coro_fn):
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    return loop.run_until_complete(coro_fn())
    # The loop is not closed: SDK background tasks (reconnect loops, redo
    # tasks) are still pending; the process ends with os._exit below.


if __name__ == "__main__":
    code = main(sys.argv)
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: leftover grpc.aio channels / SDK tasks can
    # block or spew warnings at exit.
    os._exit(code)
