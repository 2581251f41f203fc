// Package filelock takes an exclusive advisory lock on a file, so test
// processes sharing a cache directory (npm installs, the tiny test model)
// fill it one at a time.
package filelock
