package aws

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/rs/zerolog"
)

const uploadTestRunID = "20261127T063000Z-local-eventbus"

// uploadFakeS3 starts a fake S3 server (gofakes3 over an in-memory backend)
// on 127.0.0.1 and returns its URL. wrap, when not nil, sits in front of
// the fake (to count or fail requests). The server is closed at cleanup.
func uploadFakeS3(t *testing.T, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	var h http.Handler = gofakes3.New(s3mem.New()).Server()
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	uploadRequireLoopback(t, srv.URL)
	return srv.URL
}

// uploadRequireLoopback stops the test unless endpoint is on 127.0.0.1, so
// that no test ever sends a request to the real AWS.
func uploadRequireLoopback(t *testing.T, endpoint string) {
	t.Helper()
	if !strings.HasPrefix(endpoint, "http://127.0.0.1:") {
		t.Fatalf("test endpoint %q is not on 127.0.0.1", endpoint)
	}
}

// uploadTestClient is an S3 client for the loopback endpoint with static
// test credentials and a single attempt per call.
func uploadTestClient(t *testing.T, endpoint string) *s3.Client {
	t.Helper()
	uploadRequireLoopback(t, endpoint)
	return s3.New(s3.Options{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDLOADRAMPTEST", "test-secret", ""),
		BaseEndpoint:     sdkaws.String(endpoint),
		UsePathStyle:     true,
		RetryMaxAttempts: 1,
	})
}

func uploadCreateBucket(t *testing.T, c *s3.Client, bucket string) {
	t.Helper()
	if _, err := c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: sdkaws.String(bucket)}); err != nil {
		t.Fatalf("create bucket %s: %v", bucket, err)
	}
}

// uploadSampleRun writes a run directory like the one loadramp leaves, with
// a nested directory, an empty file and a binary file of random bytes, and
// returns its path and contents by relative slash path.
func uploadSampleRun(t *testing.T) (string, map[string][]byte) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), uploadTestRunID)
	big := make([]byte, 3<<20+17) // several MiB: more than one network write
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"plan.yaml":             []byte("version: 1\nname: local-eventbus\n"),
		"run.json":              []byte(`{"id":"` + uploadTestRunID + `","status":"bottleneck"}`),
		"steps.jsonl":           []byte("{\"index\":1}\n{\"index\":2}\n"),
		"samples.jsonl":         {},
		"events.log":            []byte(`{"level":"info","message":"step 1 passed"}` + "\n"),
		"report.json":           []byte(`{"schema":"loadramp.report/v1"}`),
		"report.md":             []byte("# local-eventbus\n\ncapacity: rate 8000\n"),
		"report.html":           []byte("<!doctype html><title>r</title>"),
		"junit.xml":             []byte(`<?xml version="1.0"?><testsuites/>`),
		"steps.csv":             []byte("step,rate\n1,250\n"),
		"logs/eventbus.log":     []byte("accept4: too many open files\n"),
		"logs/deep/blob.bin":    big,
		"plots/latency p99.svg": []byte("<svg/>"),
	}
	for rel, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir, files
}

type uploadFileState struct {
	sum   [32]byte
	mode  os.FileMode
	mtime time.Time
	size  int64
}

// uploadSnapshot records every entry under dir, to show later that an
// upload left the local copy as it was.
func uploadSnapshot(t *testing.T, dir string) map[string]uploadFileState {
	t.Helper()
	out := map[string]uploadFileState{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		st := uploadFileState{mode: info.Mode(), mtime: info.ModTime(), size: info.Size()}
		if d.Type().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			st.sum = sha256.Sum256(data)
		}
		out[p] = st
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func uploadSameSnapshot(t *testing.T, before, after map[string]uploadFileState) {
	t.Helper()
	if len(before) != len(after) {
		t.Errorf("local run directory has %d entries after upload, had %d", len(after), len(before))
	}
	for p, b := range before {
		a, ok := after[p]
		switch {
		case !ok:
			t.Errorf("%s: gone after upload", p)
		case a.sum != b.sum || a.size != b.size:
			t.Errorf("%s: content changed by upload", p)
		case a.mode != b.mode || !a.mtime.Equal(b.mtime):
			t.Errorf("%s: mode or mtime changed by upload (%v %v -> %v %v)", p, b.mode, b.mtime, a.mode, a.mtime)
		}
	}
}

// uploadListKeys lists every key in bucket.
func uploadListKeys(t *testing.T, c *s3.Client, bucket string) []string {
	t.Helper()
	var keys []string
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: sdkaws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("list %s: %v", bucket, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, sdkaws.ToString(o.Key))
		}
	}
	slices.Sort(keys)
	return keys
}

