// Package docs holds the project's documents (design, deploy, performance).
// It has no code; its test keeps the documents standing on their own: every
// test they name exists, every relative link resolves, and nothing outside
// the repository is cited.
package docs
