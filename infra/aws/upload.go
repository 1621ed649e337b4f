package aws

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	sdkaws "github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/rs/zerolog"
)

// Defaults of UploadConfig.
const (
	// DefaultUploadRetries is the number of attempts per file when
	// UploadConfig.Retries is 0.
	DefaultUploadRetries = 5
	// DefaultUploadBackoff is the delay before the second attempt when
	// UploadConfig.Backoff is 0; each later delay doubles, with jitter.
	DefaultUploadBackoff = 200 * time.Millisecond
	// MaxUploadBackoff bounds any single delay between attempts.
	MaxUploadBackoff = 10 * time.Second
)

// uploadDefaultRegion signs requests to a custom endpoint when neither the
// config nor the environment names a region: S3-compatible stores accept
// any region, but SigV4 needs one.
const uploadDefaultRegion = "us-east-1"

// UploadConfig says where and how to upload a run directory.
type UploadConfig struct {
	// URL is the destination, s3://bucket/prefix (the prefix may be empty).
	URL string
	// Profile and Region come from loadramp's config (aws_profile,
	// aws_region); empty means the SDK's defaults (environment, shared
	// config files, instance metadata).
	Profile, Region string
	// Endpoint is an optional custom endpoint (tests, S3-compatible
	// stores). When set, buckets are addressed path-style.
	Endpoint string
	// Retries is the number of attempts per file (default 5). Attempts are
	// separated by exponential backoff with jitter, starting at Backoff and
	// bounded by MaxUploadBackoff.
	Retries int
	// Backoff is the delay before the second attempt (default 200ms).
	Backoff time.Duration
	// Client is used as is when set (tests); otherwise one is built from
	// Profile, Region and Endpoint. Endpoint is ignored when Client is set.
	Client *s3.Client
	// Redact are secrets (the values of sensitive Terraform outputs) that
	// must not leave the machine: a file holding one, as is or JSON-escaped,
	// is uploaded with each replaced by "(sensitive)"; the local file is not
	// changed. Values shorter than 4 bytes are ignored.
	Redact []string
}

// uploadRedacted replaces a secret in an uploaded file.
const uploadRedacted = "(sensitive)"

// UploadResult lists what UploadDir uploaded. Each key is
// Prefix/<run-id>/<path relative to the run directory>, with slashes.
type UploadResult struct {
	Bucket, Prefix string
	// Files are the object keys, in upload (lexical) order.
	Files []string
	// Bytes is the total size of the uploaded files.
	Bytes int64
}

// ParseS3URL splits s3://bucket/prefix into its bucket and prefix. The
// prefix has no leading or trailing slash and may be empty.
func ParseS3URL(u string) (bucket, prefix string, err error) {
	rest, ok := strings.CutPrefix(u, "s3://")
	if !ok {
		return "", "", fmt.Errorf("report.upload: want s3://bucket/prefix, got %q", u)
	}
	bucket, prefix, _ = strings.Cut(rest, "/")
	if bucket == "" {
		return "", "", fmt.Errorf("report.upload: want s3://bucket/prefix, got %q (no bucket)", u)
	}
	if why := uploadBadBucket(bucket); why != "" {
		return "", "", fmt.Errorf("report.upload: bucket %q in %q: %s", bucket, u, why)
	}
	if strings.ContainsAny(prefix, "?#") || strings.ContainsFunc(prefix, uploadIsControl) {
		return "", "", fmt.Errorf("report.upload: prefix %q in %q: must not contain '?', '#' or control characters", prefix, u)
	}
	prefix = strings.Trim(prefix, "/")
	if strings.Contains(prefix, "//") {
		return "", "", fmt.Errorf("report.upload: prefix %q in %q: must not contain empty path segments (//)", prefix, u)
	}
	return bucket, prefix, nil
}

// uploadBadBucket says why name is not an S3 bucket name, or "" when it is
// one (general purpose bucket naming rules, without the reserved prefixes).
func uploadBadBucket(name string) string {
	if len(name) < 3 || len(name) > 63 {
		return "must be 3 to 63 characters long"
	}
	for _, r := range name {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '.' && r != '-' {
			return "may contain only lowercase letters, digits, dots and hyphens"
		}
	}
	alnum := func(b byte) bool { return (b >= 'a' && b <= 'z') || (b >= '0' && b <= '9') }
	if !alnum(name[0]) || !alnum(name[len(name)-1]) {
		return "must begin and end with a letter or digit"
	}
	if strings.Contains(name, "..") {
		return "must not contain two adjacent dots"
	}
	return ""
}

func uploadIsControl(r rune) bool { return r < 0x20 || r == 0x7f }