func uploadGet(t *testing.T, c *s3.Client, bucket, key string) ([]byte, string) {
	t.Helper()
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: sdkaws.String(bucket), Key: sdkaws.String(key)})
	if err != nil {
		t.Fatalf("get s3://%s/%s: %v", bucket, key, err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatalf("read s3://%s/%s: %v", bucket, key, err)
	}
	return data, sdkaws.ToString(out.ContentType)
}

// uploadLogCounter is a zerolog writer that keeps every line, to count the
// retries UploadDir logged.
type uploadLogCounter struct {
	mu    sync.Mutex
	lines []string
}

func (l *uploadLogCounter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, string(p))
	return len(p), nil
}

func (l *uploadLogCounter) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		if strings.Contains(line, substr) {
			n++
		}
	}
	return n
}

func TestUploadDirEveryFileArrivesIdentical(t *testing.T) {
	endpoint := uploadFakeS3(t, nil)
	client := uploadTestClient(t, endpoint)
	uploadCreateBucket(t, client, "loadramp-runs")
	dir, files := uploadSampleRun(t)
	before := uploadSnapshot(t, dir)

	res, err := UploadDir(context.Background(), UploadConfig{URL: "s3://loadramp-runs/nightly/eu/", Client: client}, dir, zerolog.Nop())
	if err != nil {
		t.Fatalf("UploadDir: %v", err)
	}

	if res.Bucket != "loadramp-runs" || res.Prefix != "nightly/eu" {
		t.Errorf("result bucket/prefix = %q/%q, want loadramp-runs/nightly/eu", res.Bucket, res.Prefix)
	}
	var want []string
	var wantBytes int64
	for rel, data := range files {
		want = append(want, "nightly/eu/"+uploadTestRunID+"/"+rel)
		wantBytes += int64(len(data))
	}
	slices.Sort(want)
	got := slices.Sorted(slices.Values(res.Files))
	if !slices.Equal(got, want) {
		t.Errorf("result files:\n got %q\nwant %q", got, want)
	}
	if res.Bytes != wantBytes {
		t.Errorf("result bytes = %d, want %d", res.Bytes, wantBytes)
	}
	if keys := uploadListKeys(t, client, "loadramp-runs"); !slices.Equal(keys, want) {
		t.Errorf("bucket holds:\n got %q\nwant %q", keys, want)
	}
	for rel, data := range files {
		key := path.Join("nightly/eu", uploadTestRunID, rel)
		stored, ctype := uploadGet(t, client, "loadramp-runs", key)
		if !bytes.Equal(stored, data) {
			t.Errorf("%s: stored %d bytes differ from the local %d bytes", key, len(stored), len(data))
		}
		if wantType := uploadContentType(rel); ctype != wantType {
			t.Errorf("%s: Content-Type %q, want %q", key, ctype, wantType)
		}
	}
	uploadSameSnapshot(t, before, uploadSnapshot(t, dir))
}

func TestUploadDirEmptyPrefix(t *testing.T) {
	endpoint := uploadFakeS3(t, nil)
	client := uploadTestClient(t, endpoint)
	uploadCreateBucket(t, client, "runs-bucket")
	dir := filepath.Join(t.TempDir(), "run-1")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "report.md"), []byte("# r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := UploadDir(context.Background(), UploadConfig{URL: "s3://runs-bucket", Client: client}, dir+"/", zerolog.Nop())
	if err != nil {
		t.Fatalf("UploadDir: %v", err)
	}
	if want := []string{"run-1/report.md"}; !slices.Equal(res.Files, want) {
		t.Errorf("files = %q, want %q", res.Files, want)
	}
	if keys := uploadListKeys(t, client, "runs-bucket"); !slices.Equal(keys, res.Files) {
		t.Errorf("bucket holds %q, want %q", keys, res.Files)
	}
}

