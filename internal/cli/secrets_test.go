package cli

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"io"
	"io/fs"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/loadramp/loadramp/orchestrator/record"
)

// TestTerraformSensitiveOutputStaysSecret runs the Terraform plan on a copy of
// infra/modules/local with one more output, a token marked sensitive (read
// from a file outside the run directory), which the workload sends as a
// header, and uploads the run to a fake S3. No file of the run directory and
// no uploaded object holds the token; run.json and events.log say
// "(sensitive)". The run directory is private.
func TestTerraformSensitiveOutputStaysSecret(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	tfBin(t)
	mod := tfModule(t, "local")
	os.WriteFile(filepath.Join(mod, "secret.tf"), []byte(`variable "token_file" {
  type = string
}

output "token" {
  value     = trimspace(file(var.token_file))
  sensitive = true
}
`), 0o644)
	b := make([]byte, 16)
	rand.Read(b)
	token := "tok-" + hex.EncodeToString(b)
	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte(token+"\n"), 0o600)

	backend := s3mem.New()
	if err := backend.CreateBucket("runs"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	defer srv.Close()
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))

	o := runCLI(t, tfPlanArgs(t, mod,
		"--set", "fleets.target.terraform.vars.token_file="+tokenFile,
		"--set", "workload.http.headers.Authorization=Bearer {{ .fleets.target.token }}",
		"--set", "parameters.rate.max=250", "--set", "parameters.connections.max=8",
		"--upload", "s3://runs/nightly", "--s3-endpoint", srv.URL)...)
	if o.code != 0 || !strings.Contains(o.stdout, "uploaded") {
		t.Fatalf("exit %d, no upload", o.code)
	}
	if strings.Contains(o.stdout+o.stderr, token) {
		t.Errorf("the token was printed")
	}
	r := readRunJSON(t, o.dir)
	if len(r.Infra) == 0 || r.Infra[0].Outputs["token"] != record.Redacted || !strings.HasPrefix(r.Infra[0].Outputs["endpoint"], "http://") {
		t.Errorf("run.json outputs %v, want the token redacted and the endpoint kept", r.Infra)
	}
	ev, _ := os.ReadFile(filepath.Join(o.dir, record.EventsFile))
	if !bytes.Contains(ev, []byte(`"token":"`+record.Redacted+`"`)) {
		t.Errorf("events.log lacks the redacted fleet output")
	}

	files := 0
	err := filepath.WalkDir(o.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".terraform" {
			return filepath.SkipDir // terraform's own cache, inside a private directory
		}
		want := os.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		// terraform writes a few files of its own (the selected workspace)
		// into the fleet's private data directory, with its own modes.
		terraforms := filepath.Base(filepath.Dir(filepath.Dir(p))) == "terraform" && !strings.HasPrefix(d.Name(), "loadramp") && d.Name() != "empty.tfrc"
		if info.Mode().Perm() != want && !(terraforms && !d.IsDir()) {
			t.Errorf("%s: mode %v, want %v", p, info.Mode().Perm(), want)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		files++
		if data, _ := os.ReadFile(p); bytes.Contains(data, []byte(token)) {
			t.Errorf("%s holds the token", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	objs, err := backend.ListBucket("runs", nil, gofakes3.ListBucketPage{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range objs.Contents {
		obj, err := backend.GetObject("runs", c.Key, nil)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(obj.Contents)
		obj.Contents.Close()
		if bytes.Contains(data, []byte(token)) {
			t.Errorf("uploaded %s holds the token", c.Key)
		}
	}
	if files < 10 || len(objs.Contents) < 10 {
		t.Errorf("%d files in the run directory, %d uploaded: too few to mean anything", files, len(objs.Contents))
	}
}
