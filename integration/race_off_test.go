//go:build !race

package integration

// raceEnabled: built with -race (see rttBound).
const raceEnabled = false
