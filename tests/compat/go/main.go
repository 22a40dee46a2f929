// Command compat-go drives the official Nacos Go SDK (github.com/nacos-group/nacos-sdk-go/v2)
// against running Batata nodes, following the compat scenario contract shared by all
// tests/compat/<lang>/ programs (scenarios "config", "naming" and "auth_denied", PASS/FAIL lines,
// deadlines). With NACOS_USERNAME / NACOS_PASSWORD set every client logs in with them.
//
// Usage: compat-go <config|naming|auth_denied> <host:port[,host:port...]>
//
// stdout carries only "PASS <step>" / "FAIL <step>: <why>" lines; everything else (progress notes,
// anything the SDK prints) goes to stderr, and the SDK's own log file lives in a temporary directory
// whose path is printed to stderr (kept on failure, removed on success).
package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nacos-group/nacos-sdk-go/v2/common/constant"
)

const (
	// The whole scenario gives up after this long (the contract allows 120 s).
	scenarioBudget = 110 * time.Second
	// Upper bound for a single SDK call; the SDK's own timeouts are 3-5 s, this only guards
	// against a call that never returns.
	callTimeout = 10 * time.Second
	// Pause between two reads of a poll loop. The SDK rate-limits config queries per
	// dataId+group+tenant to 5/s process-wide (clients/config_client/limiter.go).
	pollInterval = 300 * time.Millisecond
)

// ---------------------------------------------------------------------------------------------
// Reporting

type reporter struct {
	mu   sync.Mutex
	out  *os.File // the real stdout
	step string   // step currently running, for the watchdog
	done bool
	tmp  string
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
	if r.tmp != "" {
		logf("SDK log and cache kept in %s", r.tmp)
	}
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
	fmt.Fprintf(os.Stderr, "[compat-go %s] %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

// ---------------------------------------------------------------------------------------------
// Bounded SDK calls and polling

// call runs fn with a hard deadline and turns a panic into an error, so that no SDK call can hang
// or crash the scenario without a FAIL line. (A call that times out keeps running in the
// background; the process exits soon after anyway.)
func call[T any](name string, fn func() (T, error)) (T, error) {
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
	timer := time.NewTimer(callTimeout)
	defer timer.Stop()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-timer.C:
		var zero T
		return zero, fmt.Errorf("%s did not return within %s", name, callTimeout)
	}
}

// poll calls check until it reports done or the deadline passes; it returns the last observation
// (for the FAIL message) and whether it succeeded.
func poll(within time.Duration, check func() (done bool, observed string)) (bool, string) {
	deadline := time.Now().Add(within)
	last := "nothing observed"
	for {
		done, observed := check()
		last = observed
		if done {
			return true, last
		}
		if time.Now().Add(pollInterval).After(deadline) {
			return false, last
		}
		time.Sleep(pollInterval)
	}
}

// ---------------------------------------------------------------------------------------------
// Setup

type env struct {
	servers []constant.ServerConfig
	prefix  string
	tmp     string
}

func parseServers(arg string) ([]constant.ServerConfig, error) {
	var out []constant.ServerConfig
	for _, part := range strings.Split(arg, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		host, portStr, err := net.SplitHostPort(part)
		if err != nil {
			return nil, fmt.Errorf("bad server address %q: %v", part, err)
		}
		port, err := strconv.ParseUint(portStr, 10, 16)
		if err != nil || port == 0 {
			return nil, fmt.Errorf("bad port in server address %q", part)
		}
		out = append(out, *constant.NewServerConfig(host, port, constant.WithContextPath("/nacos")))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no server address in %q", arg)
	}
	return out, nil
}

// first / last return a one-element server list: client A talks only to the first node, client B
// only to the last one (with a single node both are the same node, but separate client instances).
func (e *env) first() []constant.ServerConfig { return []constant.ServerConfig{e.servers[0]} }
func (e *env) last() []constant.ServerConfig {
	return []constant.ServerConfig{e.servers[len(e.servers)-1]}
}

// clientConfig gives each client its own cache directory (the config client falls back to / writes
// snapshots there, the naming client persists service info there) and a shared log directory.
//
// NACOS_USERNAME / NACOS_PASSWORD (env), when set, become the SDK's own Username / Password: it
// then logs in by itself (POST /v1/auth/users/login) and sends the accessToken with every request.
func (e *env) clientConfig(name, namespace string) *constant.ClientConfig {
	cc := constant.NewClientConfig(
		constant.WithNamespaceId(namespace),
		constant.WithTimeoutMs(5000),
		constant.WithNotLoadCacheAtStart(true),
		// Report a failed remote read as an error instead of silently returning the local
		// snapshot of an earlier read (which would make "remove" look like stale content).
		constant.WithDisableUseSnapShot(true),
		// Without this the naming client ignores an empty instance list (no cache update, no
		// callback), so "all instances gone" could never be observed.
		constant.WithUpdateCacheWhenEmpty(true),
		constant.WithCacheDir(filepath.Join(e.tmp, name, "cache")),
		constant.WithLogDir(filepath.Join(e.tmp, "log")),
		constant.WithLogLevel("warn"),
	)
	if user := os.Getenv("NACOS_USERNAME"); user != "" {
		cc.Username = user
		cc.Password = os.Getenv("NACOS_PASSWORD")
	}
	return cc
}

func main() {
	// Keep the real stdout for PASS/FAIL lines only; anything that writes to os.Stdout later
	// (the SDK has a stray fmt.Println) lands on stderr.
	rep.out = os.Stdout
	os.Stdout = os.Stderr

	rep.begin("args")
	if len(os.Args) != 3 {
		rep.fail("args", "usage: compat-go <config|naming|auth_denied> <host:port[,host:port...]>")
	}
	scenario := os.Args[1]
	servers, err := parseServers(os.Args[2])
	if err != nil {
		rep.fail("args", "%v", err)
	}
	prefix := os.Getenv("COMPAT_PREFIX")
	if prefix == "" {
		prefix = fmt.Sprintf("compat-go-%d", time.Now().UnixNano())
		logf("COMPAT_PREFIX not set, using %s", prefix)
	}
	tmp, err := os.MkdirTemp("", "batata-compat-go-")
	if err != nil {
		rep.fail("args", "cannot create temp dir: %v", err)
	}
	rep.mu.Lock()
	rep.tmp = tmp
	rep.mu.Unlock()
	logf("scenario=%s servers=%s prefix=%s sdk-dir=%s", scenario, os.Args[2], prefix, tmp)

	watchdog := time.AfterFunc(scenarioBudget, func() {
		failf("scenario did not finish within %s, giving up", scenarioBudget)
	})
	defer watchdog.Stop()

	e := &env{servers: servers, prefix: prefix, tmp: tmp}
	switch scenario {
	case "config":
		runConfig(e)
	case "naming":
		runNaming(e)
	case "auth_denied":
		runAuthDenied(e)
	default:
		rep.fail("args", "unknown scenario %q (want config, naming or auth_denied)", scenario)
	}

	rep.mu.Lock()
	rep.done = true // the watchdog must not print after success
	rep.mu.Unlock()
	_ = os.RemoveAll(tmp)
}