// UploadDir uploads every regular file under dir, recursively, to
// s3://bucket/prefix/<base name of dir>/<relative path>. Each file is tried
// up to cfg.Retries times with exponential backoff and jitter; errors the
// store will repeat (access denied, no such bucket: HTTP 4xx other than
// 408 and 429) are not retried. The first file that cannot be uploaded
// stops the upload: the error names it and the last cause, and the result
// lists what was uploaded before it. Local files are only read, never
// changed or removed.
func UploadDir(ctx context.Context, cfg UploadConfig, dir string, log zerolog.Logger) (UploadResult, error) {
	bucket, prefix, err := ParseS3URL(cfg.URL)
	if err != nil {
		return UploadResult{}, err
	}
	res := UploadResult{Bucket: bucket, Prefix: prefix}
	files, runID, err := uploadListDir(dir)
	if err != nil {
		return res, err
	}
	client := cfg.Client
	if client == nil {
		if client, err = uploadNewClient(ctx, cfg); err != nil {
			return res, err
		}
	}
	up := uploadJob{
		client:  client,
		bucket:  bucket,
		retries: uploadOr(cfg.Retries, DefaultUploadRetries),
		backoff: uploadOr(cfg.Backoff, DefaultUploadBackoff),
		secrets: uploadSecretForms(cfg.Redact),
		log:     log,
	}
	start := time.Now()
	for _, rel := range files {
		key := path.Join(prefix, runID, filepath.ToSlash(rel))
		n, err := up.put(ctx, filepath.Join(dir, rel), key)
		if err != nil {
			return res, err
		}
		res.Files = append(res.Files, key)
		res.Bytes += n
	}
	log.Info().Str("dest", "s3://"+path.Join(bucket, prefix, runID)).Int("files", len(res.Files)).
		Int64("bytes", res.Bytes).Dur("took", time.Since(start)).Msg("run directory uploaded")
	return res, nil
}

// uploadNewClient builds an S3 client from cfg's Profile, Region and Endpoint,
// loading the SDK's default credential chain. With an Endpoint, addressing
// is path-style and the region defaults to us-east-1 when none is found.
func uploadNewClient(ctx context.Context, cfg UploadConfig) (*s3.Client, error) {
	var opts []func(*config.LoadOptions) error
	if cfg.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(cfg.Profile))
	}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("report.upload: loading AWS config (aws_profile %q, aws_region %q): %w", cfg.Profile, cfg.Region, err)
	}
	if cfg.Endpoint != "" && awsCfg.Region == "" {
		awsCfg.Region = uploadDefaultRegion
	}
	if awsCfg.Region == "" {
		return nil, fmt.Errorf("report.upload: no AWS region: set aws_region in loadramp's config, AWS_REGION, or a region in the profile")
	}
	return s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = sdkaws.String(cfg.Endpoint)
			o.UsePathStyle = true
		}
	}), nil
}

// uploadListDir returns the regular files under dir, relative to it, in
// lexical order, and the run id (dir's base name).
func uploadListDir(dir string) (files []string, runID string, err error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, "", fmt.Errorf("upload: run directory %q: %w", dir, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, "", fmt.Errorf("upload: run directory: %w", err)
	}
	if !st.IsDir() {
		return nil, "", fmt.Errorf("upload: run directory %q is not a directory", dir)
	}
	runID = filepath.Base(abs)
	if runID == string(filepath.Separator) || runID == "." {
		return nil, "", fmt.Errorf("upload: run directory %q has no name to use as the run id", dir)
	}
	err = filepath.WalkDir(abs, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		// Symlinks and other non-regular files are not part of a run's record.
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(abs, p)
		if err != nil {
			return err
		}
		files = append(files, rel)
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("upload: listing run directory %q: %w", dir, err)
	}
	if len(files) == 0 {
		return nil, "", fmt.Errorf("upload: run directory %q has no files", dir)
	}
	return files, runID, nil
}

type uploadJob struct {
	client  *s3.Client
	bucket  string
	retries int
	backoff time.Duration
	secrets [][]byte // longest first
	log     zerolog.Logger
}

// uploadSecretForms are the byte strings of secrets to redact: each as is
// and JSON-escaped (with and without HTML escaping), longest first.
func uploadSecretForms(secrets []string) [][]byte {
	var forms [][]byte
	add := func(b []byte) {
		if !slices.ContainsFunc(forms, func(f []byte) bool { return bytes.Equal(f, b) }) {
			forms = append(forms, b)
		}
	}
	for _, s := range secrets {
		if len(s) < 4 {
			continue
		}
		add([]byte(s))
		for _, html := range []bool{true, false} {
			var b bytes.Buffer
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(html)
			if enc.Encode(s) == nil {
				e := bytes.TrimSuffix(b.Bytes(), []byte("\n"))
				add(bytes.Clone(e[1 : len(e)-1]))
			}
		}
	}
	slices.SortFunc(forms, func(a, b []byte) int { return len(b) - len(a) })
	return forms
}

