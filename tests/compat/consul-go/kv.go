package main

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
)

// Reads use the default consistency mode, which Consul serves from the leader's state (a follower
// forwards them): a write acknowledged through one node is visible to the next default read
// through any node, so KV reads are not retried.

func put(c *api.Client, who string, p *api.KVPair) {
	must(fmt.Sprintf("%s.KV().Put(%s)", who, p.Key), func() (*api.WriteMeta, error) { return c.KV().Put(p, nil) })
}

func get(c *api.Client, who, key string) (*api.KVPair, *api.QueryMeta) {
	type r struct {
		p *api.KVPair
		m *api.QueryMeta
	}
	v := must(fmt.Sprintf("%s.KV().Get(%s)", who, key), func() (r, error) {
		p, m, err := c.KV().Get(key, nil)
		return r{p, m}, err
	})
	if v.m == nil || v.m.LastIndex == 0 {
		failf("%s.KV().Get(%s): X-Consul-Index missing or 0 (%+v)", who, key, v.m)
	}
	return v.p, v.m
}

func list(c *api.Client, who, prefix string) (api.KVPairs, *api.QueryMeta) {
	type r struct {
		p api.KVPairs
		m *api.QueryMeta
	}
	v := must(fmt.Sprintf("%s.KV().List(%s)", who, prefix), func() (r, error) {
		p, m, err := c.KV().List(prefix, nil)
		return r{p, m}, err
	})
	if v.m == nil || v.m.LastIndex == 0 {
		failf("%s.KV().List(%s): X-Consul-Index missing or 0 (%+v)", who, prefix, v.m)
	}
	return v.p, v.m
}

func keys(c *api.Client, who, prefix, sep string) []string {
	return must(fmt.Sprintf("%s.KV().Keys(%s, %q)", who, prefix, sep), func() ([]string, error) {
		k, m, err := c.KV().Keys(prefix, sep, nil)
		if err == nil && (m == nil || m.LastIndex == 0) {
			err = fmt.Errorf("X-Consul-Index missing or 0 (%+v)", m)
		}
		return k, err
	})
}

func describePair(p *api.KVPair) string {
	if p == nil {
		return "<nil>"
	}
	return fmt.Sprintf("{Key=%s Value=%q Flags=%d Session=%q LockIndex=%d CreateIndex=%d ModifyIndex=%d}",
		p.Key, p.Value, p.Flags, p.Session, p.LockIndex, p.CreateIndex, p.ModifyIndex)
}

