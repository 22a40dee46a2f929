import com.alibaba.nacos.api.NacosFactory;
import com.alibaba.nacos.api.PropertyKeyConst;
import com.alibaba.nacos.api.config.ConfigQueryResult;
import com.alibaba.nacos.api.config.ConfigService;
import com.alibaba.nacos.api.config.ConfigType;
import com.alibaba.nacos.api.config.listener.AbstractListener;
import com.alibaba.nacos.api.naming.NamingService;
import com.alibaba.nacos.api.naming.listener.Event;
import com.alibaba.nacos.api.naming.listener.EventListener;
import com.alibaba.nacos.api.naming.listener.NamingEvent;
import com.alibaba.nacos.api.naming.pojo.Instance;
import com.alibaba.nacos.api.naming.pojo.ListView;

import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Predicate;
import java.util.stream.Collectors;

/**
 * Batata SDK compatibility scenarios for the official Nacos Java client
 * (contract: tests/compat/<lang>/run.sh, see run.sh in this directory).
 *
 * <p>Usage: {@code java -cp ... Main <config|naming|consul_cross|auth_denied> <host:port[,host:port...]>}, env
 * COMPAT_PREFIX, and NACOS_USERNAME / NACOS_PASSWORD to log in (see {@link #clientProps}).
 * stdout carries only {@code PASS <step>} / {@code FAIL <step>: <why>} lines; exit 0 only when every
 * step passed. Every wait is bounded, the whole run gives up after {@link #SCENARIO_DEADLINE_MS}.
 * The client's threads are non-daemon, so the JVM is always ended with System.exit (and, should a
 * shutdown hook hang, Runtime.halt).
 */
public final class Main {

    /** Whole scenario gives up after this (contract: within 120 s, JVM start included). */
    static final long SCENARIO_DEADLINE_MS = 110_000;
    /** Waiting for a fresh client's gRPC connection to be up. */
    static final long CONNECT_WAIT_MS = 15_000;
    /** Bound on a single client call that talks to the server. */
    static final long CALL_MS = 10_000;
    /** getConfig's own read timeout. */
    static final long READ_TIMEOUT_MS = 3_000;
    /** Contract: cross-node visibility retries for up to 5 s. */
    static final long VISIBLE_MS = 5_000;
    /** Contract: pushes within 10 s. */
    static final long PUSH_MS = 10_000;
    /** Contract: ephemeral instances of a closed client are gone within 15 s. */
    static final long CLOSE_DROP_MS = 15_000;
    /** Poll interval; the config client rate-limits identical requests to 5/s (JVM-wide). */
    static final long POLL_MS = 250;

    static final String DEFAULT_GROUP = "DEFAULT_GROUP";

