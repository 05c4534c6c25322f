//go:build race

package integration

// raceEnabled: built with -race, which makes the victim's work per frame
// several times dearer (see rttBound).
const raceEnabled = true
