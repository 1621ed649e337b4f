package plan

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"
)

// Feeder formats and modes.
const (
	FeederCSV   = "csv"
	FeederJSONL = "jsonl"

	FeederCircular = "circular"
	FeederRandom   = "random"
	FeederUnique   = "unique"
)

var (
	feederFormats = []string{FeederCSV, FeederJSONL}
	feederModes   = []string{FeederCircular, FeederRandom, FeederUnique}
)

// Bounds of a feeder file, which is held in memory for the whole run.
const (
	MaxFeederBytes   = 1 << 30
	MaxFeederColumns = 1024
	maxJSONLLine     = 16 << 20
)

// FeederData is a feeder file's content: its column names, and every row's
// values in the order of Columns.
type FeederData struct {
	Columns []string
	Rows    [][]string
}

// Column returns the index of column name, or -1.
func (d *FeederData) Column(name string) int {
	for i, c := range d.Columns {
		if c == name {
			return i
		}
	}
	return -1
}

// FeederFormat is f's format: as given, or from its file's extension (.csv;
// .jsonl, .ndjson), or "" when neither says.
func FeederFormat(f *Feeder) string {
	if f.Format != "" {
		return f.Format
	}
	switch strings.ToLower(filepath.Ext(f.File)) {
	case ".csv":
		return FeederCSV
	case ".jsonl", ".ndjson":
		return FeederJSONL
	}
	return ""
}

// FeederPath is where feeder name's file is: File itself when absolute, else
// relative to the directory of the plan file (the working directory for a
// plan not loaded from a file).
func (p *Plan) FeederPath(name string) string {
	h := p.Workload.HTTP
	if h == nil || h.Feeders[name] == nil {
		return ""
	}
	file := h.Feeders[name].File
	if file == "" || filepath.IsAbs(file) {
		return file
	}
	return filepath.Join(p.dir, file)
}

// LoadFeeder reads and parses feeder name's file. The error says what is wrong
// with the file (missing, empty, ragged...) and where; the caller names the
// feeder's path in the plan.
func (p *Plan) LoadFeeder(name string) (*FeederData, error) {
	h := p.Workload.HTTP
	if h == nil || h.Feeders[name] == nil {
		return nil, fmt.Errorf("no feeder %q", name)
	}
	f := h.Feeders[name]
	path := p.FeederPath(name)
	format := FeederFormat(f)
	if format == "" {
		return nil, fmt.Errorf("%s: cannot tell the format from the extension; give format: csv or jsonl", f.File)
	}
	file, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: no such file (relative paths are relative to the plan file's directory)", path)
		}
		return nil, err
	}
	defer file.Close()
	if st, err := file.Stat(); err == nil && st.Size() > MaxFeederBytes {
		return nil, fmt.Errorf("%s: %d bytes; a feeder is held in memory and may hold at most %d", path, st.Size(), MaxFeederBytes)
	}
	var d *FeederData
	switch format {
	case FeederCSV:
		d, err = ParseCSVFeeder(file)
	case FeederJSONL:
		d, err = ParseJSONLFeeder(file)
	default:
		return nil, fmt.Errorf("unknown format %q; use csv or jsonl", format)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return d, nil
}

// ParseCSVFeeder parses a CSV feeder: a header line naming the columns, then
// at least one row, every row with as many fields as the header (RFC 4180
// quoting; a UTF-8 byte order mark is skipped).
func ParseCSVFeeder(r io.Reader) (*FeederData, error) {
	br := bufio.NewReader(r)
	if bom, err := br.Peek(3); err == nil && bytes.Equal(bom, []byte("\xef\xbb\xbf")) {
		_, _ = br.Discard(3)
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = 0 // every row as long as the header
	header, err := cr.Read()
	if err == io.EOF {
		return nil, errors.New("empty: a CSV feeder needs a header line naming its columns, then rows")
	}
	if err != nil {
		return nil, csvErr(err, nil)
	}
	if err := checkColumns(header, "line 1"); err != nil {
		return nil, err
	}
	d := &FeederData{Columns: header}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, csvErr(err, header)
		}
		d.Rows = append(d.Rows, rec)
	}
	if len(d.Rows) == 0 {
		return nil, fmt.Errorf("no rows after the header line (%s)", strings.Join(header, ", "))
	}
	return d, nil
}

