//go:build !unix

package samlidp_test

import "time"

func processCPU() (time.Duration, bool) { return 0, false }
