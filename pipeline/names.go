package pipeline

// Pipeline and step names, and run keys, are checked by hand rather than by
// package-level regexps: compiling the two patterns (their bounded
// repetitions expand to hundreds of instructions) cost about a quarter of a
// millisecond of every process start. TestNamePatterns checks the functions
// against the patterns, which the error messages show.
const (
	// namePattern is what validName accepts.
	namePattern = `^[a-z0-9][a-z0-9_-]{0,62}$`
	// keyPattern is what validKey accepts.
	keyPattern = `^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`
)

// validName reports whether s matches namePattern.
func validName(s string) bool {
	if len(s) == 0 || len(s) > 63 || !isLowerDigit(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isLowerDigit(c) && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// validKey reports whether s matches keyPattern.
func validKey(s string) bool {
	if len(s) == 0 || len(s) > 100 || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

func isLowerDigit(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }

func isAlnum(c byte) bool { return isLowerDigit(c) || 'A' <= c && c <= 'Z' }
