package natsembed

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ClusterOptions makes a server a member of a NATS cluster. The zero value
// means no clustering.
type ClusterOptions struct {
	// Name is the cluster's name, the same on every member. "" disables
	// clustering.
	Name string
	// Host is the interface the route listener binds. Default: the
	// server's Host.
	Host string
	// Port is the route port. 0 (or a negative value) picks a random free
	// port; the conventional NATS route port is 6222.
	Port int
	// Routes are the route URLs of other members, such as
	// "nats://127.0.0.1:6222" (see [Server.ClusterURL]). Members tell each
	// other about the rest, so one seed is enough. Default: none, the
	// server waits for others to connect to it.
	Routes []string
}

// apply sets the cluster fields of opts. host is the client host.
func (c ClusterOptions) apply(opts *server.Options, host string) error {
	if c.Name == "" {
		if c.Port != 0 || c.Host != "" || len(c.Routes) > 0 {
			return errors.New("natsembed: cluster options need a cluster name")
		}
		return nil
	}
	if c.Host != "" {
		host = c.Host
	}
	port := c.Port
	if port <= 0 {
		port = server.RANDOM_PORT
	}
	opts.Cluster = server.ClusterOpts{Name: c.Name, Host: host, Port: port}
	for _, r := range c.Routes {
		u, err := url.Parse(r)
		if err != nil || u.Host == "" {
			return fmt.Errorf("natsembed: route %q: want a URL like nats://127.0.0.1:6222", r)
		}
		opts.Routes = append(opts.Routes, u)
	}
	return nil
}

// ClusterURL returns the URL other cluster members route to, such as
// "nats://127.0.0.1:41235", or "" if the server is not running or not
// clustered.
func (s *Server) ClusterURL() string {
	ns := s.NATS()
	if ns == nil {
		return ""
	}
	a := ns.ClusterAddr()
	if a == nil {
		return ""
	}
	return "nats://" + net.JoinHostPort(a.IP.String(), strconv.Itoa(a.Port))
}

// StartCluster starts n servers (at least 1) that form one cluster, and
// returns once every member routes to every other and, with JetStream, the
// cluster has a JetStream meta leader that sees all members, so replicated
// streams can be created at once. ctx bounds the wait; on failure every
// started server is shut down.
//
// opts applies to every member with these changes: the cluster name
// defaults to "ferry"; member i (from 1) is named "<ServerName>-i", or
// "<cluster name>-i" without a ServerName; every member listens on its own
// random client and route ports (opts.Port and opts.Cluster.Port must be
// 0); every member routes to every member (JetStream in a cluster wants
// configured routes on all of them, so the route ports are chosen before
// the servers start); and a given StoreDir gets one subdirectory per member
// (JetStream needs a store per server).
func StartCluster(ctx context.Context, n int, opts Options) ([]*Server, error) {
	if n < 1 {
		return nil, fmt.Errorf("natsembed: cluster of %d servers: want at least 1", n)
	}
	if opts.Port > 0 || opts.Cluster.Port > 0 {
		return nil, errors.New("natsembed: cluster members need random ports: leave Port and Cluster.Port 0")
	}
	if opts.Cluster.Name == "" {
		opts.Cluster.Name = "ferry"
	}
	base := opts.ServerName
	if base == "" {
		base = opts.Cluster.Name
	}
	host := cmp.Or(opts.Cluster.Host, opts.Host, "127.0.0.1")
	// A route port is chosen free, then bound by the server a moment
	// later; in between another process (or an outgoing connection given
	// that ephemeral port) may take it. Then the whole cluster starts again
	// on new ports, a few times.
	var err error
	for range startAttempts {
		var servers []*Server
		servers, err = startMembers(ctx, n, host, base, opts)
		if err == nil || !errors.Is(err, errPortTaken) || ctx.Err() != nil {
			return servers, err
		}
	}
	return nil, err
}

// startAttempts bounds StartCluster's retries after a route port was taken.
const startAttempts = 5

// errPortTaken marks a member that could not bind its chosen route port.
var errPortTaken = errors.New("natsembed: route port taken")

// startMembers is one attempt of StartCluster.
func startMembers(ctx context.Context, n int, host, base string, opts Options) ([]*Server, error) {
	servers := make([]*Server, 0, n)
	fail := func(err error) ([]*Server, error) {
		for _, s := range servers {
			s.Shutdown()
		}
		return nil, err
	}
	ports, err := pickPorts(host, n)
	if err != nil {
		return nil, err
	}
	routes := slices.Clone(opts.Cluster.Routes)
	for _, p := range ports {
		routes = append(routes, "nats://"+net.JoinHostPort(host, strconv.Itoa(p)))
	}
	for i := 1; i <= n; i++ {
		o := opts
		o.ServerName = base + "-" + strconv.Itoa(i)
		if opts.StoreDir != "" {
			o.StoreDir = filepath.Join(opts.StoreDir, o.ServerName)
		}
		o.Cluster.Host = host
		o.Cluster.Port = ports[i-1]
		o.Cluster.Routes = routes // a route to itself is ignored
		s, err := Start(ctx, o)
		if err != nil {
			if strings.Contains(err.Error(), "address already in use") {
				err = fmt.Errorf("%w: %w", errPortTaken, err)
			}
			return fail(err)
		}
		servers = append(servers, s)
	}
	if err := waitClustered(ctx, servers, opts.JetStream); err != nil {
		return fail(err)
	}
	return servers, nil
}

// pickPorts is freePorts; a test replaces it to hand out a taken port.
var pickPorts = freePorts

// freePorts returns n ports that were free on host a moment ago. Another
// process could take one before the server binds it (StartCluster then
// tries again).
func freePorts(host string, n int) ([]int, error) {
	ports := make([]int, 0, n)
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, fmt.Errorf("natsembed: find a free route port on %s: %w", host, err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// waitClustered polls until the servers form a full mesh and, with
// JetStream, a meta leader sees every member.
func waitClustered(ctx context.Context, servers []*Server, jetStream bool) error {
	t := time.NewTicker(readyPoll)
	defer t.Stop()
	for {
		if meshed(servers) && (!jetStream || jsReady(servers)) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("natsembed: cluster of %d servers not formed: %w", len(servers), ctx.Err())
		case <-t.C:
		}
	}
}

func meshed(servers []*Server) bool {
	for _, s := range servers {
		rz, err := s.NATS().Routez(nil)
		if err != nil {
			return false
		}
		peers := make(map[string]bool)
		for _, r := range rz.Routes {
			peers[r.RemoteID] = true
		}
		if len(peers) < len(servers)-1 {
			return false
		}
	}
	return true
}

func jsReady(servers []*Server) bool {
	if len(servers) == 1 {
		return servers[0].NATS().JetStreamEnabled()
	}
	for _, s := range servers {
		ns := s.NATS()
		if !ns.JetStreamIsCurrent() {
			return false
		}
		if ns.JetStreamIsLeader() && len(ns.JetStreamClusterPeers()) < len(servers) {
			return false
		}
	}
	for _, s := range servers {
		if s.NATS().JetStreamIsLeader() {
			return true
		}
	}
	return false
}
