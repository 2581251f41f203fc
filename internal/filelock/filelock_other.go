//go:build !unix

package filelock

// Lock is a no-op where flock is unavailable: holders may then race.
func Lock(string) (func(), error) { return func() {}, nil }
