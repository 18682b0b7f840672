package openapi_test

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"time"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/middleware/validate"
	"github.com/ferry-go/ferry/server"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The shop service exercises every part of the document: validator tags
// of many kinds, nested and embedded structs, slices, maps, time.Time and
// time.Duration, enums (oneof), a recursive type, REST routes with path
// and query parameters and bodies, idempotent GETs, a server stream,
// client and bidirectional streams, and generated protobuf messages.

type Address struct {
	Street string `json:"street" validate:"required,max=100"`
	City   string `json:"city" validate:"required"`
	Zip    string `json:"zip,omitempty" validate:"omitempty,numeric,len=5"`
}

type Item struct {
	SKU   string  `json:"sku" validate:"required,alphanum,min=3,max=12"`
	Qty   int     `json:"qty" validate:"gte=1,lte=100"`
	Price float64 `json:"price" validate:"gt=0"`
}

// Audit is embedded: its fields are promoted.
type Audit struct {
	By string `json:"by,omitempty" validate:"omitempty,max=40"`
}

type PlaceOrder struct {
	Audit
	Customer string            `json:"customer" validate:"required,email"`
	ID       string            `json:"id,omitempty" validate:"omitempty,uuid"`
	Items    []Item            `json:"items" validate:"required,min=1,max=10,dive"`
	Ship     Address           `json:"ship"`
	Notes    map[string]string `json:"notes,omitempty" validate:"omitempty,max=5,dive,keys,max=20,endkeys,max=200"`
	Priority string            `json:"priority,omitempty" validate:"omitempty,oneof=low normal high"`
	Level    int               `json:"level" validate:"oneof=1 2 3"`
	Deliver  time.Time         `json:"deliver"`
	Window   time.Duration     `json:"window,omitempty" validate:"omitempty,max=24h"`
	Tags     []string          `json:"tags,omitempty" validate:"omitempty,unique,max=5,dive,min=1,max=10"`
	Gift     *bool             `json:"gift,omitempty"`
	Promo    string            `json:"promo,omitempty" validate:"omitempty,startswith=PR"`
	Site     string            `json:"site,omitempty" validate:"omitempty,url"`
	Client   string            `json:"client,omitempty" validate:"omitempty,ip"`
}

type Category struct {
	Name     string     `json:"name"`
	Children []Category `json:"children,omitempty"`
}

type Order struct {
	ID       string          `json:"id"`
	Status   string          `json:"status"`
	Total    float64         `json:"total"`
	Placed   time.Time       `json:"placed"`
	Request  *PlaceOrder     `json:"request,omitempty"`
	Lines    map[string]Item `json:"lines"`
	Category Category        `json:"category"`
	Raw      []byte          `json:"raw,omitempty"`
}

type GetOrder struct {
	ID      string     `json:"id" validate:"required,uuid"`
	Fields  []string   `json:"fields,omitempty" validate:"omitempty,dive,oneof=items total"`
	Verbose bool       `json:"verbose"`
	Limit   int        `json:"limit,omitempty" validate:"omitempty,min=1,max=50"`
	Since   *time.Time `json:"since,omitempty"`
	Page    uint8      `json:"page"`
}

type UpdateOrder struct {
	ID     string `json:"id" validate:"required,uuid"`
	Status string `json:"status" validate:"required,oneof=open shipped closed"`
	Note   string `json:"note,omitempty" validate:"max=80"`
}

type Fail struct {
	// Code is the code to fail with; none succeeds.
	Code string `json:"code,omitempty" validate:"omitempty,max=30"`
}

type Done struct {
	OK bool `json:"ok"`
}

type TickRequest struct {
	Count int `json:"count" validate:"required,min=1,max=5"`
}

type Tick struct {
	N  int       `json:"n"`
	At time.Time `json:"at"`
}

type Line struct {
	Text string `json:"text" validate:"required"`
}

