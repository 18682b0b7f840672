package nats

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"time"

	"github.com/ferry-go/ferry/registry"
	"github.com/ferry-go/ferry/transport"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// MetadataStream is the key of a streaming endpoint's metadata in the
// $SRV.INFO reply: its kind ("server_streaming", "client_streaming" or
// "bidi_streaming"), so that discovery tells what to open as a stream.
// Unary endpoints have none.
const MetadataStream = "ferry.stream"

// controlSubjects returns the three discovery subjects of verb: for all
// services, for the service name, and for this instance.
func controlSubjects(verb micro.Verb, name, id string) []string {
	out := make([]string, 0, 3)
	for _, args := range [][2]string{{"", ""}, {name, ""}, {name, id}} {
		// ControlSubject fails only for an unknown verb or an id without a
		// name, neither of which happens here.
		if subj, err := micro.ControlSubject(verb, args[0], args[1]); err == nil {
			out = append(out, subj)
		}
	}
	return out
}

// buildDiscovery renders the PING and INFO replies, which do not change
// while the server runs.
func (s *Server) buildDiscovery(peers []registry.Endpoint) error {
	md, err := registry.Describe(s.srv)
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	var others []registry.Endpoint
	for _, ep := range peers {
		if ep.Transport != "nats" {
			others = append(others, ep)
		}
	}
	if len(others) > 0 {
		b, err := json.Marshal(others)
		if err != nil {
			return fmt.Errorf("nats: encode the instance's transports: %w", err)
		}
		md[registry.MetadataTransports] = string(b)
	}
	s.infoMeta = md
	ping, err := json.Marshal(micro.Ping{ServiceIdentity: s.identity(), Type: micro.PingResponseType})
	if err != nil {
		return fmt.Errorf("nats: encode ping reply: %w", err)
	}
	info, err := json.Marshal(s.info())
	if err != nil {
		return fmt.Errorf("nats: encode info reply: %w", err)
	}
	s.pingJSON, s.infoJSON = ping, info
	return nil
}

// SetPeers gives the server the instance's other transports, asked once
// at Start (ferry.Service starts them first): $SRV.INFO lists those that
// are not NATS under registry.MetadataTransports, so that NATS discovery
// alone (registry/natssrv) can call the instance over HTTP and gRPC too.
// Call it before Start.
func (s *Server) SetPeers(peers func() []registry.Endpoint) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.peers = peers
}

func (s *Server) identity() micro.ServiceIdentity {
	return micro.ServiceIdentity{
		Name:     s.srv.Name(),
		ID:       s.id,
		Version:  s.srv.Version(),
		Metadata: map[string]string{},
	}
}

// ID returns the instance id announced to discovery, a NUID chosen at
// Start; "" before Start.
func (s *Server) ID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id
}

// Info returns the document this instance answers $SRV.INFO with: the
// service's name, version, id, description and endpoints. Each endpoint's
// metadata names its Go request and response types; the service
// identity's metadata is what a registry would hold of the instance
// (registry.Describe: endpoints, REST routes, idempotent endpoints), so
// that NATS discovery alone (registry/natssrv) can route to it. PING and
// STATS replies carry no metadata: it can be large. It is the zero Info
// before Start.
func (s *Server) Info() micro.Info {
	if !s.hasStarted() {
		return micro.Info{}
	}
	return s.info()
}

// hasStarted reports whether Start has succeeded; the fields it set are
// read-only from then on.
func (s *Server) hasStarted() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state != stateNew
}

func (s *Server) info() micro.Info {
	eps := make([]micro.EndpointInfo, 0, len(s.list))
	for _, e := range s.list {
		md := map[string]string{
			"request":  e.ep.RequestType.String(),
			"response": e.ep.ResponseType.String(),
		}
		if e.ep.Kind != transport.Unary {
			md[MetadataStream] = e.ep.Kind.String()
		}
		eps = append(eps, micro.EndpointInfo{
			Name:       e.ep.Name,
			Subject:    e.subject,
			QueueGroup: s.queue,
			Metadata:   md,
		})
	}
	id := s.identity()
	id.Metadata = maps.Clone(s.infoMeta)
	return micro.Info{
		ServiceIdentity: id,
		Type:            micro.InfoResponseType,
		Description:     s.srv.Description(),
		Endpoints:       eps,
	}
}

// Stats returns the document this instance answers $SRV.STATS with. A
// request counts once its reply is sent; it counts as an error when the
// reply is an error, whatever its code. It is the zero Stats before Start.
func (s *Server) Stats() micro.Stats {
	if !s.hasStarted() {
		return micro.Stats{}
	}
	return s.stats()
}

func (s *Server) stats() micro.Stats {
	eps := make([]*micro.EndpointStats, 0, len(s.list))
	for _, e := range s.list {
		n, nanos := e.requests.Load(), e.nanos.Load()
		var avg time.Duration
		if n > 0 {
			avg = time.Duration(nanos / n)
		}
		e.mu.Lock()
		last := e.lastErr
		e.mu.Unlock()
		eps = append(eps, &micro.EndpointStats{
			Name:                  e.ep.Name,
			Subject:               e.subject,
			QueueGroup:            s.queue,
			NumRequests:           int(n),
			NumErrors:             int(e.errors.Load()),
			LastError:             last,
			ProcessingTime:        time.Duration(nanos),
			AverageProcessingTime: avg,
		})
	}
	return micro.Stats{
		ServiceIdentity: s.identity(),
		Type:            micro.StatsResponseType,
		Started:         s.started,
		Endpoints:       eps,
	}
}

// onControl answers one discovery verb.
func (s *Server) onControl(verb micro.Verb) nats.MsgHandler {
	return func(msg *nats.Msg) {
		if msg.Reply == "" {
			return
		}
		var body []byte
		switch verb {
		case micro.PingVerb:
			body = s.pingJSON
		case micro.InfoVerb:
			body = s.infoJSON
		case micro.StatsVerb:
			var err error
			if body, err = json.Marshal(s.stats()); err != nil {
				s.logger.Warn("nats: encode stats reply", slog.Any("error", err))
				return
			}
		}
		if err := msg.Respond(body); err != nil {
			s.logger.Debug("nats: cannot answer discovery request", slog.String("subject", msg.Subject), slog.Any("error", err))
		}
	}
}
