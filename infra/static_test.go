package infra

import (
	"context"
	"errors"
	"maps"
	"testing"
)

func TestStatic(t *testing.T) {
	in := map[string]string{"endpoint": "http://127.0.0.1:8080"}
	s := NewStatic("target", in)
	in["endpoint"] = "changed" // NewStatic must have copied its input

	f, err := s.Up(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"endpoint": "http://127.0.0.1:8080"}
	if f.Name != "target" || f.Size != 1 || !maps.Equal(f.Outputs, want) || len(f.Processes) != 0 {
		t.Fatalf("Up = %+v, want target, size 1, outputs %v", f, want)
	}
	f.Outputs["endpoint"] = "mutated" // nor may a caller alter the provider's state
	f2, _ := s.Up(context.Background())
	if !maps.Equal(f2.Outputs, want) {
		t.Fatalf("second Up outputs = %v, want %v", f2.Outputs, want)
	}
	if _, err := s.Scale(context.Background(), 2); !errors.Is(err, ErrCannotScale) {
		t.Fatalf("Scale err = %v, want ErrCannotScale", err)
	}
	if err := s.Down(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Up(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Up with cancelled ctx err = %v, want context.Canceled", err)
	}
}

func TestStaticNilOutputs(t *testing.T) {
	f, err := NewStatic("gen", nil).Up(context.Background())
	if err != nil || f.Outputs == nil {
		t.Fatalf("Up = %+v, %v; want an empty, non-nil outputs map", f, err)
	}
}
