//go:build !unix

package samlsp

import "time"

func processCPU() (time.Duration, bool) { return 0, false }
