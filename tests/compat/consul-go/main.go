// Command compat-consul-go drives the official Consul Go client (github.com/hashicorp/consul/api,
// pinned in go.mod) against running Batata nodes, following the compat scenario contract shared by
// all tests/compat/<lang>/ programs (PASS/FAIL lines, deadlines; see tests/compat/README.md).
//
// Usage: compat-consul-go consul|acl <host:port[,host:port...]>
//
// Scenario "consul" exercises the API; "acl" (acl.go) runs against a server with ACLs on and not
// yet bootstrapped: bootstrap, a policy and a token, and the token's limits.
//
// The addresses are Batata's HTTP addresses; the Consul API is http://<addr>/v1/... Client A talks
// only to the first address, client B only to the last one, so on a cluster every step crosses
// nodes. Env: COMPAT_PREFIX prefixes every key and service name; COMPAT_NACOS_SERVICE (and
// optionally COMPAT_NACOS_INSTANCE=ip:port, COMPAT_NACOS_META=k=v, and
// COMPAT_NACOS_DISABLED_SERVICE, a service whose Nacos instance is disabled) names a service
// registered beforehand by a Nacos client (step nacos_visible, skipped when unset);
// COMPAT_STEPS=a,b,... runs only those steps
// (for debugging; the default is every step); CONSUL_HTTP_TOKEN is the token the "consul"
// scenario's clients send (as the Go client's own environment setting: with auth on, a Consul ACL
// token or a Nacos access token).
//
// stdout carries only "PASS <step>" / "FAIL <step>: <why>" lines; progress notes go to stderr.
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
)

const (
	// The whole scenario gives up after this long (the contract allows 120 s).
	scenarioBudget = 110 * time.Second
	// Upper bound for a single non-blocking client call.
	callTimeout = 10 * time.Second
	// Pause between two reads of a poll loop.
	pollInterval = 200 * time.Millisecond
)

// ---------------------------------------------------------------------------------------------
// Reporting

type reporter struct {
	mu   sync.Mutex
	out  *os.File // the real stdout
	step string   // step currently running, for the watchdog
	done bool
}

var rep reporter

func (r *reporter) begin(step string) {
	r.mu.Lock()
	r.step = step
	r.mu.Unlock()
	logf("--- step %s", step)
}

func (r *reporter) pass(step string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return
	}
	fmt.Fprintf(r.out, "PASS %s\n", step)
}

// fail prints the FAIL line and exits 1. Safe to call from any goroutine; only the first call prints.
func (r *reporter) fail(step, format string, args ...any) {
	r.mu.Lock()
	if r.done {
		r.mu.Unlock()
		select {} // another goroutine is already exiting
	}
	r.done = true
	msg := strings.ReplaceAll(fmt.Sprintf(format, args...), "\n", " ")
	fmt.Fprintf(r.out, "FAIL %s: %s\n", step, msg)
	os.Exit(1)
}

// failf fails the step currently running.
func failf(format string, args ...any) {
	rep.mu.Lock()
	step := rep.step
	rep.mu.Unlock()
	rep.fail(step, format, args...)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[compat-consul-go %s] %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

// ---------------------------------------------------------------------------------------------
// Bounded client calls and polling

// callT runs fn with a hard deadline and turns a panic into an error, so that no client call can
// hang or crash the scenario without a FAIL line. (A call that times out keeps running in the
// background; the process exits soon after anyway.)
func callT[T any](name string, timeout time.Duration, fn func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				var zero T
				ch <- result{zero, fmt.Errorf("%s panicked: %v", name, p)}
			}
		}()
		v, err := fn()
		ch <- result{v, err}
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-timer.C:
		var zero T
		return zero, fmt.Errorf("%s did not return within %s", name, timeout)
	}
}

func call[T any](name string, fn func() (T, error)) (T, error) {
	return callT(name, callTimeout, fn)
}

// must is call that fails the step on an error.
func must[T any](name string, fn func() (T, error)) T {
	v, err := call(name, fn)
	if err != nil {
		failf("%s: %v", name, err)
	}
	return v
}

// poll calls check until it reports done or the deadline passes; it returns the last observation
// (for the FAIL message) and whether it succeeded.
func poll(within time.Duration, check func() (done bool, observed string)) (bool, string) {
	deadline := time.Now().Add(within)
	for {
		done, observed := check()
		if done {
			return true, observed
		}
		if time.Now().Add(pollInterval).After(deadline) {
			return false, observed
		}
		time.Sleep(pollInterval)
	}
}

// ---------------------------------------------------------------------------------------------
// Setup

type env struct {
	addrs  []string
	prefix string
	a, b   *api.Client // A: first address, B: last address
	aAddr  string
	bAddr  string
	only   map[string]bool
}

