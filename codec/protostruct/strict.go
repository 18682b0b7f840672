package protostruct

import (
	"fmt"
	"reflect"

	"github.com/ferry-go/ferry/errs"
)

// CheckTagged is the strict form of [Check]: besides mapping, every field of
// struct type t (or a pointer to one) and of every plain struct it reaches
// must carry an explicit `pb:"N"` tag, and every reserving blank field
// `pb:"N,reserved"`, so that reordering or removing fields can never move a
// number silently. Skipped fields (unexported, json:"-", pb:"-") need none;
// generated messages and time.Time are not looked into.
//
// The error is an *errs.Error with code InvalidArgument naming the first
// field without a tag by its Go type and field name; its details list every
// such field, one per detail (Field "pkg.Type.Field").
func CheckTagged(t reflect.Type) error {
	if err := Check(t); err != nil {
		return err
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	pl, err := planFor(t)
	if err != nil {
		return err
	}
	var details []errs.Detail
	seen := map[*plan]bool{}
	var walk func(pl *plan)
	walk = func(pl *plan) {
		if pl == nil || pl.generated || pl.body != nil || seen[pl] {
			return
		}
		seen[pl] = true
		all := append(append([]*field(nil), pl.fields...), pl.reserved...)
		for _, f := range all {
			if !f.tagged {
				what := "no pb tag"
				if f.isRes {
					what = `reserves its position: write pb:"N,reserved"`
				}
				details = append(details, errs.Detail{
					Field:  pl.typ.String() + "." + f.goName,
					Reason: fmt.Sprintf("%s (its number %d comes from its position in the struct)", what, f.num),
				})
			}
			if f.val.sub != nil {
				walk(f.val.sub)
			}
		}
	}
	walk(pl)
	if len(details) == 0 {
		return nil
	}
	msg := fmt.Sprintf("protostruct: strict field numbers: %s: %s", details[0].Field, details[0].Reason)
	if len(details) > 1 {
		msg += fmt.Sprintf(", and %d more", len(details)-1)
	}
	return errs.New(errs.InvalidArgument, msg).WithDetails(details...)
}
