package report

import (
	"errors"
	"os"
	"path/filepath"

	"github.com/loadramp/loadramp/orchestrator/record"
)

// Load builds the report of the run directory path from what it records:
// run.json, steps.jsonl and notes.jsonl. truncated reports that the last
// line of steps.jsonl was cut short (the run was killed while writing it)
// and left out.
func Load(path string) (rep *Report, truncated bool, err error) {
	d, err := record.Open(path)
	if err != nil {
		return nil, false, err
	}
	defer d.Close()
	run, err := d.ReadRun()
	if err != nil {
		return nil, false, err
	}
	steps, err := d.ReadSteps()
	if err != nil {
		return nil, false, err
	}
	notes, err := d.ReadNotes()
	if err != nil {
		return nil, false, err
	}
	return Build(run, steps, WithNotes(notes)), d.TruncatedTail(), nil
}

// Refresh rewrites the reports a finished run directory already has (the
// formats whose files are there), so that they show what was added since,
// such as a note. A run directory that a live run or resume owns is left
// alone (written is nil, err nil): that process writes its reports, notes
// included, when it ends.
func Refresh(path string) (written []string, err error) {
	lock, err := record.Lock(path)
	var locked *record.LockedError
	if errors.As(err, &locked) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	rep, _, err := Load(path)
	if err != nil {
		return nil, err
	}
	ws := Builtin()
	var formats []string
	for _, name := range ws.Names() {
		if _, err := os.Stat(filepath.Join(path, ws[name].File)); err == nil {
			formats = append(formats, name)
		}
	}
	written, err = ws.WriteAll(path, rep, formats)
	if err != nil {
		return written, err
	}
	// A campaign's variant: the campaign's workbook shows it too.
	if parent := filepath.Dir(path); IsCampaign(parent) {
		more, err := RefreshCampaign(parent)
		return append(written, more...), err
	}
	return written, nil
}

// IsCampaign reports whether dir is a campaign directory (it has
// campaign.json).
func IsCampaign(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "campaign.json"))
	return err == nil
}

// RefreshCampaign rewrites a campaign directory's reports (campaign.json,
// .md, report.xlsx, .html) from campaign.json and its variants' run
// directories, so the workbook shows what was added to them since (notes).
// A variant whose run directory cannot be read keeps its summary row.
func RefreshCampaign(dir string) ([]string, error) {
	c, err := ReadCampaign(dir)
	if err != nil {
		return nil, err
	}
	var reps []*Report
	for _, v := range c.Variants {
		if rep, _, err := Load(filepath.Join(dir, v.RunID)); err == nil {
			reps = append(reps, rep)
		}
	}
	return WriteCampaign(dir, c, reps...)
}
