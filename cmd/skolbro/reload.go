package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/skolbro/skolbro/internal/app"
	"github.com/skolbro/skolbro/internal/config"
	"github.com/skolbro/skolbro/internal/metrics"
	"github.com/skolbro/skolbro/internal/store"
)

// cmdReload asks a running `skolbro serve` to reload: it checks the
// configuration first (the bridge would refuse one with errors anyway),
// then sends SIGHUP to the process named by --pid-file or --pid, and, with
// the Redis store, waits for the bridge's record of the outcome.
func cmdReload(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("reload", stdout, stderr, "skolbro reload --pid-file FILE [--config FILE] [--wait 15s]",
		"Checks the configuration, then makes the running bridge (serve --pid-file FILE) re-read it, with its policies, metadata and keys, by SIGHUP. "+
			"A configuration with any error is not applied: the bridge keeps serving the one it has. Exits 1 when the check or the reload fails.")
	path := fs.String("config", "", "the configuration the bridge runs: checked before the signal is sent")
	pidFile := fs.String("pid-file", "", "the file serve --pid-file writes")
	pid := fs.Int("pid", 0, "the bridge's process id (instead of --pid-file)")
	wait := fs.Duration("wait", 15*time.Second, "with the Redis store: how long to wait for the bridge's outcome")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if (*pidFile == "") == (*pid == 0) {
		fmt.Fprintln(stderr, "skolbro reload: name the bridge's process with --pid-file or --pid")
		return 2
	}
	var cfg *config.Config
	if *path != "" {
		var err error
		if cfg, err = config.Load(*path); err != nil {
			fmt.Fprintf(stderr, "skolbro reload: %v\nnot sent: the bridge would refuse this configuration\n", err)
			return 1
		}
		_, rep := app.Build(cfg, store.NewMemory(nil), time.Now)
		if len(rep.Errors) > 0 {
			for _, e := range rep.Errors {
				fmt.Fprintf(stderr, "error: %s\n", e)
			}
			fmt.Fprintf(stderr, "skolbro reload: %d error(s); not sent: the bridge would refuse this configuration and keep the one it runs\n", len(rep.Errors))
			return 1
		}
	}
	if *pidFile != "" {
		p, err := readPIDFile(*pidFile)
		if err != nil {
			fmt.Fprintf(stderr, "skolbro reload: --pid-file: %v\n", err)
			return 1
		}
		*pid = p
	}
	if err := checkSkolbroProcess(*pid); err != nil {
		fmt.Fprintf(stderr, "skolbro reload: process %d: %v\n", *pid, err)
		return 1
	}
	sent := time.Now().UTC().Truncate(time.Second)
	if err := signalProcess(*pid, syscall.SIGHUP); err != nil {
		fmt.Fprintf(stderr, "skolbro reload: signal process %d: %v\n", *pid, err)
		return 1
	}
	fmt.Fprintf(stdout, "sent SIGHUP to skolbro (process %d)\n", *pid)
	if cfg == nil || cfg.Store.Type != "redis" || *wait <= 0 {
		fmt.Fprintln(stdout, "its log says \"configuration reloaded\" or \"reload refused\"; skolbro_reload_total counts both")
		return 0
	}
	return waitReload(cfg, *pid, sent, *wait, stdout, stderr)
}

// waitReload waits for the bridge's record of the reload that sent
// started, and reports it.
func waitReload(cfg *config.Config, pid int, sent time.Time, wait time.Duration, stdout, stderr io.Writer) int {
	st, err := app.OpenStore(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "skolbro reload: cannot read the outcome: %v\n", err)
		return 1
	}
	if c, ok := st.(io.Closer); ok {
		defer c.Close()
	}
	suffix := "/" + strconv.Itoa(pid)
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		rec, err := app.ReadReloadRecord(ctx, st)
		cancel()
		if err == nil && rec != nil && strings.HasSuffix(rec.Instance, suffix) && !rec.Time.Before(sent) {
			if rec.Result == metrics.ReloadApplied {
				fmt.Fprintln(stdout, "applied")
				return 0
			}
			fmt.Fprintln(stderr, "refused: the bridge keeps serving the configuration it had")
			for _, p := range rec.Problems {
				fmt.Fprintf(stderr, "error: %s\n", p)
			}
			return 1
		}
		time.Sleep(200 * time.Millisecond)
	}
	fmt.Fprintf(stderr, "skolbro reload: no outcome recorded within %v: see the bridge's log\n", wait)
	return 1
}

// checkSkolbroProcess refuses to signal a process that is not skolbro
// (a stale pid file whose number was reused), where the system can tell.
func checkSkolbroProcess(pid int) error {
	if pid <= 1 {
		return errors.New("not a bridge's process id")
	}
	if err := signalProcess(pid, syscall.Signal(0)); err != nil {
		return fmt.Errorf("not running: %w", err)
	}
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "comm"))
	if err != nil {
		return nil // no /proc here: the pid file is trusted
	}
	if name := strings.TrimSpace(string(b)); !strings.Contains(name, "skolbro") {
		return fmt.Errorf("is %q, not skolbro (a stale pid file?)", name)
	}
	return nil
}

func signalProcess(pid int, sig os.Signal) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Signal(sig)
}

// writePIDFile writes this process's id to path, atomically.
func writePIDFile(path string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// removePIDFile removes path if it still names this process (a new
// process started during the drain may have written its own).
func removePIDFile(path string) {
	if p, err := readPIDFile(path); err == nil && p == os.Getpid() {
		_ = os.Remove(path)
	}
}

func readPIDFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	p, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || p <= 0 {
		return 0, fmt.Errorf("%s holds no process id", path)
	}
	return p, nil
}
