package main

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
)

// runACL is the "acl" scenario: the official client against a server with ACLs on and not yet
// bootstrapped. It bootstraps with ACL().Bootstrap(), creates a policy and a token with
// ACL().PolicyCreate / ACL().TokenCreate, and checks that a client holding that token writes KV
// in its prefix, gets a 403 outside it (and nothing is stored), and lists only what it may read.
func runACL(e *env) {
	start := time.Now()
	rep.begin("acl_setup")
	anon := newClientToken(e.aAddr, "")
	ok, last := poll(15*time.Second, func() (bool, string) {
		leader, err := call("Status().Leader", func() (string, error) { return anon.Status().Leader() })
		if err != nil {
			return false, err.Error()
		}
		return leader != "", fmt.Sprintf("leader %q", leader)
	})
	if !ok {
		failf("GET /v1/status/leader did not name a leader within 15s; last: %s", last)
	}
	if _, err := call("anonymous KV().Put", func() (*api.WriteMeta, error) {
		return anon.KV().Put(&api.KVPair{Key: e.prefix + "/app/anon", Value: []byte("x")}, nil)
	}); !isStatus(err, http.StatusForbidden, "Permission denied") {
		failf("an anonymous KV write with ACLs on (default deny): want 403 Permission denied, got %v", err)
	}
	rep.pass("acl_setup")

	rep.begin("acl_bootstrap")
	boot := must("ACL().Bootstrap", func() (*api.ACLToken, error) {
		t, _, err := anon.ACL().Bootstrap()
		return t, err
	})
	if boot.SecretID == "" || boot.AccessorID == "" || len(boot.Policies) != 1 || boot.Policies[0].Name != "global-management" {
		failf("bootstrap token %+v: want a SecretID, an AccessorID and the global-management policy", boot)
	}
	if _, err := call("second ACL().Bootstrap", func() (*api.ACLToken, error) {
		t, _, err := anon.ACL().Bootstrap()
		return t, err
	}); !isStatus(err, http.StatusForbidden, "ACL bootstrap no longer allowed") {
		failf("a second bootstrap: want 403 ACL bootstrap no longer allowed, got %v", err)
	}
	rep.pass("acl_bootstrap")

	mgmt := newClientToken(e.aAddr, boot.SecretID)
	rep.begin("acl_policy_token")
	name := strings.ReplaceAll(e.prefix, "/", "-") + "-app"
	rules := fmt.Sprintf("key_prefix %q { policy = \"write\" }", e.prefix+"/app/")
	pol := must("ACL().PolicyCreate", func() (*api.ACLPolicy, error) {
		p, _, err := mgmt.ACL().PolicyCreate(&api.ACLPolicy{Name: name, Description: "compat", Rules: rules}, nil)
		return p, err
	})
	if pol.ID == "" || pol.Rules != rules {
		failf("created policy %+v: want an ID and the rules as sent", pol)
	}
	tok := must("ACL().TokenCreate", func() (*api.ACLToken, error) {
		t, _, err := mgmt.ACL().TokenCreate(&api.ACLToken{Description: "compat app", Policies: []*api.ACLTokenPolicyLink{{ID: pol.ID}}}, nil)
		return t, err
	})
	read := must("ACL().TokenRead", func() (*api.ACLToken, error) {
		t, _, err := mgmt.ACL().TokenRead(tok.AccessorID, nil)
		return t, err
	})
	if read.SecretID != tok.SecretID || len(read.Policies) != 1 || read.Policies[0].Name != name {
		failf("TokenRead = %+v; want the secret and the policy %s", read, name)
	}
	policies := must("ACL().PolicyList", func() ([]*api.ACLPolicyListEntry, error) {
		l, _, err := mgmt.ACL().PolicyList(nil)
		return l, err
	})
	if !containsPolicy(policies, name) {
		failf("PolicyList does not list %s", name)
	}
	rep.pass("acl_policy_token")

	rep.begin("acl_kv")
	app := newClientToken(e.aAddr, tok.SecretID)
	put(app, "app", &api.KVPair{Key: e.prefix + "/app/x", Value: []byte("mine")})
	p, _ := get(app, "app", e.prefix+"/app/x")
	expectValue(p, "app reads its key", "mine", 0)
	outside := e.prefix + "/other/x"
	if _, err := call("app.KV().Put(outside)", func() (*api.WriteMeta, error) {
		return app.KV().Put(&api.KVPair{Key: outside, Value: []byte("intruder")}, nil)
	}); !isStatus(err, http.StatusForbidden, "Permission denied") {
		failf("a write outside the token's prefix: want 403 Permission denied, got %v", err)
	}
	if p, _ := get(mgmt, "mgmt", outside); p != nil {
		failf("the refused write was stored: %s", describePair(p))
	}
	put(mgmt, "mgmt", &api.KVPair{Key: e.prefix + "/other/y", Value: []byte("theirs")})
	pairs, _ := list(app, "app", e.prefix+"/")
	if len(pairs) != 1 || pairs[0].Key != e.prefix+"/app/x" {
		failf("app lists %s; want only %s/app/x", describePairs(pairs), e.prefix)
	}
	self := must("app.ACL().TokenReadSelf", func() (*api.ACLToken, error) {
		t, _, err := app.ACL().TokenReadSelf(nil)
		return t, err
	})
	if self.AccessorID != tok.AccessorID {
		failf("TokenReadSelf = %s; want %s", self.AccessorID, tok.AccessorID)
	}
	rep.pass("acl_kv")

	rep.begin("cleanup")
	_, _ = call("mgmt.KV().DeleteTree", func() (*api.WriteMeta, error) { return mgmt.KV().DeleteTree(e.prefix+"/", nil) })
	_, _ = call("mgmt.ACL().TokenDelete", func() (*api.WriteMeta, error) { return mgmt.ACL().TokenDelete(tok.AccessorID, nil) })
	logf("scenario took %s", time.Since(start).Round(time.Millisecond))
}

// isStatus reports whether err is the client's StatusError with this code and a body holding text.
func isStatus(err error, code int, text string) bool {
	var se api.StatusError
	return errors.As(err, &se) && se.Code == code && strings.Contains(se.Body, text)
}

func containsPolicy(l []*api.ACLPolicyListEntry, name string) bool {
	for _, p := range l {
		if p.Name == name {
			return true
		}
	}
	return false
}
