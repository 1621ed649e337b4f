package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"sort"

	"github.com/loadramp/loadramp/orchestrator/record"
)

// Format is one output format of a report.
type Format struct {
	// Name is the format's name in plans and on the command line ("md").
	Name string
	// File is the file written into the run directory ("report.md").
	File string
	// Write renders the report.
	Write func(w io.Writer, r *Report) error
}

// Writers is a registry of formats by name. It is a plain value, not global
// state: make one with Builtin and Register more (report.html) on it.
type Writers map[string]Format

// Builtin returns a new registry of the formats this package writes: json,
// csv, md, junit, html and xlsx.
func Builtin() Writers {
	return Writers{
		"json":  {Name: "json", File: "report.json", Write: WriteJSON},
		"csv":   {Name: "csv", File: "steps.csv", Write: WriteCSV},
		"md":    {Name: "md", File: "report.md", Write: WriteMarkdown},
		"junit": {Name: "junit", File: "junit.xml", Write: WriteJUnit},
		"html":  {Name: "html", File: "report.html", Write: WriteHTML},
		"xlsx":  {Name: "xlsx", File: WorkbookFile, Write: WriteXLSX},
	}
}

// Register adds or replaces a format.
func (ws Writers) Register(f Format) { ws[f.Name] = f }

// Names returns the registered format names, sorted.
func (ws Writers) Names() []string {
	names := make([]string, 0, len(ws))
	for n := range ws {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// FormatHTML is the name of the HTML format. A registry without it (one made
// by hand) skips it in WriteAll rather than failing.
const FormatHTML = "html"

// WriteAll writes each requested format of r into dir and returns the paths
// written, in the order requested. Duplicates are written once. "html" is
// skipped silently when not registered; any other unknown format is an error,
// reported before anything is written. Each
// file is written to a temporary name and renamed, so a reader never sees half
// a report.
func (ws Writers) WriteAll(dir string, r *Report, formats []string) ([]string, error) {
	var todo []Format
	seen := map[string]bool{}
	for _, name := range formats {
		if seen[name] {
			continue
		}
		seen[name] = true
		f, ok := ws[name]
		if !ok {
			if name == FormatHTML {
				continue
			}
			return nil, fmt.Errorf("unknown report format %q (known: %v)", name, ws.Names())
		}
		todo = append(todo, f)
	}
	var written []string
	for _, f := range todo {
		var buf bytes.Buffer
		if err := f.Write(&buf, r); err != nil {
			return written, fmt.Errorf("render %s: %w", f.File, err)
		}
		path := filepath.Join(dir, f.File)
		if err := writeFileAtomic(path, buf.Bytes()); err != nil {
			return written, fmt.Errorf("write %s: %w", f.File, err)
		}
		written = append(written, path)
	}
	return written, nil
}

// WriteAll writes the requested built-in formats (json, csv, md, junit) of r
// into dir; see Writers.WriteAll.
func WriteAll(dir string, r *Report, formats []string) ([]string, error) {
	return Builtin().WriteAll(dir, r, formats)
}

// writeFileAtomic writes reports the way the run directory writes run.json:
// a temporary file, fsynced, renamed into place.
func writeFileAtomic(path string, data []byte) error { return record.WriteFileAtomic(path, data) }

// WriteJSON writes report.json: indented, with map keys sorted, so the same
// report always gives the same bytes.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	// "<" in gates and "->" in the summary stay readable; report.json is not HTML.
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("encode report.json: %w", err)
	}
	return nil
}

// Read decodes a report.json (for compare and history tools).
func Read(rd io.Reader) (*Report, error) {
	var r Report
	if err := json.NewDecoder(rd).Decode(&r); err != nil {
		return nil, fmt.Errorf("decode report.json: %w", err)
	}
	if r.Schema != Schema {
		return nil, fmt.Errorf("report schema %q is not %q", r.Schema, Schema)
	}
	return &r, nil
}
