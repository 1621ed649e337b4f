package cli

import (
	"bytes"
	"io/fs"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// TestRunUploadsToS3 uploads a real run's directory to a fake S3 server
// (gofakes3, in memory, on loopback), then runs again with the server down.
func TestRunUploadsToS3(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	backend := s3mem.New()
	if err := backend.CreateBucket("capacity"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server()) // the fake S3, on 127.0.0.1
	defer srv.Close()
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))

	plan := busPlan(t, "upload", "",
		"  - { name: rate, start: 100, max: 100 }\n  - { name: connections, start: 2, max: 2 }",
		"ramp:\n  warmup: 0s\n  hold: 1s\n  cooldown: 0s\ngates:\n  - errors.ratio < 0.01\n")
	o := runCLI(t, plan, "--upload", "s3://capacity/nightly", "--s3-endpoint", srv.URL)
	if o.code != 0 || !strings.Contains(o.stdout, "uploaded") {
		t.Fatalf("exit %d, no upload line", o.code)
	}
	var local []string
	filepath.WalkDir(o.dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(o.dir, p)
			local = append(local, "nightly/"+filepath.Base(o.dir)+"/"+rel)
		}
		return nil
	})
	sort.Strings(local)
	for _, key := range local {
		obj, err := backend.GetObject("capacity", key, nil)
		if err != nil {
			t.Errorf("%s did not arrive: %v", key, err)
			continue
		}
		obj.Contents.Close()
	}
	if len(local) < 8 {
		t.Errorf("only %d files in the run directory: %v", len(local), local)
	}

	// With the server down the run still finishes, keeps its files and says so.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + ln.Addr().String()
	ln.Close()
	o = runCLI(t, plan, "--upload", "s3://capacity/nightly", "--s3-endpoint", dead)
	if o.code != 0 {
		t.Fatalf("a failed upload changed the exit code to %d", o.code)
	}
	if !strings.Contains(o.stderr, "upload FAILED") {
		t.Errorf("the failed upload is not reported:\n%s", o.stderr)
	}
	for _, name := range []string{"report.json", "steps.jsonl", "report.html"} {
		if b, err := os.ReadFile(filepath.Join(o.dir, name)); err != nil || len(bytes.TrimSpace(b)) == 0 {
			t.Errorf("%s lost after a failed upload: %v", name, err)
		}
	}
}
