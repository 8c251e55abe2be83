package store

// Exported for the external tests of this package (failover_login_test.go),
// which run in the same test binary, so that no two packages' tests fail
// over the one Sentinel set-up at once.
var (
	HAAddrs         = haAddrs
	KillServer      = killServer
	MasterAddr      = masterAddr
	WaitForReplica  = waitForReplica
	SentinelEnv     = sentinelEnv
	SentinelNameEnv = sentinelMasterEnv
)
