package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
)

func sessionInfo(c *api.Client, who, id string) *api.SessionEntry {
	return must(fmt.Sprintf("%s.Session().Info(%s)", who, id), func() (*api.SessionEntry, error) {
		s, m, err := c.Session().Info(id, nil)
		if err == nil && (m == nil || m.LastIndex == 0) {
			err = fmt.Errorf("X-Consul-Index missing or 0 (%+v)", m)
		}
		return s, err
	})
}

func describeSession(s *api.SessionEntry) string {
	if s == nil {
		return "<none>"
	}
	return fmt.Sprintf("{ID=%s Name=%q Node=%q LockDelay=%s Behavior=%q TTL=%q NodeChecks=%v Checks=%v}",
		s.ID, s.Name, s.Node, s.LockDelay, s.Behavior, s.TTL, s.NodeChecks, s.Checks)
}

// ---------------------------------------------------------------------------------------------
// session_ttl: started first, checked last, so that its wait overlaps the other steps.

type ttlSession struct {
	id      string
	key     string
	created time.Time
}

const sessionTTLDeadline = 30 * time.Second

func startSessionTTL(e *env) *ttlSession {
	key := e.prefix + "/ttl/k"
	created := time.Now()
	id := must("A.Session().Create(TTL 10s, Behavior delete)", func() (string, error) {
		id, _, err := e.a.Session().Create(&api.SessionEntry{Name: e.prefix + "-ttl", TTL: "10s", Behavior: api.SessionBehaviorDelete}, nil)
		return id, err
	})
	s := sessionInfo(e.b, "B", id)
	if s == nil || s.ID != id || s.TTL != "10s" || s.Behavior != api.SessionBehaviorDelete || s.Name != e.prefix+"-ttl" {
		failf("B.Session().Info(%s) right after Create = %s; want TTL 10s, Behavior delete, Name %s-ttl", id, describeSession(s), e.prefix)
	}
	if s.LockDelay != 15*time.Second {
		failf("B.Session().Info(%s).LockDelay = %s; want the default 15s (as integer nanoseconds)", id, s.LockDelay)
	}
	// A key held by the session: Behavior delete removes it when the session expires.
	ok := must("A.KV().Acquire("+key+")", func() (bool, error) {
		ok, _, err := e.a.KV().Acquire(&api.KVPair{Key: key, Value: []byte("ephemeral"), Session: id}, nil)
		return ok, err
	})
	if !ok {
		failf("A.KV().Acquire(%s) with the fresh session %s returned false", key, id)
	}
	if p, _ := get(e.b, "B", key); p == nil || p.Session != id || p.LockIndex != 1 || string(p.Value) != "ephemeral" {
		failf("B.Get(%s) after Acquire = %s; want Session %s, LockIndex 1", key, describePair(p), id)
	}
	logf("session %s (TTL 10s, never renewed) created; checked at the end", id)
	return &ttlSession{id: id, key: key, created: created}
}

func (t *ttlSession) finish(e *env) {
	elapsed := time.Since(t.created)
	logf("session_ttl: %s since the session was created", elapsed.Round(time.Millisecond))
	ok, last := poll(sessionTTLDeadline-elapsed, func() (bool, string) {
		s, err := call("B.Session().Info", func() (*api.SessionEntry, error) {
			s, _, err := e.b.Session().Info(t.id, nil)
			return s, err
		})
		if err != nil {
			return false, err.Error()
		}
		return s == nil, describeSession(s)
	})
	if !ok {
		failf("the session %s with TTL 10s, never renewed, is still listed by Session().Info %s after its creation: %s",
			t.id, time.Since(t.created).Round(time.Millisecond), last)
	}
	gone := time.Since(t.created)
	if gone < 10*time.Second {
		failf("the session %s with TTL 10s was gone after only %s", t.id, gone)
	}
	logf("session %s gone after at most %s", t.id, gone.Round(time.Millisecond))
	if p, _ := get(e.b, "B", t.key); p != nil {
		failf("the session %s (Behavior delete) expired but the key it held is still there: %s", t.id, describePair(p))
	}
	// Renewing an expired session: 404, which the Go client maps to a nil entry.
	s, err := call("A.Session().Renew", func() (*api.SessionEntry, error) {
		s, _, err := e.a.Session().Renew(t.id, nil)
		return s, err
	})
	if err != nil || s != nil {
		failf("A.Session().Renew(%s) of the expired session = %s, %v; want nil, nil (404)", t.id, describeSession(s), err)
	}
}

