//go:build !race

package main

// raceBuild is true when the tests run under -race; TestMain then builds the
// binary under test with -race too, so the subprocesses are checked as well.
const raceBuild = false
