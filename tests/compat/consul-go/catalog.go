package main

import (
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
)

// Agent registrations reach the catalog through the agent (in Consul by anti-entropy, normally
// at once); catalog and health reads of a fresh registration are retried for up to visibleWithin.
const visibleWithin = 10 * time.Second

const (
	ttlSvcPort    = 9001
	ttlSvcAddress = "10.0.0.7"
)

func ttlSvcNames(e *env) (name, id, checkID string) {
	name = e.prefix + "-ttl-svc"
	id = name + "-1"
	return name, id, "service:" + id
}

func healthService(c *api.Client, who, name, tag string, passing bool) ([]*api.ServiceEntry, error) {
	return call(fmt.Sprintf("%s.Health().Service(%s, %q, passing=%v)", who, name, tag, passing), func() ([]*api.ServiceEntry, error) {
		es, m, err := c.Health().Service(name, tag, passing, nil)
		if err == nil && (m == nil || m.LastIndex == 0) {
			err = fmt.Errorf("X-Consul-Index missing or 0 (%+v)", m)
		}
		return es, err
	})
}

func catalogService(c *api.Client, who, name, tag string) ([]*api.CatalogService, error) {
	return call(fmt.Sprintf("%s.Catalog().Service(%s, %q)", who, name, tag), func() ([]*api.CatalogService, error) {
		cs, m, err := c.Catalog().Service(name, tag, nil)
		if err == nil && (m == nil || m.LastIndex == 0) {
			err = fmt.Errorf("X-Consul-Index missing or 0 (%+v)", m)
		}
		return cs, err
	})
}

func catalogServices(c *api.Client, who string) (map[string][]string, error) {
	return call(who+".Catalog().Services()", func() (map[string][]string, error) {
		s, m, err := c.Catalog().Services(nil)
		if err == nil && (m == nil || m.LastIndex == 0) {
			err = fmt.Errorf("X-Consul-Index missing or 0 (%+v)", m)
		}
		return s, err
	})
}

