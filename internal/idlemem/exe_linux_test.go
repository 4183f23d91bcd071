package idlemem

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const sampleSmaps = `00400000-00f15000 r-xp 00000000 fd:01 123                                /opt/bin/pipeline
Size:              11348 kB
Rss:                9872 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me
00f15000-01cae000 r--p 00b15000 fd:01 123                                /opt/bin/pipeline
Size:              13924 kB
Rss:                9108 kB
Anonymous:             0 kB
VmFlags: rd mr mw me
01cae000-01d49000 rw-p 018ae000 fd:01 123                                /opt/bin/pipeline
Size:                620 kB
Anonymous:           116 kB
02000000-02100000 r--p 01900000 fd:01 123                                /opt/bin/pipeline
Size:               1024 kB
Anonymous:             8 kB
7fcae1410000-7fcae1700000 rw-p 00000000 00:00 0
Anonymous:          1288 kB
7fcae2000000-7fcae2100000 r-xp 00000000 fd:01 456                        /usr/lib/libc.so.6
Anonymous:             0 kB
7fcae3000000-7fcae3100000 r-xp 00000000 fd:01 789                        /opt/bin/pipeline (deleted)
Anonymous:             0 kB
`

// The executable's read-only mappings are dropped; its writable data, a
// read-only mapping holding pages the process wrote (relocations), other
// files and anonymous memory are not.
func TestDroppableKeepsOnlyCleanReadOnlyMappingsOfTheExecutable(t *testing.T) {
	got, err := droppable(strings.NewReader(sampleSmaps), "/opt/bin/pipeline")
	if err != nil {
		t.Fatal(err)
	}
	want := []span{{0x400000, 0xf15000}, {0xf15000, 0x1cae000}}
	if !slices.Equal(got, want) {
		t.Fatalf("droppable = %#v, want %#v", got, want)
	}
	got, err = droppable(strings.NewReader(sampleSmaps), "/opt/bin/pipeline (deleted)")
	if err != nil {
		t.Fatal(err)
	}
	if want := []span{{0x7fcae3000000, 0x7fcae3100000}}; !slices.Equal(got, want) {
		t.Fatalf("droppable for a path with a space = %#v, want %#v", got, want)
	}
}

// After Release, far fewer of the test binary's pages are resident, and its
// code still runs (the pages fault back from the page cache).
func TestReleaseUnmapsTheExecutablesReadOnlyPages(t *testing.T) {
	before := exeReadOnlyRSS(t)
	if before == 0 {
		t.Fatal("no resident read-only pages of the executable before Release")
	}
	if err := Release(); err != nil {
		t.Fatal(err)
	}
	after := exeReadOnlyRSS(t)
	if after >= before {
		t.Fatalf("resident read-only pages of the executable: %d kB before Release, %d kB after; want fewer", before, after)
	}
	if strconv.Itoa(42) != "42" || !strings.Contains("idle memory", "memory") {
		t.Fatal("code of the executable misbehaves after Release")
	}
	t.Logf("executable's read-only pages resident: %d kB before Release, %d kB after", before, after)
}

// exeReadOnlyRSS sums Rss (kB) over the executable's r-xp and r--p mappings.
func exeReadOnlyRSS(t *testing.T) int {
	t.Helper()
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	total, in := 0, false
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if _, ok := mappingRange(f[0]); ok && len(f) >= 5 {
			in = len(f) >= 6 && strings.Join(f[5:], " ") == exe && (f[1] == "r-xp" || f[1] == "r--p")
			continue
		}
		if in && f[0] == "Rss:" && len(f) >= 2 {
			n, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatal(err)
			}
			total += n
		}
	}
	return total
}
