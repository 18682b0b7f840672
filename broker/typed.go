package broker

import (
	"context"
	"fmt"

	"github.com/ferry-go/ferry/codec"
	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/middleware"
	"github.com/ferry-go/ferry/transport"
)

// ContentTypeKey is the header carrying the payload's content type.
const ContentTypeKey = "content-type"

// Event is a decoded delivery, as typed handlers receive it.
type Event[T any] struct {
	*Delivery
	// Data is the decoded payload.
	Data *T
}

// Publish encodes v (JSON by default; WithProto for protobuf) and
// publishes it to topic through b. A protobuf payload is labelled with a
// content-type header; JSON, the default, is not. Metadata set on ctx with
// transport.WithMetadata travels as headers, with WithHeader's on top.
func Publish[T any](ctx context.Context, b Broker, topic string, v *T, opts ...PublishOption) error {
	m, err := NewMessage(ctx, topic, v, opts...)
	if err != nil {
		return err
	}
	return b.Publish(ctx, m)
}

// NewMessage is the message Publish sends: v encoded (JSON by default;
// WithProto for protobuf), the metadata of ctx and WithHeader as headers,
// WithID's ID and WithKey's key. The outbox stores such a message for a
// relay to publish later.
func NewMessage[T any](ctx context.Context, topic string, v *T, opts ...PublishOption) (*Message, error) {
	if err := ValidTopic(topic, false); err != nil {
		return nil, err
	}
	var pc publishConfig
	if len(opts) > 0 {
		pc = publishOptions(opts)
	}
	c := codec.JSON
	if pc.codec == "proto" {
		c = codec.Proto
	}
	if v == nil {
		v = new(T)
	}
	data, err := c.Marshal(v)
	if err != nil {
		return nil, errs.Newf(errs.InvalidArgument, "broker: encode %T for %q: %v", v, topic, err)
	}
	// Headers cost on every hop (NATS parses them as MIME headers), so a
	// message without metadata carries none: JSON, the default, is not
	// labelled.
	var h transport.Metadata
	if md := transport.OutgoingMetadata(ctx); len(md) > 0 || len(pc.header) > 0 || c != codec.JSON {
		h = md.Clone()
		if h == nil {
			h = make(transport.Metadata, len(pc.header)+1)
		}
		for k, val := range pc.header {
			h.Set(k, val)
		}
		if c != codec.JSON {
			h.Set(ContentTypeKey, c.ContentType())
		}
	}
	return &Message{Topic: topic, ID: pc.id, Key: pc.key, Header: h, Data: data}, nil
}

// publishOptions applies opts; the options see a configuration on the
// heap, which a publish without options does not need.
func publishOptions(opts []PublishOption) publishConfig {
	pc := new(publishConfig)
	for _, o := range opts {
		if o != nil {
			o(pc)
		}
	}
	return *pc
}

// Subscribe runs h for every message on topic (wildcards allowed) through
// b, as opts say. Each payload is decoded into a new T by its content type
// (JSON when absent); one that does not decode is dead-lettered at once
// with the decode error. The handler runs behind recovery and the
// middleware of WithMiddleware, which see the decoded *T as the request
// and a transport.Call whose Endpoint is the topic, so the same middleware
// serves RPC handlers and events. ctx bounds the set-up only.
func Subscribe[T any](ctx context.Context, b Broker, topic string, h func(context.Context, *Event[T]) error, opts ...SubscribeOption) (Subscription, error) {
	cfg, err := NewSubscribeConfig(topic, opts...)
	if err != nil {
		return nil, err
	}
	if h == nil {
		return nil, errs.Newf(errs.InvalidArgument, "broker: subscribe %q: nil handler", topic)
	}
	inner := func(ctx context.Context, req any) (any, error) {
		d, _ := DeliveryFromContext(ctx)
		v, ok := req.(*T)
		if !ok {
			return nil, errs.Newf(errs.Internal, "broker: subscription %q: middleware replaced the event with %T", topic, req)
		}
		var ev *Event[T]
		if e, ok := ctx.Value(eventKey{}).(*event[T]); ok && e.evTaken.CompareAndSwap(false, true) {
			ev = &e.ev // the message's, the first time the middleware calls the handler
		} else {
			ev = new(Event[T])
		}
		*ev = Event[T]{Delivery: d, Data: v}
		return nil, h(ctx, ev)
	}
	chain := append([]middleware.Middleware{middleware.Recover(middleware.WithRecoverLogger(cfg.Logger))}, cfg.Middleware...)
	handler := middleware.Chain(chain...)(inner)
	name := cfg.Name(topic)
	cfg.newEvent = func(ctx context.Context) (context.Context, *Delivery) {
		e := &event[T]{Context: ctx, own: true}
		return e, &e.d
	}
	raw := func(ctx context.Context, d *Delivery) error {
		e, ok := ctx.(*event[T])
		if !ok || !e.own || d != &e.d || e.callSet {
			// Not from cfg.NewDelivery (or run twice): an event of its
			// own, leaving the Delivery to ctx.
			e = &event[T]{Context: ctx}
		}
		v := &e.v
		if err := decode(d, v); err != nil {
			return err
		}
		// An event is no call on the wire: Method, Route, Target and TLS stay empty.
		e.call = transport.Call{Service: name, Endpoint: d.Topic, Kind: d.Kind, Request: d.Header, Reply: &e.reply}
		if dl, ok := ctx.Deadline(); ok {
			e.call.Deadline = dl
		}
		e.callSet = true
		_, err := handler(e, v) // e carries the Call (transport.IsCallKey)
		return err
	}
	return b.Subscribe(ctx, topic, raw, cfg)
}

// decode decodes d's payload into v by its content type.
func decode(d *Delivery, v any) error {
	c := codec.JSON
	if ct := d.Header.Get(ContentTypeKey); ct != "" && ct != "application/json" {
		var ok bool
		if c, ok = codec.ForContentType(ct); !ok {
			return Permanent(errs.Newf(errs.InvalidArgument, "broker: message %s on %q: unsupported content type %q", d.ID, d.Topic, ct))
		}
	}
	if err := c.Unmarshal(d.Data, v); err != nil {
		return Permanent(errs.Newf(errs.InvalidArgument, "broker: message %s on %q: decode %s into %T: %v", d.ID, d.Topic, c.Name(), v, err))
	}
	return nil
}

// String returns a short description of the delivery for logs.
func (d *Delivery) String() string {
	return fmt.Sprintf("%s #%d (id %s, attempt %d)", d.Topic, d.Sequence, d.ID, d.Attempt)
}
