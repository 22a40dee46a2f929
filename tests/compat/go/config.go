package main

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nacos-group/nacos-sdk-go/v2/clients"
	"github.com/nacos-group/nacos-sdk-go/v2/clients/config_client"
	"github.com/nacos-group/nacos-sdk-go/v2/common/constant"
	"github.com/nacos-group/nacos-sdk-go/v2/vo"
)

const defaultGroup = "DEFAULT_GROUP"

type configClient struct {
	name string
	c    config_client.IConfigClient
}

func newConfigClient(e *env, name, namespace string, servers []constant.ServerConfig) *configClient {
	c, err := call("NewConfigClient("+name+")", func() (config_client.IConfigClient, error) {
		return clients.NewConfigClient(vo.NacosClientParam{
			ClientConfig:  e.clientConfig(name, namespace),
			ServerConfigs: servers,
		})
	})
	if err != nil {
		failf("cannot create config client %s: %v", name, err)
	}
	logf("config client %s created (namespace %q, server %s:%d)", name, namespace, servers[0].IpAddr, servers[0].Port)
	return &configClient{name: name, c: c}
}

// waitConnected makes the first request (a read of a probe key), retrying while the SDK has no
// gRPC connection yet: its client connects lazily on the first request and, if that attempt fails,
// reconnects in the background while requests fail fast with "client not connected".
func (c *configClient) waitConnected(probeId string) {
	ok, last := poll(15*time.Second, func() (bool, string) {
		_, err := c.get(probeId, defaultGroup)
		if err != nil && isTransportError(err) {
			return false, err.Error()
		}
		return true, ""
	})
	if !ok {
		failf("config client %s could not reach its server within 15s: %s", c.name, last)
	}
}

func (c *configClient) publish(p vo.ConfigParam) (bool, error) {
	return call(c.name+".PublishConfig", func() (bool, error) { return c.c.PublishConfig(p) })
}

// mustPublish publishes and fails the step unless the SDK reports success.
func (c *configClient) mustPublish(dataId, group, content, typ string) {
	ok, err := c.publish(vo.ConfigParam{DataId: dataId, Group: group, Content: content, Type: typ})
	if err != nil || !ok {
		failf("%s.PublishConfig(%s, %s, %q) = %v, %v", c.name, dataId, group, content, ok, err)
	}
}

func (c *configClient) get(dataId, group string) (string, error) {
	return call(c.name+".GetConfig", func() (string, error) {
		return c.c.GetConfig(vo.ConfigParam{DataId: dataId, Group: group})
	})
}

// waitContent polls GetConfig until it returns want (reads are retried because a write accepted by
// one node is applied on the others asynchronously).
func (c *configClient) waitContent(dataId, group, want string, within time.Duration) {
	ok, last := poll(within, func() (bool, string) {
		got, err := c.get(dataId, group)
		if err != nil {
			return false, fmt.Sprintf("error %v", err)
		}
		return got == want, fmt.Sprintf("%q", got)
	})
	if !ok {
		failf("%s.GetConfig(%s, %s) did not return %q within %s; last saw %s", c.name, dataId, group, want, within, last)
	}
}

// isTransportError recognises the errors GetConfig returns when the query never got an answer from
// the server (v2.3.5 with DisableUseSnapShot=true: ConfigClient.getConfigInner wraps them in
// "get config from remote nacos server fail, ..."; the per-key rate limiter reports "ConfigQueryRequest
// is limited"; our own wrapper reports timeouts). Any other error comes from a non-success
// ConfigQueryResponse, i.e. it is the server's answer.
func isTransportError(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "get config from remote nacos server fail") ||
		strings.Contains(msg, "is limited") ||
		strings.Contains(msg, "did not return within") ||
		strings.Contains(msg, "panicked")
}