    /** The real stdout; System.out is redirected to stderr so nothing else can reach it. */
    static PrintStream out;
    static volatile String currentStep = "setup";
    static final AtomicBoolean finished = new AtomicBoolean();
    static final ExecutorService pool = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "compat-call");
        t.setDaemon(true);
        return t;
    });

    /** A failed assertion of the current step. */
    static final class StepFailure extends RuntimeException {
        StepFailure(String message) {
            super(message);
        }
    }

    interface Body {
        void run() throws Exception;
    }

    public static void main(String[] args) {
        out = new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);
        System.setOut(System.err);
        startWatchdog();
        try {
            if (args.length != 2 || args[1].isBlank()) {
                throw new StepFailure("usage: Main <config|naming|consul_cross|auth_denied> <host:port[,host:port...]>");
            }
            String scenario = args[0];
            List<String> servers = Arrays.stream(args[1].split(","))
                    .map(String::trim)
                    .filter(s -> !s.isEmpty())
                    .collect(Collectors.toList());
            if (servers.isEmpty()) {
                throw new StepFailure("no server address in '" + args[1] + "'");
            }
            prepareLocalDirs();
            String prefix = System.getenv("COMPAT_PREFIX");
            if (prefix == null || prefix.isBlank()) {
                prefix = "compat-java-" + UUID.randomUUID().toString().substring(0, 8);
                log("COMPAT_PREFIX not set, using " + prefix);
            }
            String first = servers.get(0);
            String last = servers.get(servers.size() - 1);
            log("scenario=" + scenario + " A->" + first + " B->" + last + " prefix=" + prefix);
            switch (scenario) {
                case "config":
                    new ConfigScenario(prefix, first, last).run();
                    break;
                case "naming":
                    new NamingScenario(prefix, first, last).run();
                    break;
                case "consul_cross":
                    new ConsulCrossScenario(prefix, first, last).run();
                    break;
                case "auth_denied":
                    new AuthDeniedScenario(prefix, first, last).run();
                    break;
                default:
                    throw new StepFailure("unknown scenario '" + scenario
                            + "' (expected config, naming, consul_cross or auth_denied)");
            }
            finish(0, null);
        } catch (StepFailure f) {
            finish(1, "FAIL " + currentStep + ": " + f.getMessage());
        } catch (Throwable t) {
            t.printStackTrace();
            finish(1, "FAIL " + currentStep + ": unexpected " + describe(t));
        }
    }

    // ---------------------------------------------------------------------------------------------
    // config scenario
    // ---------------------------------------------------------------------------------------------

    static final class ConfigScenario {
        final String prefix;
        final String first;
        final String last;

        ConfigScenario(String prefix, String first, String last) {
            this.prefix = prefix;
            this.first = first;
            this.last = last;
        }

        void run() throws Exception {
            String appId = prefix + "-app.properties";
            ConfigService[] clients = new ConfigService[2];

            step("publish_get", () -> {
                ConfigService a = clients[0] = newConfigService("A", first, null);
                publish(a, "A", appId, DEFAULT_GROUP, "k=v1", null);
                awaitConfig(a, "A", appId, DEFAULT_GROUP, "k=v1", VISIBLE_MS);
            });

            ConfigService a = clients[0];

            step("listen_push", () -> {
                ConfigService b = clients[1] = newConfigService("B", last, null);
                Mailbox<String> received = new Mailbox<>();
                call("B addListener", CALL_MS, () -> {
                    b.addListener(appId, DEFAULT_GROUP, new AbstractListener() {
                        @Override
                        public void receiveConfigInfo(String configInfo) {
                            log("B listener received: " + quote(configInfo));
                            received.add(configInfo);
                        }
                    });
                    return null;
                });
                // addListener sends the listen request at once. With an empty local cache the first listen
                // check reports a change and the listener fires with the current content k=v1; waiting for
                // that means B's listen is known to the server, so k=v2 below has to arrive by push.
                // With one server, A and B share the local snapshot (keyed by server + namespace): B's cache
                // starts as A's last read, k=v1, so no initial call is expected; give the listen 2 s then.
                // Not asserted either way (the contract allows both).
                boolean sameServer = first.equals(last);
                if (!received.await(0, "k=v1"::equals, sameServer ? 2_000 : 5_000) && !sameServer) {
                    log("WARN: B's listener did not fire with the current content k=v1 within 5 s "
                            + "(seen: " + received.describe() + "); publishing k=v2 anyway");
                }
                int mark = received.mark();
                publish(a, "A", appId, DEFAULT_GROUP, "k=v2", null);
                if (!received.await(mark, "k=v2"::equals, PUSH_MS)) {
                    throw new StepFailure("B's listener did not receive k=v2 within " + PUSH_MS + " ms (received: "
                            + received.describe() + ")");
                }
            });

            ConfigService b = clients[1];

            step("cross_node_get", () -> awaitConfig(b, "B", appId, DEFAULT_GROUP, "k=v2", VISIBLE_MS));

            step("group_and_type", () -> {
                String yamlId = prefix + "-db.yaml";
                String group = prefix + "-GROUP";
                publish(a, "A", yamlId, group, "a: 1", ConfigType.YAML.getType());
                awaitConfig(b, "B", yamlId, group, "a: 1", VISIBLE_MS);
                // Informational: the type should round-trip too (not part of the contract's assertion).
                Outcome<ConfigQueryResult> r = attempt("B getConfigWithResult", CALL_MS,
                        () -> b.getConfigWithResult(yamlId, group, READ_TIMEOUT_MS));
                if (r.error == null && !ConfigType.YAML.getType().equals(r.value.getConfigType())) {
                    log("WARN: type of " + yamlId + " read back as " + quote(r.value.getConfigType())
                            + ", published as yaml");
                }
            });

            step("cas", () -> {
                // Current content of appId is k=v2 (steps 2-3).
                String wrongMd5 = "0123456789abcdef0123456789abcdef";
                Outcome<Boolean> wrong = attempt("A publishConfigCas with a wrong md5", CALL_MS,
                        () -> a.publishConfigCas(appId, DEFAULT_GROUP, "k=v3", wrongMd5));
                if (wrong.error == null && Boolean.TRUE.equals(wrong.value)) {
                    throw new StepFailure("publishConfigCas with a wrong md5 returned true");
                }
                log("CAS with wrong md5 rejected: " + (wrong.error != null ? describe(wrong.error) : "false"));
                // publishConfigCas also returns false on any transport error: make sure nothing was written.
                // (A last read k=v1 itself; A's node may apply k=v2 a moment after B's did, hence a poll.)
                String now = pollConfig(a, "A", appId, DEFAULT_GROUP, VISIBLE_MS,
                        v -> "k=v2".equals(v) || "k=v3".equals(v));
                if (!"k=v2".equals(now)) {
                    throw new StepFailure("after the rejected CAS publish A reads " + quote(now)
                            + ", expected k=v2" + ("k=v3".equals(now) ? " (the CAS with a wrong md5 was applied)" : ""));
                }
                String rightMd5 = md5Hex("k=v2");
                // Informational: the md5 the server reports should be the same hex digest.
                Outcome<ConfigQueryResult> r = attempt("A getConfigWithResult", CALL_MS,
                        () -> a.getConfigWithResult(appId, DEFAULT_GROUP, READ_TIMEOUT_MS));
                if (r.error == null && r.value.getMd5() != null && !rightMd5.equals(r.value.getMd5())) {
                    log("WARN: server reports md5 " + r.value.getMd5() + " for k=v2, md5Hex(k=v2) is " + rightMd5);
                }
                Boolean ok = call("A publishConfigCas with the right md5", CALL_MS,
                        () -> a.publishConfigCas(appId, DEFAULT_GROUP, "k=v3", rightMd5));
                if (!Boolean.TRUE.equals(ok)) {
                    throw new StepFailure("publishConfigCas with the right md5 (" + rightMd5 + " = md5 of k=v2) "
                            + "returned " + ok);
                }
                awaitConfig(a, "A", appId, DEFAULT_GROUP, "k=v3", VISIBLE_MS);
            });

            step("remove", () -> {
                Boolean removed = call("A removeConfig", CALL_MS, () -> a.removeConfig(appId, DEFAULT_GROUP));
                if (!Boolean.TRUE.equals(removed)) {
                    throw new StepFailure("removeConfig returned " + removed);
                }
                // getConfig returns null on not-found; on a server error it falls back to the local
                // snapshot (which holds the old content here), so an error shows up as non-empty content.
                awaitConfigAbsent(b, "B", appId, DEFAULT_GROUP, VISIBLE_MS);
            });

            step("namespace", () -> {
                // Note: this client itself maps namespace "" to "public" (ClientBasicParamUtil.parseNamespace),
                // so both clients send tenant "public"; the step still checks the two configurations agree.
                ConfigService empty = newConfigService("namespace \"\" client", first, "");
                ConfigService pub = newConfigService("namespace public client", last, "public");
                String nsId = prefix + "-ns.properties";
                publish(empty, "namespace \"\" client", nsId, DEFAULT_GROUP, "ns=1", null);
                awaitConfig(pub, "namespace public client", nsId, DEFAULT_GROUP, "ns=1", VISIBLE_MS);
                publish(pub, "namespace public client", nsId, DEFAULT_GROUP, "ns=2", null);
                awaitConfig(empty, "namespace \"\" client", nsId, DEFAULT_GROUP, "ns=2", VISIBLE_MS);
                bestEffort("remove " + nsId, () -> pub.removeConfig(nsId, DEFAULT_GROUP));
                shutDownQuietly(empty, pub);
            });

            bestEffort("remove " + prefix + "-db.yaml",
                    () -> a.removeConfig(prefix + "-db.yaml", prefix + "-GROUP"));
            shutDownQuietly(a, b);
        }
    }

    /** Creates a config client for one server and waits until its gRPC connection is up. */
    static ConfigService newConfigService(String who, String server, String namespace) {
        ConfigService c = call("create config client " + who + " (" + server + ")", CALL_MS,
                () -> NacosFactory.createConfigService(clientProps(server, namespace)));
        awaitUp(who + " (config) at " + server, c::getServerStatus);
        return c;
    }

    static void publish(ConfigService c, String who, String dataId, String group, String content, String type) {
        Boolean ok = call(who + " publishConfig " + dataId + "/" + group, CALL_MS,
                () -> type == null ? c.publishConfig(dataId, group, content)
                        : c.publishConfig(dataId, group, content, type));
        if (!Boolean.TRUE.equals(ok)) {
            throw new StepFailure(who + " publishConfig(" + dataId + ", " + group + ", " + quote(content)
                    + (type == null ? "" : ", " + type) + ") returned " + ok);
        }
    }

    static String pollConfig(ConfigService c, String who, String dataId, String group, long withinMs,
            Predicate<String> done) {
        return poll(who + " getConfig(" + dataId + ", " + group + ")", withinMs, READ_TIMEOUT_MS + 2_000,
                () -> c.getConfig(dataId, group, READ_TIMEOUT_MS), done);
    }

    static void awaitConfig(ConfigService c, String who, String dataId, String group, String want, long withinMs) {
        String last = pollConfig(c, who, dataId, group, withinMs, want::equals);
        if (!want.equals(last)) {
            throw new StepFailure(who + " getConfig(" + dataId + ", " + group + ") returned " + quote(last)
                    + ", expected " + quote(want) + " (retried for " + withinMs + " ms)");
        }
    }

    static void awaitConfigAbsent(ConfigService c, String who, String dataId, String group, long withinMs) {
        String last = pollConfig(c, who, dataId, group, withinMs, v -> v == null || v.isEmpty());
        if (last != null && !last.isEmpty()) {
            throw new StepFailure(who + " getConfig(" + dataId + ", " + group + ") still returns " + quote(last)
                    + " " + withinMs + " ms after removeConfig");
        }
    }

    // ---------------------------------------------------------------------------------------------
    // naming scenario
    // ---------------------------------------------------------------------------------------------

    static final class NamingScenario {
        final String prefix;
        final String first;
        final String last;

        NamingScenario(String prefix, String first, String last) {
            this.prefix = prefix;
            this.first = first;
            this.last = last;
        }

        void run() throws Exception {
            String svc = prefix + "-svc";
            NamingService[] clients = new NamingService[2];
            Instance inst1 = instance("10.0.0.1", 8080);
            Instance inst2 = instance("10.0.0.2", 8080);
            Mailbox<List<Instance>> events = new Mailbox<>();

            step("register_list", () -> {
                NamingService a = clients[0] = newNamingService("A", first);
                NamingService b = clients[1] = newNamingService("B", last);
                call("A registerInstance 10.0.0.1:8080", CALL_MS, () -> {
                    a.registerInstance(svc, inst1);
                    return null;
                });
                // subscribe=false: a direct query to B's server each time (no client cache, no push).
                List<Instance> all = poll("B getAllInstances", PUSH_MS, CALL_MS,
                        () -> b.getAllInstances(svc, false), l -> isExactlyInst1(l));
                if (!isExactlyInst1(all)) {
                    throw new StepFailure("B getAllInstances(" + svc + ") = " + describe(all)
                            + ", expected exactly 10.0.0.1:8080 (cluster DEFAULT, weight 1, metadata v=1)");
                }
                List<Instance> healthy = poll("B selectInstances(healthy)", PUSH_MS, CALL_MS,
                        () -> b.selectInstances(svc, true, false), l -> isExactlyInst1(l));
                if (!isExactlyInst1(healthy)) {
                    throw new StepFailure("B selectInstances(" + svc + ", healthy) = " + describe(healthy)
                            + ", expected exactly 10.0.0.1:8080");
                }
            });

            NamingService a = clients[0];
            NamingService b = clients[1];

            step("subscribe_push", () -> {
                call("B subscribe", CALL_MS, () -> {
                    b.subscribe(svc, new EventListener() {
                        @Override
                        public void onEvent(Event event) {
                            if (event instanceof NamingEvent) {
                                List<Instance> l = new ArrayList<>(((NamingEvent) event).getInstances());
                                log("B subscriber event: " + describe(l));
                                events.add(l);
                            }
                        }
                    });
                    return null;
                });
                // With the gRPC protocol a client connection holds ONE instance per service: a second
                // registerInstance of the same service replaces the first. Two instances from one client
                // are registered with batchRegisterInstance (BatchInstanceRequest).
                call("A batchRegisterInstance [10.0.0.1:8080, 10.0.0.2:8080]", CALL_MS, () -> {
                    a.batchRegisterInstance(svc, DEFAULT_GROUP, List.of(instance("10.0.0.1", 8080), inst2));
                    return null;
                });
                if (!events.await(0, l -> ips(l).equals(List.of("10.0.0.1:8080", "10.0.0.2:8080")), PUSH_MS)) {
                    throw new StepFailure("B's subscriber did not see 10.0.0.1:8080 and 10.0.0.2:8080 within "
                            + PUSH_MS + " ms (events: " + events.describe() + ")");
                }
            });

            step("deregister", () -> {
                int mark = events.mark();
                call("A deregisterInstance 10.0.0.1:8080", CALL_MS, () -> {
                    a.deregisterInstance(svc, instance("10.0.0.1", 8080));
                    return null;
                });
                if (!events.await(mark, l -> ips(l).equals(List.of("10.0.0.2:8080")), PUSH_MS)) {
                    throw new StepFailure("B's subscriber did not see only 10.0.0.2:8080 within " + PUSH_MS
                            + " ms (events: " + events.describe() + ")");
                }
            });

            // For service_list: the listing while the service certainly has an instance.
            Outcome<Boolean> listedBeforeClose = attempt("B getServicesOfServer", CALL_MS * 2,
                    () -> serviceListed(b, svc));

            step("close_drops_ephemeral", () -> {
                int mark = events.mark();
                call("A shutDown", CALL_MS, () -> {
                    a.shutDown();
                    return null;
                });
                List<Instance> seen = poll("B getAllInstances", CLOSE_DROP_MS, CALL_MS,
                        () -> b.getAllInstances(svc, false), List::isEmpty);
                if (!seen.isEmpty()) {
                    throw new StepFailure("B getAllInstances(" + svc + ") still " + describe(seen) + " "
                            + CLOSE_DROP_MS + " ms after A's shutDown");
                }
                // The subscriber must be told too (push of the now empty service).
                if (!events.await(mark, List::isEmpty, 5_000)) {
                    throw new StepFailure("the server lists 0 instances but B's subscriber was not pushed the empty"
                            + " list (events: " + events.describe() + ")");
                }
            });

            step("service_list", () -> {
                boolean listed = call("B getServicesOfServer", CALL_MS * 2, () -> serviceListed(b, svc));
                if (listed) {
                    return;
                }
                if (listedBeforeClose.error == null && Boolean.TRUE.equals(listedBeforeClose.value)) {
                    log("service_list: " + svc + " was listed while it had an instance and is no longer listed "
                            + "now that it is empty (consistent)");
                    return;
                }
                throw new StepFailure(svc + " is not in getServicesOfServer, neither now nor while it had an instance"
                        + (listedBeforeClose.error != null ? " (that listing failed: "
                        + describe(listedBeforeClose.error) + ")" : ""));
            });

            shutDownQuietly(b);
        }
    }

    // ---------------------------------------------------------------------------------------------
    // consul_cross scenario: one registry behind both protocols
    // ---------------------------------------------------------------------------------------------

    /**
     * A service registered through the Consul agent API ({@code PUT /v1/agent/service/register} on the
     * first node, plain HttpClient) is an instance of service {@code <prefix>-consul-svc} in namespace
     * public, group DEFAULT_GROUP, for the Nacos client subscribed on the last node; deregistering it
     * through Consul removes it there too.
     */
    static final class ConsulCrossScenario {
        final String prefix;
        final String first;
        final String last;
        final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

        ConsulCrossScenario(String prefix, String first, String last) {
            this.prefix = prefix;
            this.first = first;
            this.last = last;
        }

        void run() throws Exception {
            String svc = prefix + "-consul-svc";
            String id = prefix + "-consul-1";
            Mailbox<List<Instance>> events = new Mailbox<>();
            NamingService[] clients = new NamingService[1];

            step("subscribe", () -> {
                NamingService n = clients[0] = call("create naming client B (" + last + ", namespace public)", 20_000,
                        () -> NacosFactory.createNamingService(clientProps(last, "public")));
                awaitUp("B (naming) at " + last, n::getServerStatus);
                call("B subscribe " + svc, CALL_MS, () -> {
                    n.subscribe(svc, DEFAULT_GROUP, new EventListener() {
                        @Override
                        public void onEvent(Event event) {
                            if (event instanceof NamingEvent) {
                                List<Instance> l = new ArrayList<>(((NamingEvent) event).getInstances());
                                log("B subscriber event: " + describe(l));
                                events.add(l);
                            }
                        }
                    });
                    return null;
                });
                // A query of the not yet existing service may answer empty or with an error; it must not list
                // an instance.
                Outcome<List<Instance>> now = attempt("B getAllInstances", CALL_MS,
                        () -> n.getAllInstances(svc, DEFAULT_GROUP, false));
                if (now.error == null && !now.value.isEmpty()) {
                    throw new StepFailure("service " + svc + " already has instances before the Consul registration: "
                            + describe(now.value));
                }
            });

            NamingService b = clients[0];

            step("consul_register", () -> {
                int mark = events.mark();
                // Meta is the instance's metadata on the Nacos side.
                String body = "{\"ID\":\"" + id + "\",\"Name\":\"" + svc + "\",\"Address\":\"10.0.0.5\",\"Port\":8080,"
                        + "\"Meta\":{\"team\":\"a\"},\"Check\":{\"TTL\":\"30s\",\"Status\":\"passing\"}}";
                consulPut("/v1/agent/service/register", body);
                Predicate<List<Instance>> registered = l -> l.size() == 1 && "10.0.0.5".equals(l.get(0).getIp())
                        && l.get(0).getPort() == 8080 && l.get(0).isHealthy() && l.get(0).isEnabled()
                        && l.get(0).getMetadata() != null && "a".equals(l.get(0).getMetadata().get("team"));
                if (!events.await(mark, registered, PUSH_MS)) {
                    throw new StepFailure("B's subscriber did not see 10.0.0.5:8080 (healthy, metadata team=a) within " + PUSH_MS
                            + " ms of the Consul registration (events: " + events.describe() + ")");
                }
                // A direct query (no client cache) finds it too, and among the healthy instances.
                List<Instance> all = call("B getAllInstances", CALL_MS, () -> b.getAllInstances(svc, DEFAULT_GROUP, false));
                if (!registered.test(all)) {
                    throw new StepFailure("B getAllInstances(" + svc + ", subscribe=false) = " + describe(all)
                            + ", expected exactly 10.0.0.5:8080, healthy");
                }
                List<Instance> healthy = call("B selectInstances(healthy)", CALL_MS,
                        () -> b.selectInstances(svc, DEFAULT_GROUP, true, false));
                if (!registered.test(healthy)) {
                    throw new StepFailure("B selectInstances(" + svc + ", healthy, subscribe=false) = " + describe(healthy)
                            + ", expected exactly 10.0.0.5:8080");
                }
            });

            // The Consul check status is the instance's health: a TTL fail turns it unhealthy, a pass
            // healthy again, and the subscriber is pushed both. A second, passing instance keeps the
            // healthy share above the protection threshold (0 by default; at or below it Nacos hands
            // out every instance marked healthy), so the unhealthy one is reported as such.
            step("consul_check_status", () -> {
                String id2 = prefix + "-consul-2";
                int mark = events.mark();
                consulPut("/v1/agent/service/register", "{\"ID\":\"" + id2 + "\",\"Name\":\"" + svc
                        + "\",\"Address\":\"10.0.0.6\",\"Port\":8080,\"Check\":{\"TTL\":\"30s\",\"Status\":\"passing\"}}");
                awaitHealth(events, mark, "true,true", "after registering " + id2 + " (passing)");
                for (String verb : List.of("fail", "pass")) {
                    mark = events.mark();
                    consulPut("/v1/agent/check/" + verb + "/service:" + id, "");
                    awaitHealth(events, mark, verb.equals("pass") ? "true,true" : "false,true",
                            "after PUT /v1/agent/check/" + verb + "/service:" + id);
                }
                mark = events.mark();
                consulPut("/v1/agent/service/deregister/" + id2, "");
                if (!events.await(mark, l -> ips(l).equals(List.of("10.0.0.5:8080")), PUSH_MS)) {
                    throw new StepFailure("B's subscriber did not see only 10.0.0.5:8080 within " + PUSH_MS
                            + " ms of deregistering " + id2 + " (events: " + events.describe() + ")");
                }
            });

            step("consul_deregister", () -> {
                int mark = events.mark();
                consulPut("/v1/agent/service/deregister/" + id, "");
                if (!events.await(mark, List::isEmpty, PUSH_MS)) {
                    throw new StepFailure("B's subscriber did not see " + svc + " empty within " + PUSH_MS
                            + " ms of the Consul deregistration (events: " + events.describe() + ")");
                }
                List<Instance> all = call("B getAllInstances", CALL_MS, () -> b.getAllInstances(svc, DEFAULT_GROUP, false));
                if (!all.isEmpty()) {
                    throw new StepFailure("B getAllInstances(" + svc + ", subscribe=false) after the Consul deregistration = "
                            + describe(all) + ", expected none");
                }
            });

            shutDownQuietly(b);
        }

        /** Waits for a push of 10.0.0.5:8080 and 10.0.0.6:8080 whose health flags, in that order, read `want`. */
        static void awaitHealth(Mailbox<List<Instance>> events, int mark, String want, String when) throws Exception {
            Predicate<List<Instance>> ok = l -> ips(l).equals(List.of("10.0.0.5:8080", "10.0.0.6:8080"))
                    && l.stream().sorted((x, y) -> x.getIp().compareTo(y.getIp()))
                            .map(i -> String.valueOf(i.isHealthy())).collect(Collectors.joining(",")).equals(want);
            if (!events.await(mark, ok, PUSH_MS)) {
                throw new StepFailure("B's subscriber did not see [10.0.0.5:8080, 10.0.0.6:8080] with healthy = [" + want
                        + "] within " + PUSH_MS + " ms " + when + " (events: " + events.describe() + ")");
            }
        }

        /** PUT http://first/path with a JSON body; anything but 200 fails the step. */
        void consulPut(String path, String body) {
            HttpRequest req = HttpRequest.newBuilder(URI.create("http://" + first + path))
                    .timeout(Duration.ofSeconds(10))
                    .header("Content-Type", "application/json")
                    .PUT(HttpRequest.BodyPublishers.ofString(body))
                    .build();
            HttpResponse<String> resp = call("PUT " + path, CALL_MS,
                    () -> http.send(req, HttpResponse.BodyHandlers.ofString()));
            log("PUT " + path + " -> " + resp.statusCode() + " " + quote(resp.body()));
            if (resp.statusCode() != 200) {
                throw new StepFailure("PUT http://" + first + path + " answered " + resp.statusCode() + " "
                        + quote(resp.body()));
            }
        }
    }

    // ---------------------------------------------------------------------------------------------
    // auth_denied scenario: a logged-in user without permission on namespace public
    // ---------------------------------------------------------------------------------------------

    /**
     * Run with NACOS_USERNAME / NACOS_PASSWORD of a user whose only permission is rw on namespace
     * {@code <prefix>-own}: its own namespace works (so the client's login worked), namespace public is
     * refused by the server.
     */
    static final class AuthDeniedScenario {
        final String prefix;
        final String first;
        final String last;

        AuthDeniedScenario(String prefix, String first, String last) {
            this.prefix = prefix;
            this.first = first;
            this.last = last;
        }

        void run() throws Exception {
            String own = prefix + "-own";
            List<Object> clients = new ArrayList<>();

            step("own_namespace", () -> {
                ConfigService o = newConfigService("Own", first, own);
                clients.add(o);
                String ownId = prefix + "-own.properties";
                publish(o, "Own", ownId, DEFAULT_GROUP, "own=1", null);
                awaitConfig(o, "Own", ownId, DEFAULT_GROUP, "own=1", VISIBLE_MS);
                NamingService on = newNamingService("OwnNaming", first, own);
                clients.add(on);
                call("OwnNaming registerInstance 10.0.0.3:8080", CALL_MS, () -> {
                    on.registerInstance(prefix + "-own-svc", instance("10.0.0.3", 8080));
                    return null;
                });
            });

            step("denied_publish", () -> {
                ConfigService a = newConfigService("A", first, null);
                clients.add(a);
                String id = prefix + "-denied.properties";
                refused("A publishConfig " + id, () -> a.publishConfig(id, DEFAULT_GROUP, "denied=1"));
            });

            // <prefix>-secret.properties exists (the test published secret=1 as administrator): reading it must
            // fail, neither return its content nor null (not found).
            step("denied_get", () -> {
                ConfigService b = newConfigService("B", last, null);
                clients.add(b);
                String id = prefix + "-secret.properties";
                refused("B getConfig " + id, () -> b.getConfig(id, DEFAULT_GROUP, READ_TIMEOUT_MS));
            });

            step("denied_register", () -> {
                NamingService n = newNamingService("ANaming", first, null);
                clients.add(n);
                String svc = prefix + "-denied-svc";
                refused("ANaming registerInstance " + svc, () -> {
                    n.registerInstance(svc, instance("10.0.0.4", 8080));
                    return null;
                });
            });

            shutDownQuietly(clients.toArray());
        }

        /** The call must fail with a NacosException (the server's answer, not a timeout) or return false. */
        static void refused(String what, Callable<?> c) {
            Outcome<?> o = attempt(what, CALL_MS, c);
            if (o.error instanceof com.alibaba.nacos.api.exception.NacosException) {
                log(what + " refused as expected: " + describe(o.error));
                return;
            }
            if (o.error != null) {
                throw new StepFailure(what + " failed, but not with the server's refusal: " + describe(o.error));
            }
            if (Boolean.FALSE.equals(o.value)) {
                log(what + " refused as expected: returned false");
                return;
            }
            throw new StepFailure(what + " returned " + describe(o.value)
                    + " for a user without permission on namespace public");
        }
    }

    static Instance instance(String ip, int port) {
        Instance i = new Instance();
        i.setIp(ip);
        i.setPort(port);
        i.setWeight(1.0);
        i.setClusterName("DEFAULT");
        i.setEphemeral(true);
        i.setHealthy(true);
        i.setEnabled(true);
        Map<String, String> md = new HashMap<>();
        md.put("v", "1");
        i.setMetadata(md);
        return i;
    }

    static boolean isExactlyInst1(List<Instance> l) {
        if (l == null || l.size() != 1) {
            return false;
        }
        Instance i = l.get(0);
        return "10.0.0.1".equals(i.getIp()) && i.getPort() == 8080 && "DEFAULT".equals(i.getClusterName())
                && i.getWeight() == 1.0 && i.getMetadata() != null && "1".equals(i.getMetadata().get("v"));
    }

    static List<String> ips(List<Instance> l) {
        return l.stream().map(i -> i.getIp() + ":" + i.getPort()).sorted().collect(Collectors.toList());
    }

    static boolean serviceListed(NamingService n, String svc) throws Exception {
        int pageSize = 500;
        for (int page = 1; page <= 20; page++) {
            ListView<String> view = n.getServicesOfServer(page, pageSize);
            List<String> data = view.getData() == null ? Collections.emptyList() : view.getData();
            if (data.contains(svc)) {
                return true;
            }
            if (data.size() < pageSize || (long) page * pageSize >= view.getCount()) {
                log("getServicesOfServer: " + svc + " not among " + view.getCount() + " services: "
                        + (data.size() <= 20 ? data : data.subList(0, 20) + "..."));
                return false;
            }
        }
        return false;
    }

    /**
     * Creates a naming client for one server and waits until its gRPC connection is up. The constructor
     * itself already tries to connect synchronously (4 attempts, up to ~12 s against a silent port).
     */
    static NamingService newNamingService(String who, String server) {
        return newNamingService(who, server, null);
    }

    /** {@link #newNamingService(String, String)} in a namespace (null: the client's default, public). */
    static NamingService newNamingService(String who, String server, String namespace) {
        NamingService n = call("create naming client " + who + " (" + server + ")", 20_000,
                () -> NacosFactory.createNamingService(clientProps(server, namespace)));
        awaitUp(who + " (naming) at " + server, n::getServerStatus);
        return n;
    }

    // ---------------------------------------------------------------------------------------------
    // plumbing
    // ---------------------------------------------------------------------------------------------

    /**
     * With NACOS_USERNAME / NACOS_PASSWORD set (env), the client's own {@code username} / {@code password}
     * properties: it then logs in by itself and sends the accessToken with every request.
     */
    static Properties clientProps(String server, String namespace) {
        Properties p = new Properties();
        p.setProperty(PropertyKeyConst.SERVER_ADDR, server);
        if (namespace != null) {
            p.setProperty(PropertyKeyConst.NAMESPACE, namespace);
        }
        String user = System.getenv("NACOS_USERNAME");
        if (user != null && !user.isEmpty()) {
            p.setProperty(PropertyKeyConst.USERNAME, user);
            p.setProperty(PropertyKeyConst.PASSWORD, Objects.requireNonNullElse(System.getenv("NACOS_PASSWORD"), ""));
        }
        return p;
    }

    /**
     * Keeps the client's local files out of $HOME: JM.SNAPSHOT.PATH (config snapshots/failover and the
     * naming cache both live under it) and JM.LOG.PATH (read by the client's logging adapters). run.sh
     * passes both as -D options; this is the fallback when Main is started some other way. Must run
     * before any Nacos class is initialised (they read these in static initialisers).
     */
    static void prepareLocalDirs() throws Exception {
        if (System.getProperty("JM.SNAPSHOT.PATH") == null || System.getProperty("JM.LOG.PATH") == null) {
            Path tmp = Files.createTempDirectory("batata-compat-java-");
            System.setProperty("JM.SNAPSHOT.PATH", tmp.resolve("cache").toString());
            System.setProperty("JM.LOG.PATH", tmp.resolve("logs").toString());
            log("client files under " + tmp);
        }
    }

    static void step(String name, Body body) throws Exception {
        currentStep = name;
        long t0 = System.nanoTime();
        body.run();
        long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
        log(name + " passed in " + ms + " ms");
        synchronized (Main.class) {
            if (!finished.get()) {
                out.println("PASS " + name);
            }
        }
    }

    /** Runs a client call on a daemon thread and waits at most timeoutMs for it. */
    static <T> T call(String what, long timeoutMs, Callable<T> c) {
        Outcome<T> o = attempt(what, timeoutMs, c);
        if (o.error != null) {
            throw new StepFailure(what + " failed: " + describe(o.error));
        }
        return o.value;
    }

    static final class Outcome<T> {
        final T value;
        final Throwable error;

        Outcome(T value, Throwable error) {
            this.value = value;
            this.error = error;
        }
    }

    /** Like call, but hands back the error (or the timeout) instead of failing the step. */
    static <T> Outcome<T> attempt(String what, long timeoutMs, Callable<T> c) {
        Future<T> f = pool.submit(c);
        try {
            return new Outcome<>(f.get(timeoutMs, TimeUnit.MILLISECONDS), null);
        } catch (TimeoutException e) {
            f.cancel(true);
            return new Outcome<>(null, new TimeoutException(what + " did not return within " + timeoutMs + " ms"));
        } catch (ExecutionException e) {
            Throwable cause = e.getCause() != null ? e.getCause() : e;
            if (cause instanceof StepFailure) {
                throw (StepFailure) cause;
            }
            log(what + " threw " + describe(cause));
            return new Outcome<>(null, cause);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return new Outcome<>(null, e);
        }
    }

    /**
     * Calls read until done(value) or withinMs have elapsed, and returns the last value read. Each call
     * gets at most callMs and never much more than the time left, so the whole wait stays within
     * withinMs + 1 s. Failed calls are retried too; if no call ever succeeded, the last failure fails
     * the step.
     */
    static <T> T poll(String what, long withinMs, long callMs, Callable<T> read, Predicate<T> done) {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(withinMs);
        T last = null;
        boolean haveValue = false;
        Throwable lastError = null;
        while (true) {
            long left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
            Outcome<T> o = attempt(what, Math.min(callMs, Math.max(1_000, left)), read);
            if (o.error == null) {
                last = o.value;
                haveValue = true;
                if (done.test(last)) {
                    return last;
                }
            }
            lastError = o.error;
            if (System.nanoTime() >= deadline) {
                break;
            }
            sleep(POLL_MS);
        }
        if (lastError != null && !haveValue) {
            throw new StepFailure(what + " failed: " + describe(lastError));
        }
        if (lastError != null) {
            log("last " + what + " failed: " + describe(lastError));
        }
        return last;
    }

    /** Waits until the client's gRPC connection is up ("UP" from getServerStatus). */
    static void awaitUp(String who, Callable<String> status) {
        String last = poll(who + " getServerStatus", CONNECT_WAIT_MS, 5_000, status, "UP"::equals);
        if (!"UP".equals(last)) {
            throw new StepFailure("client " + who + " not connected after " + CONNECT_WAIT_MS
                    + " ms (status " + last + "; gRPC port = HTTP port + 1000)");
        }
    }

    /** Values delivered by a client callback, in arrival order. */
    static final class Mailbox<T> {
        private final List<T> items = new ArrayList<>();

        synchronized void add(T item) {
            items.add(item);
            notifyAll();
        }

        /** Number of values delivered so far; pass it to await to ignore those. */
        synchronized int mark() {
            return items.size();
        }

        /** True once a value delivered after the first `from` ones satisfies want, waiting up to withinMs. */
        synchronized boolean await(int from, Predicate<T> want, long withinMs) throws InterruptedException {
            long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(withinMs);
            int checked = from;
            while (true) {
                for (; checked < items.size(); checked++) {
                    if (want.test(items.get(checked))) {
                        return true;
                    }
                }
                long left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
                if (left <= 0) {
                    return false;
                }
                wait(left);
            }
        }

        synchronized String describe() {
            return items.stream().map(Main::describe).collect(Collectors.toList()).toString();
        }
    }

    static void bestEffort(String what, Callable<?> c) {
        Outcome<?> o = attempt(what, 5_000, c);
        if (o.error != null) {
            log("cleanup " + what + " failed (ignored): " + describe(o.error));
        }
    }

    static void shutDownQuietly(Object... clients) {
        for (Object c : clients) {
            bestEffort("shutDown", () -> {
                if (c instanceof ConfigService) {
                    ((ConfigService) c).shutDown();
                } else if (c instanceof NamingService) {
                    ((NamingService) c).shutDown();
                }
                return null;
            });
        }
    }

    static void startWatchdog() {
        Thread t = new Thread(() -> {
            sleep(SCENARIO_DEADLINE_MS);
            finish(1, "FAIL " + currentStep + ": scenario deadline of " + SCENARIO_DEADLINE_MS / 1000
                    + " s exceeded");
        }, "compat-watchdog");
        t.setDaemon(true);
        t.start();
    }

    /** Prints the final line (if any) once and ends the JVM; halts if shutdown hooks hang. */
    static void finish(int code, String line) {
        synchronized (Main.class) {
            if (!finished.compareAndSet(false, true)) {
                return;
            }
            if (line != null) {
                out.println(line);
            }
            out.flush();
        }
        System.err.flush();
        Thread halter = new Thread(() -> {
            sleep(5_000);
            Runtime.getRuntime().halt(code);
        }, "compat-halt");
        halter.setDaemon(true);
        halter.start();
        System.exit(code);
    }

    static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    static String md5Hex(String s) throws Exception {
        byte[] d = MessageDigest.getInstance("MD5").digest(s.getBytes(StandardCharsets.UTF_8));
        StringBuilder sb = new StringBuilder();
        for (byte x : d) {
            sb.append(String.format("%02x", x));
        }
        return sb.toString();
    }

    static String quote(String s) {
        return s == null ? "null" : "\"" + s.replace("\n", "\\n") + "\"";
    }

    static String describe(Object o) {
        if (o == null) {
            return "null";
        }
        if (o instanceof Throwable) {
            Throwable t = (Throwable) o;
            String m = t.getMessage();
            String s = t.getClass().getSimpleName() + (m == null ? "" : ": " + m.replace("\n", " "));
            return s.length() > 400 ? s.substring(0, 400) + "..." : s;
        }
        if (o instanceof String) {
            return quote((String) o);
        }
        if (o instanceof List) {
            return ((List<?>) o).stream().map(x -> x instanceof Instance ? describeInstance((Instance) x)
                    : Objects.toString(x)).collect(Collectors.toList()).toString();
        }
        return o.toString();
    }

    static String describeInstance(Instance i) {
        return i.getIp() + ":" + i.getPort() + "{cluster=" + i.getClusterName() + ",weight=" + i.getWeight()
                + ",healthy=" + i.isHealthy() + ",metadata=" + i.getMetadata() + "}";
    }

    static void log(String msg) {
        System.err.println("[compat-java] " + msg);
    }
}
