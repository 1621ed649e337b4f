//go:build race

package eventbus

// raceEnabled scales timing tests down: the race detector slows the test's
// own HTTP client several times over.
const raceEnabled = true