// holdsSecret reports whether f holds one of the secrets; it reads f in
// chunks that overlap by the longest secret, then rewinds it.
func (u *uploadJob) holdsSecret(f *os.File) (bool, error) {
	if len(u.secrets) == 0 {
		return false, nil
	}
	defer f.Seek(0, io.SeekStart)
	overlap := len(u.secrets[0]) - 1
	buf := make([]byte, 0, 256<<10)
	for {
		n, err := f.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		for _, s := range u.secrets {
			if bytes.Contains(buf, s) {
				return true, nil
			}
		}
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		if keep := min(overlap, len(buf)); len(buf) == cap(buf) {
			copy(buf, buf[len(buf)-keep:])
			buf = buf[:keep]
		}
	}
}

// put uploads one file to key, retrying, and returns its size.
func (u *uploadJob) put(ctx context.Context, file, key string) (int64, error) {
	var last error
	attempt := 0
	for attempt < u.retries {
		attempt++
		n, err := u.putOnce(ctx, file, key)
		if err == nil {
			u.log.Debug().Str("file", file).Str("key", key).Int64("bytes", n).Int("attempt", attempt).Msg("uploaded")
			return n, nil
		}
		last = err
		if ctx.Err() != nil || uploadPermanent(err) || attempt == u.retries {
			break
		}
		wait := uploadDelay(u.backoff, attempt)
		u.log.Warn().Err(err).Str("file", file).Int("attempt", attempt).Dur("retry_in", wait).Msg("upload failed; retrying")
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, fmt.Errorf("upload: %s to s3://%s/%s: interrupted after %d attempt(s): %w", file, u.bucket, key, attempt, errors.Join(ctx.Err(), last))
		case <-t.C:
		}
	}
	return 0, fmt.Errorf("upload: %s to s3://%s/%s failed after %d attempt(s): %w", file, u.bucket, key, attempt, last)
}

// putOnce opens file read-only and uploads it in one request.
func (u *uploadJob) putOnce(ctx context.Context, file, key string) (int64, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	var body io.Reader = f
	size := st.Size()
	secret, err := u.holdsSecret(f)
	if err != nil {
		return 0, err
	}
	if secret {
		data, err := io.ReadAll(f)
		if err != nil {
			return 0, err
		}
		for _, s := range u.secrets {
			data = bytes.ReplaceAll(data, s, []byte(uploadRedacted))
		}
		u.log.Info().Str("file", file).Msg("file holds a secret: uploading it redacted")
		body, size = bytes.NewReader(data), int64(len(data))
	}
	_, err = u.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        sdkaws.String(u.bucket),
		Key:           sdkaws.String(key),
		Body:          body,
		ContentLength: sdkaws.Int64(size),
		ContentType:   sdkaws.String(uploadContentType(file)),
	}, func(o *s3.Options) {
		// One attempt per call, also with a caller's client: the retries
		// and their backoff are ours, counted per file.
		o.Retryer = sdkaws.NopRetryer{}
		o.RetryMaxAttempts = 0
	})
	if err != nil {
		return 0, err
	}
	return size, nil
}

// uploadPermanent reports whether err is an answer the store will repeat:
// an HTTP 4xx other than 408 (timeout) and 429 (throttled).
func uploadPermanent(err error) bool {
	var re *awshttp.ResponseError
	if !errors.As(err, &re) {
		return false
	}
	sc := re.HTTPStatusCode()
	return sc >= 400 && sc < 500 && sc != 408 && sc != 429
}

// uploadDelay is the wait after the given failed attempt (1-based): the
// base doubled per attempt, bounded by MaxUploadBackoff, then "equal
// jitter": a random point in its upper half, so that retries of many
// uploaders spread out but never collapse to zero.
func uploadDelay(base time.Duration, attempt int) time.Duration {
	d := base
	for i := 1; i < attempt && d < MaxUploadBackoff; i++ {
		d *= 2
	}
	d = min(d, MaxUploadBackoff)
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(half+1)
}

// uploadContentType is the Content-Type stored with a run file, by its
// extension; unknown extensions are application/octet-stream.
func uploadContentType(name string) string {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".json":
		return "application/json"
	case ".jsonl":
		return "application/x-ndjson"
	case ".html":
		return "text/html; charset=utf-8"
	case ".csv":
		return "text/csv; charset=utf-8"
	case ".md":
		return "text/markdown; charset=utf-8"
	case ".xml":
		return "application/xml"
	case ".log", ".txt":
		return "text/plain; charset=utf-8"
	case ".yaml", ".yml":
		return "application/yaml"
	case ".svg":
		return "image/svg+xml"
	case ".png":
		return "image/png"
	case ".xlsx":
		return "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	}
	return "application/octet-stream"
}

// uploadOr returns v, or def when v is zero or negative.
func uploadOr[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}
