package transport

import (
	"reflect"

	"github.com/ferry-go/ferry/errs"
	"google.golang.org/protobuf/proto"
)

// AssignReply copies out, a reply that client middleware returned in place
// of the wire reply (a cached one, say), into resp, the caller's reply
// pointer. It is a no-op when out is nil or already resp, and an Internal
// error when the two types differ. Client transports call it after their
// middleware chain.
func AssignReply(resp, out any) error {
	if out == nil || resp == nil || out == resp {
		return nil
	}
	if pm, ok := resp.(proto.Message); ok {
		if om, ok := out.(proto.Message); ok && pm.ProtoReflect().Descriptor() == om.ProtoReflect().Descriptor() {
			proto.Reset(pm)
			proto.Merge(pm, om)
			return nil
		}
	}
	rv, ov := reflect.ValueOf(resp), reflect.ValueOf(out)
	if rv.Kind() == reflect.Pointer && rv.Type() == ov.Type() && !ov.IsNil() {
		rv.Elem().Set(ov.Elem())
		return nil
	}
	return errs.Newf(errs.Internal, "client middleware returned a %T reply, want %T", out, resp)
}