type Summary struct {
	Lines int `json:"lines"`
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func placed() time.Time { return time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC) }

func shop() *server.Server {
	s := server.New("shop", server.WithVersion("1.4.2"), server.WithDescription("Orders and their lines."),
		server.WithMiddleware(validate.New()), server.WithLogger(quiet))
	server.Handle(s, "Place", func(_ context.Context, req *PlaceOrder) (*Order, error) {
		o := &Order{ID: "6c1e9c33-6a35-4a0a-8e39-3f3f5c4a7d10", Status: "open", Placed: placed(), Request: req,
			Lines: map[string]Item{}, Category: Category{Name: "all", Children: []Category{{Name: "books"}}}, Raw: []byte{1, 2}}
		for _, it := range req.Items {
			o.Lines[it.SKU] = it
			o.Total += float64(it.Qty) * it.Price
		}
		return o, nil
	}, server.WithRoute("POST /v1/orders"))
	server.Handle(s, "Get", func(_ context.Context, req *GetOrder) (*Order, error) {
		return &Order{ID: req.ID, Status: "open", Placed: placed()}, nil
	}, server.WithIdempotent(), server.WithRoute("GET /v1/orders/{id}"))
	server.Handle(s, "Update", func(_ context.Context, req *UpdateOrder) (*Order, error) {
		return &Order{ID: req.ID, Status: req.Status, Placed: placed()}, nil
	}, server.WithRoute("PUT /v1/orders/{id}"), server.WithRoute("PATCH /v1/orders/{id}/status"))
	server.Handle(s, "Cancel", func(_ context.Context, req *GetOrder) (*Done, error) {
		return &Done{OK: true}, nil
	}, server.WithRoute("DELETE /v1/orders/{id}"))
	server.Handle(s, "Fail", func(_ context.Context, req *Fail) (*Done, error) {
		if req.Code == "" {
			return &Done{OK: true}, nil
		}
		c, ok := errs.ParseCode(req.Code)
		if !ok {
			return nil, errs.Newf(errs.InvalidArgument, "no code %q", req.Code)
		}
		return nil, errs.New(c, "failed as asked").WithReason("ASKED").WithDomain("shop").
			WithMetadata("code", req.Code).
			WithDetails(errs.Detail{Field: "code", Reason: "asked for"}, errs.Detail{Reason: "no field"})
	})
	server.Handle(s, "Echo", func(_ context.Context, req *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
		return wrapperspb.String("echo: " + req.GetValue()), nil
	}, server.WithIdempotent(), server.WithRoute("GET /v1/echo/{value}"))
	server.Handle(s, "Span", func(_ context.Context, req *tracepb.Span) (*tracepb.Span, error) {
		out := proto.Clone(req).(*tracepb.Span)
		out.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_OK, Message: "seen"}
		out.EndTimeUnixNano = out.StartTimeUnixNano + 1
		return out, nil
	}, server.WithRoute("GET /v1/spans/{name}"), server.WithRoute("POST /v1/spans/{name}"))
	server.HandleServerStream(s, "Ticks", func(_ context.Context, req *TickRequest, out server.Sender[Tick]) error {
		for i := range req.Count {
			if err := out.Send(&Tick{N: i, At: placed()}); err != nil {
				return err
			}
		}
		return nil
	})
	server.HandleClientStream(s, "Upload", func(_ context.Context, in server.Receiver[Line]) (*Summary, error) {
		n := 0
		for _, err := range in.All() {
			if err != nil {
				return nil, err
			}
			n++
		}
		return &Summary{Lines: n}, nil
	})
	server.HandleBidiStream(s, "Chat", func(_ context.Context, st server.Stream[Line, Line]) error {
		for m, err := range st.All() {
			if err != nil {
				return err
			}
			if err := st.Send(&Line{Text: strconv.Itoa(len(m.Text))}); err != nil {
				return err
			}
		}
		return nil
	})
	return s
}
