package diagnose

import (
	"fmt"

	"github.com/loadramp/loadramp/orchestrator/metrics"
	"github.com/loadramp/loadramp/orchestrator/result"
)

// Findings about load the target did not let the generator apply: the
// parameter a step asked for against what it achieved. The orchestrator makes
// them when a check that a parameter was achieved fails (plan.LoadParam
// Achieved), so a failed check always comes with what was asked, what was
// achieved, and the evidence.

// Rule ids of the achieved-parameter findings.
const (
	// RuleConnectionsClosed: the target closed connections the generator was
	// asked to hold open (or let them be refused), so the step did not test
	// the connection count it names.
	RuleConnectionsClosed = "connections-closed"
	// RuleSubscriptionsLost: subscriptions the target refused or ended.
	RuleSubscriptionsLost = "subscriptions-lost"
)

// Thresholds of the achieved checks, as plan.LoadParams' defaults judge them:
// held on average at least this share of what was asked, and at most this
// many connections reopened per request.
const (
	HeldShare          = 0.9
	ReopenedPerRequest = 0.1
)

// The pubsub engine's subscription figures (orchestrator/pubsub).
const (
	pubsubSubscribers      = "pubsub.subscribers"
	pubsubSubscribeErrors  = "pubsub.subscribe.errors.count"
	pubsubSubscribeDropped = "pubsub.subscribe.dropped.count"
)

// ConnectionsClosed describes a step whose connections were not held: how
// many were asked for, how many the generator held on average and at most at
// once (about where the target starts closing them: the count at which the
// churn began), and how many it had to reopen per request. ok is false when
// the step did not ask for or measure held connections. The finding is the
// target's and a limit reached; its Host is left for the caller (the
// target's address).
func ConnectionsClosed(params, m map[string]float64) (result.Finding, bool) {
	asked := params["connections"]
	ratio, okR := m[metrics.ConnectionsHeldRatio]
	if asked <= 0 || !okR {
		return result.Finding{}, false
	}
	held, peak := m[metrics.ConnectionsHeld], m[metrics.ConnectionsHeldPeak]
	ev := []string{fmt.Sprintf("the generator held %.0f of the %.0f connections asked on average over the hold (%.0f%%), at most %.0f at once (every connection's TCP state, looked at twice a second)",
		held, asked, 100*ratio, peak)}
	if req, ok := m[metrics.RequestsCount]; ok && req > 0 {
		ev = append(ev, fmt.Sprintf("%.0f connections reopened for %.0f requests (%.2f per request)", m[metrics.ConnectionsReopened], req, m[metrics.ConnectionsReopenedRatio]))
	}
	observed := fmt.Sprintf("held %.0f of %.0f connections on average (%.0f%%)", held, asked, 100*ratio)
	if re, ok := m[metrics.ConnectionsReopenedRatio]; ok && ratio >= HeldShare && re >= ReopenedPerRequest {
		// Held, but only by reopening them: the reopening is the finding.
		observed = fmt.Sprintf("%.2f connections reopened per request, to hold %.0f of %.0f on average", re, held, asked)
	}
	if peak < asked {
		ev = append(ev, fmt.Sprintf("the churn began at about %.0f connections: the target closes (or refuses) what it holds beyond that", peak))
		observed += fmt.Sprintf("; the churn began at about %.0f", peak)
	} else {
		ev = append(ev, "all of them were open at once at some point, but the target closed them between requests")
	}
	return result.Finding{Rule: RuleConnectionsClosed, Side: result.SideTarget, Resource: "held connections",
		Setting:  "the target's connection limit (nginx worker_connections, a server's maximum connections, its keep-alive limits)",
		Observed: observed, Evidence: ev, LimitReached: true,
		Fix: "raise the target's connection limit or keep-alive limits; for a target that closes connections on purpose, set default_checks.parameters: false"}, true
}

// SubscriptionsLost describes a step whose subscribers were not all
// subscribed through the hold: asked, held on average, refused and dropped.
func SubscriptionsLost(params, m map[string]float64) (result.Finding, bool) {
	asked := params["subscribers"]
	ratio, ok := m[metrics.SubscribersHeldRatio]
	if asked <= 0 || !ok {
		return result.Finding{}, false
	}
	ev := []string{
		fmt.Sprintf("%.0f of the %.0f subscribers asked were subscribed on average over the hold (%.0f%%)", ratio*asked, asked, 100*ratio),
		fmt.Sprintf("%.0f subscriptions opened, %.0f refused, %.0f ended by the target during the step",
			m[pubsubSubscribers], m[pubsubSubscribeErrors], m[pubsubSubscribeDropped]),
	}
	return result.Finding{Rule: RuleSubscriptionsLost, Side: result.SideTarget, Resource: "subscriptions",
		Setting:  "the target's subscriber or connection limit (open files, maximum connections)",
		Observed: fmt.Sprintf("%.0f of %.0f subscribers held on average", ratio*asked, asked), Evidence: ev, LimitReached: true,
		Fix: "raise the target's connection and open-file limits"}, true
}