func TestUploadDirServerDownFailsAfterRetriesAndKeepsLocalFiles(t *testing.T) {
	// A server that listened once and is closed: connections to its port
	// are refused.
	srv := httptest.NewServer(http.NotFoundHandler())
	endpoint := srv.URL
	srv.Close()
	client := uploadTestClient(t, endpoint)
	dir, _ := uploadSampleRun(t)
	before := uploadSnapshot(t, dir)
	logs := &uploadLogCounter{}

	cfg := UploadConfig{URL: "s3://loadramp-runs/nightly", Client: client, Retries: 3, Backoff: time.Millisecond}
	res, err := UploadDir(context.Background(), cfg, dir, zerolog.New(logs))
	if err == nil {
		t.Fatal("UploadDir succeeded with the server down")
	}
	msg := err.Error()
	// Files go in lexical order: events.log is the first.
	for _, want := range []string{filepath.Join(dir, "events.log"), "after 3 attempt(s)", "connection refused"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
	if n := logs.count("retrying"); n != 2 {
		t.Errorf("logged %d retries, want 2 (3 attempts)", n)
	}
	if len(res.Files) != 0 || res.Bytes != 0 {
		t.Errorf("result claims uploads: %+v", res)
	}
	uploadSameSnapshot(t, before, uploadSnapshot(t, dir))
}

// uploadFlaky is a fake front for the fake S3: it answers the first n PUTs
// of each key ending in suffix with 503 SlowDown, and counts PUTs per key.
type uploadFlaky struct {
	suffix string
	n      int
	mu     sync.Mutex
	puts   map[string]int
}

func (f *uploadFlaky) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			f.mu.Lock()
			f.puts[r.URL.Path]++
			seen := f.puts[r.URL.Path]
			f.mu.Unlock()
			if strings.HasSuffix(r.URL.Path, f.suffix) && seen <= f.n {
				_, _ = io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "application/xml")
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (f *uploadFlaky) putsOf(p string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.puts[p]
}

func TestUploadDirRetriesTransientErrors(t *testing.T) {
	flaky := &uploadFlaky{suffix: "/report.json", n: 2, puts: map[string]int{}}
	endpoint := uploadFakeS3(t, flaky.wrap)
	client := uploadTestClient(t, endpoint)
	uploadCreateBucket(t, client, "loadramp-runs")
	dir, files := uploadSampleRun(t)

	cfg := UploadConfig{URL: "s3://loadramp-runs/p", Client: client, Retries: 3, Backoff: time.Millisecond}
	if _, err := UploadDir(context.Background(), cfg, dir, zerolog.Nop()); err != nil {
		t.Fatalf("UploadDir with 2 transient failures and 3 attempts: %v", err)
	}
	key := "p/" + uploadTestRunID + "/report.json"
	if n := flaky.putsOf("/loadramp-runs/" + key); n != 3 {
		t.Errorf("report.json was PUT %d times, want 3 (2 refused, 1 stored)", n)
	}
	if n := flaky.putsOf("/loadramp-runs/p/" + uploadTestRunID + "/report.md"); n != 1 {
		t.Errorf("report.md was PUT %d times, want 1", n)
	}
	if got, _ := uploadGet(t, client, "loadramp-runs", key); !bytes.Equal(got, files["report.json"]) {
		t.Errorf("report.json stored as %q, want %q", got, files["report.json"])
	}

	// With fewer attempts than failures, the error names the file and the
	// store's last answer.
	flaky2 := &uploadFlaky{suffix: "/report.json", n: 5, puts: map[string]int{}}
	endpoint2 := uploadFakeS3(t, flaky2.wrap)
	client2 := uploadTestClient(t, endpoint2)
	uploadCreateBucket(t, client2, "loadramp-runs")
	cfg = UploadConfig{URL: "s3://loadramp-runs/p", Client: client2, Retries: 2, Backoff: time.Millisecond}
	_, err := UploadDir(context.Background(), cfg, dir, zerolog.Nop())
	if err == nil {
		t.Fatal("UploadDir succeeded though report.json was refused on every attempt")
	}
	for _, want := range []string{filepath.Join(dir, "report.json"), "after 2 attempt(s)", "SlowDown"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestUploadDirDoesNotRetryPermanentErrors(t *testing.T) {
	counter := &uploadFlaky{suffix: "never", puts: map[string]int{}}
	endpoint := uploadFakeS3(t, counter.wrap)
	client := uploadTestClient(t, endpoint)
	dir, _ := uploadSampleRun(t)

	// No bucket was created: the store answers 404 NoSuchBucket, which
	// another attempt would not change.
	cfg := UploadConfig{URL: "s3://no-such-bucket/x", Client: client, Retries: 5, Backoff: time.Millisecond}
	_, err := UploadDir(context.Background(), cfg, dir, zerolog.Nop())
	if err == nil {
		t.Fatal("UploadDir succeeded into a bucket that does not exist")
	}
	if !strings.Contains(err.Error(), "NoSuchBucket") || !strings.Contains(err.Error(), "after 1 attempt(s)") {
		t.Errorf("error %q: want NoSuchBucket after 1 attempt", err)
	}
	if n := counter.putsOf("/no-such-bucket/x/" + uploadTestRunID + "/events.log"); n != 1 {
		t.Errorf("events.log was PUT %d times, want 1", n)
	}
}

func TestUploadDirStopsWaitingWhenCancelled(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	endpoint := srv.URL
	srv.Close()
	client := uploadTestClient(t, endpoint)
	dir, _ := uploadSampleRun(t)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(100*time.Millisecond, cancel)
	// The first wait would be at least MaxUploadBackoff/2.
	cfg := UploadConfig{URL: "s3://loadramp-runs/x", Client: client, Retries: 5, Backoff: time.Hour}
	start := time.Now()
	_, err := UploadDir(ctx, cfg, dir, zerolog.Nop())
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if took := time.Since(start); took >= MaxUploadBackoff/2 {
		t.Errorf("UploadDir returned %v after cancel: it waited out its backoff", took)
	}
}

// TestUploadDirBuildsClientFromProfile builds the client the way loadramp
// does (no Client given): credentials and region from a named profile in
// shared config files written here, the fake's loopback endpoint.
func TestUploadDirBuildsClientFromProfile(t *testing.T) {
	var (
		mu   sync.Mutex
		auth []string
	)
	endpoint := uploadFakeS3(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			auth = append(auth, r.Header.Get("Authorization"))
			mu.Unlock()
			next.ServeHTTP(w, r)
		})
	})
	home := t.TempDir()
	confFile := filepath.Join(home, "config")
	credFile := filepath.Join(home, "credentials")
	if err := os.WriteFile(confFile, []byte("[profile loadramp-test]\nregion = eu-west-3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(credFile, []byte("[loadramp-test]\naws_access_key_id = AKIDPROFILETEST\naws_secret_access_key = profile-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Only the files written above count: nothing from the environment,
	// and no instance metadata lookups.
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
		"AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
		"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_CONFIG_FILE", confFile)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", credFile)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")

	// The bucket is made through a client of the test's own.
	uploadCreateBucket(t, uploadTestClient(t, endpoint), "loadramp-runs")
	dir, files := uploadSampleRun(t)

	cfg := UploadConfig{URL: "s3://loadramp-runs/nightly", Profile: "loadramp-test", Endpoint: endpoint, Backoff: time.Millisecond}
	res, err := UploadDir(context.Background(), cfg, dir, zerolog.Nop())
	if err != nil {
		t.Fatalf("UploadDir: %v", err)
	}
	if len(res.Files) != len(files) {
		t.Errorf("uploaded %d files, want %d", len(res.Files), len(files))
	}
	mu.Lock()
	signed := 0
	for _, a := range auth {
		if strings.Contains(a, "Credential=AKIDPROFILETEST/") && strings.Contains(a, "/eu-west-3/s3/") {
			signed++
		}
	}
	mu.Unlock()
	if signed != len(files) {
		t.Errorf("%d requests signed with the profile's key and region, want %d", signed, len(files))
	}

	// A profile that is not in the files is a clear configuration error.
	cfg.Profile = "no-such-profile"
	_, err = UploadDir(context.Background(), cfg, dir, zerolog.Nop())
	if err == nil || !strings.Contains(err.Error(), `aws_profile "no-such-profile"`) {
		t.Errorf("unknown profile: error %v, want one naming aws_profile", err)
	}
}

