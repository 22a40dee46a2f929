package main

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nacos-group/nacos-sdk-go/v2/clients"
	"github.com/nacos-group/nacos-sdk-go/v2/clients/naming_client"
	"github.com/nacos-group/nacos-sdk-go/v2/common/constant"
	"github.com/nacos-group/nacos-sdk-go/v2/model"
	"github.com/nacos-group/nacos-sdk-go/v2/vo"
)

const (
	clusterName = "DEFAULT"
	instPort    = 8080
)

type namingClient struct {
	name string
	c    naming_client.INamingClient
}

// newNamingClient builds a naming client; unlike the config client it connects (gRPC, up to 3
// attempts) right in the constructor, which is why it is bounded too.
func newNamingClient(e *env, name string, servers []constant.ServerConfig) *namingClient {
	return newNamingClientIn(e, name, "", servers)
}

// newNamingClientIn is newNamingClient in another namespace ("" = public).
func newNamingClientIn(e *env, name, namespace string, servers []constant.ServerConfig) *namingClient {
	c, err := call("NewNamingClient("+name+")", func() (naming_client.INamingClient, error) {
		return clients.NewNamingClient(vo.NacosClientParam{
			ClientConfig:  e.clientConfig(name, namespace),
			ServerConfigs: servers,
		})
	})
	if err != nil {
		failf("cannot create naming client %s: %v", name, err)
	}
	logf("naming client %s created (namespace %q, server %s:%d)", name, namespace, servers[0].IpAddr, servers[0].Port)
	return &namingClient{name: name, c: c}
}

// waitConnected waits for the client's gRPC connection (the constructor tries 3 times, then keeps
// reconnecting in the background).
func (n *namingClient) waitConnected() {
	ok, _ := poll(15*time.Second, func() (bool, string) {
		healthy, _ := call(n.name+".ServerHealthy", func() (bool, error) { return n.c.ServerHealthy(), nil })
		return healthy, ""
	})
	if !ok {
		failf("naming client %s could not connect to its server within 15s", n.name)
	}
}

func (n *namingClient) register(service, ip string) {
	ok, err := call(n.name+".RegisterInstance", func() (bool, error) {
		return n.c.RegisterInstance(vo.RegisterInstanceParam{
			Ip:          ip,
			Port:        instPort,
			Weight:      1,
			Enable:      true,
			Healthy:     true,
			Metadata:    map[string]string{"v": "1"},
			ClusterName: clusterName,
			ServiceName: service,
			GroupName:   defaultGroup,
			Ephemeral:   true,
		})
	})
	if !ok || err != nil {
		failf("%s.RegisterInstance(%s, %s:%d) = %v, %v; want true", n.name, service, ip, instPort, ok, err)
	}
}

func (n *namingClient) deregister(service, ip string) {
	ok, err := call(n.name+".DeregisterInstance", func() (bool, error) {
		return n.c.DeregisterInstance(vo.DeregisterInstanceParam{
			Ip:          ip,
			Port:        instPort,
			Cluster:     clusterName,
			ServiceName: service,
			GroupName:   defaultGroup,
			Ephemeral:   true,
		})
	})
	if !ok || err != nil {
		failf("%s.DeregisterInstance(%s, %s:%d) = %v, %v; want true", n.name, service, ip, instPort, ok, err)
	}
}

// selectAll returns the instances the client knows. Note: the first call for a service subscribes
// to it (SubscribeServiceRequest) and caches the answer; later calls answer from that cache, which
// only server pushes (NotifySubscriberRequest) update.
func (n *namingClient) selectAll(service string) ([]model.Instance, error) {
	return call(n.name+".SelectAllInstances", func() ([]model.Instance, error) {
		return n.c.SelectAllInstances(vo.SelectAllInstancesParam{ServiceName: service, GroupName: defaultGroup})
	})
}

func (n *namingClient) selectHealthy(service string) ([]model.Instance, error) {
	return call(n.name+".SelectInstances", func() ([]model.Instance, error) {
		return n.c.SelectInstances(vo.SelectInstancesParam{ServiceName: service, GroupName: defaultGroup, HealthyOnly: true})
	})
}

