package steps

import "errors"

// NewHTTP builds an http step. (Placeholder while the http kind is written.)
func NewHTTP(settings map[string]any) (Step, error) {
	return nil, errors.New("http kind: not implemented yet")
}
