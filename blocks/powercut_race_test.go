//go:build race

package blocks

// powerCutRounds is how many seeds TestPowerCut runs by default: fewer
// under the race detector, which slows goleveldb down about tenfold.
const powerCutRounds = 60