func (n *namingClient) close() {
	_, _ = call(n.name+".CloseClient", func() (struct{}, error) { n.c.CloseClient(); return struct{}{}, nil })
}

func describe(insts []model.Instance) string {
	parts := make([]string, 0, len(insts))
	for _, i := range insts {
		parts = append(parts, fmt.Sprintf("%s:%d{cluster=%s healthy=%v enabled=%v weight=%v ephemeral=%v metadata=%v}",
			i.Ip, i.Port, i.ClusterName, i.Healthy, i.Enable, i.Weight, i.Ephemeral, i.Metadata))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// addrs returns the sorted "ip:port" list of insts.
func addrs(insts []model.Instance) string {
	a := make([]string, 0, len(insts))
	for _, i := range insts {
		a = append(a, fmt.Sprintf("%s:%d", i.Ip, i.Port))
	}
	sort.Strings(a)
	return strings.Join(a, ",")
}

// asRegistered checks the attributes the scenario registered with.
func asRegistered(i model.Instance) bool {
	return i.Port == instPort && i.ClusterName == clusterName && i.Healthy && i.Enable &&
		i.Weight == 1 && i.Ephemeral && i.Metadata["v"] == "1"
}

// pushLog records every instance list a Subscribe callback delivered (the SDK calls the callback
// synchronously from the push handler, so it must not block).
type pushLog struct {
	mu     sync.Mutex
	seen   [][]model.Instance
	signal chan struct{}
}

func newPushLog() *pushLog { return &pushLog{signal: make(chan struct{}, 1)} }

func (p *pushLog) callback(insts []model.Instance, err error) {
	logf("subscribe callback: err=%v instances=%s", err, describe(insts))
	if err != nil {
		return
	}
	p.mu.Lock()
	p.seen = append(p.seen, append([]model.Instance(nil), insts...))
	p.mu.Unlock()
	select {
	case p.signal <- struct{}{}:
	default:
	}
}

func (p *pushLog) mark() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.seen)
}

// waitFor waits until a callback delivered at or after index from satisfies ok.
func (p *pushLog) waitFor(from int, within time.Duration, ok func([]model.Instance) bool) (bool, string) {
	deadline := time.Now().Add(within)
	for {
		p.mu.Lock()
		var last string
		for _, s := range p.seen[from:] {
			if ok(s) {
				p.mu.Unlock()
				return true, ""
			}
			last = describe(s)
		}
		n := len(p.seen) - from
		p.mu.Unlock()
		remaining := time.Until(deadline)
		if remaining <= 0 {
			if n == 0 {
				return false, "no callback at all"
			}
			return false, fmt.Sprintf("%d callbacks, last %s", n, last)
		}
		select {
		case <-p.signal:
		case <-time.After(remaining):
		}
	}
}