// csvErr says what is wrong with a CSV line in words.
func csvErr(err error, header []string) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		if errors.Is(pe.Err, csv.ErrFieldCount) && header != nil {
			return fmt.Errorf("line %d: a ragged row: the header has %d columns (%s); every row needs one value for each", pe.StartLine, len(header), strings.Join(header, ", "))
		}
		return fmt.Errorf("line %d: %v", pe.StartLine, pe.Err)
	}
	return err
}

// checkColumns checks a feeder's column names: not empty, not repeated.
func checkColumns(cols []string, where string) error {
	if len(cols) > MaxFeederColumns {
		return fmt.Errorf("%s: %d columns; at most %d", where, len(cols), MaxFeederColumns)
	}
	seen := map[string]bool{}
	for i, c := range cols {
		switch {
		case strings.TrimSpace(c) == "":
			return fmt.Errorf("%s: column %d has no name", where, i+1)
		case seen[c]:
			return fmt.Errorf("%s: column %q appears twice", where, c)
		case !utf8.ValidString(c):
			return fmt.Errorf("%s: column %d's name is not UTF-8", where, i+1)
		}
		seen[c] = true
	}
	return nil
}

// ParseJSONLFeeder parses a JSON Lines feeder: one JSON object a line, every
// object with the same keys (the columns, sorted). A string value is used as
// is, a number as written, true and false as such, null as "", and an object
// or array as its compact JSON. Blank lines are skipped.
func ParseJSONLFeeder(r io.Reader) (*FeederData, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxJSONLLine)
	var d *FeederData
	line := 0
	for sc.Scan() {
		line++
		text := bytes.TrimSpace(sc.Bytes())
		if len(text) == 0 {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(text))
		dec.UseNumber()
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil || obj == nil {
			return nil, fmt.Errorf("line %d: not a JSON object: %s", line, jsonErr(err, text))
		}
		if dec.More() {
			return nil, fmt.Errorf("line %d: more than one JSON value; JSON Lines holds one object a line", line)
		}
		if d == nil {
			cols := make([]string, 0, len(obj))
			for k := range obj {
				cols = append(cols, k)
			}
			sort.Strings(cols)
			if len(cols) == 0 {
				return nil, fmt.Errorf("line %d: an object without keys; the first object's keys are the columns", line)
			}
			if err := checkColumns(cols, fmt.Sprintf("line %d", line)); err != nil {
				return nil, err
			}
			d = &FeederData{Columns: cols}
		}
		row := make([]string, len(d.Columns))
		for i, c := range d.Columns {
			v, ok := obj[c]
			if !ok {
				return nil, fmt.Errorf("line %d: a ragged row: no %q, which the first object has (every object needs the same keys: %s)", line, c, strings.Join(d.Columns, ", "))
			}
			row[i] = jsonValue(v)
		}
		if len(obj) != len(d.Columns) {
			for k := range obj {
				if d.Column(k) < 0 {
					return nil, fmt.Errorf("line %d: a ragged row: %q is not a key of the first object (every object needs the same keys: %s)", line, k, strings.Join(d.Columns, ", "))
				}
			}
		}
		d.Rows = append(d.Rows, row)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("line %d: longer than %d bytes", line+1, maxJSONLLine)
		}
		return nil, err
	}
	if d == nil {
		return nil, errors.New("empty: a JSON Lines feeder needs one JSON object a line")
	}
	return d, nil
}

func jsonErr(err error, text []byte) string {
	if err == nil {
		return fmt.Sprintf("%.40q", text)
	}
	return err.Error()
}

// jsonValue is a JSON value as a feeder field.
func jsonValue(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		if x {
			return "true"
		}
		return "false"
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}
