//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package protection

import (
	"os"
	"syscall"
)

// lockFile takes an exclusive flock on path (created 0600 if absent) and
// returns its release. The lock file itself holds nothing.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Close()
	}, nil
}
