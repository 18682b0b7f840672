package server_test

import (
	"context"
	"testing"

	"github.com/ferry-go/ferry/errs"
	"github.com/ferry-go/ferry/server"
)

func TestAdmission(t *testing.T) {
	s := server.New("adm", server.WithAdmission(server.Admission{MaxCalls: 3, MaxBytes: 1 << 20}))
	ctx := context.Background()
	big := int64(600 << 10)
	if err := s.Admit(ctx, big); err != nil {
		t.Fatal(err)
	}
	// A second big one does not fit the bytes; a small one does.
	done, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Admit(done, big); errs.CodeOf(err) != errs.Canceled {
		t.Errorf("second big request with a cancelled context = %v, want canceled (no room)", err)
	}
	if err := s.Admit(ctx, 100); err != nil {
		t.Errorf("small request beside a big one = %v, want admitted: small requests are not weighed", err)
	}
	// A waiter gets in when room is made.
	admitted := make(chan error, 1)
	go func() { admitted <- s.Admit(ctx, big) }()
	s.Release(big)
	if err := <-admitted; err != nil {
		t.Errorf("waiting big request = %v, want admitted once the first was released", err)
	}
	if calls, bytes := s.InFlight(); calls != 2 || bytes != big {
		t.Errorf("in flight: %d calls, %d bytes; want 2, %d", calls, bytes, big)
	}
	// The call bound.
	if err := s.Admit(ctx, 1); err != nil {
		t.Fatal(err)
	}
	expired, cancel2 := context.WithTimeout(ctx, 0)
	defer cancel2()
	if err := s.Admit(expired, 1); errs.CodeOf(err) != errs.ResourceExhausted {
		t.Errorf("fourth call past MaxCalls 3 with its deadline passed = %v, want resource_exhausted", err)
	}
	s.Release(1)
	s.Release(100)
	s.Release(big)
	if calls, bytes := s.InFlight(); calls != 0 || bytes != 0 {
		t.Errorf("after releasing everything: %d calls, %d bytes in flight", calls, bytes)
	}
	// One request above MaxBytes gets in when nothing else is in flight.
	if err := s.Admit(ctx, 4<<20); err != nil {
		t.Errorf("a request larger than MaxBytes on an idle server = %v, want admitted", err)
	}
	s.Release(4 << 20)
}