func describeEntries(es []*api.ServiceEntry) string {
	parts := []string{}
	for _, e := range es {
		if e == nil || e.Service == nil {
			parts = append(parts, "<nil>")
			continue
		}
		node := "<nil>"
		if e.Node != nil {
			node = e.Node.Node
		}
		checks := []string{}
		for _, c := range e.Checks {
			if c != nil {
				checks = append(checks, c.CheckID+"="+c.Status)
			}
		}
		parts = append(parts, fmt.Sprintf("{Node=%s ID=%s Service=%s Address=%s Port=%d Tags=%v Meta=%v Checks=%v}",
			node, e.Service.ID, e.Service.Service, e.Service.Address, e.Service.Port, e.Service.Tags, e.Service.Meta, checks))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func describeCatalog(cs []*api.CatalogService) string {
	parts := []string{}
	for _, c := range cs {
		if c == nil {
			parts = append(parts, "<nil>")
			continue
		}
		parts = append(parts, fmt.Sprintf("{Node=%s Address=%s ServiceID=%s ServiceName=%s ServiceAddress=%s ServicePort=%d ServiceTags=%v ServiceMeta=%v}",
			c.Node, c.Address, c.ServiceID, c.ServiceName, c.ServiceAddress, c.ServicePort, c.ServiceTags, c.ServiceMeta))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func checkStatus(e *api.ServiceEntry, checkID string) string {
	for _, c := range e.Checks {
		if c != nil && c.CheckID == checkID {
			return c.Status
		}
	}
	return "<no such check>"
}

// waitHealth polls Health().Service until ok accepts the entries.
func waitHealth(c *api.Client, who, name string, passing bool, what string, ok func([]*api.ServiceEntry) bool) []*api.ServiceEntry {
	var got []*api.ServiceEntry
	done, last := poll(visibleWithin, func() (bool, string) {
		es, err := healthService(c, who, name, "", passing)
		if err != nil {
			return false, err.Error()
		}
		got = es
		return ok(es), describeEntries(es)
	})
	if !done {
		failf("%s.Health().Service(%s, passing=%v): %s not seen within %s; last %s", who, name, passing, what, visibleWithin, last)
	}
	return got
}

// watch runs a blocking query the way Consul watchers do (Prometheus, Traefik, Spring): query with
// the last index and a 20 s wait, again with the returned index after a wakeup that does not show
// the wanted state, until it does or `within` has passed. Since each wait is longer than `within`,
// success means the server woke a blocked query on the change.
func watch(what string, start uint64, within time.Duration, query func(index uint64) (ok bool, next uint64, observed string, err error)) {
	deadline := time.Now().Add(within)
	index, last, rounds := start, "nothing", 0
	for time.Now().Before(deadline) {
		rounds++
		ok, next, observed, err := query(index)
		if err != nil {
			failf("%s: blocking query (index %d): %v", what, index, err)
		}
		last = observed
		if ok {
			logf("%s: seen after %d blocking round(s)", what, rounds)
			return
		}
		if next < index {
			next = 0 // the index went backwards: start over, as the Go watch package does
		}
		index = next
	}
	failf("%s: not seen within %s through blocking queries from index %d; last %s", what, within, start, last)
}

func later(d time.Duration, what string, fn func() error) {
	go func() {
		time.Sleep(d)
		if _, err := call(what, func() (struct{}, error) { return struct{}{}, fn() }); err != nil {
			failf("%s: %v", what, err)
		}
	}()
}

func stepAgentTTL(e *env) {
	name, id, checkID := ttlSvcNames(e)
	reg := &api.AgentServiceRegistration{
		ID:      id,
		Name:    name,
		Tags:    []string{"v1"},
		Port:    ttlSvcPort,
		Address: ttlSvcAddress,
		Meta:    map[string]string{"k": "v"},
		Check:   &api.AgentServiceCheck{TTL: "30s"},
	}
	must("A.Agent().ServiceRegister("+id+")", func() (struct{}, error) { return struct{}{}, e.a.Agent().ServiceRegister(reg) })

	svcs := must("A.Agent().Services()", func() (map[string]*api.AgentService, error) { return e.a.Agent().Services() })
	if s := svcs[id]; s == nil || s.Service != name || s.Port != ttlSvcPort || s.Address != ttlSvcAddress {
		failf("A.Agent().Services()[%s] = %+v; want Service %s, Port %d, Address %s", id, s, name, ttlSvcPort, ttlSvcAddress)
	}
	checks := must("A.Agent().Checks()", func() (map[string]*api.AgentCheck, error) { return e.a.Agent().Checks() })
	if c := checks[checkID]; c == nil || c.ServiceID != id || c.Status != api.HealthCritical {
		failf("A.Agent().Checks()[%s] = %+v; want the service's TTL check, critical until its first pass", checkID, c)
	}

	// A TTL check starts critical: listed without passing, not with passing=true.
	mine := func(es []*api.ServiceEntry, status string) bool {
		return len(es) == 1 && es[0].Service != nil && es[0].Service.ID == id && es[0].Service.Port == ttlSvcPort &&
			checkStatus(es[0], checkID) == status
	}
	waitHealth(e.b, "B", name, false, "the instance with its check critical", func(es []*api.ServiceEntry) bool { return mine(es, api.HealthCritical) })
	type hr struct {
		es []*api.ServiceEntry
		m  *api.QueryMeta
	}
	h := must("B.Health().Service(passing=true)", func() (hr, error) {
		es, m, err := e.b.Health().Service(name, "", true, nil)
		return hr{es, m}, err
	})
	if len(h.es) != 0 {
		failf("B.Health().Service(%s, passing=true) before the first TTL pass = %s; want empty", name, describeEntries(h.es))
	}

	// B watches the passing instances with a blocking query; A's TTL pass wakes it.
	later(500*time.Millisecond, "A.Agent().UpdateTTL(pass)", func() error {
		return e.a.Agent().UpdateTTL(checkID, "all good", api.HealthPassing)
	})
	var es []*api.ServiceEntry
	watch("B's blocking Health().Service(passing=true) after UpdateTTL(pass)", h.m.LastIndex, visibleWithin, func(index uint64) (bool, uint64, string, error) {
		r, err := callT("B.Health().Service(blocking)", 25*time.Second, func() (hr, error) {
			es, m, err := e.b.Health().Service(name, "", true, &api.QueryOptions{WaitIndex: index, WaitTime: 20 * time.Second})
			return hr{es, m}, err
		})
		if err != nil {
			return false, 0, "", err
		}
		es = r.es
		return mine(r.es, api.HealthPassing), r.m.LastIndex, describeEntries(r.es), nil
	})
	for _, c := range es[0].Checks {
		if c != nil && c.Status != api.HealthPassing {
			failf("B.Health().Service(%s, passing=true) lists an entry with a %s check %s", name, c.Status, c.CheckID)
		}
	}
	if es[0].Node == nil || es[0].Node.Node == "" {
		failf("B.Health().Service(%s) entry has no Node: %s", name, describeEntries(es))
	}

	must("A.Agent().UpdateTTL(fail)", func() (struct{}, error) {
		return struct{}{}, e.a.Agent().UpdateTTL(checkID, "broken", api.HealthCritical)
	})
	waitHealth(e.b, "B", name, true, "an empty list after UpdateTTL(fail)", func(es []*api.ServiceEntry) bool { return len(es) == 0 })
	waitHealth(e.b, "B", name, false, "the instance with its check critical after UpdateTTL(fail)", func(es []*api.ServiceEntry) bool { return mine(es, api.HealthCritical) })

	// A TTL update of a check that does not exist is an error.
	if _, err := call("A.Agent().UpdateTTL(unknown)", func() (struct{}, error) {
		return struct{}{}, e.a.Agent().UpdateTTL(checkID+"-nope", "", api.HealthPassing)
	}); err == nil {
		failf("A.Agent().UpdateTTL(%s-nope) of an unknown check succeeded", checkID)
	}
	rep.pass("agent_ttl")
}

func stepCatalog(e *env) {
	name, id, _ := ttlSvcNames(e)
	if !e.want("agent_ttl") {
		failf("the catalog step lists the service registered by agent_ttl; run it too (COMPAT_STEPS)")
	}
	var services map[string][]string
	ok, last := poll(visibleWithin, func() (bool, string) {
		s, err := catalogServices(e.b, "B")
		if err != nil {
			return false, err.Error()
		}
		services = s
		_, has := s[name]
		return has, fmt.Sprintf("%d services, %s not among them", len(s), name)
	})
	if !ok {
		failf("B.Catalog().Services() does not list %s within %s: %s", name, visibleWithin, last)
	}
	if tags := services[name]; len(tags) != 1 || tags[0] != "v1" {
		failf("B.Catalog().Services()[%s] = %v; want tags [v1]", name, tags)
	}
	if _, has := services["consul"]; !has {
		failf("B.Catalog().Services() has no \"consul\" service (the server itself); got %v", sortedKeys(services))
	}

	cs, err := catalogService(e.b, "B", name, "")
	if err != nil {
		failf("%v", err)
	}
	if len(cs) != 1 {
		failf("B.Catalog().Service(%s) = %s; want one entry", name, describeCatalog(cs))
	}
	c := cs[0]
	if c.ServiceID != id || c.ServiceName != name || c.ServicePort != ttlSvcPort || c.ServiceAddress != ttlSvcAddress ||
		len(c.ServiceTags) != 1 || c.ServiceTags[0] != "v1" || c.ServiceMeta["k"] != "v" || c.Node == "" || c.Address == "" {
		failf("B.Catalog().Service(%s) = %s; want ServiceID %s, ServicePort %d, ServiceAddress %s, tags [v1], meta k=v, a node with an address",
			name, describeCatalog(cs), id, ttlSvcPort, ttlSvcAddress)
	}
	if cs, err := catalogService(e.a, "A", name, "v1"); err != nil || len(cs) != 1 {
		failf("A.Catalog().Service(%s, tag v1) = %s, %v; want the entry", name, describeCatalog(cs), err)
	}
	if cs, err := catalogService(e.a, "A", name, "nope"); err != nil || len(cs) != 0 {
		failf("A.Catalog().Service(%s, tag nope) = %s, %v; want none", name, describeCatalog(cs), err)
	}
	if cs, err := catalogService(e.a, "A", strings.ToUpper(name), ""); err != nil || len(cs) != 1 || cs[0].ServiceID != id {
		failf("A.Catalog().Service(%s) (service names are case-insensitive) = %s, %v; want the entry", strings.ToUpper(name), describeCatalog(cs), err)
	}

	// The agent's node is the one in its services' catalog entries; the catalog lists the datacenter.
	nodeName := must("A.Agent().NodeName()", func() (string, error) { return e.a.Agent().NodeName() })
	if c.Node != nodeName {
		failf("B.Catalog().Service(%s) entry on node %q; A's agent (/v1/agent/self Config.NodeName) is %q", name, c.Node, nodeName)
	}
	dcs := must("B.Catalog().Datacenters()", func() ([]string, error) { return e.b.Catalog().Datacenters() })
	if len(dcs) == 0 || dcs[0] == "" {
		failf("B.Catalog().Datacenters() = %v; want this datacenter", dcs)
	}

	// B watches the service list with a blocking query (Spring's catalog watch); A's deregister
	// wakes it.
	type sr struct {
		s map[string][]string
		m *api.QueryMeta
	}
	cur := must("B.Catalog().Services()", func() (sr, error) {
		s, m, err := e.b.Catalog().Services(nil)
		return sr{s, m}, err
	})
	later(500*time.Millisecond, "A.Agent().ServiceDeregister("+id+")", func() error { return e.a.Agent().ServiceDeregister(id) })
	watch("B's blocking Catalog().Services() after ServiceDeregister", cur.m.LastIndex, visibleWithin, func(index uint64) (bool, uint64, string, error) {
		r, err := callT("B.Catalog().Services(blocking)", 25*time.Second, func() (sr, error) {
			s, m, err := e.b.Catalog().Services(&api.QueryOptions{WaitIndex: index, WaitTime: 20 * time.Second})
			return sr{s, m}, err
		})
		if err != nil {
			return false, 0, "", err
		}
		_, has := r.s[name]
		return !has, r.m.LastIndex, fmt.Sprintf("%d services, %s listed: %v", len(r.s), name, has), nil
	})
	if cs, err := catalogService(e.b, "B", name, ""); err != nil || len(cs) != 0 {
		failf("B.Catalog().Service(%s) after ServiceDeregister = %s, %v; want empty", name, describeCatalog(cs), err)
	}
	if es, err := healthService(e.b, "B", name, "", false); err != nil || len(es) != 0 {
		failf("B.Health().Service(%s) after ServiceDeregister = %s, %v; want empty", name, describeEntries(es), err)
	}
	rep.pass("catalog")
}

func sortedKeys(m map[string][]string) []string {
	k := make([]string, 0, len(m))
	for n := range m {
		k = append(k, n)
	}
	sort.Strings(k)
	return k
}

// nacos_visible: a service registered by a Nacos client (namespace public, group DEFAULT_GROUP)
// is one of the Consul catalog's services. COMPAT_NACOS_INSTANCE=ip:port and COMPAT_NACOS_META=k=v
// (optional) name the registered instance and a metadata entry it carries.
func stepNacosVisible(e *env) {
	name := os.Getenv("COMPAT_NACOS_SERVICE")
	if name == "" {
		logf("nacos_visible skipped: COMPAT_NACOS_SERVICE is not set (no Nacos-registered service to look for)")
		return
	}
	wantIP, wantPort := "", 0
	if inst := os.Getenv("COMPAT_NACOS_INSTANCE"); inst != "" {
		host, port, err := net.SplitHostPort(inst)
		if err != nil {
			failf("COMPAT_NACOS_INSTANCE=%q: %v", inst, err)
		}
		wantIP = host
		wantPort, _ = strconv.Atoi(port)
	}
	metaK, metaV, hasMeta := strings.Cut(os.Getenv("COMPAT_NACOS_META"), "=")
	hasMeta = hasMeta && metaK != ""

	matchCatalog := func(c *api.CatalogService) bool {
		if c == nil || c.ServiceName != name {
			return false
		}
		if wantIP != "" && (c.ServiceAddress != wantIP || c.ServicePort != wantPort) {
			return false
		}
		return !hasMeta || c.ServiceMeta[metaK] == metaV
	}
	what := fmt.Sprintf("%s %s:%d meta %s=%s", name, wantIP, wantPort, metaK, metaV)
	ok, last := poll(visibleWithin, func() (bool, string) {
		cs, err := catalogService(e.b, "B", name, "")
		if err != nil {
			return false, err.Error()
		}
		return len(cs) == 1 && matchCatalog(cs[0]), describeCatalog(cs)
	})
	if !ok {
		failf("B.Catalog().Service(%s) does not list exactly the Nacos-registered instance (%s) within %s; last %s", name, what, visibleWithin, last)
	}
	if s, err := catalogServices(e.a, "A"); err != nil {
		failf("%v", err)
	} else if _, has := s[name]; !has {
		failf("A.Catalog().Services() does not list the Nacos-registered service %s; got %v", name, sortedKeys(s))
	}
	es := waitHealth(e.a, "A", name, true, "the healthy Nacos-registered instance", func(es []*api.ServiceEntry) bool {
		if len(es) != 1 || es[0].Service == nil || es[0].Service.Service != name {
			return false
		}
		s := es[0].Service
		return wantIP == "" || (s.Address == wantIP && s.Port == wantPort)
	})
	for _, c := range es[0].Checks {
		if c != nil && c.Status != api.HealthPassing {
			failf("A.Health().Service(%s, passing=true) lists the instance with a %s check %s", name, c.Status, c.CheckID)
		}
	}
	// A disabled Nacos instance is listed with a critical check, and not among the passing ones.
	if off := os.Getenv("COMPAT_NACOS_DISABLED_SERVICE"); off != "" {
		critical := func(es []*api.ServiceEntry) bool {
			if len(es) != 1 {
				return false
			}
			for _, c := range es[0].Checks {
				if c != nil && c.Status == api.HealthCritical && c.ServiceName == off {
					return true
				}
			}
			return false
		}
		waitHealth(e.b, "B", off, false, "the disabled Nacos instance with a critical check", critical)
		if es, err := healthService(e.b, "B", off, "", true); err != nil || len(es) != 0 {
			failf("B.Health().Service(%s, passing=true) = %s, %v; a disabled Nacos instance is not passing", off, describeEntries(es), err)
		}
	}
	rep.pass("nacos_visible")
}
