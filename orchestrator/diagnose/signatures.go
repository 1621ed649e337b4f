// Package diagnose names the bottleneck of a load step: it matches log lines
// against known signatures, judges a step window's host counters against their
// limits, and returns findings with the setting to change and the evidence. It
// also audits a host's limits funnel before a run.
package diagnose

import "regexp"

// Rule ids (DESIGN.md): stable, used in report.json.
const (
	RuleFDProcess          = "fd-process"
	RuleFDSystem           = "fd-system"
	RuleNginxWorkerConns   = "nginx-worker-connections"
	RuleListenOverflow     = "listen-overflow"
	RuleSynBacklog         = "syn-backlog"
	RuleEphemeralPorts     = "ephemeral-ports"
	RuleTimeWait           = "time-wait"
	RuleConntrackFull      = "conntrack-full"
	RuleCPUSaturation      = "cpu-saturation"
	RuleMemoryPressure     = "memory-pressure"
	RuleGeneratorSaturated = "generator-saturated"
	// RuleGeneratorHeldConnections names a generator that kept its own
	// connections busy: its requests waited for a free connection while the
	// target's answers occupied few of them.
	RuleGeneratorHeldConnections = "generator-held-connections"
)

// signature is a log pattern of a rule. Order matters: the first match wins, so
// "too many open files in system" (ENFILE) is tried before "too many open files".
type signature struct {
	rule string
	re   *regexp.Regexp
}

var signatures = []signature{
	// ENFILE: the whole system is out of file handles.
	{RuleFDSystem, regexp.MustCompile(`(?i)too many open files in system|\bENFILE\b|\(23: Too many open files|VFS: file-max limit \d+ reached`)},
	// EMFILE: one process is out of descriptors (Go, nginx, errno text, Java).
	{RuleFDProcess, regexp.MustCompile(`(?i)too many open files|\bEMFILE\b|\(24: `)},
	{RuleNginxWorkerConns, regexp.MustCompile(`(?i)\d+\s+worker_connections\s+are\s+not\s+enough`)},
	{RuleEphemeralPorts, regexp.MustCompile(`(?i)cannot assign requested address|\bEADDRNOTAVAIL\b|\(99: |address not available`)},
	{RuleSynBacklog, regexp.MustCompile(`(?i)possible\s+SYN\s+flooding\s+on\s+port|SYN flooding`)},
	{RuleConntrackFull, regexp.MustCompile(`(?i)(nf_)?conntrack:?\s*(nf_conntrack:\s*)*table\s+full,?\s+dropping\s+packet`)},
	{RuleMemoryPressure, regexp.MustCompile(`(?i)out of memory:?\s+(killed|kill)\s+process|oom-kill(er)?:|invoked oom-killer|\bOOMKilled\b|fatal error: runtime: out of memory`)},
}

// maxLine bounds how much of a line is matched and kept as evidence.
const maxLine = 4096

// MatchLine returns the rule a log line is evidence for, if any.
func MatchLine(line string) (rule string, ok bool) {
	if len(line) > maxLine {
		line = line[:maxLine]
	}
	for _, s := range signatures {
		if s.re.MatchString(line) {
			return s.rule, true
		}
	}
	return "", false
}
