// Package docs holds the project's documents (design, deploy, performance).
// It has no code; its test keeps the documents true and standing on their
// own: every test they name exists, the design covers every invariant,
// every relative link resolves, nothing outside the repository is cited, the
// README's first screen states the prerequisites (go.mod's Go version
// included) and its Layout names every package.
package docs