// ---------------------------------------------------------------------------------------------
// lock: api.Lock with two contenders.

func stepLock(e *env) {
	key := e.prefix + "/lock"
	holderSess := must("A.Session().Create(LockDelay 2s)", func() (string, error) {
		id, _, err := e.a.Session().Create(&api.SessionEntry{Name: e.prefix + "-holder", LockDelay: 2 * time.Second}, nil)
		return id, err
	})
	if s := sessionInfo(e.b, "B", holderSess); s == nil || s.LockDelay != 2*time.Second || s.Behavior != api.SessionBehaviorRelease {
		failf("B.Session().Info(%s) = %s; want LockDelay 2s, Behavior release", holderSess, describeSession(s))
	}

	holder := must("A.LockOpts", func() (*api.Lock, error) {
		return e.a.LockOpts(&api.LockOptions{Key: key, Value: []byte("holder"), Session: holderSess})
	})
	holderLost := must("holder.Lock()", func() (<-chan struct{}, error) { return holder.Lock(nil) })
	if holderLost == nil {
		failf("holder.Lock() returned no lock")
	}
	p, _ := get(e.b, "B", key)
	if p == nil || p.Session != holderSess || p.Flags != api.LockFlagValue || p.LockIndex != 1 || string(p.Value) != "holder" {
		failf("B.Get(%s) while A holds the lock = %s; want Session %s, Flags %d, LockIndex 1, Value holder", key, describePair(p), holderSess, api.LockFlagValue)
	}

	// The contender creates its own session (TTL 15s, renewed by the client) and blocks.
	contender := must("B.LockOpts", func() (*api.Lock, error) {
		return e.b.LockOpts(&api.LockOptions{Key: key, Value: []byte("contender")})
	})
	type lockResult struct {
		lost <-chan struct{}
		err  error
		at   time.Time
	}
	acquired := make(chan lockResult, 1)
	stop := make(chan struct{})
	go func() {
		lost, err := contender.Lock(stop)
		acquired <- lockResult{lost, err, time.Now()}
	}()
	select {
	case r := <-acquired:
		failf("contender.Lock() returned while the holder has the lock: lost-channel %v, err %v", r.lost != nil, r.err)
	case <-time.After(2 * time.Second):
	}
	if p, _ := get(e.a, "A", key); p == nil || p.Session != holderSess {
		failf("the lock moved while the contender waited: %s; want Session %s", describePair(p), holderSess)
	}

	// Destroying the holder's session releases the key; after the 2 s lock-delay the contender
	// gets it (the client retries every 5 s after a refusal, so this takes about 5 s).
	destroyed := time.Now()
	must("A.Session().Destroy(holder)", func() (*api.WriteMeta, error) { return e.a.Session().Destroy(holderSess, nil) })
	var r lockResult
	select {
	case r = <-acquired:
	case <-time.After(15 * time.Second):
		close(stop)
		p, _ := get(e.b, "B", key)
		failf("contender did not acquire the lock within 15s of destroying the holder's session; key now %s", describePair(p))
	}
	if r.err != nil || r.lost == nil {
		failf("contender.Lock() = lost-channel %v, err %v; want the lock", r.lost != nil, r.err)
	}
	waited := r.at.Sub(destroyed)
	logf("contender acquired the lock %s after the holder's session was destroyed", waited.Round(time.Millisecond))
	if waited < 1800*time.Millisecond {
		failf("contender acquired the lock %s after the holder's session was destroyed; the session's 2s lock-delay was not applied", waited)
	}
	select {
	case <-holderLost:
	case <-time.After(5 * time.Second):
		failf("the holder's lost-lock channel was not closed within 5s of its session being destroyed")
	}
	p2, _ := get(e.a, "A", key)
	if p2 == nil || p2.Session == "" || p2.Session == holderSess || p2.LockIndex != 2 || string(p2.Value) != "contender" || p2.CreateIndex != p.CreateIndex {
		failf("A.Get(%s) after the hand-over = %s; want the contender's session, LockIndex 2, Value contender, CreateIndex %d", key, describePair(p2), p.CreateIndex)
	}

	must("contender.Unlock()", func() (struct{}, error) { return struct{}{}, contender.Unlock() })
	if p, _ := get(e.b, "B", key); p == nil || p.Session != "" || p.LockIndex != 2 {
		failf("B.Get(%s) after Unlock = %s; want no Session, LockIndex 2", key, describePair(p))
	}
	must("contender.Destroy()", func() (struct{}, error) { return struct{}{}, contender.Destroy() })
	if p, _ := get(e.b, "B", key); p != nil {
		failf("B.Get(%s) after Lock.Destroy = %s; want not found", key, describePair(p))
	}
	rep.pass("lock")
}

