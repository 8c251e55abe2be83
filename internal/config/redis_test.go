package config

import "testing"

// Sentinel waits for one replica by default: its failover promotes a
// replica, which must hold every spent code and replay record.
func TestReplicaAcksOrDefault(t *testing.T) {
	zero, two := 0, 2
	for _, tc := range []struct {
		r    Redis
		want int
	}{
		{Redis{Addrs: []string{"a:1"}}, 0},
		{Redis{Addrs: []string{"a:1", "b:1", "c:1"}}, 0},
		{Redis{Addrs: []string{"s:1"}, MasterName: "m"}, 1},
		{Redis{Addrs: []string{"s:1"}, MasterName: "m", ReplicaAcks: &zero}, 0},
		{Redis{Addrs: []string{"a:1"}, ReplicaAcks: &two}, 2},
	} {
		if got := tc.r.ReplicaAcksOrDefault(); got != tc.want {
			t.Errorf("%+v: %d, want %d", tc.r, got, tc.want)
		}
	}
}
