package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of the CPU times in /proc/PID/stat (100
// on Linux on every architecture Go supports).
const clockTicks = 100

// cpuTime is the CPU time (user + system) used so far by this process and,
// if serverPID is not 0, by that process, its live children and its reaped
// children (PostgreSQL forks a backend per connection).
func cpuTime(serverPID int) (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	total := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	if serverPID == 0 {
		return total, nil
	}
	ticks, err := procTicks(serverPID, true)
	if err != nil {
		return 0, err
	}
	children, err := childPIDs(serverPID)
	if err != nil {
		return 0, err
	}
	for _, pid := range children {
		t, err := procTicks(pid, false)
		if err != nil {
			continue // it exited meanwhile: its time moves to the parent's reaped children
		}
		ticks += t
	}
	return total + time.Duration(ticks)*time.Second/clockTicks, nil
}

// procTicks reads utime + stime (and cutime + cstime, the reaped children's,
// if withChildren) of pid from /proc/PID/stat.
func procTicks(pid int, withChildren bool) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("server CPU: %w", err)
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	s := string(b)
	s = s[strings.LastIndexByte(s, ')')+2:]
	f := strings.Fields(s) // f[0] is field 3 (state); utime is field 14
	n := 2
	if withChildren {
		n = 4
	}
	var sum int64
	for i := range n {
		v, err := strconv.ParseInt(f[11+i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("server CPU: /proc/%d/stat: %w", pid, err)
		}
		sum += v
	}
	return sum, nil
}

// childPIDs lists the processes whose parent is pid.
func childPIDs(pid int) ([]int, error) {
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		return nil, err
	}
	var out []int
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+2:])
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			c, err := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			if err == nil {
				out = append(out, c)
			}
		}
	}
	return out, nil
}
