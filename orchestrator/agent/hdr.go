package agent

import (
	"errors"
	"fmt"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram geometry every agent records in (FIELD_NOTES.md): microseconds,
// 1 µs to 60 s, at HistDigits significant digits for a step's window and
// SecondDigits for one second of its series. Histograms of one geometry merge
// exactly, bucket by bucket.
const (
	HistLowest   = 1
	HistHighest  = 60_000_000
	HistDigits   = 3
	SecondDigits = 2
	// MaxHistEncoded bounds one encoded histogram (a 3-digit window one is
	// under 10 KiB compressed; the bound leaves room and refuses garbage).
	MaxHistEncoded = 1 << 20
)

// NewHist returns an empty histogram of the agents' geometry with digits
// significant digits.
func NewHist(digits int) *hdrhistogram.Histogram {
	return hdrhistogram.New(HistLowest, HistHighest, digits)
}

// EncodeHist returns h in HdrHistogram's standard compressed encoding (V2,
// base64 text, as in HdrHistogram logs); "" for nil.
func EncodeHist(h *hdrhistogram.Histogram) (string, error) {
	if h == nil {
		return "", nil
	}
	b, err := h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		return "", fmt.Errorf("encode histogram: %w", err)
	}
	return string(b), nil
}

// DecodeHist decodes s (EncodeHist's form) and checks that it has the agents'
// geometry with digits significant digits, so that merging it is exact. ""
// decodes to nil.
func DecodeHist(s string, digits int) (*hdrhistogram.Histogram, error) {
	if s == "" {
		return nil, nil
	}
	if len(s) > MaxHistEncoded {
		return nil, fmt.Errorf("decode histogram: %d bytes, more than %d", len(s), MaxHistEncoded)
	}
	h, err := hdrhistogram.Decode([]byte(s))
	if err != nil {
		return nil, fmt.Errorf("decode histogram: %w", err)
	}
	if h == nil {
		return nil, errors.New("decode histogram: empty")
	}
	if h.LowestTrackableValue() != HistLowest || h.HighestTrackableValue() != HistHighest || int(h.SignificantFigures()) != digits {
		return nil, fmt.Errorf("decode histogram: geometry %d..%d at %d digits, want %d..%d at %d (another loadramp version?)",
			h.LowestTrackableValue(), h.HighestTrackableValue(), h.SignificantFigures(), HistLowest, HistHighest, digits)
	}
	return h, nil
}