func describePairs(ps api.KVPairs) string {
	parts := make([]string, 0, len(ps))
	for _, p := range ps {
		parts = append(parts, describePair(p))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// expectValue fails unless p exists with the value and flags given.
func expectValue(p *api.KVPair, what, value string, flags uint64) {
	if p == nil || string(p.Value) != value || p.Flags != flags {
		failf("%s = %s; want Value=%q Flags=%d", what, describePair(p), value, flags)
	}
}

func stepKVCrud(e *env) {
	pre := e.prefix + "/kv/"
	ka, kb, kc, kd := pre+"a", pre+"b", pre+"sub/c", pre+"sub/d"

	put(e.a, "A", &api.KVPair{Key: ka, Value: []byte("1"), Flags: 42})
	pa, ma := get(e.b, "B", ka)
	expectValue(pa, "B.Get("+ka+")", "1", 42)
	if pa.Key != ka || pa.Session != "" || pa.LockIndex != 0 || pa.CreateIndex == 0 || pa.ModifyIndex != pa.CreateIndex {
		failf("B.Get(%s) = %s; want Key %s, no Session, LockIndex 0, CreateIndex == ModifyIndex > 0", ka, describePair(pa), ka)
	}
	if ma.LastIndex != pa.ModifyIndex {
		failf("B.Get(%s): X-Consul-Index %d, want the entry's ModifyIndex %d", ka, ma.LastIndex, pa.ModifyIndex)
	}
	if !ma.KnownLeader {
		failf("B.Get(%s): X-Consul-KnownLeader is not true", ka)
	}

	// A plain PUT replaces the value and resets the flags; CreateIndex stays.
	put(e.a, "A", &api.KVPair{Key: ka, Value: []byte("1b")})
	pa2, _ := get(e.b, "B", ka)
	expectValue(pa2, "B.Get("+ka+") after the update", "1b", 0)
	if pa2.CreateIndex != pa.CreateIndex || pa2.ModifyIndex <= pa.ModifyIndex {
		failf("after the update B.Get(%s) = %s; want CreateIndex %d and ModifyIndex > %d", ka, describePair(pa2), pa.CreateIndex, pa.ModifyIndex)
	}

	put(e.a, "A", &api.KVPair{Key: kb, Value: []byte("2")})
	put(e.b, "B", &api.KVPair{Key: kc, Value: []byte("3")})
	put(e.b, "B", &api.KVPair{Key: kd}) // empty value: stored as null

	if p, m := get(e.b, "B", pre+"missing"); p != nil {
		failf("B.Get(%smissing) = %s; want not found", pre, describePair(p))
	} else if m.LastIndex == 0 {
		failf("B.Get(%smissing): X-Consul-Index 0 on a 404", pre)
	}

	all, lm := list(e.b, "B", pre)
	got := make([]string, 0, len(all))
	for _, p := range all {
		got = append(got, p.Key+"="+string(p.Value))
	}
	want := []string{ka + "=1b", kb + "=2", kc + "=3", kd + "="}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		failf("B.List(%s) = %s; want keys and values %v in key order", pre, describePairs(all), want)
	}
	if all[3].Value != nil {
		failf("B.List(%s): the empty value of %s came back as %q, want null", pre, kd, all[3].Value)
	}

	if k := keys(e.a, "A", pre, "/"); strings.Join(k, ",") != strings.Join([]string{ka, kb, pre + "sub/"}, ",") {
		failf("A.Keys(%s, \"/\") = %q; want [%s %s %ssub/]", pre, k, ka, kb, pre)
	}
	if k := keys(e.a, "A", pre, ""); strings.Join(k, ",") != strings.Join([]string{ka, kb, kc, kd}, ",") {
		failf("A.Keys(%s, \"\") = %q; want [%s %s %s %s]", pre, k, ka, kb, kc, kd)
	}

	must("A.KV().Delete("+ka+")", func() (*api.WriteMeta, error) { return e.a.KV().Delete(ka, nil) })
	if p, _ := get(e.b, "B", ka); p != nil {
		failf("B.Get(%s) after Delete = %s; want not found", ka, describePair(p))
	}

	// Deleting the newest keys of the prefix still raises the prefix's index (tombstones).
	must("A.KV().DeleteTree("+pre+"sub/)", func() (*api.WriteMeta, error) { return e.a.KV().DeleteTree(pre+"sub/", nil) })
	rest, lm2 := list(e.b, "B", pre)
	if len(rest) != 1 || rest[0].Key != kb || string(rest[0].Value) != "2" {
		failf("B.List(%s) after Delete and DeleteTree = %s; want only %s=2", pre, describePairs(rest), kb)
	}
	if lm2.LastIndex <= lm.LastIndex {
		failf("B.List(%s): X-Consul-Index %d after the deletes, %d before; a delete must raise it", pre, lm2.LastIndex, lm.LastIndex)
	}
	if k := keys(e.b, "B", pre+"sub/", ""); len(k) != 0 {
		failf("B.Keys(%ssub/) after DeleteTree = %q; want none", pre, k)
	}
	if sub, _ := list(e.b, "B", pre+"sub/"); len(sub) != 0 {
		failf("B.List(%ssub/) after DeleteTree = %s; want none", pre, describePairs(sub))
	}
	rep.pass("kv_crud")
}

func stepKVCas(e *env) {
	k := e.prefix + "/cas/k"
	put(e.a, "A", &api.KVPair{Key: k, Value: []byte("v1")})
	p, _ := get(e.b, "B", k)
	expectValue(p, "B.Get("+k+")", "v1", 0)
	idx := p.ModifyIndex
	if idx < 2 {
		failf("B.Get(%s): ModifyIndex %d; index 1 is reserved, a user write is above it", k, idx)
	}

	cas := func(c *api.Client, who string, pair *api.KVPair) bool {
		return must(fmt.Sprintf("%s.KV().CAS(%s, index %d)", who, pair.Key, pair.ModifyIndex), func() (bool, error) {
			ok, _, err := c.KV().CAS(pair, nil)
			return ok, err
		})
	}
	if cas(e.b, "B", &api.KVPair{Key: k, Value: []byte("wrong"), ModifyIndex: idx - 1}) {
		failf("CAS with the stale index %d (current %d) succeeded", idx-1, idx)
	}
	if cas(e.b, "B", &api.KVPair{Key: k, Value: []byte("wrong"), ModifyIndex: 0}) {
		failf("CAS with index 0 (create only) on an existing key succeeded")
	}
	if p, _ := get(e.a, "A", k); p == nil || string(p.Value) != "v1" || p.ModifyIndex != idx {
		failf("after two refused CAS writes A.Get(%s) = %s; want v1 at ModifyIndex %d", k, describePair(p), idx)
	}
	if !cas(e.b, "B", &api.KVPair{Key: k, Value: []byte("v2"), ModifyIndex: idx}) {
		failf("CAS with the current index %d returned false", idx)
	}
	p2, _ := get(e.a, "A", k)
	expectValue(p2, "A.Get("+k+") after the CAS", "v2", 0)
	if p2.ModifyIndex <= idx {
		failf("after the CAS A.Get(%s) = %s; want ModifyIndex > %d", k, describePair(p2), idx)
	}

	fresh := e.prefix + "/cas/new"
	if !cas(e.a, "A", &api.KVPair{Key: fresh, Value: []byte("n"), ModifyIndex: 0}) {
		failf("CAS with index 0 on the absent key %s returned false", fresh)
	}
	if p, _ := get(e.b, "B", fresh); p == nil || string(p.Value) != "n" {
		failf("B.Get(%s) after the create-only CAS = %s; want n", fresh, describePair(p))
	}

	delCAS := func(pair *api.KVPair) bool {
		return must(fmt.Sprintf("A.KV().DeleteCAS(%s, index %d)", pair.Key, pair.ModifyIndex), func() (bool, error) {
			ok, _, err := e.a.KV().DeleteCAS(pair, nil)
			return ok, err
		})
	}
	if delCAS(&api.KVPair{Key: k, ModifyIndex: idx}) {
		failf("DeleteCAS with the stale index %d (current %d) succeeded", idx, p2.ModifyIndex)
	}
	if p, _ := get(e.b, "B", k); p == nil || string(p.Value) != "v2" {
		failf("after the refused DeleteCAS B.Get(%s) = %s; want v2", k, describePair(p))
	}
	if !delCAS(&api.KVPair{Key: k, ModifyIndex: p2.ModifyIndex}) {
		failf("DeleteCAS with the current index %d returned false", p2.ModifyIndex)
	}
	if p, _ := get(e.b, "B", k); p != nil {
		failf("after DeleteCAS B.Get(%s) = %s; want not found", k, describePair(p))
	}
	rep.pass("kv_cas")
}

func stepBlocking(e *env) {
	k := e.prefix + "/blk/k"
	pre := e.prefix + "/blk/"
	put(e.a, "A", &api.KVPair{Key: k, Value: []byte("v1")})
	_, m := get(e.b, "B", k)
	idx := m.LastIndex

	// 1. A blocking Get wakes on a Put made (through the other node) while it waits.
	go func() {
		time.Sleep(time.Second)
		if _, err := call("A.KV().Put (writer goroutine)", func() (*api.WriteMeta, error) {
			return e.a.KV().Put(&api.KVPair{Key: k, Value: []byte("v2")}, nil)
		}); err != nil {
			failf("writer goroutine: A.KV().Put(%s): %v", k, err)
		}
	}()
	type r struct {
		p *api.KVPair
		m *api.QueryMeta
	}
	t0 := time.Now()
	got, err := callT("B.KV().Get(wait 20s)", 25*time.Second, func() (r, error) {
		p, m, err := e.b.KV().Get(k, &api.QueryOptions{WaitIndex: idx, WaitTime: 20 * time.Second})
		return r{p, m}, err
	})
	took := time.Since(t0)
	if err != nil {
		failf("B.KV().Get(%s, index %d, wait 20s): %v", k, idx, err)
	}
	logf("blocking Get on index %d returned after %s: %s, index %d", idx, took.Round(time.Millisecond), describePair(got.p), got.m.LastIndex)
	if took < 700*time.Millisecond {
		failf("B.Get(%s, index %d) returned after %s, before the Put at 1s (did not block); got %s", k, idx, took, describePair(got.p))
	}
	if took > 10*time.Second {
		failf("B.Get(%s, index %d) returned after %s: it did not wake on the Put at 1s", k, idx, took)
	}
	if got.p == nil || string(got.p.Value) != "v2" || got.m.LastIndex <= idx || got.m.LastIndex != got.p.ModifyIndex {
		failf("B.Get(%s, index %d) woke with %s, X-Consul-Index %d; want v2 with a higher index equal to its ModifyIndex", k, idx, describePair(got.p), got.m.LastIndex)
	}

	// 2. A blocking Get on an unchanged key times out after its wait and returns the same index.
	idx2 := got.m.LastIndex
	t0 = time.Now()
	got2, err := callT("B.KV().Get(wait 1s)", 10*time.Second, func() (r, error) {
		p, m, err := e.b.KV().Get(k, &api.QueryOptions{WaitIndex: idx2, WaitTime: time.Second})
		return r{p, m}, err
	})
	took = time.Since(t0)
	if err != nil {
		failf("B.KV().Get(%s, index %d, wait 1s): %v", k, idx2, err)
	}
	logf("blocking Get on unchanged index %d returned after %s with index %d", idx2, took.Round(time.Millisecond), got2.m.LastIndex)
	if took < 900*time.Millisecond || took > 4*time.Second {
		failf("B.Get(%s, index %d, wait 1s) on an unchanged key returned after %s; want the 1s wait (+ up to 1/16 jitter)", k, idx2, took)
	}
	if got2.m.LastIndex != idx2 || got2.p == nil || string(got2.p.Value) != "v2" {
		failf("B.Get(%s, index %d, wait 1s) timed out with %s, X-Consul-Index %d; want v2 and the same index", k, idx2, describePair(got2.p), got2.m.LastIndex)
	}

	// 3. A blocking List on the prefix wakes when a key under it is deleted (tombstone index).
	_, lm := list(e.b, "B", pre)
	go func() {
		time.Sleep(500 * time.Millisecond)
		if _, err := call("A.KV().Delete (writer goroutine)", func() (*api.WriteMeta, error) { return e.a.KV().Delete(k, nil) }); err != nil {
			failf("writer goroutine: A.KV().Delete(%s): %v", k, err)
		}
	}()
	type lr struct {
		p api.KVPairs
		m *api.QueryMeta
	}
	t0 = time.Now()
	got3, err := callT("B.KV().List(wait 20s)", 25*time.Second, func() (lr, error) {
		p, m, err := e.b.KV().List(pre, &api.QueryOptions{WaitIndex: lm.LastIndex, WaitTime: 20 * time.Second})
		return lr{p, m}, err
	})
	took = time.Since(t0)
	if err != nil {
		failf("B.KV().List(%s, index %d, wait 20s): %v", pre, lm.LastIndex, err)
	}
	if took > 10*time.Second || len(got3.p) != 0 || got3.m.LastIndex <= lm.LastIndex {
		failf("B.List(%s, index %d) after the only key was deleted at 0.5s: returned after %s with %s, X-Consul-Index %d; want an empty list and a higher index promptly",
			pre, lm.LastIndex, took, describePairs(got3.p), got3.m.LastIndex)
	}
	rep.pass("blocking")
}

func stepTxn(e *env) {
	ka, kb, kc := e.prefix+"/txn/a", e.prefix+"/txn/b", e.prefix+"/txn/c"
	type r struct {
		ok   bool
		resp *api.TxnResponse
	}
	txn := func(c *api.Client, who string, ops api.TxnOps) r {
		return must(who+".Txn().Txn", func() (r, error) {
			ok, resp, _, err := c.Txn().Txn(ops, nil)
			return r{ok, resp}, err
		})
	}

	// Success: two sets and a get in one transaction.
	res := txn(e.a, "A", api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVSet, Key: ka, Value: []byte("1")}},
		{KV: &api.KVTxnOp{Verb: api.KVSet, Key: kb, Value: []byte("2"), Flags: 7}},
		{KV: &api.KVTxnOp{Verb: api.KVGet, Key: ka}},
	})
	if !res.ok || res.resp == nil || len(res.resp.Errors) != 0 {
		failf("Txn [set a, set b, get a] ok=%v errors=%s; want ok", res.ok, describeTxnErrors(res.resp))
	}
	if n := len(res.resp.Results); n != 3 {
		failf("Txn [set a, set b, get a] returned %d results; want 3", n)
	}
	for i, want := range []string{ka, kb, ka} {
		if res.resp.Results[i] == nil || res.resp.Results[i].KV == nil || res.resp.Results[i].KV.Key != want {
			failf("Txn result %d = %+v; want the KV entry of %s", i, res.resp.Results[i], want)
		}
	}
	if g := res.resp.Results[2].KV; string(g.Value) != "1" || g.ModifyIndex == 0 {
		failf("Txn get result = %s; want Value 1 with its ModifyIndex", describePair(g))
	}
	pb, _ := get(e.b, "B", kb)
	expectValue(pb, "B.Get("+kb+") after the txn", "2", 7)
	pa, _ := get(e.b, "B", ka)
	expectValue(pa, "B.Get("+ka+") after the txn", "1", 0)

	// Failure: a cas with a stale index rolls back the whole transaction (409 -> ok=false + Errors).
	stale := pa.ModifyIndex - 1
	res = txn(e.b, "B", api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVSet, Key: kc, Value: []byte("3")}},
		{KV: &api.KVTxnOp{Verb: api.KVCAS, Key: ka, Value: []byte("x"), Index: stale}},
	})
	if res.ok {
		failf("Txn [set c, cas a with stale index %d (current %d)] succeeded", stale, pa.ModifyIndex)
	}
	if res.resp == nil || len(res.resp.Errors) == 0 {
		failf("Txn with a stale cas: ok=false but no Errors in the 409 body (%+v)", res.resp)
	}
	found := false
	for _, te := range res.resp.Errors {
		if te != nil && te.OpIndex == 1 && te.What != "" {
			found = true
		}
	}
	if !found {
		failf("Txn with a stale cas: Errors %s; want one for OpIndex 1 with a message", describeTxnErrors(res.resp))
	}
	if len(res.resp.Results) != 0 {
		failf("Txn with a stale cas: Results %d entries; want none on a rollback", len(res.resp.Results))
	}
	logf("rolled-back txn errors: %s", describeTxnErrors(res.resp))
	if p, _ := get(e.a, "A", kc); p != nil {
		failf("after the rolled-back txn A.Get(%s) = %s; want not found (all or nothing)", kc, describePair(p))
	}
	if p, _ := get(e.a, "A", ka); p == nil || string(p.Value) != "1" || p.ModifyIndex != pa.ModifyIndex {
		failf("after the rolled-back txn A.Get(%s) = %s; want 1 at ModifyIndex %d", ka, describePair(p), pa.ModifyIndex)
	}
	rep.pass("txn")
}

func describeTxnErrors(resp *api.TxnResponse) string {
	if resp == nil {
		return "<no body>"
	}
	parts := []string{}
	for _, e := range resp.Errors {
		if e != nil {
			parts = append(parts, fmt.Sprintf("{OpIndex=%d What=%q}", e.OpIndex, e.What))
		}
	}
	sort.Strings(parts)
	return "[" + strings.Join(parts, ", ") + "]"
}