// waitAbsent polls GetConfig until the config is reported as not found. The SDK reports "not found"
// (server errorCode 300) as ("", nil); an empty content that comes with a server-side error is also
// accepted as not found (logged), but an empty content caused by a transport error is not.
func (c *configClient) waitAbsent(dataId, group string, within time.Duration) {
	ok, last := poll(within, func() (bool, string) {
		got, err := c.get(dataId, group)
		switch {
		case err != nil && isTransportError(err):
			return false, fmt.Sprintf("error %v", err)
		case got != "":
			return false, fmt.Sprintf("content %q (err %v)", got, err)
		case err != nil:
			logf("%s.GetConfig(%s) returned \"\" with server error %q; accepting as not-found", c.name, dataId, err)
			return true, ""
		default:
			return true, ""
		}
	})
	if !ok {
		failf("%s.GetConfig(%s, %s) still not reported as not-found after %s; last saw %s", c.name, dataId, group, within, last)
	}
}

func (c *configClient) remove(dataId, group string) (bool, error) {
	return call(c.name+".DeleteConfig", func() (bool, error) {
		return c.c.DeleteConfig(vo.ConfigParam{DataId: dataId, Group: group})
	})
}

func (c *configClient) close() {
	_, _ = call(c.name+".CloseClient", func() (struct{}, error) { c.c.CloseClient(); return struct{}{}, nil })
}

// changeLog records every content a ListenConfig callback delivered. The SDK invokes the callback
// in a fresh goroutine per change, so the order of entries is not guaranteed.
type changeLog struct {
	mu     sync.Mutex
	seen   []string
	signal chan struct{}
}

func newChangeLog() *changeLog { return &changeLog{signal: make(chan struct{}, 1)} }

func (l *changeLog) onChange(namespace, group, dataId, data string) {
	logf("listener fired: namespace=%q group=%q dataId=%q content=%q", namespace, group, dataId, data)
	l.mu.Lock()
	l.seen = append(l.seen, data)
	l.mu.Unlock()
	select {
	case l.signal <- struct{}{}:
	default:
	}
}

func (l *changeLog) snapshot() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.seen...)
}

// waitFor waits until some callback delivered want.
func (l *changeLog) waitFor(want string, within time.Duration) bool {
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		for _, s := range l.snapshot() {
			if s == want {
				return true
			}
		}
		select {
		case <-l.signal:
		case <-timer.C:
			for _, s := range l.snapshot() {
				if s == want {
					return true
				}
			}
			return false
		}
	}
}

func md5Hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