// want reports whether a step is selected (COMPAT_STEPS).
func (e *env) want(step string) bool {
	return len(e.only) == 0 || e.only[step]
}

func parseAddrs(arg string) ([]string, error) {
	var out []string
	for _, part := range strings.Split(arg, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(part); err != nil {
			return nil, fmt.Errorf("bad server address %q: %v", part, err)
		}
		out = append(out, part)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no server address in %q", arg)
	}
	return out, nil
}

// newClient builds a client for one address, with the token of CONSUL_HTTP_TOKEN (if set).
// Nothing else is taken from the CONSUL_* environment.
func newClient(addr string) *api.Client {
	return newClientToken(addr, os.Getenv("CONSUL_HTTP_TOKEN"))
}

// newClientToken builds a client for one address that sends token ("" = none).
func newClientToken(addr, token string) *api.Client {
	cfg := &api.Config{
		Address:   addr,
		Scheme:    "http",
		Token:     token,
		Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second},
	}
	c, err := api.NewClient(cfg)
	if err != nil {
		failf("api.NewClient(%s): %v", addr, err)
	}
	return c
}

func main() {
	rep.out = os.Stdout
	os.Stdout = os.Stderr

	rep.begin("args")
	if len(os.Args) != 3 {
		rep.fail("args", "usage: compat-consul-go consul|acl <host:port[,host:port...]>")
	}
	scenario := os.Args[1]
	addrs, err := parseAddrs(os.Args[2])
	if err != nil {
		rep.fail("args", "%v", err)
	}
	prefix := os.Getenv("COMPAT_PREFIX")
	if prefix == "" {
		prefix = fmt.Sprintf("compat-consul-go-%d", time.Now().UnixNano())
		logf("COMPAT_PREFIX not set, using %s", prefix)
	}
	only := map[string]bool{}
	for _, s := range strings.Split(os.Getenv("COMPAT_STEPS"), ",") {
		if s = strings.TrimSpace(s); s != "" {
			only[s] = true
		}
	}
	logf("scenario=%s servers=%s prefix=%s", scenario, os.Args[2], prefix)

	watchdog := time.AfterFunc(scenarioBudget, func() {
		failf("scenario did not finish within %s, giving up", scenarioBudget)
	})
	defer watchdog.Stop()

	e := &env{addrs: addrs, prefix: prefix, aAddr: addrs[0], bAddr: addrs[len(addrs)-1], only: only}
	switch scenario {
	case "consul":
		runConsul(e)
	case "acl":
		runACL(e)
	default:
		rep.fail("args", "unknown scenario %q (want consul or acl)", scenario)
	}

	rep.mu.Lock()
	rep.done = true // the watchdog must not print after success
	rep.mu.Unlock()
}

func runConsul(e *env) {
	start := time.Now()
	rep.begin("setup")
	e.a = newClient(e.aAddr)
	e.b = newClient(e.bAddr)
	// Both nodes answer the Consul API and know a leader.
	for _, c := range []struct {
		name string
		c    *api.Client
	}{{"A", e.a}, {"B", e.b}} {
		ok, last := poll(15*time.Second, func() (bool, string) {
			leader, err := call(c.name+".Status().Leader", func() (string, error) { return c.c.Status().Leader() })
			if err != nil {
				return false, err.Error()
			}
			return leader != "", fmt.Sprintf("leader %q", leader)
		})
		if !ok {
			failf("%s: GET /v1/status/leader did not name a leader within 15s; last: %s", c.name, last)
		}
	}

	var ttl *ttlSession
	if e.want("session_ttl") {
		rep.begin("session_ttl")
		ttl = startSessionTTL(e)
	}
	steps := []struct {
		name string
		run  func(*env)
	}{
		{"kv_crud", stepKVCrud},
		{"kv_cas", stepKVCas},
		{"blocking", stepBlocking},
		{"txn", stepTxn},
		{"lock", stepLock},
		{"semaphore", stepSemaphore},
		{"agent_ttl", stepAgentTTL},
		{"catalog", stepCatalog},
		{"nacos_visible", stepNacosVisible},
	}
	for _, s := range steps {
		if !e.want(s.name) {
			continue
		}
		t0 := time.Now()
		rep.begin(s.name)
		s.run(e)
		logf("step %s took %s", s.name, time.Since(t0).Round(time.Millisecond))
	}
	if ttl != nil {
		rep.begin("session_ttl")
		ttl.finish(e)
		rep.pass("session_ttl")
	}
	rep.begin("cleanup")
	_, _ = call("A.KV().DeleteTree", func() (*api.WriteMeta, error) { return e.a.KV().DeleteTree(e.prefix+"/", nil) })
	logf("scenario took %s", time.Since(start).Round(time.Millisecond))
}
