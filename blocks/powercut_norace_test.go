//go:build !race

package blocks

// powerCutRounds is how many seeds TestPowerCut runs by default.
const powerCutRounds = 300
