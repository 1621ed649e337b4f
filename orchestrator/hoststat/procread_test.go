package hoststat

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The reader reads what os does, in buffers it keeps: a file larger than its
// buffer, then a smaller one; a directory larger than one getdents call.
func TestProcReaderReadsWhatOsDoes(t *testing.T) {
	dir := t.TempDir()
	big := bytes.Repeat([]byte("cpu0 1 2 3 4 5 6 7 8 9\n"), 700) // 16,100 bytes
	small := []byte("100 2000 3\n")
	for name, b := range map[string][]byte{"big": big, "small": small, "empty": nil} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []*procReader{{}, nil} {
		for _, name := range []string{"big", "small", "empty", "big"} {
			want, _ := os.ReadFile(filepath.Join(dir, name))
			got, err := r.read(filepath.Join(dir, name))
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("reader %v: read %s = %d bytes, %v; want %d", r != nil, name, len(got), err, len(want))
			}
		}
		if _, err := r.read(filepath.Join(dir, "missing")); err == nil {
			t.Error("a missing file read")
		}
	}
	// /proc/stat itself, when there is one.
	if want, err := os.ReadFile("/proc/stat"); err == nil {
		got, err := (&procReader{}).read("/proc/stat")
		if err != nil || !bytes.HasPrefix(got, []byte("cpu ")) || len(got) < len(want)/2 {
			t.Errorf("/proc/stat: %d bytes, %v", len(got), err)
		}
	}

	tasks := filepath.Join(dir, "task")
	var want []string
	for i := range 400 {
		name := strconv.Itoa(100000 + i)
		want = append(want, name)
		if err := os.MkdirAll(filepath.Join(tasks, name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []*procReader{{}, nil} {
		var got []string
		if err := r.names(tasks, func(n []byte) { got = append(got, string(n)) }); err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("reader %v: %d names, want %d (first %v)", r != nil, len(got), len(want), got[:min(3, len(got))])
		}
	}
	if err := (&procReader{}).names(filepath.Join(dir, "missing"), func([]byte) {}); err == nil {
		t.Error("a missing directory listed")
	}
}

func TestFieldAndAtou(t *testing.T) {
	line := []byte("  1\t22  333 \n")
	for i, want := range []string{"1", "22", "333", "\n"} {
		if f, ok := field(line, i); !ok || string(f) != want {
			t.Errorf("field %d = %q, %v; want %q", i, f, ok, want)
		}
	}
	if f, ok := field(line, 4); ok {
		t.Errorf("field 4 = %q, want none", f)
	}
	for in, want := range map[string]uint64{"0": 0, "42": 42, "18446744073709551615": 0, "9999999999999999999": 9999999999999999999} {
		v, ok := atou([]byte(in))
		if len(in) > 19 {
			if ok {
				t.Errorf("atou(%q) = %d: want refused (20 digits)", in, v)
			}
			continue
		}
		if !ok || v != want {
			t.Errorf("atou(%q) = %d, %v", in, v, ok)
		}
	}
	for _, in := range []string{"", "-1", "1x", " 1", "+2"} {
		if v, ok := atou([]byte(in)); ok {
			t.Errorf("atou(%q) = %d: want refused", in, v)
		}
	}
}

// Readings every second make little garbage: the generator makes none per
// request, and its heap grew by its per-second readings alone.
func TestResolvedProbesReadWithoutGarbage(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{"proc/42/cgroup": "0::/\n"}
	for tid := 42; tid < 50; tid++ {
		files[fmt.Sprintf("proc/42/task/%d/schedstat", tid)] = "100 1000000 5\n"
	}
	writeFiles(t, root, files)
	plain := StarveProbe{Root: filepath.Join(root, "proc"), PID: 42}
	resolved := plain.Resolved()
	resolved.Read()
	// The delay map and each file's path for open(2) remain.
	if n := testing.AllocsPerRun(20, func() { resolved.Read() }); n > 16 {
		t.Errorf("a resolved starvation reading of 8 threads makes %v allocations, want at most 16 (a plain one: %v)", n,
			testing.AllocsPerRun(20, func() { plain.Read() }))
	}
	sroot := t.TempDir()
	stealTree(t, sroot, "0-3", []int{1, 2, 3, 4})
	pinned := StealProbe{Root: sroot, PID: 77}.Pinned()
	pinned.Read()
	if n := testing.AllocsPerRun(20, func() { pinned.Read() }); n > 3 {
		t.Errorf("a pinned steal reading makes %v allocations, want at most 3", n)
	}
}

// direntNames never reads past its buffer and never yields a name with a
// NUL, "." or "..", whatever the bytes.
func FuzzDirentNames(f *testing.F) {
	rec := func(name string) []byte {
		n := 19 + len(name) + 1
		n = (n + 7) &^ 7
		b := make([]byte, n)
		b[16], b[17] = byte(n), byte(n>>8)
		copy(b[19:], name)
		return b
	}
	f.Add(append(append(rec("."), rec("..")...), rec("1234")...))
	f.Add(rec("7"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		direntNames(b, func(name []byte) {
			if bytes.IndexByte(name, 0) >= 0 || string(name) == "." || string(name) == ".." {
				t.Errorf("name %q", name)
			}
		})
	})
}

// field and atou agree with strings.Fields and strconv.ParseUint.
func FuzzFieldAtou(f *testing.F) {
	f.Add("cpu1 5 0 7 100 0 0 0 12 0 0", 8)
	f.Add(" \t 42", 0)
	f.Fuzz(func(t *testing.T, s string, i int) {
		if i < 0 || i > 64 || strings.ContainsAny(s, "\n\r\v\f\u0085\u00a0") {
			return
		}
		want := strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == '\t' })
		got, ok := field([]byte(s), i)
		if ok != (i < len(want)) || ok && string(got) != want[i] {
			t.Fatalf("field(%q, %d) = %q, %v; want %q", s, i, got, ok, want)
		}
		if !ok {
			return
		}
		v, okA := atou(got)
		w, err := strconv.ParseUint(string(got), 10, 64)
		if okA && (err != nil || v != w) {
			t.Fatalf("atou(%q) = %d, strconv %d %v", got, v, w, err)
		}
		if !okA && err == nil && len(got) <= 19 && got[0] != '+' {
			t.Fatalf("atou(%q) refused what strconv reads: %d", got, w)
		}
	})
}