func runConfig(e *env) {
	appId := e.prefix + "-app.properties"
	yamlId := e.prefix + "-db.yaml"
	yamlGroup := e.prefix + "-GROUP"
	nsId := e.prefix + "-ns.properties"

	rep.begin("setup")
	a := newConfigClient(e, "A", "", e.first())
	b := newConfigClient(e, "B", "", e.last())
	a.waitConnected(e.prefix + "-probe")
	b.waitConnected(e.prefix + "-probe")

	// 1. publish_get
	rep.begin("publish_get")
	a.mustPublish(appId, defaultGroup, "k=v1", "")
	a.waitContent(appId, defaultGroup, "k=v1", 5*time.Second)
	rep.pass("publish_get")

	// 2. listen_push
	rep.begin("listen_push")
	changes := newChangeLog()
	if _, err := call("B.ListenConfig", func() (struct{}, error) {
		return struct{}{}, b.c.ListenConfig(vo.ConfigParam{DataId: appId, Group: defaultGroup, OnChange: changes.onChange})
	}); err != nil {
		failf("B.ListenConfig(%s): %v", appId, err)
	}
	// In this SDK ListenConfig only registers the key locally; the listen loop (every 5 s, or at
	// once on a server push) sends ConfigBatchListenRequest with the locally known md5 (none yet),
	// so the listener first fires with the current content. Waiting for that proves the listen is
	// registered on B's node. Right after a change the SDK runs one more listen round for the key
	// (which would pick up k=v2 by itself if it were already published), then marks the key as in
	// sync and does not ask about it again for 5 minutes. Hence the pause: afterwards k=v2 can only
	// reach the listener through a server push (ConfigChangeNotifyRequest).
	if !changes.waitFor("k=v1", 10*time.Second) {
		failf("B's listener never fired with the current content \"k=v1\" within 10s (listen not registered?); saw %q", changes.snapshot())
	}
	time.Sleep(time.Second)
	a.mustPublish(appId, defaultGroup, "k=v2", "")
	if !changes.waitFor("k=v2", 10*time.Second) {
		failf("B's listener did not receive \"k=v2\" within 10s; saw %q", changes.snapshot())
	}
	rep.pass("listen_push")

	// 3. cross_node_get
	rep.begin("cross_node_get")
	b.waitContent(appId, defaultGroup, "k=v2", 5*time.Second)
	rep.pass("cross_node_get")

	// 4. group_and_type
	rep.begin("group_and_type")
	a.mustPublish(yamlId, yamlGroup, "a: 1", "yaml")
	b.waitContent(yamlId, yamlGroup, "a: 1", 5*time.Second)
	rep.pass("group_and_type")

	// 5. cas: the Go SDK's CAS is PublishConfig with ConfigParam.CasMd5 set. A rejected CAS comes
	// back as a non-success ConfigPublishResponse, which the SDK turns into (false, error(message)).
	rep.begin("cas")
	a.waitContent(appId, defaultGroup, "k=v2", 5*time.Second) // A's node has applied k=v2
	wrong := md5Hex("not-the-current-content")
	ok, err := a.publish(vo.ConfigParam{DataId: appId, Group: defaultGroup, Content: "k=v3-wrong", CasMd5: wrong})
	if ok && err == nil {
		failf("CAS publish with wrong md5 %s succeeded", wrong)
	}
	if err != nil && isTransportError(err) {
		failf("CAS publish with wrong md5 did not get an answer: %v", err)
	}
	logf("CAS with wrong md5 rejected as expected: ok=%v err=%v", ok, err)
	if got, err := a.get(appId, defaultGroup); err != nil || got != "k=v2" {
		failf("after the rejected CAS publish A.GetConfig = %q, %v; want \"k=v2\"", got, err)
	}
	right := md5Hex("k=v2")
	ok, err = a.publish(vo.ConfigParam{DataId: appId, Group: defaultGroup, Content: "k=v3", CasMd5: right})
	if !ok || err != nil {
		failf("CAS publish with the right md5 %s = %v, %v; want true", right, ok, err)
	}
	a.waitContent(appId, defaultGroup, "k=v3", 5*time.Second)
	rep.pass("cas")

	// 6. remove
	rep.begin("remove")
	ok, err = a.remove(appId, defaultGroup)
	if !ok || err != nil {
		failf("A.DeleteConfig(%s) = %v, %v; want true", appId, ok, err)
	}
	b.waitAbsent(appId, defaultGroup, 5*time.Second)
	rep.pass("remove")

	// 7. namespace: the Go SDK sends NamespaceId verbatim as the config tenant (it maps ""->"public"
	// only for naming), so this checks that the server treats tenant "" and "public" alike.
	rep.begin("namespace")
	pub := newConfigClient(e, "Public", "public", e.first())
	pub.waitConnected(e.prefix + "-probe")
	a.mustPublish(nsId, defaultGroup, "ns=1", "")
	pub.waitContent(nsId, defaultGroup, "ns=1", 5*time.Second)
	pub.mustPublish(nsId, defaultGroup, "ns=2", "")
	a.waitContent(nsId, defaultGroup, "ns=2", 5*time.Second)
	rep.pass("namespace")

	// Best-effort cleanup, not asserted.
	rep.begin("cleanup")
	for _, k := range [][2]string{{nsId, defaultGroup}, {yamlId, yamlGroup}} {
		if ok, err := a.remove(k[0], k[1]); !ok || err != nil {
			logf("cleanup: DeleteConfig(%s, %s) = %v, %v", k[0], k[1], ok, err)
		}
	}
	for _, c := range []*configClient{a, b, pub} {
		c.close()
	}
}
