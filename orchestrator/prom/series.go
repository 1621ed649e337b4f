package prom

import (
	"math"
	"sort"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/prometheus/model/labels"
)

// series is one sample of one series of a page, as a Prometheus server
// stores it: histograms and summaries flattened into their _bucket, _sum,
// _count and quantile series, with the page's instance label added.
type series struct {
	labels  labels.Labels
	value   float64
	counter bool
}

// flatten lists the series of a page's families. Counters, and the _bucket,
// _sum and _count series of histograms and summaries, are counters; so is an
// untyped series whose name ends in _total. Everything else is a gauge.
func flatten(fams map[string]*dto.MetricFamily, instance string) []series {
	names := make([]string, 0, len(fams))
	for n := range fams {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []series
	for _, name := range names {
		fam := fams[name]
		for _, m := range fam.GetMetric() {
			base := func(metric string, extra ...string) labels.Labels {
				b := labels.NewScratchBuilder(len(m.GetLabel()) + 2 + len(extra)/2)
				b.Add(labels.MetricName, metric)
				hasInstance := false
				for _, l := range m.GetLabel() {
					b.Add(l.GetName(), l.GetValue())
					hasInstance = hasInstance || l.GetName() == "instance"
				}
				if !hasInstance {
					b.Add("instance", instance)
				}
				for i := 0; i+1 < len(extra); i += 2 {
					b.Add(extra[i], extra[i+1])
				}
				b.Sort()
				return b.Labels()
			}
			add := func(ls labels.Labels, v float64, counter bool) {
				out = append(out, series{labels: ls, value: v, counter: counter})
			}
			switch {
			case m.GetCounter() != nil:
				add(base(name), m.GetCounter().GetValue(), true)
			case m.GetGauge() != nil:
				add(base(name), m.GetGauge().GetValue(), false)
			case m.GetUntyped() != nil:
				add(base(name), m.GetUntyped().GetValue(), strings.HasSuffix(name, "_total"))
			case m.GetSummary() != nil:
				s := m.GetSummary()
				for _, q := range s.GetQuantile() {
					add(base(name, "quantile", formatFloat(q.GetQuantile())), q.GetValue(), false)
				}
				add(base(name+"_sum"), s.GetSampleSum(), true)
				add(base(name+"_count"), float64(s.GetSampleCount()), true)
			case m.GetHistogram() != nil:
				h := m.GetHistogram()
				for _, b := range h.GetBucket() {
					add(base(name+"_bucket", "le", formatFloat(b.GetUpperBound())), float64(b.GetCumulativeCount()), true)
				}
				// The +Inf bucket is implicit in the protobuf format.
				add(base(name+"_bucket", "le", "+Inf"), float64(h.GetSampleCount()), true)
				add(base(name+"_sum"), h.GetSampleSum(), true)
				add(base(name+"_count"), float64(h.GetSampleCount()), true)
			}
		}
	}
	return dedupe(out)
}

// dedupe keeps the first of series with equal labels (a text page that
// lists a histogram's +Inf bucket explicitly, a repeated line).
func dedupe(in []series) []series {
	seen := make(map[string]bool, len(in))
	out := in[:0]
	for _, s := range in {
		k := s.labels.String()
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, s)
	}
	return out
}

func formatFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// matches reports whether every matcher matches ls (a missing label is "").
func matches(ms []*labels.Matcher, ls labels.Labels) bool {
	for _, m := range ms {
		if !m.Matches(ls.Get(m.Name)) {
			return false
		}
	}
	return true
}