func runNaming(e *env) {
	svc := e.prefix + "-svc"
	ip1, ip2 := "10.0.0.1", "10.0.0.2"
	addr1, addr2 := fmt.Sprintf("%s:%d", ip1, instPort), fmt.Sprintf("%s:%d", ip2, instPort)

	// Nacos 2.x keeps ONE ephemeral instance per service per client connection: a second
	// RegisterInstance from the same client replaces the first (server side), and this SDK's redo
	// cache also keeps only the last instance per service. So the second instance is registered by a
	// second client A2, also connected only to the first server; "A" below is the pair A + A2.
	rep.begin("setup")
	a := newNamingClient(e, "A", e.first())
	a2 := newNamingClient(e, "A2", e.first())
	b := newNamingClient(e, "B", e.last())
	a.waitConnected()
	a2.waitConnected()
	b.waitConnected()

	// 1. register_list
	rep.begin("register_list")
	a.register(svc, ip1)
	ok, last := poll(10*time.Second, func() (bool, string) {
		all, err := b.selectAll(svc)
		if err != nil {
			return false, fmt.Sprintf("SelectAllInstances error %v", err)
		}
		if len(all) != 1 || all[0].Ip != ip1 || !asRegistered(all[0]) {
			return false, "SelectAllInstances " + describe(all)
		}
		healthy, err := b.selectHealthy(svc)
		if err != nil {
			return false, fmt.Sprintf("SelectInstances(healthy) error %v", err)
		}
		if len(healthy) != 1 || healthy[0].Ip != ip1 {
			return false, "SelectInstances(healthy) " + describe(healthy)
		}
		return true, ""
	})
	if !ok {
		failf("B did not see exactly %s (cluster %s, weight 1, healthy, ephemeral, metadata v=1) within 10s; last saw %s", addr1, clusterName, last)
	}
	rep.pass("register_list")

	// 2. subscribe_push. B already subscribed to svc through SelectAllInstances, so Subscribe only
	// adds the callback (the SDK does not call it for the cached state); it fires on the next push.
	rep.begin("subscribe_push")
	pushes := newPushLog()
	if _, err := call("B.Subscribe", func() (struct{}, error) {
		return struct{}{}, b.c.Subscribe(&vo.SubscribeParam{ServiceName: svc, GroupName: defaultGroup, SubscribeCallback: pushes.callback})
	}); err != nil {
		failf("B.Subscribe(%s): %v", svc, err)
	}
	from := pushes.mark()
	a2.register(svc, ip2)
	want := addr1 + "," + addr2
	if ok, last := pushes.waitFor(from, 10*time.Second, func(s []model.Instance) bool { return addrs(s) == want }); !ok {
		failf("B's subscribe callback did not deliver [%s] within 10s; %s", want, last)
	}
	rep.pass("subscribe_push")

	// 3. deregister
	rep.begin("deregister")
	from = pushes.mark()
	a.deregister(svc, ip1)
	if ok, last := pushes.waitFor(from, 10*time.Second, func(s []model.Instance) bool { return addrs(s) == addr2 }); !ok {
		failf("B's subscribe callback did not deliver only [%s] within 10s; %s", addr2, last)
	}
	rep.pass("deregister")

	// 4. close_drops_ephemeral: closing A2's gRPC connection must drop the ephemeral instance it
	// still owns (10.0.0.2); A, which owns none any more, is closed too.
	// (The callback fires for an empty list only because UpdateCacheWhenEmpty is set.)
	rep.begin("close_drops_ephemeral")
	from = pushes.mark()
	a2.close()
	a.close()
	if ok, last := pushes.waitFor(from, 15*time.Second, func(s []model.Instance) bool { return len(s) == 0 }); !ok {
		all, err := b.selectAll(svc)
		failf("B did not see 0 instances within 15s after A and A2 closed; callbacks: %s; SelectAllInstances now %s (err %v)", last, describe(all), err)
	}
	if all, err := b.selectAll(svc); err != nil || len(all) != 0 {
		failf("after the empty push B.SelectAllInstances = %s, %v; want []", describe(all), err)
	}
	rep.pass("close_drops_ephemeral")

	// 5. service_list
	rep.begin("service_list")
	ok, last = poll(5*time.Second, func() (bool, string) {
		var total int64
		var names []string
		for page := uint32(1); page <= 20; page++ {
			list, err := call("B.GetAllServicesInfo", func() (model.ServiceList, error) {
				return b.c.GetAllServicesInfo(vo.GetAllServiceInfoParam{NameSpace: "public", GroupName: defaultGroup, PageNo: page, PageSize: 500})
			})
			if err != nil {
				return false, fmt.Sprintf("GetAllServicesInfo(page %d) error %v", page, err)
			}
			total = list.Count
			for _, d := range list.Doms {
				if d == svc || d == defaultGroup+"@@"+svc {
					return true, ""
				}
			}
			names = append(names, list.Doms...)
			if len(list.Doms) == 0 || int64(len(names)) >= list.Count {
				break
			}
		}
		return false, fmt.Sprintf("count=%d, %d names, no %s", total, len(names), svc)
	})
	if !ok {
		failf("B.GetAllServicesInfo(public, %s) does not list %s; %s", defaultGroup, svc, last)
	}
	rep.pass("service_list")

	rep.begin("cleanup")
	b.close()
}
