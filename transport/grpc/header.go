package grpc

import (
	"context"
	"log/slog"
	"strings"

	"github.com/ferry-go/ferry/transport"
	"google.golang.org/grpc/metadata"
)

// incoming is the request metadata of a served call. grpc-go offers the
// incoming metadata only as a copy, so the copy is made on first use: calls
// whose middleware never reads metadata pay nothing.
type incoming struct {
	ctx context.Context
	md  transport.Metadata
}

var _ transport.Header = (*incoming)(nil)

func (h *incoming) load() transport.Metadata {
	if h.md == nil {
		md, _ := metadata.FromIncomingContext(h.ctx) // lower-cased copy
		if md == nil {
			md = metadata.MD{}
		}
		h.md = transport.Metadata(md)
	}
	return h.md
}

// Get and Values read grpc-go's metadata in place until something loads
// the copy: a look-up costs no copy, and none at all for a key that is
// absent.
func (h *incoming) Get(key string) string {
	if v := h.Values(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (h *incoming) Values(key string) []string {
	if h.md == nil {
		return metadata.ValueFromIncomingContext(h.ctx, key) // case-insensitive
	}
	return h.md.Values(key)
}
func (h *incoming) Set(key, value string) { h.load().Set(key, value) }
func (h *incoming) Add(key, value string) { h.load().Add(key, value) }
func (h *incoming) Del(key string)        { h.load().Del(key) }
func (h *incoming) Keys() []string        { return h.load().Keys() }

// validMetadata returns md without the pairs gRPC may not carry (keys
// outside [0-9a-z-_.], non-printable values in keys not ending in "-bin"),
// logging what it drops: grpc-go does not check reply headers itself, and a
// bad one would break the whole reply.
func validMetadata(logger *slog.Logger, endpoint string, md transport.Metadata) metadata.MD {
	bad := 0
	for k, vs := range md {
		if !validPair(k, vs) {
			bad++
		}
	}
	if bad == 0 {
		return metadata.MD(md)
	}
	out := make(metadata.MD, len(md)-bad)
	for k, vs := range md {
		if validPair(k, vs) {
			out[k] = vs
		} else {
			logger.Warn("grpc: dropped invalid reply metadata", "endpoint", endpoint, "key", k)
		}
	}
	return out
}

func validPair(key string, vals []string) bool {
	if key == "" || key[0] == ':' {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	if strings.HasSuffix(key, "-bin") {
		return true
	}
	for _, v := range vals {
		for i := 0; i < len(v); i++ {
			if v[i] < 0x20 || v[i] > 0x7e {
				return false
			}
		}
	}
	return true
}
