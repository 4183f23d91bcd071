package idlemem

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// dropExecutablePages tells the kernel that this process no longer needs the
// resident pages of its executable's read-only mappings (madvise
// MADV_DONTNEED): for a private file mapping no process has written, that
// only unmaps them; the next access maps them again from the page cache.
func dropExecutablePages() error {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return fmt.Errorf("idlemem: %w", err)
	}
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return fmt.Errorf("idlemem: %w", err)
	}
	spans, err := droppable(f, exe)
	f.Close()
	if err != nil {
		return fmt.Errorf("idlemem: /proc/self/smaps: %w", err)
	}
	for _, s := range spans {
		if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, s.start, s.end-s.start, syscall.MADV_DONTNEED); errno != 0 {
			return fmt.Errorf("idlemem: madvise %#x-%#x: %w", s.start, s.end, errno)
		}
	}
	return nil
}

// span is one mapping's address range.
type span struct{ start, end uintptr }

// droppable reads /proc/PID/smaps and returns the mappings of the file exe
// that are read-only (r-xp, r--p) and hold no anonymous pages: pages a
// process wrote (such as relocations applied before a segment was made
// read-only) are copies that exist nowhere else, and dropping them would
// bring back the file's content, so such mappings are left alone.
func droppable(smaps io.Reader, exe string) ([]span, error) {
	var (
		out  []span
		cur  *span
		keep bool
	)
	flush := func() {
		if cur != nil && keep {
			out = append(out, *cur)
		}
		cur, keep = nil, false
	}
	sc := bufio.NewScanner(smaps)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if addr, ok := mappingRange(fields[0]); ok && len(fields) >= 5 {
			flush()
			path := ""
			if len(fields) >= 6 {
				path = strings.Join(fields[5:], " ")
			}
			cur = &addr
			keep = path == exe && (fields[1] == "r-xp" || fields[1] == "r--p")
			continue
		}
		if cur != nil && fields[0] == "Anonymous:" && len(fields) >= 2 && fields[1] != "0" {
			keep = false
		}
	}
	flush()
	return out, sc.Err()
}

// mappingRange parses "start-end" (hex) at the head of a mapping's line.
func mappingRange(s string) (span, bool) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return span{}, false
	}
	lo, err1 := strconv.ParseUint(a, 16, 64)
	hi, err2 := strconv.ParseUint(b, 16, 64)
	if err1 != nil || err2 != nil || hi <= lo {
		return span{}, false
	}
	return span{uintptr(lo), uintptr(hi)}, true
}