func TestUploadDirBadInputs(t *testing.T) {
	file := filepath.Join(t.TempDir(), "report.md")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	// The client points at a closed loopback port: none of these cases
	// may get as far as a request.
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	client := uploadTestClient(t, srv.URL)
	for _, tc := range []struct {
		name, url, dir, want string
	}{
		{"bad url", "https://bucket/x", empty, "report.upload: want s3://bucket/prefix"},
		{"missing dir", "s3://bucket/x", filepath.Join(empty, "nope"), "no such file or directory"},
		{"file not dir", "s3://bucket/x", file, "is not a directory"},
		{"empty dir", "s3://bucket/x", empty, "has no files"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := UploadDir(context.Background(), UploadConfig{URL: tc.url, Client: client, Retries: 1}, tc.dir, zerolog.Nop())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

func TestParseS3URL(t *testing.T) {
	for _, tc := range []struct {
		in, bucket, prefix, err string
	}{
		{in: "s3://loadramp-runs/nightly", bucket: "loadramp-runs", prefix: "nightly"},
		{in: "s3://loadramp-runs/nightly/eu/", bucket: "loadramp-runs", prefix: "nightly/eu"},
		{in: "s3://loadramp-runs", bucket: "loadramp-runs"},
		{in: "s3://loadramp-runs/", bucket: "loadramp-runs"},
		{in: "s3://my.bucket-1/a b/c", bucket: "my.bucket-1", prefix: "a b/c"},
		{in: "", err: `report.upload: want s3://bucket/prefix, got ""`},
		{in: "https://loadramp-runs.s3.amazonaws.com/x", err: "report.upload: want s3://bucket/prefix, got"},
		{in: "S3://loadramp-runs/x", err: "report.upload: want s3://bucket/prefix"},
		{in: "s3:///x", err: "(no bucket)"},
		{in: "s3://Loadramp_Runs/x", err: "may contain only lowercase letters"},
		{in: "s3://ab/x", err: "must be 3 to 63 characters"},
		{in: "s3://-runs/x", err: "must begin and end with a letter or digit"},
		{in: "s3://a..b/x", err: "two adjacent dots"},
		{in: "s3://runs/a//b", err: "empty path segments"},
		{in: "s3://runs/a?versionId=1", err: "must not contain '?'"},
		{in: "s3://runs/a\nb", err: "control characters"},
	} {
		bucket, prefix, err := ParseS3URL(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseS3URL(%q) error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || bucket != tc.bucket || prefix != tc.prefix {
			t.Errorf("ParseS3URL(%q) = %q, %q, %v; want %q, %q", tc.in, bucket, prefix, err, tc.bucket, tc.prefix)
		}
	}
}

func FuzzParseS3URL(f *testing.F) {
	for _, s := range []string{"s3://loadramp-runs/nightly", "s3://b.c-d/", "s3://x", "s3:///", "http://x/y", "s3://a..b/c//d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, u string) {
		bucket, prefix, err := ParseS3URL(u)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "report.upload: ") {
				t.Fatalf("error %q does not name report.upload", err)
			}
			return
		}
		if uploadBadBucket(bucket) != "" || strings.HasPrefix(prefix, "/") || strings.HasSuffix(prefix, "/") {
			t.Fatalf("ParseS3URL(%q) = %q, %q: not a clean bucket and prefix", u, bucket, prefix)
		}
		// What was parsed prints back to a URL that parses the same.
		b2, p2, err := ParseS3URL("s3://" + bucket + "/" + prefix)
		if err != nil || b2 != bucket || p2 != prefix {
			t.Fatalf("round trip of %q: %q, %q, %v", u, b2, p2, err)
		}
	})
}

func TestUploadDelayGrowsWithJitterAndIsBounded(t *testing.T) {
	base := 200 * time.Millisecond
	for attempt := 1; attempt <= 12; attempt++ {
		ceiling := min(base<<(attempt-1), MaxUploadBackoff)
		seen := map[time.Duration]bool{}
		for range 200 {
			d := uploadDelay(base, attempt)
			if d < ceiling/2 || d > ceiling {
				t.Fatalf("attempt %d: delay %v outside [%v, %v]", attempt, d, ceiling/2, ceiling)
			}
			seen[d] = true
		}
		if len(seen) < 2 {
			t.Errorf("attempt %d: 200 delays all equal %v: no jitter", attempt, uploadAnyKey(seen))
		}
	}
	if d := uploadDelay(time.Nanosecond, 1); d != time.Nanosecond {
		t.Errorf("1ns base: delay %v", d)
	}
}

func uploadAnyKey(m map[time.Duration]bool) time.Duration {
	for d := range m {
		return d
	}
	return 0
}

func TestUploadContentType(t *testing.T) {
	for name, want := range map[string]string{
		"report.json":       "application/json",
		"steps.jsonl":       "application/x-ndjson",
		"report.html":       "text/html; charset=utf-8",
		"steps.csv":         "text/csv; charset=utf-8",
		"report.md":         "text/markdown; charset=utf-8",
		"junit.xml":         "application/xml",
		"events.log":        "text/plain; charset=utf-8",
		"plan.yaml":         "application/yaml",
		"report.xlsx":       "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
		"REPORT.JSON":       "application/json",
		"blob.bin":          "application/octet-stream",
		"no-extension":      "application/octet-stream",
		"logs/eventbus.log": "text/plain; charset=utf-8",
	} {
		if got := uploadContentType(name); got != want {
			t.Errorf("uploadContentType(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestUploadDirRedactsSecrets(t *testing.T) {
	endpoint := uploadFakeS3(t, nil)
	client := uploadTestClient(t, endpoint)
	uploadCreateBucket(t, client, "runs")
	dir := filepath.Join(t.TempDir(), uploadTestRunID)
	const secret = `tok-<3"9>&x`
	big := bytes.Repeat([]byte("0123456789abcdef"), 40000) // > one read chunk
	files := map[string][]byte{
		"events.log":                               []byte(`{"message":"token tok-\u003c3\"9\u003e\u0026x"}` + "\n"),
		"terraform/gen/loadramp.tfvars.json":       []byte(`{"token": "tok-<3\"9>&x", "n": 1}`),
		"target-app.log":                           append(append(bytes.Clone(big), secret...), big...),
		"report.json":                              []byte(`{"ok": true}`),
		"samples.jsonl":                            big,
		"terraform/gen/.terraform/providers/x/bin": {0, 1, 2, 't', 'o', 'k'},
	}
	for rel, data := range files {
		p := filepath.Join(dir, rel)
		os.MkdirAll(filepath.Dir(p), 0o700)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	before := uploadSnapshot(t, dir)
	if _, err := UploadDir(context.Background(), UploadConfig{URL: "s3://runs/n", Client: client, Redact: []string{secret, "ab"}}, dir, zerolog.Nop()); err != nil {
		t.Fatal(err)
	}
	for rel, data := range files {
		stored, _ := uploadGet(t, client, "runs", path.Join("n", uploadTestRunID, rel))
		if bytes.Contains(stored, []byte("tok-")) && !bytes.Contains(data, []byte{0, 1, 2}) {
			t.Errorf("%s was uploaded with the secret:\n%.300s", rel, stored)
		}
		switch rel {
		case "report.json", "samples.jsonl", "terraform/gen/.terraform/providers/x/bin":
			if !bytes.Equal(stored, data) {
				t.Errorf("%s without a secret was changed", rel)
			}
		default:
			if !bytes.Contains(stored, []byte("(sensitive)")) {
				t.Errorf("%s: the secret was not replaced:\n%.300s", rel, stored)
			}
		}
	}
	uploadSameSnapshot(t, before, uploadSnapshot(t, dir))
}
