package pipeline

// TaskIDPattern is what Cloud Tasks accepts as a task ID, and so what every
// queue accepts as a task name.
const TaskIDPattern = "[A-Za-z0-9_-]{1,500}"

// ValidTaskID reports whether id matches TaskIDPattern. It is a loop, not a
// regexp: the compiled form of {1,500} holds 500 copies of the class and
// costs ~0.4 MB of heap in every process that links it.
func ValidTaskID(id string) bool {
	if len(id) < 1 || len(id) > 500 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}
