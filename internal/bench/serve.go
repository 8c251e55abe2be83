package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// served is `skolbro serve` started by the bench in its own process, so
// that its CPU time per login comes from its own accounting and none of
// the IdP's, the vendors' or the browsers' work is mixed in.
type served struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // set before done is closed
	tail *tailLines
}

// readyTimeout bounds how long the bench waits for serve to answer
// /readyz (it builds every organiser first).
const readyTimeout = 60 * time.Second

// freeAddr returns a loopback address nothing listens on at the moment.
// serve binds it a moment later; another process taking it in between
// makes serve fail to start, which the bench reports.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// startServe runs command (the skolbro executable and "serve", or what
// Options.ServeCommand names) with the configuration in dir and waits
// until the bridge at base is ready. Its output is read and dropped
// except for the last lines, which are shown if it fails: the bridge logs
// no personal data, and the bench's identities are invented anyway.
func startServe(ctx context.Context, command []string, dir, base string) (*served, error) {
	return startChild(ctx, "serve", append(command[:len(command):len(command)], "--config", filepath.Join(dir, configFile), "--drain-delay", "0s"), base)
}

// startChild runs command, the process errors call name, and waits
// until it answers /readyz at base with 200.
func startChild(ctx context.Context, name string, command []string, base string) (*served, error) {
	cmd := exec.Command(command[0], command[1:]...)
	cmd.Env = os.Environ()
	tail := &tailLines{max: 20}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	go tail.read(pr)
	if err := cmd.Start(); err != nil {
		pw.Close()
		return nil, fmt.Errorf("bench: starting %s: %w", strings.Join(command, " "), err)
	}
	s := &served{cmd: cmd, done: make(chan struct{}), tail: tail}
	go func() {
		s.err = cmd.Wait()
		pw.Close()
		close(s.done)
	}()
	deadline := time.Now().Add(readyTimeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
		if err != nil {
			s.stop()
			return nil, err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		select {
		case <-s.done:
			return nil, fmt.Errorf("bench: %s exited before it was ready (%v); its last lines:\n%s", name, s.err, tail.String())
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("bench: %s was not ready after %v; its last lines:\n%s", name, readyTimeout, tail.String())
		}
	}
}

// pid is the serve process's id.
func (s *served) pid() int { return s.cmd.Process.Pid }

// stop asks serve to shut down (SIGTERM, as an orchestrator would) and
// kills it if it has not exited after a while.
func (s *served) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// tailLines keeps the last max lines read.
type tailLines struct {
	max   int
	mu    sync.Mutex
	lines []string
}

func (t *tailLines) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		t.mu.Lock()
		t.lines = append(t.lines, sc.Text())
		if len(t.lines) > t.max {
			t.lines = t.lines[len(t.lines)-t.max:]
		}
		t.mu.Unlock()
	}
	// Keep draining after an overlong line, or serve would block on a
	// full pipe.
	_, _ = io.Copy(io.Discard, r)
}

func (t *tailLines) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}

// serveCommand is the command that runs `skolbro serve`: this executable.
func serveCommand() ([]string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, errors.New("bench: --serve cannot find the skolbro executable: " + err.Error())
	}
	return []string{exe, "serve"}, nil
}
