package bench

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// limitCPU moves a process, all of it, into a CPU-limited cgroup and
// removes the cgroup afterwards. It needs a writable cgroup CPU
// controller, which not every machine gives (it is not a peer the
// project's tests depend on; --serve-cpus says so when it is missing).
func TestLimitCPU(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep command:", err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	pid := cmd.Process.Pid
	cleanup, err := limitCPU(pid, 0.5)
	if err != nil {
		if strings.Contains(err.Error(), "writable cgroup") {
			t.Skip("this machine's cgroups are not writable here:", err)
		}
		t.Fatal(err)
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	name := "skolbro-bench-" + strconv.Itoa(pid)
	if !strings.Contains(string(b), name) {
		t.Errorf("process not in %s:\n%s", name, b)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	cleanup()
	for _, dir := range []string{"/sys/fs/cgroup/" + name, "/sys/fs/cgroup/cpu/" + name} {
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("%s left behind", dir)
		}
	}
	if _, err := limitCPU(pid, 0.01); err == nil {
		t.Error("a limit of 0.01 CPUs accepted")
	}
}

func TestServeCPUsNeedsServe(t *testing.T) {
	for _, o := range []Options{{ServeCPUs: 0.5}, {Serve: true, ServeCPUs: -1}} {
		if err := o.defaults(); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}
