package server_test

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/ferry-go/ferry/server"
)

type inner struct {
	Page int `json:"page"`
}

type paramsReq struct {
	inner
	Name    string            `json:"name"`
	Count   int64             `json:"count,omitempty"`
	Ratio   float64           `json:"ratio"`
	On      *bool             `json:"on"`
	Tags    []string          `json:"tags"`
	IDs     []uint32          `json:"ids"`
	At      time.Time         `json:"at"`
	Raw     []byte            `json:"raw"`
	Labels  map[string]string `json:"labels"`
	Sub     inner             `json:"sub"`
	Skipped string            `json:"-"`
	Plain   string
	hidden  string
}

// ParamKinds gives the JSON kind of every field a path or a query can set,
// by JSON name, as encoding/json names them; the rest come in a body only.
func TestParamKinds(t *testing.T) {
	s := server.New("p")
	server.Handle(s, "Get", func(context.Context, *paramsReq) (*paramsReq, error) { return nil, nil })
	got := s.Endpoints()[0].ParamKinds()
	want := map[string]string{"page": "integer", "name": "string", "count": "integer", "ratio": "number", "on": "boolean",
		"tags": "array:string", "ids": "array:integer", "at": "string", "Plain": "string"}
	if !maps.Equal(got, want) {
		t.Errorf("ParamKinds = %v\nwant %v", got, want)
	}
	_ = paramsReq{}.hidden
}