// ---------------------------------------------------------------------------------------------
// semaphore: limit 2, three contenders.

func stepSemaphore(e *env) {
	prefix := e.prefix + "/sema"
	newSem := func(c *api.Client, who string) *api.Semaphore {
		return must(who+".SemaphorePrefix", func() (*api.Semaphore, error) { return c.SemaphorePrefix(prefix, 2) })
	}
	s1, s2, s3 := newSem(e.a, "A"), newSem(e.b, "B"), newSem(e.a, "A")
	acquire := func(s *api.Semaphore, who string) {
		lost, err := callT(who+".Acquire()", 15*time.Second, func() (<-chan struct{}, error) { return s.Acquire(nil) })
		if err != nil || lost == nil {
			failf("%s.Acquire() = lost-channel %v, err %v; want a slot", who, lost != nil, err)
		}
	}
	acquire(s1, "s1")
	acquire(s2, "s2")
	holders := func() (int, []string) {
		p, _ := get(e.b, "B", prefix+"/.lock")
		if p == nil {
			failf("B.Get(%s/.lock) = not found; the semaphore's lock entry is missing", prefix)
		}
		if p.Flags != api.SemaphoreFlagValue {
			failf("B.Get(%s/.lock).Flags = %d; want %d (u64 above i64::MAX)", prefix, p.Flags, uint64(api.SemaphoreFlagValue))
		}
		var l struct {
			Limit   int
			Holders map[string]bool
		}
		if err := json.Unmarshal(p.Value, &l); err != nil {
			failf("B.Get(%s/.lock) value %q: %v", prefix, p.Value, err)
		}
		ids := make([]string, 0, len(l.Holders))
		for id := range l.Holders {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		return l.Limit, ids
	}
	if limit, ids := holders(); limit != 2 || len(ids) != 2 {
		failf("semaphore lock entry: Limit %d, holders %v; want 2 and 2", limit, ids)
	}

	type result struct {
		lost <-chan struct{}
		err  error
	}
	third := make(chan result, 1)
	stop := make(chan struct{})
	go func() {
		lost, err := s3.Acquire(stop)
		third <- result{lost, err}
	}()
	select {
	case r := <-third:
		failf("the third contender's Acquire() returned while two hold the limit-2 semaphore: lost-channel %v, err %v", r.lost != nil, r.err)
	case <-time.After(2 * time.Second):
	}
	must("s1.Release()", func() (struct{}, error) { return struct{}{}, s1.Release() })
	released := time.Now()
	select {
	case r := <-third:
		if r.err != nil || r.lost == nil {
			failf("the third contender's Acquire() = lost-channel %v, err %v; want a slot", r.lost != nil, r.err)
		}
	case <-time.After(10 * time.Second):
		close(stop)
		_, ids := holders()
		failf("the third contender did not get the slot within 10s of s1.Release(); holders %v", ids)
	}
	logf("third contender acquired %s after s1.Release()", time.Since(released).Round(time.Millisecond))
	if limit, ids := holders(); limit != 2 || len(ids) != 2 {
		failf("semaphore lock entry after the hand-over: Limit %d, holders %v; want 2 and 2", limit, ids)
	}
	must("s2.Release()", func() (struct{}, error) { return struct{}{}, s2.Release() })
	must("s3.Release()", func() (struct{}, error) { return struct{}{}, s3.Release() })
	if _, ids := holders(); len(ids) != 0 {
		failf("semaphore holders after every release: %v; want none", ids)
	}
	// Release deleted each contender entry; Destroy deletes the lock entry now that nobody holds a
	// slot, which leaves the prefix empty.
	must("s3.Destroy()", func() (struct{}, error) { return struct{}{}, s3.Destroy() })
	if rest := keys(e.b, "B", prefix+"/", ""); len(rest) != 0 {
		failf("keys left under %s/ after every Release and Destroy: %s; want none", prefix, strings.Join(rest, ","))
	}
	rep.pass("semaphore")
}
