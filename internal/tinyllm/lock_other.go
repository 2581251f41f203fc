//go:build !unix

package tinyllm

// lock is a no-op where flock is unavailable: installs may then race.
func lock(string) (func(), error) { return func() {}, nil }
