package main

import (
	"fmt"
	"time"

	"github.com/nacos-group/nacos-sdk-go/v2/vo"
)

// runAuthDenied is the "auth_denied" scenario: run with NACOS_USERNAME / NACOS_PASSWORD of a user
// whose only permission is rw on namespace $P-own. The SDK logs in by itself; what it may do is then
// up to the server: its own namespace yes (so the login worked), namespace public no.
func runAuthDenied(e *env) {
	if e.prefix == "" {
		rep.fail("args", "auth_denied needs COMPAT_PREFIX")
	}
	own := e.prefix + "-own"
	ownId := e.prefix + "-own.properties"
	deniedId := e.prefix + "-denied.properties"
	secretId := e.prefix + "-secret.properties"

	// 1. own_namespace (positive control): config and naming in the user's own namespace work.
	rep.begin("own_namespace")
	o := newConfigClient(e, "Own", own, e.first())
	o.waitConnected(e.prefix + "-probe")
	o.mustPublish(ownId, defaultGroup, "own=1", "")
	o.waitContent(ownId, defaultGroup, "own=1", 5*time.Second)
	on := newNamingClientIn(e, "OwnNaming", own, e.first())
	on.waitConnected()
	on.register(e.prefix+"-own-svc", "10.0.0.3")
	rep.pass("own_namespace")

	// 2. denied_publish: a publish to namespace public is refused by the server.
	rep.begin("denied_publish")
	a := newConfigClient(e, "A", "", e.first())
	a.waitConnected(e.prefix + "-probe") // answered with a refusal, which is an answer
	ok, err := a.publish(vo.ConfigParam{DataId: deniedId, Group: defaultGroup, Content: "denied=1"})
	if ok && err == nil {
		failf("A.PublishConfig(%s) in namespace public succeeded for a user without permission on it", deniedId)
	}
	if err != nil && isTransportError(err) {
		failf("A.PublishConfig(%s) got no answer from the server: %v", deniedId, err)
	}
	logf("publish refused as expected: ok=%v err=%v", ok, err)
	rep.pass("denied_publish")

	// 3. denied_get: reading a config of namespace public that exists (the test published
	// $P-secret.properties = secret=1 as administrator) fails: not its content, not "not found".
	rep.begin("denied_get")
	b := newConfigClient(e, "B", "", e.last())
	b.waitConnected(e.prefix + "-probe")
	var got string
	ok, last := poll(10*time.Second, func() (bool, string) {
		got, err = b.get(secretId, defaultGroup)
		if err != nil && isTransportError(err) {
			return false, fmt.Sprintf("no answer: %v", err)
		}
		return true, ""
	})
	if !ok {
		failf("B.GetConfig(%s) got no answer from the server within 10s: %s", secretId, last)
	}
	if err == nil {
		failf("B.GetConfig(%s) in namespace public = %q with no error for a user without permission on it (want a refusal)", secretId, got)
	}
	if got == "secret=1" {
		failf("B.GetConfig(%s) returned the content %q together with the error %v", secretId, got, err)
	}
	logf("read refused as expected: %v", err)
	rep.pass("denied_get")

	// 4. denied_register: registering an instance in namespace public is refused.
	rep.begin("denied_register")
	n := newNamingClient(e, "ANaming", e.first())
	n.waitConnected()
	svc := e.prefix + "-denied-svc"
	ok, err = call("ANaming.RegisterInstance", func() (bool, error) {
		return n.c.RegisterInstance(vo.RegisterInstanceParam{
			Ip: "10.0.0.4", Port: instPort, Weight: 1, Enable: true, Healthy: true,
			ClusterName: clusterName, ServiceName: svc, GroupName: defaultGroup, Ephemeral: true,
		})
	})
	if ok && err == nil {
		failf("ANaming.RegisterInstance(%s) in namespace public succeeded for a user without permission on it", svc)
	}
	logf("register refused as expected: ok=%v err=%v", ok, err)
	rep.pass("denied_register")

	rep.begin("cleanup")
	for _, c := range []*configClient{o, a, b} {
		c.close()
	}
	on.close()
	n.close()
}
