package orchestrator

import (
	"fmt"
	"maps"

	"github.com/loadramp/loadramp/orchestrator/record"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// reopen opens the run directory of an interrupted run for Resume: its
// run.json keeps its identity, its finished attempts are queued for replay.
func (r *runner) reopen() (*record.Dir, error) {
	// Locked: a run still going (or another resume) owns the directory.
	dir, err := record.OpenLocked(r.opts.Resume)
	if err != nil {
		return nil, fmt.Errorf("resume: %w", err)
	}
	old, err := dir.ReadRun()
	if err != nil {
		dir.Close()
		return nil, fmt.Errorf("resume: %w", err)
	}
	steps, err := dir.ReadSteps()
	if err != nil {
		dir.Close()
		return nil, fmt.Errorf("resume: %w", err)
	}
	for _, s := range steps {
		// An attempt cut short by the interruption is run again.
		if s.Verdict == result.VerdictError && s.Reason == "interrupted" {
			continue
		}
		r.replay = append(r.replay, s)
	}
	// Keep the run's identity; the fleets are provisioned anew.
	r.runRec.ID = old.ID
	r.runRec.Start = old.Start
	r.runRec.PlanFile = old.PlanFile
	r.runRec.PlanHash = old.PlanHash
	if r.runRec.Extra == nil {
		r.runRec.Extra = map[string]string{}
	}
	maps.Copy(r.runRec.Extra, old.Extra)
	r.runRec.Extra["resumed_at"] = r.deps.Now().UTC().Format("2006-01-02T15:04:05Z")
	r.runRec.Extra["resumed_attempts"] = fmt.Sprint(len(r.replay))
	if err := dir.WriteRun(r.runRec); err != nil {
		dir.Close()
		return nil, err
	}
	return dir, nil
}

// replayed returns the recorded attempt that the resumed run's state machine
// asks for next, or nil when it must run. A recorded attempt that does not
// match (the plan's schedule differs) ends the replay.
func (r *runner) replayed(index int, kind string, attempt int, vals map[string]float64) *result.Step {
	if len(r.replay) == 0 {
		return nil
	}
	next := r.replay[0]
	if next.Index != index || next.Kind != kind || next.Attempt != attempt || !maps.Equal(next.Parameters, vals) {
		r.log.Warn().Int("step", index).Int("recorded_step", next.Index).Msg("resume: the recorded attempts do not follow the plan's schedule; running from here")
		r.obs.Message("resume: recorded attempts stop matching the schedule at step %d; running from there", index)
		r.replay = nil
		return nil
	}
	r.replay = r.replay[1:]
	if next.Verdict == result.VerdictPass {
		r.passed = true
	}
	return &next
}
